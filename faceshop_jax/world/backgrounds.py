"""Random portrait backgrounds: smooth colour fields, gradients and faint textures, in JAX.

Each background is a mix of a linear gradient between two colours, a low-frequency colour field
(a coarse random grid, bilinearly upsampled) and a faint periodic texture (stripes or checks at a
random angle and frequency); all drawn from one key, so a seed fixes the picture.
"""
import math

import jax
import jax.numpy as jnp


def _random_colour(key, shape=()):
  """Colours [..., 3] in [0, 1]: random hue, moderate saturation, any brightness."""
  k_base, k_jitter = jax.random.split(key)
  base = jax.random.uniform(k_base, shape + (1,), minval=0.1, maxval=0.9)
  jitter = jax.random.uniform(k_jitter, shape + (3,), minval=-0.25, maxval=0.25)
  return jnp.clip(base + jitter, 0.0, 1.0)


def background(key, size: int, coarse: int = 4) -> jnp.ndarray:
  """One background image [size, size, 3] in [0, 1]."""
  keys = jax.random.split(key, 8)
  ys, xs = jnp.meshgrid(jnp.linspace(0.0, 1.0, size), jnp.linspace(0.0, 1.0, size), indexing='ij')
  # Gradient along a random direction.
  angle = jax.random.uniform(keys[0], (), maxval=2 * math.pi)
  t = jnp.clip(0.5 + (xs - 0.5) * jnp.cos(angle) + (ys - 0.5) * jnp.sin(angle), 0.0, 1.0)[..., None]
  colours = _random_colour(keys[1], (2,))
  gradient = (1 - t) * colours[0] + t * colours[1]
  # Low-frequency colour field.
  grid = _random_colour(keys[2], (coarse, coarse))
  field = jax.image.resize(grid, (size, size, 3), method='linear')
  mix = jax.random.uniform(keys[3], (), minval=0.0, maxval=0.8)
  image = (1 - mix) * gradient + mix * field
  # Faint texture: stripes (one direction) or checks (two).
  freq = jax.random.uniform(keys[4], (), minval=6.0, maxval=40.0)
  tex_angle = jax.random.uniform(keys[5], (), maxval=math.pi)
  u = xs * jnp.cos(tex_angle) + ys * jnp.sin(tex_angle)
  v = -xs * jnp.sin(tex_angle) + ys * jnp.cos(tex_angle)
  checks = jax.random.bernoulli(keys[6])
  pattern = jnp.sin(2 * math.pi * freq * u) * jnp.where(checks, jnp.sin(2 * math.pi * freq * v), 1.0)
  contrast = jax.random.uniform(keys[7], (), minval=0.0, maxval=0.08)
  return jnp.clip(image + contrast * pattern[..., None], 0.0, 1.0)
