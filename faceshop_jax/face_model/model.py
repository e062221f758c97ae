"""The 3D Morphable Model: one `FaceModel` type, its coefficient layout, shape and albedo.

A face is S = S̄ + B_id·α + B_exp·β (vertices, metres, world convention of faceshop_jax.geometry)
and A = Ā + B_tex·δ (albedo in [0, 1]). Coefficients follow Deep3DFaceRecon's layout with the
model's own sizes: identity α [n_id] | expression β [n_exp] | texture δ [n_tex] | angle [3] |
gamma [27] | translation [3] (257 floats for BFM09). κ = (α, δ) is identity, β expression,
γ the SH illumination. Angles are radians (x, y, z; R = Rz·Ry·Rx), translation is metres.
In faceshop_jax the head stays in its canonical placement (angle 0, translation 0) and head pose
is the camera; angle and translation remain for fitting real photos.
"""
from typing import NamedTuple

import chex
import flax.struct
import jax.numpy as jnp

from faceshop_jax.geometry import rotation as rotation_lib

N_ANGLE, N_GAMMA, N_TRANSLATION = 3, 27, 3

# The iBUG-68 index of each landmark's left/right mirror image (midline points map to themselves).
LANDMARK_MIRROR = (16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 26, 25, 24, 23, 22, 21,
                   20, 19, 18, 17, 27, 28, 29, 30, 35, 34, 33, 32, 31, 45, 44, 43, 42, 47, 46, 39, 38,
                   37, 36, 41, 40, 54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55, 64, 63, 62, 61, 60,
                   67, 66, 65)


class Coefficients(NamedTuple):
  """A coefficient vector split by factor; each field is [..., size]."""
  identity: jnp.ndarray  # α: shape identity
  expression: jnp.ndarray  # β
  texture: jnp.ndarray  # δ: albedo identity
  angle: jnp.ndarray  # head rotation, radians (x, y, z)
  gamma: jnp.ndarray  # 27 SH coefficients, channel-major (9 for R, then G, then B)
  translation: jnp.ndarray  # metres


@flax.struct.dataclass
class FaceModel:
  """A linear face model: arrays (a pytree, so it can be passed to jitted functions) + names.

  Attributes:
    mean_shape: [N, 3] mean vertex positions, metres.
    id_basis: [N, 3, n_id] identity shape basis (α ~ N(0, I) gives plausible faces).
    exp_basis: [N, 3, n_exp] expression basis.
    mean_albedo: [N, 3] mean albedo in [0, 1].
    tex_basis: [N, 3, n_tex] albedo basis.
    triangles: [T, 3] int32 vertex indices; (v1 − v0) × (v2 − v0) points out of the surface.
    landmarks68: [68] int32 vertex indices of the iBUG 68 points (0-based iBUG order).
    vertex_labels: [N] int32 semantic class of each vertex (faceshop_jax.classes).
    expression_names: names of the expression units (e.g. ARKit's 'jawOpen'), or () if unnamed.
    name: where the model came from.
  """
  mean_shape: jnp.ndarray
  id_basis: jnp.ndarray
  exp_basis: jnp.ndarray
  mean_albedo: jnp.ndarray
  tex_basis: jnp.ndarray
  triangles: jnp.ndarray
  landmarks68: jnp.ndarray
  vertex_labels: jnp.ndarray
  expression_names: tuple[str, ...] = flax.struct.field(pytree_node=False, default=())
  name: str = flax.struct.field(pytree_node=False, default='')

  @property
  def n_vertices(self) -> int:
    return self.mean_shape.shape[0]

  @property
  def n_id(self) -> int:
    return self.id_basis.shape[-1]

  @property
  def n_exp(self) -> int:
    return self.exp_basis.shape[-1]

  @property
  def n_tex(self) -> int:
    return self.tex_basis.shape[-1]

  @property
  def coefficient_sizes(self) -> Coefficients:
    """Sizes of each factor, as a Coefficients of ints."""
    return Coefficients(self.n_id, self.n_exp, self.n_tex, N_ANGLE, N_GAMMA, N_TRANSLATION)

  @property
  def n_coeffs(self) -> int:
    return sum(self.coefficient_sizes)

  def split_coeffs(self, coeffs: jnp.ndarray) -> Coefficients:
    """Splits coefficient vectors [..., n_coeffs] into their factors."""
    if coeffs.shape[-1] != self.n_coeffs:
      raise ValueError(
          f'{self.name or "This face model"} takes {self.n_coeffs} coefficients '
          f'(id {self.n_id} | exp {self.n_exp} | tex {self.n_tex} | angle 3 | gamma 27 | trans 3); '
          f'got a last axis of {coeffs.shape[-1]}.')
    parts, start = [], 0
    for size in self.coefficient_sizes:
      parts.append(coeffs[..., start:start + size])
      start += size
    return Coefficients(*parts)

  def merge_coeffs(self, parts: Coefficients) -> jnp.ndarray:
    """The inverse of split_coeffs: [..., n_coeffs]."""
    for field, part, size in zip(Coefficients._fields, parts, self.coefficient_sizes):
      if part.shape[-1] != size:
        raise ValueError(f'Coefficient factor {field!r} has {part.shape[-1]} values; '
                         f'{self.name or "this face model"} expects {size}.')
    batch = jnp.broadcast_shapes(*(p.shape[:-1] for p in parts))
    return jnp.concatenate([jnp.broadcast_to(p, batch + p.shape[-1:]) for p in parts], axis=-1)

  def zero_coeffs(self, batch_shape=()) -> jnp.ndarray:
    """The mean face, neutral, canonical placement, no illumination beyond the ambient: [..., D]."""
    return jnp.zeros(tuple(batch_shape) + (self.n_coeffs,), jnp.float32)

  def expression_coefficients(self, weights: dict[str, float]) -> jnp.ndarray:
    """Expression coefficients [n_exp] from named units, e.g. {'jawOpen': 0.8}.

    Raises:
      ValueError: naming the unknown units and listing the known ones.
    """
    unknown = sorted(set(weights) - set(self.expression_names))
    if unknown:
      known = ', '.join(self.expression_names) or 'none: this model has unnamed units'
      raise ValueError(f'Unknown expression unit(s) {unknown} for {self.name}; known units: {known}.')
    values = [0.0] * self.n_exp
    for key, value in weights.items():
      values[self.expression_names.index(key)] = float(value)
    return jnp.asarray(values, jnp.float32)


