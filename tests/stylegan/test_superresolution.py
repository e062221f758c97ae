"""Super-resolution at tiny sizes: 'eg3d' 8² -> 32² (4×), 'copo' 16² -> 32² (2×) fed 8²."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from faceshop_jax import stylegan

W_DIM = 16
# variant -> (in_resolution, rendered resolution): the 'copo' render is resized up first (EG3D's
# 64² warm-up renders take that path).
SETUPS = {'eg3d': (8, 8), 'copo': (16, 8)}


def _inputs(res, batch=2, feat=8):
  keys = jax.random.split(jax.random.PRNGKey(0), 2)
  features = jax.random.normal(keys[0], (batch, res, res, feat))
  ws = jax.random.normal(keys[1], (batch, 5, W_DIM))
  return features[..., :3], features, ws


@pytest.fixture(scope='module', params=sorted(SETUPS))
def setup(request):
  variant = request.param
  in_res, render_res = SETUPS[variant]
  sr = stylegan.SuperResolution(in_res, 32, variant, block_channels=(8, 4))
  rgb, features, ws = _inputs(render_res)
  variables = jax.jit(lambda *a: sr.init({'params': jax.random.PRNGKey(1)}, *a, 'none'))(
      rgb, features, ws)
  apply = jax.jit(lambda r, f, w: sr.apply(variables, r, f, w, 'none'))
  return variant, variables, apply, (rgb, features, ws)


def test_shapes_and_structure(setup):
  variant, variables, apply, inputs = setup
  out = apply(*inputs)
  assert out.shape == (2, 32, 32, 3)
  assert bool(jnp.all(jnp.isfinite(out)))
  # EG3D's skip blocks both have a ToRGB; CoPo's resnet blocks only the last.
  assert ('torgb' in variables['params']['block0']) == (variant == 'eg3d')
  assert ('skip' in variables['params']['block0']) == (variant == 'copo')


def test_raw_rgb_path(setup):
  """'eg3d' adds a residual to the up-sampled raw RGB; 'copo' reads only the features."""
  variant, _, apply, (rgb, features, ws) = setup
  delta = apply(rgb + 1.0, features, ws) - apply(rgb, features, ws)
  if variant == 'eg3d':
    # A constant shift passes through the two FIR up-samplings unchanged (away from the border).
    np.testing.assert_allclose(delta[:, 4:-4, 4:-4], 1.0, atol=1e-3)
  else:
    np.testing.assert_array_equal(delta, 0.0)


def test_ws_usage(setup):
  variant, _, apply, (rgb, features, ws) = setup
  out = apply(rgb, features, ws)
  def changed(i):
    return float(jnp.max(jnp.abs(apply(rgb, features, ws.at[:, i].add(1.0)) - out)))

  if variant == 'eg3d':  # every layer takes the last w
    assert changed(0) == 0.0 and changed(4) > 0.0
  else:  # block0 takes ws[:, 0:2], block1 ws[:, 1:4]
    assert changed(0) > 0.0 and changed(3) > 0.0 and changed(4) == 0.0


def test_argument_checks():
  rgb, features, ws = _inputs(16)
  copo = stylegan.SuperResolution(16, 32, 'copo', block_channels=(8, 4))
  with pytest.raises(ValueError, match='ws'):
    copo.init({'params': jax.random.PRNGKey(1)}, rgb, features, ws[:, :3], 'none')
  with pytest.raises(ValueError, match='2× or 4×'):
    stylegan.SuperResolution(4, 32).init({'params': jax.random.PRNGKey(1)}, rgb, features, ws)
