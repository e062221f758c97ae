"""render_image over a tri-plane field: chunking, per-image planes, keys, gradients, linen use."""
import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from faceshop_jax import geometry
from faceshop_jax import nerf

SIZE, NUM_COARSE, NUM_FINE = 6, 6, 6
RENDER = dict(height=SIZE, width=SIZE, near=geometry.RAY_NEAR, far=geometry.RAY_FAR,
              num_coarse=NUM_COARSE, num_fine=NUM_FINE)
DECODER = nerf.TriplaneDecoder(density_shift=4.0)  # dense enough to be visible in a 24 cm march


@pytest.fixture(scope='module')
def scene():
  """DECODER's variables, two images' random planes [2, 3, 8, 8, 32] and their two cameras."""
  variables = jax.jit(DECODER.init)(jax.random.PRNGKey(0), jnp.zeros((1, 32)))
  planes = jax.random.normal(jax.random.PRNGKey(1), (2, 3, 8, 8, 32))
  cameras = geometry.camera_from_yaw_pitch(jnp.array([0.0, 0.4]), jnp.array([0.0, -0.2]))
  return variables, planes, cameras


def _field(variables, planes, aggregation='sum'):
  return nerf.triplane_field(planes, variables, DECODER.apply, geometry.BOX_HALF_SIZE, aggregation)


@functools.partial(jax.jit, static_argnames=('chunk_rays',))
def _render(variables, planes, cameras, key, chunk_rays):
  return nerf.render_image(_field(variables, planes), cameras, chunk_rays=chunk_rays, key=key,
                           **RENDER)


def test_chunking_does_not_change_the_image(scene):
  # The jitter is drawn per image before chunking, so this holds with a key too.
  variables, planes, cameras = scene
  key = jax.random.PRNGKey(5)
  whole = _render(variables, planes, cameras, key, chunk_rays=SIZE * SIZE)
  chunked = _render(variables, planes, cameras, key, chunk_rays=7)  # 36 = 5·7 + 1: padded
  jax.tree.map(functools.partial(np.testing.assert_allclose, rtol=1e-5, atol=1e-6), whole, chunked)


@jax.jit
def _render_rays(variables, planes, cameras, key):
  field = _field(variables, planes)
  origins, directions = geometry.camera_rays(cameras, SIZE, SIZE)
  return nerf.render_rays(field, origins, directions, geometry.RAY_NEAR, geometry.RAY_FAR,
                          NUM_COARSE, NUM_FINE, key=key)


def test_render_image_matches_render_rays(scene):
  # Same key, same jitter: uniform draws do not depend on how the ray axes are shaped.
  variables, planes, cameras = scene
  key = jax.random.PRNGKey(2)
  image = _render(variables, planes, cameras, key, chunk_rays=16)
  rays = _render_rays(variables, planes, cameras, key)
  for name in nerf.volume.IMAGE_OUTPUTS:
    np.testing.assert_allclose(image[name], rays[name], rtol=1e-5, atol=1e-6)


def test_each_image_reads_its_own_planes(scene):
  variables, planes, cameras = scene
  key = jax.random.PRNGKey(0)
  image = _render(variables, planes, cameras, key, chunk_rays=16)
  other = planes.at[1].set(jax.random.normal(jax.random.PRNGKey(7), planes.shape[1:]))
  changed = _render(variables, other, cameras, key, chunk_rays=16)
  np.testing.assert_array_equal(image['features'][0], changed['features'][0])
  assert not np.allclose(image['features'][1], changed['features'][1], atol=1e-3)


def test_shapes_keys_and_ranges_under_jit(scene):
  variables, planes, cameras = scene
  a, b, c = (_render(variables, planes, cameras, jax.random.PRNGKey(k), chunk_rays=16)
             for k in (0, 0, 1))
  assert a['features'].shape == (2, SIZE, SIZE, 32)
  assert a['semantics'].shape == (2, SIZE, SIZE, 19)
  assert a['depth'].shape == a['alpha'].shape == (2, SIZE, SIZE)
  jax.tree.map(np.testing.assert_array_equal, a, b)
  assert not np.allclose(a['depth'], c['depth'])
  assert np.all((a['alpha'] > 0.01) & (a['alpha'] <= 1.0))
  np.testing.assert_allclose(a['semantics'].sum(-1), a['alpha'], rtol=1e-5)