def shape(model: FaceModel, identity: jnp.ndarray, expression: jnp.ndarray) -> jnp.ndarray:
  """Vertices S = S̄ + B_id·α + B_exp·β.

  Args:
    model: the face model.
    identity: [..., n_id].
    expression: [..., n_exp].

  Returns:
    [..., N, 3] vertex positions in the canonical placement.
  """
  chex.assert_shape(identity, (..., model.n_id))
  chex.assert_shape(expression, (..., model.n_exp))
  return (model.mean_shape + jnp.einsum('nck,...k->...nc', model.id_basis, identity)
          + jnp.einsum('nck,...k->...nc', model.exp_basis, expression))


def albedo(model: FaceModel, texture: jnp.ndarray) -> jnp.ndarray:
  """Per-vertex albedo A = Ā + B_tex·δ: [..., N, 3] from texture [..., n_tex]."""
  chex.assert_shape(texture, (..., model.n_tex))
  return model.mean_albedo + jnp.einsum('nck,...k->...nc', model.tex_basis, texture)


def vertex_normals(vertices: jnp.ndarray, triangles: jnp.ndarray) -> jnp.ndarray:
  """Unit vertex normals [..., N, 3]: the normalised sum of the unit normals of adjacent triangles.

  This is Deep3DFaceRecon's `point_buf` average, computed by scatter-add over the triangles, so any
  triangle list works without a precomputed adjacency table.
  """
  v0, v1, v2 = (jnp.take(vertices, triangles[:, k], axis=-2) for k in range(3))
  face_normals = _normalize(jnp.cross(v1 - v0, v2 - v0))
  summed = jnp.zeros_like(vertices)
  for k in range(3):
    summed = summed.at[..., triangles[:, k], :].add(face_normals)
  return _normalize(summed)


def pose(vertices: jnp.ndarray, angle: jnp.ndarray, translation: jnp.ndarray) -> jnp.ndarray:
  """Rigidly moves vertices [..., N, 3] by R(angle) [..., 3] and translation [..., 3]."""
  rotation = rotation_lib.euler_to_matrix(angle)
  return jnp.einsum('...ij,...nj->...ni', rotation, vertices) + translation[..., None, :]


def landmarks(model: FaceModel, vertices: jnp.ndarray) -> jnp.ndarray:
  """The 68 iBUG landmarks [..., 68, 3] of vertices [..., N, 3]."""
  return jnp.take(vertices, model.landmarks68, axis=-2)


def five_points(landmarks68: jnp.ndarray) -> jnp.ndarray:
  """The 5 alignment points [..., 5, D] from 68 landmarks [..., 68, D].

  Order (MTCNN / Deep3DFaceRecon): right eye centre, left eye centre, nose tip, right mouth corner,
  left mouth corner, where right is the subject's right (image left).
  """
  right_eye = (landmarks68[..., 36, :] + landmarks68[..., 39, :]) / 2
  left_eye = (landmarks68[..., 42, :] + landmarks68[..., 45, :]) / 2
  return jnp.stack([right_eye, left_eye, landmarks68[..., 30, :], landmarks68[..., 48, :],
                    landmarks68[..., 54, :]], axis=-2)


def _normalize(v: jnp.ndarray) -> jnp.ndarray:
  return v / jnp.maximum(jnp.linalg.norm(v, axis=-1, keepdims=True), 1e-12)
