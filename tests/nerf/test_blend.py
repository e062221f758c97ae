"""Volume blending (paper Eq. 24): ends, linearity, face probability, the FieldFn form."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from faceshop_jax import classes
from faceshop_jax import nerf


def _sample(key, shape=(4, 5)):
  k1, k2, k3 = jax.random.split(key, 3)
  return (jax.random.uniform(k1, shape) * 10, jax.random.uniform(k2, shape + (3,)),
          jax.random.normal(k3, shape + (19,)))


def test_blend_is_linear_with_the_right_ends():
  edited, original = _sample(jax.random.PRNGKey(0)), _sample(jax.random.PRNGKey(1))
  w = jax.random.uniform(jax.random.PRNGKey(2), (4, 5))
  for weight, expected in ((jnp.ones_like(w), edited), (jnp.zeros_like(w), original)):
    blended = nerf.blend_fields(edited, original, weight)
    np.testing.assert_allclose(blended[0], expected[0], rtol=1e-6)
    np.testing.assert_allclose(blended[1], expected[1], rtol=1e-6)
    np.testing.assert_allclose(jax.nn.softmax(blended[2]), jax.nn.softmax(expected[2]), atol=1e-6)
  density, features, logits = nerf.blend_fields(edited, original, w)
  np.testing.assert_allclose(density, w * edited[0] + (1 - w) * original[0], rtol=1e-6)
  np.testing.assert_allclose(features, w[..., None] * edited[1] + (1 - w[..., None]) * original[1],
                             rtol=1e-6)
  mixed = (w[..., None] * jax.nn.softmax(edited[2]) +
           (1 - w[..., None]) * jax.nn.softmax(original[2]))
  np.testing.assert_allclose(jax.nn.softmax(logits), mixed, rtol=1e-5)


def test_face_probability_counts_the_face_classes():
  one_hot = 50.0 * jax.nn.one_hot(jnp.arange(19), 19)
  expected = np.isin(np.arange(19), classes.FACE).astype(np.float32)
  np.testing.assert_allclose(nerf.face_probability(one_hot), expected, atol=1e-6)
  assert set(classes.FACE) == {1, 2, 3, 4, 5, 10, 11, 12, 13}


def test_blended_field_takes_the_face_from_the_edited_field():
  face = 50.0 * jax.nn.one_hot(classes.SKIN, 19)
  hair = 50.0 * jax.nn.one_hot(classes.HAIR, 19)

  def constant_field(density, colour, logits):
    return lambda p, d: (jnp.full(p.shape[:-1], density), jnp.full(p.shape[:-1] + (3,), colour),
                         jnp.broadcast_to(logits, p.shape[:-1] + (19,)))

  points, directions = jnp.zeros((2, 6, 3)), jnp.zeros((2, 3))
  edited_face = constant_field(5.0, 1.0, face)
  original_hair = constant_field(2.0, 0.0, hair)
  union = nerf.blended_field(edited_face, original_hair)(points, directions)
  np.testing.assert_allclose(union[0], 5.0, rtol=1e-5)
  only_original = nerf.blended_field(edited_face, original_hair, 'original')(points, directions)
  np.testing.assert_allclose(only_original[1], 0.0, atol=1e-6)
  with pytest.raises(ValueError, match='weight_source'):
    nerf.blended_field(edited_face, original_hair, 'both')
