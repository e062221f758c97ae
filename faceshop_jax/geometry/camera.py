"""Cameras as EG3D's 25 floats (EG3D calls them labels), in OpenCV axes.

World: metres, right-handed, +y up, +z out of the face toward the frontal camera, origin at the head
centre. A camera is 25 floats (CAMERA_SIZE): cam2world 4×4 flattened + intrinsics 3×3 flattened,
`cam2world.reshape(16) ++ intrinsics.reshape(9)`, where cam2world maps camera coordinates (x right,
y down, z forward: OpenCV) to world coordinates and the intrinsics are normalised by the image size
(focal 4.531 means 4.531 image widths; principal point (0.5, 0.5) is the image centre). Both the
mesh rasterizer and the volume renderer read this one camera.

Yaw and pitch place a look-at camera on a sphere about the target:
  position = target + radius · (cos(pitch) sin(yaw), sin(pitch), cos(pitch) cos(yaw)),
so yaw = pitch = 0 is the frontal camera at +z, positive yaw moves the camera toward +x (the
subject's left) and positive pitch lifts it. In EG3D's LookAtPoseSampler terms,
horizontal = π/2 + yaw and vertical = π/2 − pitch.
"""
import math

import chex
import jax.numpy as jnp

from faceshop_jax.geometry import rotation as rotation_lib

# 3DFaceShop / Deep3DFaceRecon portrait camera: focal 1015 px for a 224 px image, 1 m from the head.
DEFAULT_FOCAL = 1015.0 / 224.0
DEFAULT_FOV_DEGREES = math.degrees(2.0 * math.atan(0.5 / DEFAULT_FOCAL))
DEFAULT_RADIUS = 1.0
RAY_NEAR = 0.88
RAY_FAR = 1.12
BOX_HALF_SIZE = 0.185
CAMERA_SIZE = 25


def intrinsics_from_fov(fov_degrees) -> jnp.ndarray:
  """Normalised intrinsics [..., 3, 3] of a square-pixel camera with a full field of view (degrees)."""
  focal = 0.5 / jnp.tan(jnp.deg2rad(jnp.asarray(fov_degrees, jnp.float32)) / 2.0)
  zero, one, half = jnp.zeros_like(focal), jnp.ones_like(focal), jnp.full_like(focal, 0.5)
  rows = [[focal, zero, half], [zero, focal, half], [zero, zero, one]]
  return jnp.stack([jnp.stack(r, axis=-1) for r in rows], axis=-2)


def fov_from_intrinsics(intrinsics: jnp.ndarray) -> jnp.ndarray:
  """Horizontal field of view in degrees [...] of normalised intrinsics [..., 3, 3]."""
  return jnp.rad2deg(2.0 * jnp.arctan(0.5 / intrinsics[..., 0, 0]))


def make_camera(cam2world: jnp.ndarray, intrinsics: jnp.ndarray) -> jnp.ndarray:
  """Packs cam2world [..., 4, 4] and intrinsics [..., 3, 3] into cameras [..., 25]."""
  chex.assert_shape(cam2world, (..., 4, 4))
  chex.assert_shape(intrinsics, (..., 3, 3))
  batch = jnp.broadcast_shapes(cam2world.shape[:-2], intrinsics.shape[:-2])
  return jnp.concatenate([
      jnp.broadcast_to(cam2world, batch + (4, 4)).reshape(batch + (16,)),
      jnp.broadcast_to(intrinsics, batch + (3, 3)).reshape(batch + (9,)),
  ], axis=-1)


