"""Rotations from Euler angles, in Deep3DFaceRecon's convention.

An angle vector is (x, y, z) in radians: rotations about the world x (pitch), y (yaw) and z (roll)
axes, composed as R = Rz · Ry · Rx and applied to column vectors, p' = R p.
"""
import jax.numpy as jnp


def euler_to_matrix(angles: jnp.ndarray) -> jnp.ndarray:
  """Rotation matrices R = Rz·Ry·Rx from angles.

  Args:
    angles: [..., 3] radians about x, y, z.

  Returns:
    [..., 3, 3] rotation matrices.
  """
  ax, ay, az = angles[..., 0], angles[..., 1], angles[..., 2]
  cx, sx = jnp.cos(ax), jnp.sin(ax)
  cy, sy = jnp.cos(ay), jnp.sin(ay)
  cz, sz = jnp.cos(az), jnp.sin(az)
  # The product Rz(az) @ Ry(ay) @ Rx(ax), written out.
  rows = [
      [cz * cy, cz * sy * sx - sz * cx, cz * sy * cx + sz * sx],
      [sz * cy, sz * sy * sx + cz * cx, sz * sy * cx - cz * sx],
      [-sy, cy * sx, cy * cx],
  ]
  return jnp.stack([jnp.stack(r, axis=-1) for r in rows], axis=-2)


def matrix_to_euler(rotation: jnp.ndarray) -> jnp.ndarray:
  """Angles (x, y, z) with euler_to_matrix(angles) == rotation, for |y| < π/2.

  Args:
    rotation: [..., 3, 3] rotation matrices.

  Returns:
    [..., 3] radians.
  """
  ax = jnp.arctan2(rotation[..., 2, 1], rotation[..., 2, 2])
  ay = jnp.arcsin(jnp.clip(-rotation[..., 2, 0], -1.0, 1.0))
  az = jnp.arctan2(rotation[..., 1, 0], rotation[..., 0, 0])
  return jnp.stack([ax, ay, az], axis=-1)
