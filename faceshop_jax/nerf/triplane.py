"""Tri-plane feature sampling: three axis-aligned feature planes, one bilinear sample each.

Convention (shared by the generator, which writes the planes, and the renderer, which reads them).
A point (x, y, z) in world metres is divided by `box_half_size`, so the box [−h, h]³ maps to
[−1, 1]³, and projected onto three distinct planes, `PLANE_AXES`:
  plane 0 = XY, indexed by (u, v) = (x, y)/h;
  plane 1 = XZ, indexed by (u, v) = (x, z)/h;
  plane 2 = YZ, indexed by (u, v) = (y, z)/h.
On every plane [H, W, C], u runs along the W axis (columns) and v along the H axis (rows); u = −1
is the left edge of column 0 and v = −1 the top edge of row 0, so texel (i, j) has its centre at
(u, v) = ((2j + 1)/W − 1, (2i + 1)/H − 1): `grid_sample(align_corners=False)` semantics. Outside the
planes the features are zero (zero padding), fading in bilinearly over the outer half texel.
EG3D projects onto XY, XZ and ZX (a transposed XZ; eg3d issues #67/#88), so YZ is never seen; we do
not copy that.
"""
import chex
import jax
import jax.numpy as jnp

# (u axis, v axis) of each plane, as indices into (x, y, z).
PLANE_AXES = ((0, 1), (0, 2), (1, 2))
NUM_PLANES = len(PLANE_AXES)
AGGREGATIONS = ('sum', 'mean')


def split_planes(x: jnp.ndarray) -> jnp.ndarray:
  """[B, H, W, 3·C] synthesis output -> [B, 3, H, W, C] planes; channel p·C + c is plane p's c."""
  b, h, w, channels = x.shape
  if channels % NUM_PLANES:
    raise ValueError(f'Tri-plane channels must split into {NUM_PLANES} planes; got {channels}.')
  return jnp.moveaxis(x.reshape(b, h, w, NUM_PLANES, channels // NUM_PLANES), 3, 1)


def plane_coordinates(points: jnp.ndarray, box_half_size: float) -> jnp.ndarray:
  """[..., 3] world points -> [..., 3, 2] (u, v) on each plane, [−1, 1] inside the box."""
  normalized = points / box_half_size
  return jnp.stack([normalized[..., axes] for axes in map(list, PLANE_AXES)], axis=-2)


def _bilinear_taps(points: jnp.ndarray, box_half_size: float, height: int, width: int):
  """The 12 texels each point reads (4 bilinear corners on each plane) and their weights.

  Returns:
    index [B, N, 3, 4] int32 into the planes flattened to [B, 3·H·W, C] (clipped into the planes);
    weight [B, N, 3, 4], zero for corners outside the planes (zero padding).
  """
  uv = plane_coordinates(points, box_half_size)  # [B, N, 3, 2]
  # Continuous texel coordinates: texel centres at integers (align_corners=False).
  x = ((uv[..., 0] + 1.0) * width - 1.0) / 2.0
  y = ((uv[..., 1] + 1.0) * height - 1.0) / 2.0
  x0, y0 = jnp.floor(x), jnp.floor(y)
  fx, fy = x - x0, y - y0
  x0, y0 = x0.astype(jnp.int32), y0.astype(jnp.int32)
  plane_offset = jnp.arange(NUM_PLANES, dtype=jnp.int32) * (height * width)
  indices, weights = [], []
  for dy, dx, weight in ((0, 0, (1 - fx) * (1 - fy)), (0, 1, fx * (1 - fy)),
                         (1, 0, (1 - fx) * fy), (1, 1, fx * fy)):
    xi, yi = x0 + dx, y0 + dy
    inside = (xi >= 0) & (xi < width) & (yi >= 0) & (yi < height)
    indices.append(plane_offset + jnp.clip(yi, 0, height - 1) * width + jnp.clip(xi, 0, width - 1))
    weights.append(jnp.where(inside, weight, 0.0))
  return jnp.stack(indices, axis=-1), jnp.stack(weights, axis=-1)


def sample_triplanes(planes: jnp.ndarray, points: jnp.ndarray, box_half_size: float) -> jnp.ndarray:
  """Bilinear features of points on each of the three planes (convention: module docstring).

  Four gathers (one per bilinear corner) from the flattened planes, so the cost is O(B·N·3·C)
  whatever the plane size, and the backward pass is a scatter-add into the planes
  (scatter_triplanes_add writes it into a given cotangent).

  Args:
    planes: [B, 3, H, W, C] features of planes XY, XZ, YZ.
    points: [B, N, 3] world coordinates (metres).
    box_half_size: half the side of the cube the planes span (metres).

  Returns:
    [B, N, 3, C] features, zero outside the planes.
  """
  chex.assert_rank(planes, 5)
  chex.assert_axis_dimension(planes, 1, NUM_PLANES)
  chex.assert_shape(points, (planes.shape[0], None, 3))
  b, _, height, width, channels = planes.shape
  index, weight = _bilinear_taps(points, box_half_size, height, width)
  flat = planes.reshape(b, NUM_PLANES * height * width, channels)
  gather = jax.vmap(lambda table, index: table[index])
  out = jnp.zeros(index.shape[:-1] + (channels,), planes.dtype)
  for corner in range(4):
    out = out + gather(flat, index[..., corner]) * weight[..., corner, None].astype(out.dtype)
  return out


def scatter_triplanes_add(planes_cotangent: jnp.ndarray, points: jnp.ndarray,
                          features_cotangent: jnp.ndarray, box_half_size: float) -> jnp.ndarray:
  """planes_cotangent + the transpose of sample_triplanes (linear in the planes) at points.

  One scatter-add of the 12 weighted taps per point into the given array, so a loop over ray
  chunks can accumulate the planes' cotangent in its carry instead of zero-filling a full-size
  cotangent per chunk and adding it.

  Args:
    planes_cotangent: [B, 3, H, W, C] the cotangent so far.
    points: [B, N, 3] the points sample_triplanes read (metres).
    features_cotangent: [B, N, 3, C] the cotangent of its output.
    box_half_size: as sample_triplanes.

  Returns:
    [B, 3, H, W, C] in planes_cotangent's dtype.
  """
  chex.assert_rank(planes_cotangent, 5)
  chex.assert_shape(features_cotangent, points.shape[:2] + (NUM_PLANES, planes_cotangent.shape[-1]))
  b, _, height, width, channels = planes_cotangent.shape
  index, weight = _bilinear_taps(points, box_half_size, height, width)
  updates = weight[..., None].astype(planes_cotangent.dtype) * features_cotangent[..., None, :]
  flat = planes_cotangent.reshape(b, NUM_PLANES * height * width, channels)
  flat = jax.vmap(lambda table, index, update: table.at[index].add(update))(
      flat, index.reshape(b, -1), updates.reshape(b, -1, channels).astype(flat.dtype))
  return flat.reshape(planes_cotangent.shape)


def aggregate(features: jnp.ndarray, mode: str = 'sum') -> jnp.ndarray:
  """[..., 3, C] per-plane features -> [..., C]: 'sum' (CoPo) or 'mean' (EG3D)."""
  if mode not in AGGREGATIONS:
    raise ValueError(f'Tri-plane aggregation is one of {AGGREGATIONS}; got {mode!r}.')
  chex.assert_axis_dimension(features, -2, NUM_PLANES)
  return features.sum(axis=-2) if mode == 'sum' else features.mean(axis=-2)
