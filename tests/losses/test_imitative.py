"""Imitative losses: each is zero where it must be, and weighs what the paper weighs."""
import jax
import jax.numpy as jnp
import numpy as np

from faceshop_jax.losses import imitative


def _images(seed, shape=(2, 8, 8, 3)):
  return jax.random.uniform(jax.random.PRNGKey(seed), shape, minval=-1, maxval=1)


def test_guidance_target_pastes_the_render_on_the_mask():
  rendered, generated = _images(0), _images(1)
  mask = jnp.zeros((2, 8, 8)).at[:, 2:5, 3:6].set(1.0)
  target = imitative.guidance_target(rendered, mask, generated)
  np.testing.assert_array_equal(target[:, 2:5, 3:6], rendered[:, 2:5, 3:6])
  np.testing.assert_array_equal(target[:, :2], generated[:, :2])


def test_texture_loss_is_zero_when_the_image_is_its_target_and_sees_only_the_face():
  rendered, generated = _images(0), _images(1)
  mask = jnp.zeros((2, 8, 8)).at[:, 2:5, 3:6].set(1.0)
  target = imitative.guidance_target(rendered, mask, rendered)
  assert imitative.texture_loss(rendered, target) == 0.0
  # Changing I off the face changes R' there too: the loss only sees the face region.
  outside = generated * (1 - mask[..., None]) + rendered * mask[..., None]
  assert imitative.texture_loss(outside, imitative.guidance_target(rendered, mask, outside)) == 0.0
  assert imitative.texture_loss(generated, imitative.guidance_target(rendered, mask, generated)) > 0


def test_zero_at_the_target():
  e = jax.random.normal(jax.random.PRNGKey(0), (3, 16))
  e = e / jnp.linalg.norm(e, axis=-1, keepdims=True)
  np.testing.assert_allclose(imitative.identity_loss(e, e), 0.0, atol=1e-6)
  np.testing.assert_allclose(imitative.identity_loss(e, -e), 2.0, atol=1e-6)
  points = jax.random.uniform(jax.random.PRNGKey(1), (3, 68, 2)) * 64
  assert imitative.landmark_loss(points, points, 64) == 0.0
  gamma = jax.random.normal(jax.random.PRNGKey(2), (3, 27))
  assert imitative.illumination_loss(gamma, gamma) == 0.0
  labels = jax.random.randint(jax.random.PRNGKey(3), (3, 4, 4), 0, 19)
  np.testing.assert_allclose(
      imitative.semantic_loss(jax.nn.one_hot(labels, 19) * 0.5, labels), 0.0, atol=1e-5)


def test_landmark_weights_brows_and_mouth_count_100_times():
  base = jnp.zeros((1, 68, 2))
  jaw = imitative.landmark_loss(base.at[0, 3, 0].set(1.0), base, 10)
  brow = imitative.landmark_loss(base.at[0, 20, 0].set(1.0), base, 10)
  mouth = imitative.landmark_loss(base.at[0, 60, 1].set(1.0), base, 10)
  np.testing.assert_allclose([brow / jaw, mouth / jaw], [100.0, 100.0], rtol=1e-5)


def test_semantic_loss_resizes_labels_by_nearest_neighbour():
  labels = jnp.repeat(jnp.repeat(jnp.arange(4).reshape(1, 2, 2), 4, 1), 4, 2)  # 8x8 blocks
  semantics = jax.nn.one_hot(jnp.arange(4).reshape(1, 2, 2), 19)
  np.testing.assert_allclose(imitative.semantic_loss(semantics, labels), 0.0, atol=1e-5)


def test_phase_weight():
  assert imitative.phase_weight(jnp.asarray(9), 10) == 0.0
  assert imitative.phase_weight(jnp.asarray(10), 10) == 1.0
