"""Per-pixel rays and the projection of points to pixels, consistent with each other.

Pixels: x right, y down; the centre of pixel (row i, column j) is at (x, y) = (j + 0.5, i + 0.5),
as in EG3D's ray sampler. A point projects to the pixel whose ray passes through it.
"""
import jax.numpy as jnp

from faceshop_jax.geometry import camera as camera_lib


def pixel_centers(height: int, width: int) -> jnp.ndarray:
  """[H, W, 2] pixel-centre coordinates (x, y) in pixels."""
  ys, xs = jnp.meshgrid(jnp.arange(height, dtype=jnp.float32) + 0.5,
                        jnp.arange(width, dtype=jnp.float32) + 0.5, indexing='ij')
  return jnp.stack([xs, ys], axis=-1)


def _pixel_scale(height: int, width: int) -> jnp.ndarray:
  return jnp.array([width, height], jnp.float32)


def camera_rays(camera: jnp.ndarray, height: int, width: int) -> tuple[jnp.ndarray, jnp.ndarray]:
  """Rays through every pixel centre.

  Args:
    camera: [..., 25] cameras.
    height, width: image size in pixels.

  Returns:
    origins [..., H, W, 3] (the camera centre) and unit directions [..., H, W, 3], world frame.
  """
  cam2world, intrinsics = camera_lib.split_camera(camera)
  uv = pixel_centers(height, width) / _pixel_scale(height, width)
  uv1 = jnp.concatenate([uv, jnp.ones_like(uv[..., :1])], axis=-1)  # [H, W, 3]
  inv_k = jnp.linalg.inv(intrinsics)[..., None, None, :, :]  # [..., 1, 1, 3, 3]
  dirs_cam = jnp.einsum('...ij,...j->...i', inv_k, uv1)
  dirs_world = jnp.einsum('...ij,...j->...i', cam2world[..., None, None, :3, :3], dirs_cam)
  dirs_world = dirs_world / jnp.linalg.norm(dirs_world, axis=-1, keepdims=True)
  origins = jnp.broadcast_to(cam2world[..., None, None, :3, 3], dirs_world.shape)
  return origins, dirs_world


def world_to_camera(points: jnp.ndarray, cam2world: jnp.ndarray) -> jnp.ndarray:
  """Points [..., N, 3] in the world to camera coordinates (OpenCV axes) given cam2world [..., 4, 4]."""
  rotation, origin = cam2world[..., :3, :3], cam2world[..., None, :3, 3]
  return jnp.einsum('...ji,...nj->...ni', rotation, points - origin)


def project_points(points: jnp.ndarray, camera: jnp.ndarray, height: int,
                   width: int) -> tuple[jnp.ndarray, jnp.ndarray]:
  """Projects world points to pixels.

  Args:
    points: [..., N, 3] world coordinates.
    camera: [..., 25] cameras (broadcast against points' batch).
    height, width: image size in pixels.

  Returns:
    screen_xy [..., N, 2] pixel coordinates (pixel centres at half-integers) and depth [..., N],
    the camera-space z (positive in front of the camera).
  """
  cam2world, intrinsics = camera_lib.split_camera(camera)
  p_cam = world_to_camera(points, cam2world)
  depth = p_cam[..., 2]
  uvw = jnp.einsum('...ij,...nj->...ni', intrinsics, p_cam)
  screen_xy = uvw[..., :2] / uvw[..., 2:3] * _pixel_scale(height, width)
  return screen_xy, depth