def test_gradients_reach_the_planes_and_the_decoder(scene):
  variables, planes, cameras = scene

  def loss(planes, variables):
    out = nerf.render_image(_field(variables, planes), cameras, chunk_rays=12,
                            key=jax.random.PRNGKey(0), **RENDER)
    return out['features'][..., :3].sum() + out['semantics'][..., 1].sum() + out['depth'].mean()

  plane_grad, decoder_grad = jax.jit(jax.grad(loss, argnums=(0, 1)))(planes, variables)
  assert np.all(np.isfinite(plane_grad)) and np.abs(plane_grad).sum() > 0
  for leaf in jax.tree.leaves(decoder_grad):
    assert np.all(np.isfinite(leaf)) and np.abs(leaf).sum() > 0


@pytest.mark.parametrize('aggregation,num_fine,every_output',
                         [('sum', NUM_FINE, True), ('mean', 0, True), ('sum', NUM_FINE, False)])
def test_split_field_gradient_equals_autodiff_of_the_plain_field(scene, aggregation, num_fine,
                                                                 every_output):
  # The SplitField rule (one planes cotangent carried through the chunk loop) against plain
  # autodiff of the checkpointed loop over the same field wrapped as an opaque function; with
  # every_output False the other outputs' cotangents are symbolic zeros the rule skips.
  variables, planes, cameras = scene
  render = dict(RENDER, num_fine=num_fine)

  def loss(planes, variables, opaque):
    field = _field(variables, planes, aggregation)
    if opaque:
      field = lambda points, directions, field=field: field(points, directions)  # noqa: E731
    out = nerf.render_image(field, cameras, chunk_rays=7, key=jax.random.PRNGKey(3), **render)
    value = out['features'][..., :3].sum()
    if every_output:
      value += out['semantics'][..., 1].sum() + out['depth'].mean() + out['alpha'].sum()
    return value

  grad = jax.jit(jax.grad(loss, argnums=(0, 1)), static_argnums=2)
  split, plain = grad(planes, variables, False), grad(planes, variables, True)
  assert np.abs(split[0]).sum() > 0
  jax.tree.map(functools.partial(np.testing.assert_allclose, rtol=1e-4, atol=1e-6), split, plain)


def test_split_field_keeps_the_planes_dtype_and_a_float32_accumulation(scene):
  variables, planes, cameras = scene
  low = planes.astype(jnp.bfloat16)

  def loss(planes):
    return nerf.render_image(_field(variables, planes), cameras, chunk_rays=12,
                             **RENDER)['features'].sum()

  grad = jax.jit(jax.grad(loss))(low)
  assert grad.dtype == jnp.bfloat16
  exact = jax.jit(jax.grad(lambda p: loss(p.astype(jnp.bfloat16))))(low.astype(jnp.float32))
  np.testing.assert_allclose(grad.astype(jnp.float32), exact.astype(jnp.bfloat16).astype(
      jnp.float32), rtol=1e-2, atol=1e-3)


class _TinyGenerator(nn.Module):
  """The pattern for a linen parent: create the decoder's parameters before the chunked render."""

  @nn.compact
  def __call__(self, planes, cameras):
    decoder = nerf.TriplaneDecoder(name='decoder')
    if self.is_initializing():
      decoder(jnp.zeros((1, planes.shape[-1])))
    field = nerf.triplane_field(planes, decoder.variables, decoder.clone(parent=None).apply,
                                geometry.BOX_HALF_SIZE)
    return nerf.render_image(field, cameras, chunk_rays=16, **RENDER)['features']


def test_decoder_inside_a_linen_module(scene):
  _, planes, cameras = scene
  generator = _TinyGenerator()
  variables = jax.jit(generator.init)(jax.random.PRNGKey(0), planes, cameras)
  assert set(variables['params']) == {'decoder'}
  grads = jax.jit(jax.grad(lambda v: generator.apply(v, planes, cameras).sum()))(variables)
  assert all(np.all(np.isfinite(g)) for g in jax.tree.leaves(grads))
