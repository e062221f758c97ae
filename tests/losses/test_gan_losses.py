"""GAN losses and stabilisers: closed forms, gradient signs, finite differences, schedule endpoints."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from faceshop_jax import losses

SOFTPLUS = lambda x: np.log1p(np.exp(x))  # noqa: E731


def _camera(batch, seed=0):
  return jax.random.normal(jax.random.PRNGKey(seed), (batch, 25))


# Adversarial losses.

def test_hinge_is_zero_at_confident_logits_and_matches_eq12():
  real, fake = jnp.array([2.0, 2.0]), jnp.array([-2.0, -2.0])
  assert losses.discriminator_loss(real, fake, 'hinge') == 0.0
  np.testing.assert_allclose(losses.generator_loss(fake, 'hinge'), 2.0)
  # Inside the margin: relu(1 − 0.5) + relu(1 + 0.25), and −mean D(fake).
  np.testing.assert_allclose(
      losses.discriminator_loss(jnp.array([0.5]), jnp.array([0.25]), 'hinge'), 0.5 + 1.25)
  np.testing.assert_allclose(losses.generator_loss(jnp.array([[0.5], [1.5]]), 'hinge'), -1.0)


def test_logistic_matches_softplus_closed_forms():
  real, fake = np.array([1.5, -0.5, 0.0]), np.array([0.3, -2.0, 4.0])
  np.testing.assert_allclose(
      losses.discriminator_loss(jnp.asarray(real), jnp.asarray(fake), 'logistic'),
      np.mean(SOFTPLUS(-real)) + np.mean(SOFTPLUS(fake)), rtol=1e-6)
  np.testing.assert_allclose(losses.generator_loss(jnp.asarray(fake), 'logistic'),
                             np.mean(SOFTPLUS(-fake)), rtol=1e-6)
  np.testing.assert_allclose(losses.generator_loss(jnp.zeros(4), 'logistic'), np.log(2.0))


@pytest.mark.parametrize('kind', losses.ADVERSARIAL_KINDS)
def test_gradient_signs(kind):
  logits = jnp.array([-0.5, 0.0, 0.5])
  # G gains by raising D(fake); D by raising D(real) and lowering D(fake).
  assert jnp.all(jax.grad(losses.generator_loss)(logits, kind) < 0)
  d_real, d_fake = jax.grad(losses.discriminator_loss, argnums=(0, 1))(logits, logits, kind)
  assert jnp.all(d_real < 0) and jnp.all(d_fake > 0)


def test_unknown_kind_is_rejected():
  with pytest.raises(ValueError, match='wgan'):
    losses.discriminator_loss(jnp.zeros(2), jnp.zeros(2), 'wgan')
  with pytest.raises(ValueError, match='hinge'):
    losses.generator_loss(jnp.zeros(2), 'Hinge')


# R1.

def _quadratic_d(params, images, camera):
  """D(x) = Σ_pixels w·x² per sample (plus a camera term): ∇_x D = 2·w·x."""
  del camera
  return jnp.sum(params['w'] * jnp.square(images), axis=(1, 2, 3))


def test_r1_matches_closed_form_and_its_parameter_gradient():
  x = jax.random.normal(jax.random.PRNGKey(0), (3, 4, 5, 2))
  params = {'w': jax.random.normal(jax.random.PRNGKey(1), (4, 5, 2))}
  camera = _camera(3)
  penalty = losses.r1_penalty(_quadratic_d, params, x, camera)
  expected = np.mean(np.sum(4 * np.square(params['w']) * np.square(x), axis=(1, 2, 3)))
  np.testing.assert_allclose(penalty, expected, rtol=1e-5)
  # Double backprop: d/dw mean_b Σ 4w²x² = 8·w·mean_b x².
  grad_w = jax.jit(jax.grad(lambda p: losses.r1_penalty(_quadratic_d, p, x, camera)))(params)['w']
  np.testing.assert_allclose(grad_w, 8 * params['w'] * np.mean(np.square(x), axis=0), rtol=1e-5)


def test_r1_sums_over_both_inputs_of_a_dual_discriminator():
  images = {'image': jax.random.normal(jax.random.PRNGKey(0), (2, 6, 6, 3)),
            'image_raw': jax.random.normal(jax.random.PRNGKey(1), (2, 3, 3, 3))}
  weights = {'image': 0.5, 'image_raw': -2.0}

  def dual_d(params, imgs, camera):
    del camera
    return sum(_quadratic_d({'w': params[k]}, imgs[k], None) for k in imgs)

  camera = _camera(2)
  both = losses.r1_penalty(dual_d, weights, images, camera)
  each = [losses.r1_penalty(_quadratic_d, {'w': weights[k]}, images[k], camera) for k in images]
  np.testing.assert_allclose(both, sum(each), rtol=1e-6)


def test_r1_matches_finite_differences_for_a_random_mlp():
  batch, shape = 2, (3, 3, 2)
  dim = int(np.prod(shape))
  with jax.enable_x64(True):
    keys = jax.random.split(jax.random.PRNGKey(0), 4)
    params = {'w1': jax.random.normal(keys[0], (dim + 25, 8), jnp.float64) / 4,
              'w2': jax.random.normal(keys[1], (8,), jnp.float64)}

    def mlp_d(p, images, camera):
      h = jnp.concatenate([images.reshape(images.shape[0], -1), camera], axis=1)
      return jnp.tanh(h @ p['w1']) @ p['w2']

    x = jax.random.normal(keys[2], (batch,) + shape, jnp.float64)
    camera = jax.random.normal(keys[3], (batch, 25), jnp.float64)
    eps = 1e-5
    # Perturb coordinate k of every sample at once: samples are independent.
    basis = jnp.eye(dim, dtype=jnp.float64).reshape((dim, 1) + shape)
    diff = jax.vmap(lambda e: mlp_d(params, x + eps * e, camera) - mlp_d(params, x - eps * e, camera))
    grads = diff(basis) / (2 * eps)  # [dim, B]
    expected = np.mean(np.sum(np.square(grads), axis=0))
    np.testing.assert_allclose(losses.r1_penalty(mlp_d, params, x, camera), expected, rtol=1e-6)


def test_r1_is_zero_for_a_discriminator_constant_in_x():
  const_d = lambda p, images, camera: camera @ p  # noqa: E731
  penalty = losses.r1_penalty(const_d, jnp.ones(25), jnp.ones((2, 4, 4, 3)), _camera(2))
  assert penalty == 0.0


def test_lazy_helpers():
  assert losses.lazy_weight(losses.gan.R1_GAMMA / 2, losses.gan.R1_INTERVAL) == 80.0
  lr, b1, b2 = losses.lazy_adam_hyperparameters(0.0025, 0.0, 0.99, 16)
  np.testing.assert_allclose([lr, b1, b2], [0.0025 * 16 / 17, 0.0, 0.99 ** (16 / 17)])


# Density regulariser.

def _points(key, batch=2, n=4096):
  return jax.random.uniform(key, (batch, n, 3), minval=-0.37, maxval=0.37)


def test_density_regularization_zero_for_constant_positive_for_noisy_field():
  points, key = _points(jax.random.PRNGKey(0)), jax.random.PRNGKey(1)
  constant = lambda p: jnp.full(p.shape[:2], 3.0)  # noqa: E731
  assert losses.density_regularization(constant, points, key) == 0.0
  noisy = lambda p: jnp.sin(1e4 * p[..., :1])  # noqa: E731  (a [B, M, 1] output)
  assert losses.density_regularization(noisy, points, key) > 0.1


def test_density_regularization_of_a_linear_field_is_the_half_normal_mean():
  # σ(p) = a·p: |σ(p) − σ(p + δ)| = |a·δ| ~ half-normal with mean s·|a|·√(2/π).
  a, s = jnp.array([3.0, -4.0, 0.0]), 0.01
  loss = losses.density_regularization(lambda p: p @ a, _points(jax.random.PRNGKey(0)),
                                       jax.random.PRNGKey(1), perturbation=s)
  np.testing.assert_allclose(loss, s * 5.0 * np.sqrt(2 / np.pi), rtol=0.03)


# Blur.

def test_blur_sigma_fades_linearly_to_zero():
  sigma = jax.jit(losses.blur_sigma, static_argnums=1)
  np.testing.assert_allclose([sigma(s, 100) for s in (0, 50, 100, 1000)], [10.0, 5.0, 0.0, 0.0])
  assert losses.blur_sigma(0, 0) == 0.0
  assert losses.blur_sigma(0, 10, initial_sigma=4.0) == 4.0


# Generator pose-conditioning swap.

def test_swap_probability_zero_is_the_identity():
  camera = _camera(6)
  np.testing.assert_array_equal(losses.swap_conditioning(jax.random.PRNGKey(0), camera, 0.0),
                                camera)


def test_swap_probability_one_changes_every_row_and_keeps_the_multiset():
  camera = _camera(6)
  swapped = np.asarray(losses.swap_conditioning(jax.random.PRNGKey(0), camera, 1.0))
  assert np.all(np.any(swapped != np.asarray(camera), axis=1))
  sort_rows = lambda a: a[np.lexsort(a.T[::-1])]  # noqa: E731
  np.testing.assert_array_equal(sort_rows(swapped), sort_rows(np.asarray(camera)))


def test_swap_rate_follows_the_probability():
  camera = _camera(4000)
  swapped = losses.swap_conditioning(jax.random.PRNGKey(1), camera, 0.3)
  rate = np.mean(np.any(np.asarray(swapped) != np.asarray(camera), axis=1))
  assert abs(rate - 0.3) < 0.03


def test_swap_probability_schedule():
  np.testing.assert_allclose([losses.swap_probability(s, 100, 0.5) for s in (0, 50, 100, 500)],
                             [1.0, 0.75, 0.5, 0.5])


# EMA.

def test_ema_update_closed_form():
  ema = {'a': jnp.array([1.0, 2.0]), 'b': jnp.array(4.0)}
  params = {'a': jnp.zeros(2), 'b': jnp.array(2.0)}
  out = losses.ema_update(ema, params, 0.9)
  np.testing.assert_allclose(out['a'], [0.9, 1.8], rtol=1e-6)
  np.testing.assert_allclose(out['b'], 3.8, rtol=1e-6)
  np.testing.assert_array_equal(losses.ema_update(ema, params, 0.0)['a'], params['a'])


def test_ema_decay_halves_after_half_life():
  batch, half_life = 32, 10_000.0
  decay = losses.ema_decay_from_half_life(batch, half_life)
  np.testing.assert_allclose(decay ** (half_life / batch), 0.5, rtol=1e-5)
  np.testing.assert_allclose(decay, 0.5 ** (batch / half_life), rtol=1e-6)


def test_ema_rampup():
  decay = lambda step: losses.ema_decay_from_half_life(32, 10_000.0, 0.05, step)  # noqa: E731
  assert decay(0) == 0.0  # the EMA starts as a copy of G
  np.testing.assert_allclose(decay(100), 0.5 ** (32 / (100 * 32 * 0.05)), rtol=1e-6)
  np.testing.assert_allclose(decay(10**6), losses.ema_decay_from_half_life(32, 10_000.0),
                             rtol=1e-6)
  with pytest.raises(ValueError, match='step'):
    losses.ema_decay_from_half_life(32, 10_000.0, rampup_ratio=0.05)
