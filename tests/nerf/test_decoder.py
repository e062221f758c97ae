"""TriplaneDecoder and EqualizedDense: output ranges, parameter layout, learning-rate multiplier."""
import jax
import jax.numpy as jnp
import numpy as np

from faceshop_jax import nerf


def test_outputs_shapes_and_ranges_under_jit():
  decoder = nerf.TriplaneDecoder()
  x = 3.0 * jax.random.normal(jax.random.PRNGKey(1), (2, 7, 32))
  variables = decoder.init(jax.random.PRNGKey(0), x)
  assert set(variables['params']) == {'shared', 'appearance', 'semantic'}
  assert variables['params']['appearance']['kernel'].shape == (64, 33)
  density, features, logits = jax.jit(decoder.apply)(variables, x)
  assert density.shape == (2, 7) and features.shape == (2, 7, 32) and logits.shape == (2, 7, 19)
  assert jnp.all(density >= 0)
  assert jnp.all(features > -1e-3) and jnp.all(features < 1 + 1e-3)


def test_lr_mul_keeps_the_initial_function_and_scales_gradients():
  x = jax.random.normal(jax.random.PRNGKey(1), (5, 8))
  key = jax.random.PRNGKey(0)
  layers = [nerf.EqualizedDense(4, lr_mul=m, bias_init=0.3) for m in (1.0, 0.1)]
  params = [layer.init(key, x) for layer in layers]
  outputs = [layer.apply(p, x) for layer, p in zip(layers, params)]
  np.testing.assert_allclose(outputs[0], outputs[1], rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(params[1]['params']['kernel'], 10.0 * params[0]['params']['kernel'],
                             rtol=1e-6)
  # The effective weight is lr_mul·stored/√fan_in: the stored parameters' gradients scale by lr_mul.
  grads = [jax.grad(lambda p, layer=layer: layer.apply(p, x).sum())(p)
           for layer, p in zip(layers, params)]
  jax.tree.map(lambda g1, g01: np.testing.assert_allclose(g01, 0.1 * g1, rtol=1e-5), *grads)
  np.testing.assert_allclose(layers[0].apply(params[0], jnp.zeros((1, 8))), 0.3, rtol=1e-6)
