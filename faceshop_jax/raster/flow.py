"""2-D image flow between two posings of one mesh, and backward warping along it.

3DFaceShop's expression-warp loss moves image A's pixels to where the same 3DMM surface points
land in image B. Conventions are those of rasterizer.py: pixels, x right, y down, pixel centres at
half-integers.
"""
import chex
import jax
import jax.numpy as jnp

from faceshop_jax import geometry
from faceshop_jax.raster import rasterizer


def image_flow(screen_xy_a: jax.Array,
               depth_a: jax.Array,
               screen_xy_b: jax.Array,
               triangles: jax.Array,
               fragments_a: rasterizer.Fragments,
               depth_b: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
  """Displacement from each pixel of image A to the projection in B of the surface point it sees.

  The surface point is the same triangle and perspective-correct barycentrics in both meshes; its
  projection in B is interpolated in homogeneous coordinates (x z, y z, z) with B's vertex depths,
  which is exact under a pinhole camera. Without depth_b, A's depths stand in for B's: exact when
  the depths are unchanged (e.g. identical meshes give zero flow, a screen translation gives the
  translation), a first-order approximation otherwise.

  Args:
    screen_xy_a: [B, V, 2] vertices of mesh A in pixels (the ones rasterized into fragments_a).
    depth_a: [B, V] camera z of mesh A.
    screen_xy_b: [B, V, 2] the same vertices in image B.
    triangles: [T, 3] int32 topology shared by both meshes.
    fragments_a: `rasterize` output for mesh A.
    depth_b: optional [B, V] camera z of mesh B.

  Returns:
    flow: [B, H, W, 2] (dx, dy) in pixels, zero where A is background.
    mask: [B, H, W] bool, True where A is covered.
  """
  chex.assert_equal_shape([screen_xy_a, screen_xy_b])
  chex.assert_shape(depth_a, screen_xy_a.shape[:2])
  z = depth_a if depth_b is None else depth_b
  chex.assert_shape(z, screen_xy_a.shape[:2])
  homogeneous = jnp.concatenate([screen_xy_b * z[..., None], z[..., None]], axis=-1)
  projected = rasterizer.interpolate(homogeneous, triangles, fragments_a)  # [B, H, W, 3]
  mask = fragments_a.mask
  height, width = mask.shape[1:]
  w = jnp.where(mask, projected[..., 2], 1.0)[..., None]
  flow = projected[..., :2] / w - geometry.pixel_centers(height, width)
  return jnp.where(mask[..., None], flow, 0.0), mask


def warp(image: jax.Array, flow: jax.Array) -> jax.Array:
  """Backward warp: out[p] = image sampled bilinearly at p + flow[p], zero outside the image.

  With flow from `image_flow(A -> B)` and image B, this brings B's content to A's pixels.

  Args:
    image: [B, H, W, C].
    flow: [B, H', W', 2] (dx, dy) in pixels.

  Returns:
    [B, H', W', C]; differentiable w.r.t. image and flow (bilinear weights).
  """
  chex.assert_rank([image, flow], 4)
  chex.assert_equal(image.shape[0], flow.shape[0])
  batch, height, width, channels = image.shape
  rows, cols = flow.shape[1:3]
  col, row = jnp.meshgrid(jnp.arange(cols, dtype=jnp.float32), jnp.arange(rows, dtype=jnp.float32))
  # Pixel centres are at index + 0.5, so array coordinates equal pixel coordinates - 0.5.
  u, v = col + flow[..., 0], row + flow[..., 1]
  u0, v0 = jnp.floor(u), jnp.floor(v)
  flat = image.reshape(batch, height * width, channels)
  out = 0.0
  for dv in (0, 1):
    for du in (0, 1):
      uu, vv = u0 + du, v0 + dv
      weight = (1.0 - jnp.abs(u - uu)) * (1.0 - jnp.abs(v - vv))
      inside = (uu >= 0) & (uu < width) & (vv >= 0) & (vv < height)
      index = (jnp.clip(vv, 0, height - 1) * width + jnp.clip(uu, 0, width - 1)).astype(jnp.int32)
      texel = jnp.take_along_axis(flat, index.reshape(batch, -1, 1), axis=1)
      out += jnp.where(inside, weight, 0.0)[..., None] * texel.reshape(batch, rows, cols, channels)
  return out
