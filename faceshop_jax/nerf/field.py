"""The tri-plane radiance field (sample the planes, aggregate, decode) as a renderer SplitField.

The decoder is applied functionally, `apply_decoder(decoder_params, features, density_offset)`
(e.g. `TriplaneDecoder().apply`), with its variables passed explicitly: render_image calls the
field inside `jax.lax.map` and differentiates it with its own rule (volume.SplitField), so the
variables must be arguments, not values the function closes over. Inside a linen module, create
the decoder's parameters first (call it once on dummy features when `self.is_initializing()`) and
pass `decoder.variables` with `decoder.clone(parent=None).apply`.
"""
import dataclasses
from typing import Any, Callable

import jax.numpy as jnp

from faceshop_jax.nerf import triplane_cpu
from faceshop_jax.nerf import volume

# apply_decoder(decoder_variables, features [..., C], density_offset [...]) ->
#   (density [...] ≥ 0, features [..., C'], semantic_logits [..., K]), e.g. TriplaneDecoder().apply.
ApplyDecoder = Callable[[Any, jnp.ndarray, jnp.ndarray],
                        tuple[jnp.ndarray, jnp.ndarray, jnp.ndarray]]


def sphere_density_offset(points: jnp.ndarray, radius: float, strength: float) -> jnp.ndarray:
  """[...]: strength · (1 − ‖p‖ / radius) for points [..., 3], a pre-activation density offset that
  makes a field start as a head-sized ball about the origin (the head centre), opaque inside and
  clear outside, instead of a near-transparent fog; the decoder's own output can carve it away."""
  return strength * (1.0 - jnp.linalg.norm(points, axis=-1) / radius)


@dataclasses.dataclass(frozen=True, kw_only=True)
class TriplaneField(volume.SplitField):
  """A view-independent field over per-image tri-planes (EG3D ignores view directions too).

  Called as a FieldFn: points [B, ..., S, 3] -> density [B, ..., S], features [B, ..., S, C'],
  semantic_logits [B, ..., S, K]; the leading axis of the points picks the image's planes.

  Attributes:
    tables: [B, 3, H, W, C] the planes (triplane module convention).
    params: the decoder's variables, apply_decoder's first argument.
    apply_decoder: aggregated features -> (density, features, semantic_logits), per sample.
    box_half_size: half side of the cube the planes span (metres).
    aggregation: 'sum' or 'mean' over the three planes.
    density_offset_fn: points [..., 3] -> pre-activation density offsets [...] (None: 0).
  """
  apply_decoder: ApplyDecoder
  box_half_size: float
  aggregation: str = 'sum'
  density_offset_fn: Callable[[jnp.ndarray], jnp.ndarray] | None = None

  def __post_init__(self):
    triplane_cpu.scale_of(self.aggregation)  # raises for an unknown aggregation

  def lookup(self, tables, points):
    flat = points.reshape(points.shape[0], -1, 3)
    features = triplane_cpu.lookup(tables, flat, self.box_half_size, self.aggregation)
    return features.reshape(points.shape[:-1] + features.shape[-1:])

  def add_lookup_transpose(self, tables_cotangent, points, looked_cotangent):
    flat = points.reshape(points.shape[0], -1, 3)
    cotangent = looked_cotangent.reshape(flat.shape[:2] + looked_cotangent.shape[-1:])
    return triplane_cpu.add_lookup_transpose(tables_cotangent, flat, cotangent, self.box_half_size,
                                             self.aggregation)

  def decode(self, params, looked, points):
    offset = 0.0 if self.density_offset_fn is None else self.density_offset_fn(points)
    return self.apply_decoder(params, looked, offset)


def triplane_field(planes: jnp.ndarray, decoder_variables, apply_decoder: ApplyDecoder,
                   box_half_size: float, aggregation: str = 'sum',
                   density_offset_fn: Callable[[jnp.ndarray], jnp.ndarray] | None = None
                   ) -> TriplaneField:
  """The TriplaneField of planes [B, 3, H, W, C] and a decoder (attributes: TriplaneField)."""
  return TriplaneField(tables=planes, params=decoder_variables, apply_decoder=apply_decoder,
                       box_half_size=box_half_size, aggregation=aggregation,
                       density_offset_fn=density_offset_fn)
