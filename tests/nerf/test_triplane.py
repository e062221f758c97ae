"""Tri-plane sampling: the plane convention (XY, XZ, YZ all distinct), interpolation, padding."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from faceshop_jax import nerf

BOX = 0.185


def _texel_centres(n):
  return (2 * np.arange(n) + 1) / n - 1


def _coordinate_planes(height, width):
  """[1, 3, H, W, 2] planes whose features are the (u, v) of each texel centre."""
  v, u = np.meshgrid(_texel_centres(height), _texel_centres(width), indexing='ij')
  plane = np.stack([u, v], axis=-1)
  return jnp.asarray(np.broadcast_to(plane, (1, 3, height, width, 2)), jnp.float32)


def test_linear_ramps_are_reproduced_on_each_plane():
  # Bilinear interpolation reproduces a linear function exactly inside the outer half texel, so
  # each plane returns the two world coordinates its convention names.
  height, width = 8, 12
  points = jax.random.uniform(jax.random.PRNGKey(0), (1, 50, 3), minval=-0.85 * BOX,
                              maxval=0.85 * BOX)
  sampled = nerf.sample_triplanes(_coordinate_planes(height, width), points, BOX)
  assert sampled.shape == (1, 50, 3, 2)
  for p, (a, b) in enumerate(((0, 1), (0, 2), (1, 2))):
    np.testing.assert_allclose(sampled[0, :, p] * BOX, points[0][:, [a, b]], atol=1e-6)


def test_bright_square_on_xy_appears_only_where_the_convention_says():
  # The square x ∈ [0.05, 0.1], y ∈ [0, 0.05] on plane XY (u = x along W, v = y along H).
  n = 74  # texel side 0.005 m: the square's edges fall on texel edges
  centres = _texel_centres(n) * BOX
  inside = lambda c, lo, hi: (c > lo) & (c < hi)  # noqa: E731
  square = inside(centres, 0.0, 0.05)[:, None] & inside(centres, 0.05, 0.1)[None, :]  # [v, u]
  bright = np.zeros((1, 3, n, n, 1), np.float32)
  bright[0, 0, ..., 0] = square
  points = jnp.array([[[0.075, 0.025, 0.1],     # in the square, any z
                       [0.075, 0.025, -0.15],
                       [0.025, 0.075, 0.0],     # x and y swapped: outside
                       [0.075, -0.025, 0.0]]])  # v flipped: outside
  features = nerf.sample_triplanes(jnp.asarray(bright), points, BOX)[0, :, :, 0]
  np.testing.assert_allclose(features[:, 0], [1, 1, 0, 0], atol=1e-6)
  # Copied to XZ or YZ, the same (u, v) square is read at the other planes' coordinates only.
  for plane, (a, b) in ((1, (0, 2)), (2, (1, 2))):
    moved = np.roll(bright, plane, axis=1)
    hit = np.zeros((1, 1, 3), np.float32)
    hit[0, 0, [a, b]] = (0.075, 0.025)
    rest = 3 - a - b
    hit[0, 0, rest] = -0.12
    # A plane read with the wrong axes (XZ as ZX, YZ as XZ) would see the square here instead.
    swapped = hit[:, :, [1, 0, 2]] if plane == 2 else hit[:, :, [2, 1, 0]]
    queries = jnp.asarray(np.concatenate([hit, swapped], axis=1))
    got = nerf.sample_triplanes(jnp.asarray(moved), queries, BOX)[0, :, plane, 0]
    np.testing.assert_allclose(got, [1, 0], atol=1e-6)


def test_zero_padding_outside_the_planes():
  planes = jnp.ones((1, 3, 4, 4, 3))
  centre_of_edge_texel = (1 - 1 / 4) * BOX
  points = jnp.array([[[centre_of_edge_texel, 0.0, 0.0], [BOX, 0.0, 0.0], [1.3 * BOX, 0.0, 0.0]]])
  summed = nerf.aggregate(nerf.sample_triplanes(planes, points, BOX), 'sum')[0, :, 0]
  # Plane YZ sees (0, 0) for all three; XY and XZ give 1 at the edge texel's centre, 1/2 at the
  # box face and 0 beyond the half texel (u > 1 + 1/W) outside it.
  np.testing.assert_allclose(summed, [3.0, 2.0, 1.0], atol=1e-6)


def test_aggregate_modes():
  features = jnp.arange(2 * 3 * 4, dtype=jnp.float32).reshape(2, 3, 4)
  np.testing.assert_allclose(nerf.aggregate(features, 'sum'), features.sum(1))
  np.testing.assert_allclose(nerf.aggregate(features, 'mean'), features.mean(1))
  with pytest.raises(ValueError, match='aggregation'):
    nerf.aggregate(features, 'max')


def test_split_planes_groups_channels_by_plane():
  x = jnp.arange(2 * 5 * 6 * 12, dtype=jnp.float32).reshape(2, 5, 6, 12)
  planes = nerf.split_planes(x)
  assert planes.shape == (2, 3, 5, 6, 4)
  np.testing.assert_array_equal(planes[1, 2, 3, 4], x[1, 3, 4, 8:12])


def test_scatter_add_is_the_transpose_of_sampling():
  # Points inside, on the border and outside the box, so clipped and zero-weight taps are covered.
  planes = jax.random.normal(jax.random.PRNGKey(0), (2, 3, 5, 4, 3))
  points = jax.random.uniform(jax.random.PRNGKey(1), (2, 40, 3), minval=-1.3 * BOX,
                              maxval=1.3 * BOX)
  cotangent = jax.random.normal(jax.random.PRNGKey(2), (2, 40, 3, 3))
  start = jax.random.normal(jax.random.PRNGKey(3), planes.shape)
  _, vjp = jax.vjp(lambda p: nerf.sample_triplanes(p, points, BOX), planes)
  expected, = vjp(cotangent)
  got = jax.jit(nerf.scatter_triplanes_add, static_argnums=3)(start, points, cotangent, BOX)
  np.testing.assert_allclose(got - start, expected, rtol=1e-5, atol=1e-5)
