"""The tri-plane radiance field (sample the planes, aggregate, decode) as a renderer FieldFn.

Inside a linen module, build `decoder_fn` from a decoder whose parameters already exist (call it
once on dummy features when `self.is_initializing()`), since render_image calls field_fn inside
`jax.lax.map` and `jax.checkpoint`, where new parameters cannot be created.
"""
from typing import Callable

import jax.numpy as jnp

from faceshop_jax.nerf import triplane

# decoder_fn(features [..., C], density_offset [...]) ->
#   (density [...] ≥ 0, features [..., C'], semantic_logits [..., K]),
# e.g. functools.partial(TriplaneDecoder().apply, variables).
DecoderFn = Callable[[jnp.ndarray, jnp.ndarray], tuple[jnp.ndarray, jnp.ndarray, jnp.ndarray]]


def sphere_density_offset(points: jnp.ndarray, radius: float, strength: float) -> jnp.ndarray:
  """[...]: strength · (1 − ‖p‖ / radius) for points [..., 3], a pre-activation density offset that
  makes a field start as a head-sized ball about the origin (the head centre), opaque inside and
  clear outside, instead of a near-transparent fog; the decoder's own output can carve it away."""
  return strength * (1.0 - jnp.linalg.norm(points, axis=-1) / radius)


def triplane_field(planes: jnp.ndarray, decoder_fn: DecoderFn, box_half_size: float,
                   aggregation: str = 'sum',
                   density_offset_fn: Callable[[jnp.ndarray], jnp.ndarray] | None = None):
  """A view-independent field over per-image tri-planes (EG3D ignores view directions too).

  Args:
    planes: [B, 3, H, W, C] (triplane module convention).
    decoder_fn: aggregated features -> (density, features, semantic_logits), per sample.
    box_half_size: half side of the cube the planes span (metres).
    aggregation: 'sum' or 'mean' over the three planes.
    density_offset_fn: points [..., 3] -> pre-activation density offsets [...] (None: 0).

  Returns:
    field_fn(points [B, ..., S, 3], directions) -> density [B, ..., S], features [B, ..., S, C'],
    semantic_logits [B, ..., S, K]: the leading axis of the points picks the image's planes.
  """
  def field_fn(points: jnp.ndarray, directions: jnp.ndarray):
    del directions
    lead = points.shape[:-1]
    flat = points.reshape(points.shape[0], -1, 3)
    offset = 0.0 if density_offset_fn is None else density_offset_fn(flat)
    density, features, logits = decoder_fn(triplane.aggregate(
        triplane.sample_triplanes(planes, flat, box_half_size), aggregation), offset)
    return (density.reshape(lead), features.reshape(lead + features.shape[-1:]),
            logits.reshape(lead + logits.shape[-1:]))

  return field_fn
