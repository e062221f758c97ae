"""Equalised-lr layers and FIR resampling against direct numpy computations."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from faceshop_jax import stylegan


def _numpy_upfirdn2d(x, taps, up, down, pad, gain):
  """Direct 2-D definition: zero-insert, pad, full 2-D convolution with the outer-product filter."""
  taps = np.asarray(taps, np.float64)
  f = np.outer(taps, taps)
  f = f / f.sum() * gain
  b, h, w, c = x.shape
  u = np.zeros((b, h * up, w * up, c))
  u[:, ::up, ::up] = x
  p0, p1 = max(pad[0], 0), max(pad[1], 0)
  u = np.pad(u, ((0, 0), (p0, p1), (p0, p1), (0, 0)))
  c0, c1 = p0 - pad[0], u.shape[1] - (p1 - pad[1])  # negative padding crops
  u = u[:, c0:c1, c0:u.shape[2] - (p1 - pad[1])]
  k = f.shape[0]
  out_h, out_w = u.shape[1] - k + 1, u.shape[2] - k + 1
  out = np.zeros((b, out_h, out_w, c))
  for i in range(k):
    for j in range(k):
      # Convolution: the filter is flipped relative to the input window.
      out += f[k - 1 - i, k - 1 - j] * u[:, i:i + out_h, j:j + out_w]
  return out[:, ::down, ::down]


@pytest.mark.parametrize('taps,up,down,pad,gain', [
    ((1, 3, 3, 1), 2, 1, (2, 1), 4.0),
    ((1, 3, 3, 1), 1, 2, (1, 1), 1.0),
    ((1, 2, 5), 1, 1, (1, 1), 1.0),  # asymmetric: checks the flip
    ((1, 3, 3, 1), 1, 1, (-1, 2), 1.0),  # negative padding crops
    # Polyphase up-sampling and decimation at odd sizes, odd and asymmetric taps, crops:
    ((1, 2, 5), 2, 1, (1, 1), 4.0),
    ((1, 3, 3, 1), 2, 1, (-1, 3), 4.0),
    ((1, 2, 5, 3), 3, 1, (2, 2), 9.0),
    ((1, 2, 5), 2, 3, (2, 0), 4.0),
    ((1, 2, 5), 1, 2, (0, 3), 1.0),
    ((1, 3, 3, 1), 1, 3, (-1, 1), 1.0),
])
def test_upfirdn2d_matches_direct_convolution(taps, up, down, pad, gain):
  x = np.random.default_rng(0).normal(size=(2, 7, 6, 3))
  got = stylegan.upfirdn2d(jnp.asarray(x, jnp.float32), taps, up=up, down=down, padding=pad,
                           gain=gain)
  np.testing.assert_allclose(got, _numpy_upfirdn2d(x, taps, up, down, pad, gain), atol=1e-5)


def test_up_then_down_is_identity_on_smooth_images():
  yy, xx = np.meshgrid(np.linspace(0, 1, 32), np.linspace(0, 1, 32), indexing='ij')
  img = np.stack([np.sin(2 * np.pi * xx) * np.cos(np.pi * yy), xx * yy], -1)[None]
  img = jnp.asarray(img, jnp.float32)
  up = stylegan.upsample2d(img)
  assert up.shape == (1, 64, 64, 2)
  back = stylegan.downsample2d(up)
  # Away from the zero-padded border the two low-pass steps leave a smooth image nearly unchanged.
  np.testing.assert_allclose(back[:, 3:-3, 3:-3], img[:, 3:-3, 3:-3], atol=0.02)
  # Up-sampling keeps the mean (the filter gain compensates for zero insertion).
  np.testing.assert_allclose(up[:, 4:-4, 4:-4].mean(), img[:, 2:-2, 2:-2].mean(), atol=0.02)


@pytest.mark.parametrize('k', [1, 3])
def test_conv2d_resample_matches_conv_of_resampled_input(k):
  key_x, key_w = jax.random.split(jax.random.PRNGKey(0))
  x = jax.random.normal(key_x, (2, 8, 8, 3))
  w = jax.random.normal(key_w, (k, k, 3, 4))

  @jax.jit
  def outputs(x, w):
    conv = lambda x: jax.lax.conv_general_dilated(  # noqa: E731
        x, w, (1, 1), [(k // 2, k // 2)] * 2, dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
    return (stylegan.conv2d_resample(x, w, up=2), conv(stylegan.upsample2d(x)),
            stylegan.conv2d_resample(x, w, down=2),
            stylegan.upfirdn2d(conv(x), down=2, padding=(1, 1)))

  up, up_ref, down, down_ref = outputs(x, w)
  assert up.shape == up_ref.shape == (2, 16, 16, 4)
  np.testing.assert_allclose(up, up_ref, atol=1e-4)
  assert down.shape == (2, 4, 4, 4)
  # Filtering before the strided convolution equals filtering after it, up to the zero padding.
  np.testing.assert_allclose(down[:, 1:-1, 1:-1], down_ref[:, 1:-1, 1:-1], atol=1e-4)


def test_dense_unit_output_std_at_init():
  x = jax.random.normal(jax.random.PRNGKey(1), (4096, 256))
  for lr_mul in (1.0, 0.01):
    dense = stylegan.Dense(256, lr_multiplier=lr_mul)
    y, _ = dense.init_with_output(jax.random.PRNGKey(2), x)
    assert abs(float(jnp.std(y)) - 1.0) < 0.1
  lrelu = stylegan.Dense(256, activation='lrelu')
  y, _ = lrelu.init_with_output(jax.random.PRNGKey(2), x)
  # The √2 gain keeps the second moment through the leaky ReLU.
  assert abs(float(jnp.sqrt(jnp.mean(y ** 2))) - 1.0) < 0.1


def test_dense_lr_multiplier_scales_gradients():
  """Equal effective weights; the stored parameters' gradients differ by the multiplier."""
  x = jax.random.normal(jax.random.PRNGKey(3), (8, 16))
  base = stylegan.Dense(5, activation='lrelu')
  params = base.init(jax.random.PRNGKey(4), x)['params']
  params = {'weight': params['weight'], 'bias': jnp.linspace(-1, 1, 5)}
  slow = stylegan.Dense(5, activation='lrelu', lr_multiplier=0.01)
  slow_params = jax.tree_util.tree_map(lambda p: p / 0.01, params)
  loss = lambda m: lambda p: jnp.sum(m.apply({'params': p}, x) ** 2)  # noqa: E731
  np.testing.assert_allclose(base.apply({'params': params}, x),
                             slow.apply({'params': slow_params}, x), rtol=1e-5, atol=1e-6)
  grads, slow_grads = jax.grad(loss(base))(params), jax.grad(loss(slow))(slow_params)
  for name in ('weight', 'bias'):
    np.testing.assert_allclose(slow_grads[name], 0.01 * grads[name], rtol=1e-4, atol=1e-7)


def test_conv2d_layer_shapes_gain_and_clamp():
  x = 10.0 * jax.random.normal(jax.random.PRNGKey(5), (2, 8, 8, 3))
  conv = stylegan.Conv2d(4, 3, activation='lrelu', conv_clamp=1.0)
  y, variables = conv.init_with_output(jax.random.PRNGKey(6), x)
  assert y.shape == (2, 8, 8, 4) and float(jnp.max(jnp.abs(y))) <= 1.0
  half = conv.apply(variables, x, gain=0.5)
  assert float(jnp.max(jnp.abs(half))) <= 0.5
  down = stylegan.Conv2d(4, 1, down=2, use_bias=False)
  assert down.init_with_output(jax.random.PRNGKey(6), x)[0].shape == (2, 4, 4, 4)


def test_channels():
  assert stylegan.channels(32768, 512, 4) == 512
  assert stylegan.channels(32768, 512, 256) == 128
  assert stylegan.channels(512, 32, 32) == 16
