"""Modulated convolution: the fused and non-fused forms agree; demodulation and noise behave."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from faceshop_jax import stylegan


def _inputs(batch=3, size=8, in_ch=5, out_ch=7, k=3):
  keys = jax.random.split(jax.random.PRNGKey(0), 3)
  x = jax.random.normal(keys[0], (batch, size, size, in_ch))
  weight = jax.random.normal(keys[1], (k, k, in_ch, out_ch))
  styles = 1.0 + 0.5 * jax.random.normal(keys[2], (batch, in_ch))
  return x, weight, styles


@pytest.mark.parametrize('up', [1, 2])
@pytest.mark.parametrize('demodulate', [True, False])
@pytest.mark.parametrize('k', [3, 1])
def test_fused_equals_non_fused(up, demodulate, k):
  both = jax.jit(lambda *a: [stylegan.modulated_conv2d(*a, demodulate=demodulate, up=up, fused=f)
                             for f in (True, False)])
  fused, split = both(*_inputs(k=k))
  assert fused.shape == split.shape == (3, 8 * up, 8 * up, 7)
  scale = float(jnp.max(jnp.abs(split)))
  assert float(jnp.max(jnp.abs(fused - split))) < 1e-4 * scale


@pytest.mark.parametrize('k', [3, 1])
def test_fused_on_a_batch_sharded_over_devices(k):
  """A data-parallel step shards the batch: the fused form (per-sample weights as channel groups)
  must partition, 1×1 ToRGB included (a grouped 1×1 convolution over a sharded batch made XLA's
  SPMD partitioner emit an invalid convolution), and equal the one-device result."""
  mesh = jax.sharding.Mesh(np.array(jax.devices()), ('data',))
  split = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec('data'))
  x, weight, styles = _inputs(batch=jax.device_count(), k=k)
  conv = lambda x, w, s: stylegan.modulated_conv2d(x, w, s, fused=True)
  sharded = jax.jit(conv, out_shardings=split)(jax.device_put(x, split), weight,
                                              jax.device_put(styles, split))
  np.testing.assert_allclose(sharded, jax.jit(conv)(x, weight, styles), rtol=1e-5, atol=1e-5)


def test_matches_per_sample_convolution():
  """Each sample is an ordinary convolution with its own modulated, demodulated weights."""
  x, weight, styles = _inputs()
  out = stylegan.modulated_conv2d(x, weight, styles)
  for b in range(x.shape[0]):
    w = weight * styles[b][None, None, :, None]
    w = w / jnp.sqrt(jnp.sum(w ** 2, axis=(0, 1, 2)) + 1e-8)
    ref = jax.lax.conv_general_dilated(x[b:b + 1], w, (1, 1), 'SAME',
                                       dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
    np.testing.assert_allclose(out[b:b + 1], ref, atol=1e-4)


def test_demodulation_normalises_output_scale():
  """With unit-variance inputs the output variance does not depend on the style magnitude."""
  x = jax.random.normal(jax.random.PRNGKey(1), (2, 32, 32, 64))
  weight = jax.random.normal(jax.random.PRNGKey(2), (3, 3, 64, 16))
  for scale in (0.1, 10.0):
    styles = scale * jnp.ones((2, 64))
    out = stylegan.modulated_conv2d(x, weight, styles)
    assert abs(float(jnp.std(out[:, 1:-1, 1:-1])) - 1.0) < 0.1


def _layer_and_vars(**kwargs):
  layer = stylegan.ModulatedConv(6, **kwargs)
  x = jax.random.normal(jax.random.PRNGKey(3), (2, 8, 8, 4))
  w = jax.random.normal(jax.random.PRNGKey(4), (2, 16))
  variables = jax.jit(layer.init)({'params': jax.random.PRNGKey(5), 'noise': jax.random.PRNGKey(6)},
                                  x, w)
  # Give the noise a visible strength (it starts at 0).
  params = dict(variables['params'], noise_strength=jnp.asarray(0.5))
  return layer, x, w, {**variables, 'params': params}


def test_layer_noise_modes():
  layer, x, w, variables = _layer_and_vars(up=2)
  silent = {**variables, 'params': dict(variables['params'], noise_strength=jnp.asarray(0.0))}

  @jax.jit
  def outputs(key):
    run = lambda v, mode: layer.apply(v, x, w, mode, rngs={'noise': key})  # noqa: E731
    return {mode: run(variables, mode) for mode in ('random', 'const', 'none')} | {
        'silent': run(silent, 'const')}

  a, a_again, b = outputs(jax.random.PRNGKey(7)), outputs(jax.random.PRNGKey(7)), outputs(
      jax.random.PRNGKey(8))
  assert a['random'].shape == (2, 16, 16, 6)
  np.testing.assert_array_equal(a['random'], a_again['random'])  # same key, same output
  assert float(jnp.max(jnp.abs(a['random'] - b['random']))) > 1e-3
  np.testing.assert_array_equal(a['const'], b['const'])
  np.testing.assert_allclose(a['none'], a['silent'], atol=1e-6)
  with pytest.raises(ValueError, match='noise_mode'):
    layer.apply(variables, x, w, 'sometimes')


def test_layer_fused_attribute_gives_same_output():
  layer, x, w, variables = _layer_and_vars(up=2, fused=False)
  fused = stylegan.ModulatedConv(6, up=2, fused=True)
  np.testing.assert_allclose(fused.apply(variables, x, w, 'const'),
                             layer.apply(variables, x, w, 'const'), atol=1e-4)