def split_camera(camera: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
  """Unpacks cameras [..., 25] into cam2world [..., 4, 4] and intrinsics [..., 3, 3]."""
  if camera.shape[-1] != CAMERA_SIZE:
    raise ValueError(
        f'A camera has {CAMERA_SIZE} floats (cam2world 4x4 + intrinsics 3x3, EG3D layout); '
        f'got shape {camera.shape}.')
  lead = camera.shape[:-1]
  return camera[..., :16].reshape(lead + (4, 4)), camera[..., 16:].reshape(lead + (3, 3))


def look_at(eye: jnp.ndarray, target: jnp.ndarray, up=(0.0, 1.0, 0.0)) -> jnp.ndarray:
  """Cam2world [..., 4, 4] (OpenCV axes) of a camera at eye [..., 3] looking at target [..., 3].

  The image x axis is horizontal in the world (no roll) and image y points down along -up.
  """
  eye, target = jnp.broadcast_arrays(jnp.asarray(eye, jnp.float32), jnp.asarray(target, jnp.float32))
  up = jnp.broadcast_to(jnp.asarray(up, jnp.float32), eye.shape)
  forward = _normalize(target - eye)
  right = _normalize(jnp.cross(forward, up))
  down = jnp.cross(forward, right)
  rotation = jnp.stack([right, down, forward], axis=-1)
  return _rigid(rotation, eye)


def camera_position(yaw, pitch, radius=DEFAULT_RADIUS, target=(0.0, 0.0, 0.0)) -> jnp.ndarray:
  """World position [..., 3] of the camera at (yaw, pitch) radians on a sphere about target."""
  yaw, pitch = jnp.broadcast_arrays(jnp.asarray(yaw, jnp.float32), jnp.asarray(pitch, jnp.float32))
  direction = jnp.stack(
      [jnp.cos(pitch) * jnp.sin(yaw), jnp.sin(pitch), jnp.cos(pitch) * jnp.cos(yaw)], axis=-1)
  return jnp.asarray(target, jnp.float32) + radius * direction


def camera_from_yaw_pitch(yaw, pitch, radius=DEFAULT_RADIUS, fov_degrees=DEFAULT_FOV_DEGREES,
                          target=(0.0, 0.0, 0.0)) -> jnp.ndarray:
  """The look-at camera [..., 25] at (yaw, pitch) radians; defaults are the portrait camera."""
  eye = camera_position(yaw, pitch, radius, target)
  cam2world = look_at(eye, jnp.broadcast_to(jnp.asarray(target, jnp.float32), eye.shape))
  return make_camera(cam2world, intrinsics_from_fov(jnp.full(eye.shape[:-1], fov_degrees)))


def yaw_pitch_from_camera(camera: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
  """(yaw, pitch) radians [...] of a camera: the inverse of camera_from_yaw_pitch.

  Read from the optical axis, so it holds for any target; for a look-at camera it is the direction
  from the target to the camera.
  """
  cam2world, _ = split_camera(camera)
  back = -cam2world[..., :3, 2]
  yaw = jnp.arctan2(back[..., 0], back[..., 2])
  pitch = jnp.arcsin(jnp.clip(back[..., 1], -1.0, 1.0))
  return yaw, pitch


def camera_from_head_pose(angles: jnp.ndarray, translation: jnp.ndarray,
                          radius=DEFAULT_RADIUS, fov_degrees=DEFAULT_FOV_DEGREES) -> jnp.ndarray:
  """The camera that sees the canonical head as the frontal camera sees the posed head.

  Deep3DFaceRecon poses the head, p' = R p + t, in front of a fixed frontal camera. The same image
  comes from the unposed (canonical) head seen by cam2world = M⁻¹ · C, with M = [R t; 0 1] and C the
  frontal camera: this is how head pose becomes a camera.

  Args:
    angles: [..., 3] Euler angles (x, y, z) radians, R = Rz·Ry·Rx.
    translation: [..., 3] metres.
    radius: distance of the fixed frontal camera from the origin.
    fov_degrees: its field of view.

  Returns:
    [..., 25] cameras.
  """
  frontal = camera_from_yaw_pitch(0.0, 0.0, radius, fov_degrees)
  frontal_cam2world, intrinsics = split_camera(frontal)
  head = _rigid(rotation_lib.euler_to_matrix(angles), translation)
  cam2world = jnp.linalg.inv(head) @ frontal_cam2world
  return make_camera(cam2world, jnp.broadcast_to(intrinsics, cam2world.shape[:-2] + (3, 3)))


def _normalize(v: jnp.ndarray) -> jnp.ndarray:
  return v / jnp.linalg.norm(v, axis=-1, keepdims=True)


def _rigid(rotation: jnp.ndarray, translation: jnp.ndarray) -> jnp.ndarray:
  """[..., 4, 4] homogeneous transform from rotation [..., 3, 3] and translation [..., 3]."""
  translation = jnp.asarray(translation, jnp.float32)
  batch = jnp.broadcast_shapes(rotation.shape[:-2], translation.shape[:-1])
  top = jnp.concatenate([jnp.broadcast_to(rotation, batch + (3, 3)),
                         jnp.broadcast_to(translation, batch + (3,))[..., None]], axis=-1)
  bottom = jnp.broadcast_to(jnp.array([0.0, 0.0, 0.0, 1.0], jnp.float32), batch + (1, 4))
  return jnp.concatenate([top, bottom], axis=-2)
