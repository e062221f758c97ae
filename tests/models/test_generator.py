"""The tri-plane generator assembled: shapes, ranges, gradients to every part, determinism."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from faceshop_jax import geometry
from faceshop_jax import models

GENERATOR = models.TriPlaneGenerator(
    z_dim=12, w_dim=16, mapping_layers=2, plane_resolution=16, plane_channels=8, channel_base=256,
    channel_max=16, rendering_resolution=8, sr_resolution=16, num_coarse=4, num_fine=4,
    chunk_rays=32, sr_channels=(8, 8))
RNGS = {'noise': jax.random.PRNGKey(1), 'render': jax.random.PRNGKey(2)}


@pytest.fixture(scope='module')
def setup():
  z = jax.random.normal(jax.random.PRNGKey(0), (2, 12))
  camera = geometry.camera_from_yaw_pitch(jnp.array([0.0, 0.3]), jnp.zeros(2))
  variables = jax.jit(lambda: GENERATOR.init({'params': jax.random.PRNGKey(3), **RNGS}, z, camera,
                                             camera))()
  return variables, z, camera


def test_outputs_shapes_and_ranges(setup):
  variables, z, camera = setup
  out = jax.jit(lambda v: GENERATOR.apply(v, z, camera, camera, rngs=RNGS))(variables)
  assert out['image'].shape == (2, 16, 16, 3) and out['image_raw'].shape == (2, 8, 8, 3)
  assert out['semantics'].shape == (2, 8, 8, 19) and out['depth'].shape == (2, 8, 8)
  assert float(out['image_raw'].min()) >= -1.01 and float(out['image_raw'].max()) <= 1.01
  np.testing.assert_allclose(out['semantics'].sum(-1), out['alpha'], atol=1e-5)
  again = jax.jit(lambda v: GENERATOR.apply(v, z, camera, camera, rngs=RNGS))(variables)
  np.testing.assert_array_equal(out['image'], again['image'])


def test_every_part_gets_a_gradient(setup):
  variables, z, camera = setup

  def loss(params):
    out = GENERATOR.apply({**variables, 'params': params}, z, camera, camera, rngs=RNGS)
    return out['image'].mean() + out['semantics'].mean() + out['image_raw'].mean()

  grads = jax.jit(jax.grad(loss))(variables['params'])
  for part in ('mapping', 'synthesis', 'decoder', 'superresolution'):
    assert any(float(jnp.abs(g).max()) > 0 for g in jax.tree.leaves(grads[part])), part


def test_density_method_matches_the_field(setup):
  variables, z, camera = setup
  ws = GENERATOR.apply(variables, z, camera, camera, rngs=RNGS)['ws']
  points = jnp.zeros((2, 5, 3))
  density = GENERATOR.apply(variables, ws, points, method=GENERATOR.density, rngs=RNGS)
  assert density.shape == (2, 5) and bool(jnp.all(density >= 0))
