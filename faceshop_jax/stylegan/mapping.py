"""StyleGAN2's mapping network z, c -> w, with a tracked average w for truncation."""
from typing import Optional

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp

from faceshop_jax.stylegan import layers

# Flax collection of the mapping network's running statistics (w_avg); mutable while training.
STATS = 'stats'


def normalize_2nd_moment(x: jnp.ndarray, eps: float = 1e-8) -> jnp.ndarray:
  """Scales each row of x [..., D] to unit mean square."""
  return x * jax.lax.rsqrt(jnp.mean(jnp.square(x), axis=-1, keepdims=True) + eps)


class MappingNetwork(nn.Module):
  """z [B, z_dim] and conditioning c [B, c_dim] -> w [B, num_ws, w_dim] (or [B, w_dim]).

  z is normalised; c is embedded by a Dense layer and normalised; the two are concatenated and
  passed through `num_layers` leaky-ReLU Dense layers with learning-rate multiplier `lr_multiplier`.
  The discriminator uses it with z_dim=0, num_ws=None, w_avg_beta=None to map cameras.

  Attributes:
    z_dim: latent size (0: no latent).
    c_dim: conditioning size (0: no conditioning).
    w_dim: output size.
    num_ws: copies of w to broadcast to (None: return [B, w_dim]).
    num_layers: Dense layers after the input (8 in StyleGAN2 and 3DFaceShop).
    embed_features: width of the c embedding (None: w_dim).
    layer_features: hidden width (None: w_dim).
    lr_multiplier: learning-rate multiplier of the main layers.
    w_avg_beta: decay of the running average of w (None: not tracked; truncation then unavailable).
      StyleGAN2-ADA and EG3D use 0.995, 3DFaceShop's release 0.998.
  """
  z_dim: int
  c_dim: int
  w_dim: int
  num_ws: Optional[int]
  num_layers: int = 8
  embed_features: Optional[int] = None
  layer_features: Optional[int] = None
  lr_multiplier: float = 0.01
  w_avg_beta: Optional[float] = 0.995

  @nn.compact
  def __call__(self, z: Optional[jnp.ndarray], c: Optional[jnp.ndarray],
               truncation_psi: float = 1.0, truncation_cutoff: Optional[int] = None,
               update_w_avg: bool = False) -> jnp.ndarray:
    """Maps latents to w.

    Args:
      z: [B, z_dim] (None when z_dim == 0).
      c: [B, c_dim] (None when c_dim == 0).
      truncation_psi: w <- w_avg + psi·(w − w_avg); 1 leaves w unchanged.
      truncation_cutoff: truncate only the first this many ws (None: all).
      update_w_avg: move w_avg toward this batch's mean w (call with mutable=[STATS]).

    Returns:
      w [B, num_ws, w_dim], or [B, w_dim] when num_ws is None.
    """
    parts = []
    if self.z_dim > 0:
      chex.assert_shape(z, (None, self.z_dim))
      parts.append(normalize_2nd_moment(z.astype(jnp.float32)))
    if self.c_dim > 0:
      chex.assert_shape(c, (None, self.c_dim))
      embed = layers.Dense(self.embed_features or self.w_dim, name='embed')
      parts.append(normalize_2nd_moment(embed(c.astype(jnp.float32))))
    if not parts:
      raise ValueError('MappingNetwork needs z_dim > 0 or c_dim > 0.')
    x = jnp.concatenate(parts, axis=-1)
    for idx in range(self.num_layers):
      width = self.w_dim if idx == self.num_layers - 1 else (self.layer_features or self.w_dim)
      x = layers.Dense(width, activation='lrelu', lr_multiplier=self.lr_multiplier,
                       name=f'fc{idx}')(x)

    w_avg = None
    if self.w_avg_beta is not None:
      w_avg = self.variable(STATS, 'w_avg', jnp.zeros, (self.w_dim,))
      if update_w_avg and not self.is_initializing():
        batch_mean = jnp.mean(jax.lax.stop_gradient(x), axis=0)
        w_avg.value = batch_mean + self.w_avg_beta * (w_avg.value - batch_mean)

    if self.num_ws is not None:
      x = jnp.broadcast_to(x[:, None, :], (x.shape[0], self.num_ws, self.w_dim))

    if not (isinstance(truncation_psi, (int, float)) and truncation_psi == 1):
      if w_avg is None:
        raise ValueError('Truncation needs the tracked w_avg (w_avg_beta is None).')
      truncated = w_avg.value + truncation_psi * (x - w_avg.value)
      if self.num_ws is None or truncation_cutoff is None:
        x = truncated
      else:
        x = jnp.concatenate([truncated[:, :truncation_cutoff], x[:, truncation_cutoff:]], axis=1)
    return x
