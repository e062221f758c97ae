"""The tri-plane generator assembled: shapes, ranges, gradients to every part, determinism."""
import flax.linen
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from faceshop_jax import geometry
from faceshop_jax import models
from faceshop_jax import nerf

GENERATOR = models.TriPlaneGenerator(
    z_dim=12, w_dim=16, mapping_layers=2, plane_resolution=16, plane_channels=8, channel_base=256,
    channel_max=16, rendering_resolution=8, sr_resolution=16, num_coarse=4, num_fine=4,
    chunk_rays=32, sr_channels=(8, 8))
RNGS = {'noise': jax.random.PRNGKey(1), 'render': jax.random.PRNGKey(2)}


def nn_apply(variables, fn):
  """fn(bound generator) with the generator's variables bound (flax's nn.apply)."""
  return flax.linen.apply(fn, GENERATOR)(variables)


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


def test_blending_an_unchanged_field_changes_nothing(setup):
  variables, z, camera = setup
  ws = GENERATOR.apply(variables, z, camera, camera, rngs=RNGS)['ws']
  render = jax.jit(lambda v, ws: GENERATOR.apply(v, ws, camera, method=GENERATOR.render,
                                                 noise_mode='const'))
  blended = jax.jit(lambda v, ws: GENERATOR.apply(v, ws, ws, camera, method=GENERATOR.render_blended,
                                                  noise_mode='const'))
  plain, same = render(variables, ws), blended(variables, ws)
  for key in ('image', 'depth', 'alpha', 'semantics'):
    np.testing.assert_allclose(same[key], plain[key], atol=1e-5)


def test_blending_composes_one_field_that_every_camera_renders(setup):
  """Blending happens per 3-D point, before compositing: one field, whatever the camera."""
  variables, z, _ = setup
  ws = GENERATOR.apply(variables, z, geometry.camera_from_yaw_pitch(jnp.zeros(2), jnp.zeros(2)),
                       geometry.camera_from_yaw_pitch(jnp.zeros(2), jnp.zeros(2)), rngs=RNGS)['ws']
  ws_edited, ws_original = ws, ws[::-1]
  points = jax.random.uniform(jax.random.PRNGKey(4), (2, 7, 3), minval=-0.1, maxval=0.1)

  def fields(v):
    def apply(module):
      return (module.blended_field(ws_edited, ws_original, 'const')(points, None),
              module.field(ws_edited, 'const')(points, None),
              module.field(ws_original, 'const')(points, None))
    return nn_apply(v, apply)

  blended, edited, original = fields(variables)
  w = jnp.maximum(nerf.face_probability(edited[2]), nerf.face_probability(original[2]))
  np.testing.assert_allclose(blended[0], nerf.blend_fields(edited, original, w)[0], rtol=1e-5)
  for yaw in (-0.4, 0.5):
    camera = geometry.camera_from_yaw_pitch(jnp.full(2, yaw), jnp.zeros(2))
    out = GENERATOR.apply(variables, ws_edited, ws_original, camera,
                          method=GENERATOR.render_blended, noise_mode='const')
    direct = nn_apply(variables, lambda m: nerf.render_image(
        m.blended_field(ws_edited, ws_original, 'const'), camera, 8, 8, m.ray_near, m.ray_far,
        m.num_coarse, m.num_fine, m.chunk_rays))
    np.testing.assert_allclose(out['depth'], direct['depth'], rtol=1e-5)
    np.testing.assert_allclose(out['image_raw'], 2 * direct['features'][..., :3] - 1, atol=1e-5)
