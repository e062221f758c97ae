"""The reconstructor role: portrait images -> face-model coefficients, camera and 68 landmarks.

Used by the imitative losses (L_lmk, L_ill; paper Eq. 15-16) and the control-accuracy metrics
(AED/APD/AID). Differentiable end to end: landmarks are the face model's 68 points of the predicted
shape, projected with the predicted camera, as Deep3DFaceRecon does.

Two head layouts (a saved net's config 'pose'; see deep3d.ReconNet for the net):
  'deep3d'     Deep3DFaceRecon's heads id | exp | tex | angle (3) | gamma (27) | t_xy (2) | t_z (1):
               the head posed by (angle, t) in front of the fixed frontal camera, BFM decimetres
               (our BFM loader scales the mesh to metres, so t is scaled by 1/10 too). Pair it with
               the BFM FaceModel it was trained with.
  'yaw_pitch'  our in-domain nets: id | exp | tex | gamma (27) | (yaw, pitch), the canonical head seen
               from the portrait sphere, as the synthetic world is drawn. Outputs are standardised
               during training; the saved config's 'output_mean' / 'output_std' undo that.
"""
import chex
import jax.numpy as jnp
import numpy as np

from faceshop_jax import face_model
from faceshop_jax import geometry
from faceshop_jax.analysis import deep3d
from faceshop_jax.analysis import weights

POSES = ('deep3d', 'yaw_pitch')
DEEP3D_TRANSLATION_SCALE = 0.1  # decimetres (BFM, Deep3DFaceRecon) -> metres (our geometry)


@chex.dataclass(frozen=True)
class Reconstruction:
  """coeffs float32[B, D] (face model layout), camera float32[B, 25], landmarks float32[B, 68, 2]
  (pixels of the input images, pixel centres at half-integers)."""
  coeffs: jnp.ndarray
  camera: jnp.ndarray
  landmarks: jnp.ndarray


def head_sizes(model: face_model.FaceModel, pose: str) -> list[int]:
  """The heads (out_sizes) a reconstructor for `model` has in layout `pose`."""
  if pose == 'deep3d':
    return [model.n_id, model.n_exp, model.n_tex, 3, 27, 2, 1]
  if pose == 'yaw_pitch':
    return [model.n_id, model.n_exp, model.n_tex, 27, 2]
  raise ValueError(f'Unknown reconstructor pose layout {pose!r}; known: {POSES}.')


def decode_heads(outputs: jnp.ndarray, model: face_model.FaceModel, pose: str,
                 height: int, width: int) -> Reconstruction:
  """Reconstruction from raw head outputs float32[B, sum(head_sizes)] (standardisation undone)."""
  sizes = head_sizes(model, pose)
  chex.assert_shape(outputs, (None, sum(sizes)))
  heads = jnp.split(outputs, np.cumsum(sizes)[:-1].tolist(), axis=-1)
  zeros = jnp.zeros(outputs.shape[:1] + (3,), outputs.dtype)
  if pose == 'deep3d':
    identity, expression, texture, angle, gamma, t_xy, t_z = heads
    translation = jnp.concatenate([t_xy, t_z], axis=-1) * DEEP3D_TRANSLATION_SCALE
    camera = geometry.camera_from_head_pose(angle, translation)
  else:
    identity, expression, texture, gamma, yaw_pitch = heads
    camera = geometry.camera_from_yaw_pitch(yaw_pitch[:, 0], yaw_pitch[:, 1])
  # Pose lives in the camera: the posed head seen by the frontal camera is the canonical head seen
  # by `camera` (geometry.camera_from_head_pose).
  coeffs = model.merge_coeffs(face_model.Coefficients(identity, expression, texture, zeros, gamma,
                                                      zeros))
  points = face_model.landmarks(model, face_model.shape(model, identity, expression))
  landmarks, _ = geometry.project_points(points, camera, height, width)
  return Reconstruction(coeffs=coeffs, camera=camera, landmarks=landmarks)


def reconstruct_faces(net: weights.AnalysisNet, model: face_model.FaceModel,
                      images: jnp.ndarray) -> Reconstruction:
  """Coefficients, camera and landmarks of portraits.

  Args:
    net: a 'deep3d'-kind net (converted Deep3DFaceRecon or our in-domain reconstructor).
    model: the face model its heads describe (BFM for Deep3DFaceRecon).
    images: float32[B, H, W, 3] RGB in [-1, 1], framed as the net was trained.
  """
  if net.kind != 'deep3d':
    raise ValueError(f'A reconstructor is a deep3d-kind net; got a {net.kind!r} net.')
  pose = net.config.get('pose', 'deep3d')
  sizes = head_sizes(model, pose)
  if list(net.config['out_sizes']) != sizes:
    raise ValueError(f'The reconstructor has heads {net.config["out_sizes"]}; a {pose!r} '
                     f'reconstructor of this face model has {sizes}. Pair it with the face model '
                     'it was trained with.')
  outputs = deep3d.reconstruct(net.module, net.variables, images)
  if 'output_mean' in net.config:
    outputs = outputs * jnp.asarray(net.config['output_std']) + jnp.asarray(net.config['output_mean'])
  return decode_heads(outputs, model, pose, images.shape[1], images.shape[2])
