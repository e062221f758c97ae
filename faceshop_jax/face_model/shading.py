"""Lambertian shading under 2nd-order spherical-harmonic illumination (Deep3DFaceRecon's constants).

colour_c = albedo_c · Σ_b γ_{c,b} Y_b(n) with γ = 27 coefficients, channel-major (γ[9c + b]), and an
ambient 0.8 added to each channel's DC term, so γ = 0 is a soft white ambient light.
"""
import math

import chex
import jax.numpy as jnp

AMBIENT = 0.8
_A = (math.pi, 2 * math.pi / math.sqrt(3.0), 2 * math.pi / math.sqrt(8.0))
_C = (1 / math.sqrt(4 * math.pi), math.sqrt(3.0) / math.sqrt(4 * math.pi),
      3 * math.sqrt(5.0) / math.sqrt(12 * math.pi))


def sh_basis(normals: jnp.ndarray) -> jnp.ndarray:
  """The 9 irradiance-weighted SH basis values [..., 9] at unit normals [..., 3]."""
  x, y, z = normals[..., 0], normals[..., 1], normals[..., 2]
  a0c0, a1c1, a2c2 = _A[0] * _C[0], _A[1] * _C[1], _A[2] * _C[2]
  return jnp.stack([
      jnp.full_like(x, a0c0),
      -a1c1 * y,
      a1c1 * z,
      -a1c1 * x,
      a2c2 * x * y,
      -a2c2 * y * z,
      a2c2 / (2 * math.sqrt(3.0)) * (3 * z**2 - 1),
      -a2c2 * x * z,
      a2c2 / 2 * (x**2 - y**2),
  ], axis=-1)


def irradiance(normals: jnp.ndarray, gamma: jnp.ndarray) -> jnp.ndarray:
  """Per-channel irradiance [..., N, 3] at normals [..., N, 3] under gamma [..., 27]."""
  chex.assert_shape(gamma, (..., 27))
  lights = gamma.reshape(gamma.shape[:-1] + (3, 9)).at[..., 0].add(AMBIENT)
  return jnp.einsum('...nb,...cb->...nc', sh_basis(normals), lights)


def shade(albedo: jnp.ndarray, normals: jnp.ndarray, gamma: jnp.ndarray) -> jnp.ndarray:
  """Lambertian colour [..., N, 3] of albedo [..., N, 3] at normals [..., N, 3] under gamma [..., 27]."""
  return albedo * irradiance(normals, gamma)


def _fibonacci_sphere(n: int) -> jnp.ndarray:
  """[n, 3] nearly uniform unit vectors."""
  i = jnp.arange(n, dtype=jnp.float32) + 0.5
  z = 1.0 - 2.0 * i / n
  phi = math.pi * (3.0 - math.sqrt(5.0)) * i
  r = jnp.sqrt(1.0 - z * z)
  return jnp.stack([r * jnp.cos(phi), r * jnp.sin(phi), z], axis=-1)


def gamma_from_irradiance(irradiance_fn, num_normals: int = 1024) -> jnp.ndarray:
  """The 27 SH coefficients whose irradiance best fits irradiance_fn on the unit sphere.

  A least-squares fit over uniform normals, which for an orthogonal basis is the SH projection, so
  any irradiance in the span of the 9 basis functions is recovered exactly.

  Args:
    irradiance_fn: maps unit normals [S, 3] to per-channel irradiance [..., S, 3].
    num_normals: sphere samples of the fit.

  Returns:
    gamma [..., 27], channel-major, net of the 0.8 ambient that `irradiance` adds back.
  """
  normals = _fibonacci_sphere(num_normals)
  projection = jnp.linalg.pinv(sh_basis(normals))  # [9, S]
  coeffs = jnp.einsum('bs,...sc->...cb', projection, irradiance_fn(normals))  # [..., 3, 9]
  coeffs = coeffs.at[..., 0].add(-AMBIENT)
  return coeffs.reshape(coeffs.shape[:-2] + (27,))


def gamma_from_lights(directions: jnp.ndarray, colours: jnp.ndarray,
                      ambient: jnp.ndarray) -> jnp.ndarray:
  """SH coefficients [..., 27] of K directional lights plus an ambient term.

  The Lambertian irradiance Σ_k colour_k · max(0, n·d_k) + ambient, projected onto the 9 SH bands.

  Args:
    directions: [..., K, 3] directions toward the lights (normalised here), world frame.
    colours: [..., K, 3] RGB intensity of each light.
    ambient: [..., 3] RGB ambient irradiance.
  """
  directions = directions / jnp.linalg.norm(directions, axis=-1, keepdims=True)

  def irradiance_fn(normals):  # [S, 3] -> [..., S, 3]
    cosines = jnp.maximum(jnp.einsum('sd,...kd->...sk', normals, directions), 0.0)
    return jnp.einsum('...sk,...kc->...sc', cosines, colours) + ambient[..., None, :]

  return gamma_from_irradiance(irradiance_fn)
