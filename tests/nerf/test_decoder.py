"""TriplaneDecoder: output ranges and parameter layout (its Dense layers are tested in stylegan)."""
import jax
import jax.numpy as jnp

from faceshop_jax import nerf


def test_outputs_shapes_and_ranges_under_jit():
  decoder = nerf.TriplaneDecoder()
  x = 3.0 * jax.random.normal(jax.random.PRNGKey(1), (2, 7, 32))
  variables = decoder.init(jax.random.PRNGKey(0), x)
  assert set(variables['params']) == {'shared', 'appearance', 'semantic'}
  assert variables['params']['appearance']['weight'].shape == (64, 33)
  density, features, logits = jax.jit(decoder.apply)(variables, x)
  assert density.shape == (2, 7) and features.shape == (2, 7, 32) and logits.shape == (2, 7, 19)
  assert jnp.all(density >= 0)
  assert jnp.all(features > -1e-3) and jnp.all(features < 1 + 1e-3)
