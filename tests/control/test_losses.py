"""VAE-GAN losses: the KL closed form, finiteness, and which parameters each loss trains."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from faceshop_jax import control


def test_kl_matches_a_monte_carlo_estimate():
  rng = np.random.default_rng(0)
  mean, logvar = rng.normal(size=3), rng.normal(scale=0.5, size=3)
  cov = np.diag(np.exp(logvar))
  z = rng.multivariate_normal(mean, cov, size=200_000)
  estimate = np.mean(stats.multivariate_normal(mean, cov).logpdf(z)
                     - stats.multivariate_normal(np.zeros(3)).logpdf(z))
  kl = control.kl_divergence(jnp.asarray(mean), jnp.asarray(logvar))
  np.testing.assert_allclose(kl, estimate, rtol=0.02)
  assert control.kl_divergence(jnp.zeros((4, 3)), jnp.zeros((4, 3))).shape == (4,)
  np.testing.assert_array_equal(control.kl_divergence(jnp.zeros(3), jnp.zeros(3)), 0.0)


def _setup(spec, seed=0):
  vae, critic = spec.networks()
  vae_params, critic_params = control.init_factor(jax.random.PRNGKey(seed), spec)
  batch = jax.random.normal(jax.random.PRNGKey(seed + 1), (16, spec.size))
  return vae, critic, vae_params, critic_params, batch


def _leaf_norms(tree):
  return [float(jnp.linalg.norm(leaf)) for leaf in jax.tree.leaves(tree)]


@pytest.mark.parametrize('fake_source', control.FAKE_SOURCES)
@pytest.mark.parametrize('loss_type', control.LOSS_TYPES)
def test_losses_are_finite_and_train_their_own_parameters(small_specs, fake_source, loss_type):
  vae, critic, vae_params, critic_params, batch = _setup(small_specs[1])
  kwargs = dict(vae=vae, critic=critic, fake_source=fake_source, loss_type=loss_type)
  key = jax.random.PRNGKey(2)

  (total, terms), vae_grads = jax.jit(jax.value_and_grad(
      lambda p: control.vae_generator_loss(p, critic_params, batch, key, **kwargs),
      has_aux=True))(vae_params)
  assert set(terms) == {'reconstruction', 'kl', 'adversarial'}
  assert np.isfinite(total) and all(np.isfinite(v) for v in terms.values())
  assert all(n > 0 for n in _leaf_norms(vae_grads))

  (loss, logits), (critic_grads, leaked) = jax.jit(jax.value_and_grad(
      lambda c, p: control.critic_loss(c, p, batch, key, **kwargs),
      argnums=(0, 1), has_aux=True))(critic_params, vae_params)
  assert np.isfinite(loss) and set(logits) == {'real_logit', 'fake_logit'}
  assert all(n > 0 for n in _leaf_norms(critic_grads))
  assert all(n == 0 for n in _leaf_norms(leaked))  # the critic step must not move the VAE


def test_zero_adversarial_weight_is_the_plain_vae(small_specs):
  vae, critic, vae_params, critic_params, batch = _setup(small_specs[0])
  _, _, _, other_critic, _ = _setup(small_specs[0], seed=5)
  key = jax.random.PRNGKey(3)

  def loss(p, c):
    return control.vae_generator_loss(p, c, batch, key, vae=vae, critic=critic,
                                      adversarial_weight=0.0)

  loss_and_grad = jax.jit(jax.value_and_grad(loss, has_aux=True))
  (total, terms), grads = loss_and_grad(vae_params, critic_params)
  np.testing.assert_allclose(total, terms['reconstruction'] + 0.0025 * terms['kl'], rtol=1e-6)
  _, other_grads = loss_and_grad(vae_params, other_critic)
  jax.tree.map(np.testing.assert_array_equal, grads, other_grads)


def test_bad_options_are_rejected(small_specs):
  vae, critic, vae_params, critic_params, batch = _setup(small_specs[2])
  key = jax.random.PRNGKey(0)
  with pytest.raises(ValueError, match='fake_source'):
    control.critic_loss(critic_params, vae_params, batch, key, vae=vae, critic=critic,
                        fake_source='posterior')
  with pytest.raises(ValueError, match='loss_type'):
    control.vae_generator_loss(vae_params, critic_params, batch, key, vae=vae, critic=critic,
                               loss_type='wasserstein')
