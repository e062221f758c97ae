"""`render_face`: the 3DMM face rendered by the JAX rasterizer under an EG3D camera.

This is the guidance image R of imitative learning (paper §4.3.1), its face mask B, its parsing map
and its projected landmarks, all from one camera shared with the volume renderer.
"""
import chex
import flax.struct
import jax
import jax.numpy as jnp

from faceshop_jax import geometry
from faceshop_jax import raster
from faceshop_jax.face_model import labels as labels_lib
from faceshop_jax.face_model import model as model_lib
from faceshop_jax.face_model import shading


@flax.struct.dataclass
class MeshRender:
  """A rasterized, colour-interpolated and labelled mesh; every field is batched.

  Attributes:
    image: [B, H, W, C] interpolated vertex colours (not clipped, so gradients stay); zero off the mesh.
    mask: [B, H, W] float, 1 where the mesh covers the pixel (B of the paper).
    depth: [B, H, W] camera z of the visible surface, 0 off the mesh.
    labels: [B, H, W] int32 semantic class (faceshop_jax.classes), 0 (background) off the mesh.
    fragments: the rasterizer's output, for further interpolation (e.g. image flow).
    screen_xy: [B, N, 2] and vertex_depth [B, N]: the projected vertices.
  """
  image: jax.Array
  mask: jax.Array
  depth: jax.Array
  labels: jax.Array
  fragments: raster.Fragments
  screen_xy: jax.Array
  vertex_depth: jax.Array


@flax.struct.dataclass
class FaceRender(MeshRender):
  """A MeshRender of a 3DMM face, with its landmarks.

  Attributes:
    landmarks: [B, 68, 2] projected 68 landmarks in pixels (pixel centres at half-integers).
    landmarks_3d: [B, 68, 3] the landmarks in world coordinates.
    face_mask: [B, H, W] 1 where the visible surface is the face proper (labels.face_region: no
      scalp, ears or neck), else 0; the mask B of imitative learning.
  """
  landmarks: jax.Array
  landmarks_3d: jax.Array
  face_mask: jax.Array


def render_mesh(vertices: jax.Array, colours: jax.Array, vertex_labels: jax.Array,
                triangles: jax.Array, camera: jax.Array, size: int | tuple[int, int]) -> MeshRender:
  """Renders a batch of meshes that share one topology.

  Args:
    vertices: [B, N, 3] world positions.
    colours: [B, N, C] per-vertex colours (or any attribute to interpolate).
    vertex_labels: [N] int semantic class per vertex; a pixel takes the label of its triangle's
      nearest vertex (largest barycentric weight).
    triangles: [T, 3] int32.
    camera: [B, 25] EG3D cameras (or [25], shared).
    size: image size, an int (square) or (height, width); static.
  """
  height, width = (size, size) if isinstance(size, int) else size
  chex.assert_rank(vertices, 3)
  camera = jnp.broadcast_to(camera, (vertices.shape[0], geometry.CAMERA_SIZE))
  screen_xy, depth = geometry.project_points(vertices, camera, height, width)
  fragments = raster.rasterize(screen_xy, depth, triangles, height, width)
  mask = fragments.mask
  image = raster.interpolate(colours, triangles, fragments)
  labels = jnp.where(mask, _nearest_vertex_values(vertex_labels, triangles, fragments), 0)
  return MeshRender(image=image, mask=mask.astype(image.dtype), depth=fragments.depth,
                    labels=labels, fragments=fragments, screen_xy=screen_xy, vertex_depth=depth)


def _nearest_vertex_values(values: jax.Array, triangles: jax.Array,
                           fragments: raster.Fragments) -> jax.Array:
  """[B, H, W]: per pixel, values [N] of its triangle's corner with the largest barycentric weight
  (exact class borders along mesh edges; off-mesh pixels read triangle 0 and must be masked)."""
  corners = values[triangles[jnp.maximum(fragments.triangle_id, 0)]]
  nearest = jnp.argmax(fragments.barycentrics, axis=-1)[..., None]
  return jnp.take_along_axis(corners, nearest, axis=-1)[..., 0]


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
    camera: [B, 25] EG3D cameras (or [25], shared).
    size: image size, an int (square) or (height, width); static.

  Returns:
    FaceRender.
  """
  chex.assert_rank(coeffs, 2)
  vertices, colours = face_vertices(model, coeffs)
  mesh = render_mesh(vertices, colours, model.vertex_labels, model.triangles, camera, size)
  region = labels_lib.face_region(model.mean_shape, model.landmarks68, model.vertex_labels)
  face = _nearest_vertex_values(region.astype(jnp.int32), model.triangles, mesh.fragments)
  return FaceRender(**vars(mesh), landmarks=jnp.take(mesh.screen_xy, model.landmarks68, axis=1),
                    landmarks_3d=model_lib.landmarks(model, vertices),
                    face_mask=(face * mesh.mask).astype(mesh.image.dtype))
