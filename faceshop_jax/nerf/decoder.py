"""The tri-plane decoder: aggregated plane features -> density, features and semantic logits.

EG3D's OSGDecoder with 3DFaceShop's semantic head (paper Eq. 13): a shared FC 32→64 + softplus, an
appearance head 64 → (1 density + 32 features) and a semantic head 64 → K logits, all
equalised-learning-rate layers (stylegan.layers.Dense, as EG3D's FullyConnectedLayer). The decoder
activates everything it can per sample: density goes through softplus here (the renderer takes
non-negative densities), features through EG3D's sigmoid·1.002 − 0.001 (all channels; the first
three are RGB). Semantic logits stay raw: the renderer applies the softmax.
"""
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from faceshop_jax import classes
from faceshop_jax.stylegan import layers


class TriplaneDecoder(nn.Module):
  """Per-sample decoder of aggregated tri-plane features.

  Attributes:
    hidden: width of the shared layer (64).
    num_features: rendered feature channels (32; channels 0..2 are RGB).
    num_classes: semantic classes K (19, CelebAMask-HQ: faceshop_jax.classes).
    lr_mul: learning-rate multiplier of every layer.
    density_shift: added before the density softplus; EG3D uses softplus(x − 1) so that densities
      start small and the volume starts mostly transparent.
    density_scale: densities per metre = density_scale · softplus(·). EG3D's rays cross ~1 unit of
      its normalised scene; ours cross 0.24 m of a metric one, so the same outputs are ~4× less
      opaque here unless scaled.
    dtype: the layers' compute dtype (bfloat16 for mixed precision); outputs are float32.
  """
  hidden: int = 64
  num_features: int = 32
  num_classes: int = classes.NUM_CLASSES
  lr_mul: float = 1.0
  density_shift: float = -1.0
  density_scale: float = 1.0
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jnp.ndarray, density_offset: jnp.ndarray | float = 0.0
               ) -> tuple[jnp.ndarray, jnp.ndarray, jnp.ndarray]:
    """Decodes features x [..., C_in]; density_offset [...] is added before the softplus (a prior
    shape, e.g. nerf.sphere_density_offset).

    Returns:
      density [...] (softplus, ≥ 0, per metre of ray), features [..., num_features] in
      (−0.001, 1.001), semantic_logits [..., num_classes] (raw).
    """
    h = nn.softplus(layers.Dense(self.hidden, lr_multiplier=self.lr_mul,
                                 name='shared')(x.astype(self.dtype)))
    appearance = layers.Dense(1 + self.num_features, lr_multiplier=self.lr_mul,
                              name='appearance')(h).astype(jnp.float32)
    density = self.density_scale * nn.softplus(appearance[..., 0] + self.density_shift
                                               + density_offset)
    # EG3D's widened sigmoid: the ends 0 and 1 are reachable without infinite pre-activations.
    features = jax.nn.sigmoid(appearance[..., 1:]) * (1 + 2e-3) - 1e-3
    semantic_logits = layers.Dense(self.num_classes, lr_multiplier=self.lr_mul,
                                   name='semantic')(h).astype(jnp.float32)
    return density, features, semantic_logits
