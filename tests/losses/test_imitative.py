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
  assert imitative.texture_loss(rendered, target, mask) == 0.0
  # Changing I off the face changes R' there too: the loss only sees the face region.
  outside = generated * (1 - mask[..., None]) + rendered * mask[..., None]
  assert imitative.texture_loss(outside, imitative.guidance_target(rendered, mask, outside),
                                mask) == 0.0
  assert imitative.texture_loss(generated, imitative.guidance_target(rendered, mask, generated),
                                mask) > 0


def test_texture_loss_is_the_mean_per_pixel_l2_over_the_face():
  # Image 0: 2 face pixels off by (0.3, 0.4, 0) -> 0.5 each; image 1: 4 face pixels, one off by
  # (0, 0, 2) -> mean 0.5. Pixels off the face never count, whatever their difference.
  generated = jnp.zeros((2, 4, 4, 3))
  target = generated.at[0, 0, :2].set(jnp.array([0.3, 0.4, 0.0])).at[1, 3, 3].set(
      jnp.array([0.0, 0.0, 2.0])).at[:, 2, 0].set(5.0)
  mask = jnp.zeros((2, 4, 4)).at[0, 0, :2].set(1.0).at[1, 3].set(1.0)
  np.testing.assert_allclose(imitative.texture_loss(generated, target, mask), 0.5, rtol=1e-4)


def test_zero_at_the_target():
  e = jax.random.normal(jax.random.PRNGKey(0), (3, 16))
  e = e / jnp.linalg.norm(e, axis=-1, keepdims=True)
  np.testing.assert_allclose(imitative.identity_loss(e, e), 0.0, atol=1e-6)
  np.testing.assert_allclose(imitative.identity_loss(e, -e), 2.0, atol=1e-6)
  points = jax.random.uniform(jax.random.PRNGKey(1), (3, 68, 2)) * 64
  assert imitative.landmark_loss(points, points, 64) == 0.0
  gamma = jax.random.normal(jax.random.PRNGKey(2), (3, 27))
  assert imitative.illumination_loss(gamma, gamma) == 0.0
  labels = jax.nn.one_hot(jax.random.randint(jax.random.PRNGKey(3), (3, 4, 4), 0, 19), 19)
  np.testing.assert_allclose(imitative.semantic_loss(labels * 0.5, labels), 0.0, atol=1e-5)


def test_landmark_loss_is_the_weighted_sum_of_distances():
  # Eq. 15: Σ w_i ‖l_i − l̂_i‖₂. Point 3 (jaw, w 1) off by (3, 4) px and point 20 (brow, w 100) off
  # by 5 px vertically, at image size 10: (1 · 0.5 + 100 · 0.5) for image 0, 0 for image 1.
  base = jnp.zeros((2, 68, 2))
  moved = base.at[0, 3].set(jnp.array([3.0, 4.0])).at[0, 20, 1].set(5.0)
  np.testing.assert_allclose(imitative.landmark_loss(moved, base, 10), 50.5 / 2, rtol=1e-4)
  jaw = imitative.landmark_loss(base.at[:, 3, 0].set(1.0), base, 10)
  mouth = imitative.landmark_loss(base.at[:, 60, 1].set(1.0), base, 10)
  np.testing.assert_allclose(mouth / jaw, 100.0, rtol=1e-5)
  # A norm, not a square: twice the error, twice the loss.
  np.testing.assert_allclose(imitative.landmark_loss(base.at[:, 3, 0].set(2.0), base, 10),
                             2 * jaw, rtol=1e-5)


def test_illumination_loss_is_the_l2_norm():
  gamma = jnp.zeros((2, 27))
  moved = gamma.at[0, 0].set(3.0).at[0, 9].set(4.0).at[1, 26].set(1.0)
  np.testing.assert_allclose(imitative.illumination_loss(moved, gamma), (5.0 + 1.0) / 2, rtol=1e-4)


def test_semantic_loss_is_the_soft_cross_entropy_of_eq_14():
  # One pixel, 2 of 19 classes: P = (0.25, 0.75), S = (0.5, 0.5) -> −(0.25 + 0.75) log 0.5.
  probabilities = jnp.zeros((1, 1, 1, 19)).at[..., 0].set(0.25).at[..., 1].set(0.75)
  semantics = jnp.zeros((1, 1, 1, 19)).at[..., :2].set(0.4)  # alpha 0.8: normalised to 0.5 each
  np.testing.assert_allclose(imitative.semantic_loss(semantics, probabilities), np.log(2.0),
                             rtol=1e-4)


def test_semantic_loss_averages_the_parser_probabilities_over_blocks():
  labels = jnp.repeat(jnp.repeat(jnp.arange(4).reshape(1, 2, 2), 4, 1), 4, 2)  # 8x8 blocks
  semantics = jax.nn.one_hot(jnp.arange(4).reshape(1, 2, 2), 19)
  np.testing.assert_allclose(imitative.semantic_loss(semantics, jax.nn.one_hot(labels, 19)), 0.0,
                             atol=1e-5)


def test_phase_weight():
  assert imitative.phase_weight(jnp.asarray(9), 10) == 0.0
  assert imitative.phase_weight(jnp.asarray(10), 10) == 1.0
