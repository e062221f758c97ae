"""Tests of faceshop_jax.raster.rasterize and interpolate."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from faceshop_jax import raster

# A square over pixel centres 0.5 .. 6.5 split on its diagonal: centres lie exactly on all edges.
SQUARE_XY = np.float32([[0.5, 0.5], [6.5, 0.5], [6.5, 6.5], [0.5, 6.5]])
SQUARE_TRIANGLES = np.int32([[0, 1, 2], [0, 2, 3]])


def _rasterize(xy, z, triangles, height, width, **kwargs):
  return raster.rasterize(jnp.asarray(xy), jnp.asarray(z), jnp.asarray(triangles), height, width,
                          **kwargs)


def _reference_ids(xy, z, triangles, height, width, near=1e-3, margin=1e-3):
  """Dense float64 z-buffer; also marks pixels within `margin` px of any edge as ambiguous."""
  xy, z = np.float64(xy), np.float64(z)
  col, row = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)
  ids = np.full((height, width), -1)
  best = np.full((height, width), np.inf)
  ambiguous = np.zeros((height, width), bool)
  for t, tri in enumerate(triangles):
    v, d = xy[tri], z[tri]
    if np.any(d <= near):
      continue
    (ax, ay), (bx, by) = v[1] - v[0], v[2] - v[0]
    area2 = ax * by - ay * bx
    lam = []
    for k in range(3):
      a, b = v[(k + 1) % 3], v[(k + 2) % 3]
      e = (b[0] - a[0]) * (row - a[1]) - (b[1] - a[1]) * (col - a[0])
      ambiguous |= np.abs(e) < margin * np.linalg.norm(b - a)
      lam.append(e / area2)
    inside = np.all(np.stack(lam) > 0, axis=0)
    depth = 1.0 / sum(l / dk for l, dk in zip(lam, d))
    win = inside & (depth < best)
    ids[win], best[win] = t, depth[win]
  return ids, ambiguous


@pytest.mark.parametrize('order', [(0, 1), (1, 0)])
def test_square_split_on_diagonal_is_covered_exactly_once(order):
  triangles = SQUARE_TRIANGLES[list(order)]
  fragments = _rasterize(SQUARE_XY[None], np.ones((1, 4)), triangles, 8, 8)
  ids = np.asarray(fragments.triangle_id[0])
  # Top-left rule: the left and top sides are in, the right and bottom ones out; the diagonal
  # (centres (j + .5, j + .5)) belongs to the triangle on its right, the upper one.
  i, j = np.mgrid[:8, :8]
  upper = int(np.argmax(np.all(triangles == SQUARE_TRIANGLES[0], axis=1)))
  expected = np.where((i < 6) & (j < 6), np.where(j >= i, upper, 1 - upper), -1)
  np.testing.assert_array_equal(ids, expected)
  np.testing.assert_array_equal(fragments.mask[0], expected >= 0)
  # Each triangle alone covers exactly its share: no double coverage, no crack.
  for t in range(2):
    alone = _rasterize(SQUARE_XY[None], np.ones((1, 4)), triangles[t:t + 1], 8, 8).mask[0]
    np.testing.assert_array_equal(alone, expected == t)


def test_fan_around_a_vertex_on_a_pixel_centre_is_watertight():
  # 8 triangles around a vertex at a pixel centre; many pixel centres lie on its spokes.
  angles = np.arange(8) * np.pi / 4
  ring = np.stack([9.5 + 6 * np.cos(angles), 9.5 + 6 * np.sin(angles)], axis=-1)
  ring = np.round(ring) + 0.5  # spokes through pixel centres, and odd slopes
  xy = np.float32(np.concatenate([[[9.5, 9.5]], ring]))
  triangles = np.int32([[0, 1 + k, 1 + (k + 1) % 8] for k in range(8)])
  counts = sum(np.asarray(_rasterize(xy[None], np.ones((1, 9)), triangles[k:k + 1], 20, 20).mask[0],
                          int) for k in range(8))
  whole = np.asarray(_rasterize(xy[None], np.ones((1, 9)), triangles, 20, 20).mask[0])
  assert counts.max() == 1
  np.testing.assert_array_equal(counts == 1, whole)
  assert whole[9, 9]


@pytest.mark.parametrize('order', [(0, 1), (1, 0)])
def test_nearest_triangle_wins_regardless_of_order(order):
  xy = np.float32([[1, 1], [15, 1], [1, 15], [3, 3], [15, 3], [3, 15]])
  z = np.float32([5, 5, 5, 2, 2, 2])  # the second triangle is in front
  triangles = np.int32([[0, 1, 2], [3, 4, 5]])[list(order)]
  fragments = _rasterize(xy[None], z[None], triangles, 16, 16)
  front = order.index(1)
  assert fragments.triangle_id[0, 5, 5] == front  # in both, the front one wins
  assert fragments.triangle_id[0, 1, 1] == 1 - front  # only the back one covers
  np.testing.assert_allclose(fragments.depth[0, 5, 5], 2.0, rtol=1e-6)
  np.testing.assert_allclose(fragments.depth[0, 1, 1], 5.0, rtol=1e-6)


def test_random_soup_matches_dense_reference():
  rng = np.random.default_rng(1)
  n, size = 60, 40
  centres = rng.uniform(-5, size + 5, (n, 1, 2))
  scales = np.where(rng.uniform(size=(n, 1, 1)) < 0.2, 30.0, 4.0)  # some larger than a tile
  xy = np.float32((centres + scales * rng.normal(size=(n, 3, 2))).reshape(-1, 2))
  z = np.float32(rng.uniform(0.5, 5.0, 3 * n))
  z[:6] = -1.0  # two triangles behind the near plane
  triangles = np.arange(3 * n, dtype=np.int32).reshape(n, 3)
  # A small tile and chunk force many tiles per triangle and many loop iterations.
  fragments = _rasterize(xy[None], z[None], triangles, size, size, tile=(4, 4), chunk=16)
  expected, ambiguous = _reference_ids(xy, z, triangles, size, size)
  ids = np.asarray(fragments.triangle_id[0])
  assert ambiguous.mean() < 0.05
  np.testing.assert_array_equal(ids[~ambiguous], expected[~ambiguous])


def test_large_triangle_covers_every_pixel():
  xy = np.float32([[-100, -100], [300, -100], [-100, 300]])
  fragments = _rasterize(xy[None], np.ones((1, 3)), np.int32([[0, 1, 2]]), 48, 40, tile=(8, 8),
                         chunk=4)
  assert bool(jnp.all(fragments.triangle_id == 0))
  np.testing.assert_allclose(jnp.sum(fragments.barycentrics, -1), 1.0, rtol=1e-5)


def test_backface_culling_drops_triangles_facing_away():
  xy = np.float32([[1, 1], [1, 7], [7, 1]])  # area2 < 0: faces the camera
  triangles = np.int32([[0, 1, 2], [0, 2, 1]])
  for t, culled in ((0, False), (1, True)):
    fragments = _rasterize(xy[None], np.ones((1, 3)), triangles[t:t + 1], 8, 8,
                           cull_backfaces=True)
    assert bool(jnp.any(fragments.mask)) != culled


def _tilted_plane_scene(size=16, focal=20.0):
  """A triangle on a tilted plane under a pinhole camera (camera coordinates, OpenCV axes)."""
  points = np.float32([[-0.5, -0.4, 2.0], [0.6, -0.3, 3.5], [-0.2, 0.6, 2.6]])
  screen = focal * points[:, :2] / points[:, 2:] + size / 2
  return points, np.float32(screen), points[:, 2], focal


def test_interpolation_is_perspective_correct():
  size = 16
  points, screen, z, focal = _tilted_plane_scene(size)
  fragments = _rasterize(screen[None], z[None], np.int32([[0, 1, 2]]), size, size)
  interpolated = raster.interpolate(jnp.asarray(points), jnp.int32([[0, 1, 2]]), fragments)[0]
  mask = np.asarray(fragments.mask[0])
  assert mask.sum() > 20
  # Ray through each pixel centre meets the triangle's plane at the expected point.
  normal = np.cross(points[1] - points[0], points[2] - points[0])
  col, row = np.meshgrid(np.arange(size) + 0.5, np.arange(size) + 0.5)
  rays = np.stack([(col - size / 2) / focal, (row - size / 2) / focal, np.ones_like(col)], -1)
  hits = rays * (points[0] @ normal / (rays @ normal))[..., None]
  np.testing.assert_allclose(np.asarray(interpolated)[mask], hits[mask], atol=1e-5)
  np.testing.assert_allclose(np.asarray(fragments.depth[0])[mask], hits[mask][:, 2], rtol=1e-5)
  assert np.all(np.asarray(interpolated)[~mask] == 0)


def test_gradients_match_finite_differences():
  size = 16
  _, screen, z, _ = _tilted_plane_scene(size)
  triangles = jnp.int32([[0, 1, 2]])
  colors = jnp.float32([[1.0, 0.2], [0.1, 0.8], [0.5, 0.5]])
  fragments = _rasterize(screen[None], z[None], triangles, size, size)
  # Weight only pixels well inside the triangle, whose coverage a small nudge does not change.
  inside = jnp.all(fragments.barycentrics > 0.1, axis=-1)[..., None]
  weights = jnp.where(inside, jax.random.uniform(jax.random.PRNGKey(0), (1, size, size, 2)), 0.0)

  def loss(xy, depth, colors):
    fragments = raster.rasterize(xy, depth, triangles, size, size)
    return jnp.sum(weights * raster.interpolate(colors, triangles, fragments))

  args = (jnp.asarray(screen[None]), jnp.asarray(z[None]), colors)
  grads = jax.jit(jax.grad(loss, argnums=(0, 1, 2)))(*args)
  for arg, (grad, eps) in enumerate(zip(grads, (1e-2, 1e-3, 1e-2))):
    direction = jax.random.normal(jax.random.PRNGKey(arg), grad.shape)
    shifted = lambda s: loss(*[a + s * eps * direction if i == arg else a
                               for i, a in enumerate(args)])
    numeric = (shifted(1.0) - shifted(-1.0)) / (2 * eps)
    np.testing.assert_allclose(jnp.vdot(grad, direction), numeric, rtol=2e-2)
    assert bool(jnp.any(grad != 0))


def test_jit_vmap_shapes_and_background():
  xy = np.tile(SQUARE_XY[None, None], (3, 2, 1, 1))  # [N, B, V, 2]
  xy = xy + np.arange(3, dtype=np.float32)[:, None, None, None]
  fn = jax.jit(jax.vmap(lambda xy, z: raster.rasterize(xy, z, jnp.asarray(SQUARE_TRIANGLES), 9,
                                                          10)))
  fragments = fn(jnp.asarray(xy), jnp.ones((3, 2, 4)))
  assert fragments.triangle_id.shape == (3, 2, 9, 10)
  assert fragments.triangle_id.dtype == jnp.int32
  assert fragments.barycentrics.shape == (3, 2, 9, 10, 3)
  assert fragments.depth.shape == (3, 2, 9, 10)
  colors = raster.interpolate(jnp.ones((4, 5)), jnp.asarray(SQUARE_TRIANGLES),
                              jax.tree.map(lambda a: a[0], fragments))
  assert colors.shape == (2, 9, 10, 5)
  for n in range(3):  # the square moves by n pixels; everything else is background
    expected = np.zeros((9, 10), bool)
    expected[n:n + 6, n:n + 6] = True
    np.testing.assert_array_equal(fragments.mask[n, 1], expected)
  background = ~np.asarray(fragments.mask)
  assert np.all(np.asarray(fragments.triangle_id)[background] == -1)
  assert np.all(np.asarray(fragments.barycentrics)[background] == 0.0)
  assert np.all(np.asarray(fragments.depth)[background] == 0.0)
