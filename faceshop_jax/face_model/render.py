"""`render_face`: the 3DMM face rendered by the JAX rasterizer under an EG3D camera label.

This is the guidance image R of imitative learning (paper §4.3.1), its face mask B, its parsing map
and its projected landmarks, all from one camera shared with the volume renderer.
"""
import chex
import flax.struct
import jax
import jax.numpy as jnp

from faceshop_jax import geometry
from faceshop_jax import raster
from faceshop_jax.face_model import model as model_lib
from faceshop_jax.face_model import shading


@flax.struct.dataclass
class FaceRender:
  """What render_face returns; every field is batched.

  Attributes:
    image: [B, H, W, 3] SH-shaded colour, linear (not clipped, so gradients stay); zero off the face.
    mask: [B, H, W] float, 1 where the mesh covers the pixel (B of the paper).
    depth: [B, H, W] camera z of the visible surface, 0 off the face.
    labels: [B, H, W] int32 semantic class (face_model.CLASS_NAMES), 0 (background) off the face.
    landmarks: [B, 68, 2] projected 68 landmarks in pixels (pixel centres at half-integers).
    landmarks_3d: [B, 68, 3] the landmarks in world coordinates.
    fragments: the rasterizer's output, for further interpolation (e.g. image flow).
    screen_xy: [B, N, 2] and vertex_depth [B, N]: the projected vertices.
  """
  image: jax.Array
  mask: jax.Array
  depth: jax.Array
  labels: jax.Array
  landmarks: jax.Array
  landmarks_3d: jax.Array
  fragments: raster.Fragments
  screen_xy: jax.Array
  vertex_depth: jax.Array


def face_vertices(model: model_lib.FaceModel, coeffs: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Posed vertices [..., N, 3] and their shaded colours [..., N, 3] from coefficients [..., D]."""
  parts = model.split_coeffs(coeffs)
  vertices = model_lib.pose(model_lib.shape(model, parts.identity, parts.expression), parts.angle,
                            parts.translation)
  normals = model_lib.vertex_normals(vertices, model.triangles)
  colours = shading.shade(model_lib.albedo(model, parts.texture), normals, parts.gamma)
  return vertices, colours


def render_face(model: model_lib.FaceModel, coeffs: jax.Array, camera: jax.Array,
                size: int | tuple[int, int]) -> FaceRender:
  """Renders faces of a batch of coefficient vectors through a batch of cameras.

  Args:
    model: the face model.
    coeffs: [B, D] coefficients in the model's layout.
    camera: [B, 25] EG3D camera labels (or [25], shared).
    size: image size, an int (square) or (height, width); static.

  Returns:
    FaceRender.
  """
  height, width = (size, size) if isinstance(size, int) else size
  chex.assert_rank(coeffs, 2)
  batch = coeffs.shape[0]
  camera = jnp.broadcast_to(camera, (batch, geometry.LABEL_SIZE))
  vertices, colours = face_vertices(model, coeffs)
  screen_xy, depth = geometry.project_points(vertices, camera, height, width)
  fragments = raster.rasterize(screen_xy, depth, model.triangles, height, width)
  mask = fragments.mask
  image = raster.interpolate(colours, model.triangles, fragments)
  # A pixel takes the label of its triangle's nearest vertex (largest barycentric weight).
  corner_labels = model.vertex_labels[model.triangles[jnp.maximum(fragments.triangle_id, 0)]]
  nearest = jnp.argmax(fragments.barycentrics, axis=-1)[..., None]
  labels = jnp.where(mask, jnp.take_along_axis(corner_labels, nearest, axis=-1)[..., 0], 0)
  return FaceRender(
      image=image,
      mask=mask.astype(image.dtype),
      depth=fragments.depth,
      labels=labels,
      landmarks=jnp.take(screen_xy, model.landmarks68, axis=1),
      landmarks_3d=model_lib.landmarks(model, vertices),
      fragments=fragments,
      screen_xy=screen_xy,
      vertex_depth=depth)
