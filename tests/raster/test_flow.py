"""Tests of faceshop_jax.raster.image_flow and warp."""
import jax
import jax.numpy as jnp
import numpy as np

from faceshop_jax import raster

SIZE = 24
FOCAL = 30.0
# Two triangles of a tilted quad in camera coordinates (OpenCV axes).
POINTS = np.float32([[-0.5, -0.4, 2.0], [0.6, -0.5, 3.0], [0.5, 0.6, 3.2], [-0.6, 0.5, 2.2]])
TRIANGLES = jnp.int32([[0, 1, 2], [0, 2, 3]])


def _project(points):
  return FOCAL * points[..., :2] / points[..., 2:] + SIZE / 2, points[..., 2]


@jax.jit
def _flow(points_a, points_b):
  xy_a, z_a = _project(points_a)
  xy_b, z_b = _project(points_b)
  fragments = raster.rasterize(xy_a, z_a, TRIANGLES, SIZE, SIZE)
  screen_only = raster.image_flow(xy_a, z_a, xy_b, TRIANGLES, fragments)
  exact = raster.image_flow(xy_a, z_a, xy_b, TRIANGLES, fragments, depth_b=z_b)
  return screen_only, exact, fragments


def test_identical_meshes_give_zero_flow():
  points = jnp.asarray(POINTS[None])
  (flow, mask), (exact, _), _ = _flow(points, points)
  assert int(mask.sum()) > 100
  np.testing.assert_allclose(flow, 0.0, atol=1e-4)
  np.testing.assert_allclose(exact, 0.0, atol=1e-4)


def test_screen_translation_gives_constant_flow():
  points = jnp.asarray(POINTS[None])
  xy, z = _project(points)
  fragments = raster.rasterize(xy, z, TRIANGLES, SIZE, SIZE)
  shift = jnp.float32([2.5, -1.25])
  flow, mask = raster.image_flow(xy, z, xy + shift, TRIANGLES, fragments)
  np.testing.assert_allclose(np.asarray(flow)[np.asarray(mask)], np.broadcast_to(shift, (
      int(mask.sum()), 2)), atol=1e-4)
  assert np.all(np.asarray(flow)[~np.asarray(mask)] == 0.0)


def test_flow_follows_the_surface_point_in_3d():
  # Mesh B is mesh A moved in depth and sideways: its depths change, so only depth_b is exact.
  motion = np.float32([0.1, -0.05, 0.4])
  points = jnp.asarray(POINTS[None])
  _, (flow, mask), fragments = _flow(points, points + motion)
  # Where pixel p of A sees surface point X, A + motion puts it at X + motion.
  surface = raster.interpolate(points, TRIANGLES, fragments)[0]
  moved_xy, _ = _project(surface + motion)
  col, row = np.meshgrid(np.arange(SIZE) + 0.5, np.arange(SIZE) + 0.5)
  expected = np.asarray(moved_xy) - np.stack([col, row], axis=-1)
  m = np.asarray(mask[0])
  np.testing.assert_allclose(np.asarray(flow[0])[m], expected[m], atol=1e-3)
  assert np.abs(expected[m]).max() > 1.0


def test_warp_by_integer_flow_shifts_the_image():
  image = jax.random.uniform(jax.random.PRNGKey(0), (2, 6, 7, 3))
  flow = jnp.broadcast_to(jnp.float32([2.0, 1.0]), (2, 6, 7, 2))
  warped = jax.jit(raster.warp)(image, flow)
  np.testing.assert_allclose(warped[:, :-1, :-2], image[:, 1:, 2:], atol=1e-6)
  np.testing.assert_array_equal(warped[:, -1], 0.0)  # sampled outside the image
  half = raster.warp(image, flow * 0.5 + jnp.float32([0.5, 0.0]))  # (1.5, 0.5)
  expected = 0.25 * (image[:, :-1, 1:-1] + image[:, :-1, 2:] + image[:, 1:, 1:-1] + image[:, 1:, 2:])
  np.testing.assert_allclose(half[:, :-1, :-2], expected, atol=1e-6)
