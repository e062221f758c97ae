"""Dual discriminator at 16² (channel_base 128, channel_max 16): logits, conditioning, mbstd, blur."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from faceshop_jax import stylegan


# Not a multiple of the minibatch-std group size 4: groups of 3.
BATCH = 6


@pytest.fixture(scope='module')
def d_and_vars():
  disc = stylegan.DualDiscriminator(resolution=16, channel_base=128, channel_max=16,
                                    mapping_layers=2, max_blur_sigma=2.0)
  image, raw, c = _inputs(BATCH)
  variables = jax.jit(disc.init)(jax.random.PRNGKey(0), image, raw, c)
  return disc, variables, jax.jit(disc.apply)


def _inputs(batch, seed=1):
  keys = jax.random.split(jax.random.PRNGKey(seed), 3)
  return (jax.random.normal(keys[0], (batch, 16, 16, 3)), jax.random.normal(keys[1], (batch, 8, 8, 3)),
          jax.random.normal(keys[2], (batch, 25)))


def test_logits_shape_and_determinism(d_and_vars):
  disc, variables, apply = d_and_vars
  image, raw, c = _inputs(BATCH)
  logits = apply(variables, image, raw, c)
  assert logits.shape == (BATCH,)
  np.testing.assert_array_equal(logits, apply(variables, image, raw, c))
  # The first block reads 6 channels: [SR image, up-sampled raw image].
  assert variables['params']['b16']['fromrgb']['weight'].shape == (1, 1, 6, 8)


def test_camera_and_raw_image_change_the_output(d_and_vars):
  _, variables, apply = d_and_vars
  image, raw, c = _inputs(BATCH)
  logits = apply(variables, image, raw, c)
  assert float(jnp.max(jnp.abs(apply(variables, image, raw, c + 0.5) - logits))) > 1e-4
  assert float(jnp.max(jnp.abs(apply(variables, image, raw + 0.5, c) - logits))) > 1e-4


@pytest.mark.parametrize('batch,group,expected_group', [(8, 4, 4), (6, 4, 3), (5, 4, 1), (2, 4, 2)])
def test_minibatch_std_matches_grouped_numpy(batch, group, expected_group):
  x = np.random.default_rng(0).normal(size=(batch, 4, 4, 6)).astype(np.float32)
  out = np.asarray(stylegan.minibatch_std(jnp.asarray(x), group, num_channels=2))
  assert out.shape == (batch, 4, 4, 8)
  np.testing.assert_array_equal(out[..., :6], x)
  n = batch // expected_group
  for i in range(batch):
    members = x[i % n::n]  # StyleGAN2's layout: sample g·n + j belongs to group j
    assert len(members) == expected_group
    std = np.sqrt(members.var(axis=0) + 1e-8)  # [4, 4, 6]
    expected = std.reshape(4, 4, 2, 3).mean(axis=(0, 1, 3))
    np.testing.assert_allclose(out[i, 0, 0, 6:], expected, rtol=1e-5)
    np.testing.assert_allclose(out[i, ..., 6:], np.broadcast_to(expected, (4, 4, 2)), rtol=1e-5)


def test_blur_matches_eg3d_kernel():
  img = jax.random.normal(jax.random.PRNGKey(2), (1, 24, 24, 2))
  # σ is traced; the kernel is laid out for max_sigma = 3.
  blur = jax.jit(lambda x, sigma: stylegan.blur(x, sigma, max_sigma=3.0))
  np.testing.assert_array_equal(blur(img, 0.0), img)
  np.testing.assert_array_equal(blur(img, 0.3), img)  # floor(3σ) = 0: EG3D skips the blur
  sigma = 1.5
  radius = math.floor(3 * sigma)
  taps = np.exp2(-np.square(np.arange(-radius, radius + 1) / sigma))
  ref = jax.jit(lambda x: stylegan.upfirdn2d(x, taps, padding=(radius, radius)))(img)
  np.testing.assert_allclose(blur(img, sigma), ref, atol=1e-5)
  # The blur keeps a constant image away from the border.
  flat = blur(jnp.ones((1, 24, 24, 2)), sigma)
  np.testing.assert_allclose(flat[:, radius:-radius, radius:-radius], 1.0, atol=1e-5)


def test_blur_sigma_is_a_traced_argument(d_and_vars):
  _, variables, apply = d_and_vars
  image, raw, c = _inputs(BATCH)
  sharp = apply(variables, image, raw, c, jnp.float32(0.0))
  blurred = apply(variables, image, raw, c, jnp.float32(1.5))
  assert float(jnp.max(jnp.abs(blurred - sharp))) > 1e-4
