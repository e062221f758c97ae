"""StyleGAN2's modulated convolution with weight demodulation, and the layer around it.

Per sample b, the weight w[k, k, i, o] is modulated by the style s[b, i] and (optionally) demodulated
so that each output channel has unit expected variance:
  w'[b, ..., i, o] = w[..., i, o] · s[b, i],   d[b, o] = (Σ_{k, k, i} w'[b, ..., i, o]² + 1e-8)^-½.
Two numerically equal ways to run it:
  fused:     per-sample weights w'·d, one grouped convolution (feature_group_count = B), or for
             1×1 kernels one batched matrix product;
  non-fused: (x · s) ⊛ w, then · d — one convolution shared by the whole batch.
On XLA:CPU the grouped convolution is 10–17× slower, so non-fused is the default.
"""
import math
from typing import Optional

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp

from faceshop_jax.stylegan import layers

NOISE_MODES = ('random', 'const', 'none')
# Flax collection holding the fixed per-layer noise images used by noise_mode='const'.
NOISE_CONST = 'noise_const'
# RNG stream drawn by noise_mode='random'.
NOISE_RNG = 'noise'


def modulated_conv2d(x: jnp.ndarray, weight: jnp.ndarray, styles: jnp.ndarray, *,
                     demodulate: bool = True, up: int = 1, fused: bool = False) -> jnp.ndarray:
  """Modulated (and demodulated) 'same' convolution.

  Args:
    x: activations [B, H, W, I].
    weight: shared weights [k, k, I, O] (already at their effective scale).
    styles: per-sample input-channel scales [B, I].
    demodulate: normalise each sample's output channels to unit expected variance.
    up: 1, or 2 for FIR up-sampling (layers.conv2d_resample).
    fused: run as one grouped convolution with per-sample weights (see module docstring).

  Returns:
    [B, H·up, W·up, O].
  """
  batch, height, width, in_ch = x.shape
  k, out_ch = weight.shape[0], weight.shape[-1]
  chex.assert_shape(weight, (k, k, in_ch, out_ch))
  chex.assert_shape(styles, (batch, in_ch))
  dcoefs = None
  if demodulate:
    # Σ_{k,k,i} (w·s)² without forming per-sample weights: s² @ Σ_{k,k} w².
    dcoefs = jax.lax.rsqrt(jnp.square(styles) @ jnp.sum(jnp.square(weight), axis=(0, 1)) + 1e-8)
  if not fused:
    x = layers.conv2d_resample(x * styles[:, None, None, :].astype(x.dtype),
                               weight.astype(x.dtype), up=up)
    return x if dcoefs is None else x * dcoefs[:, None, None, :].astype(x.dtype)
  w = weight[None] * styles[:, None, None, :, None]  # [B, k, k, I, O]
  if dcoefs is not None:
    w = w * dcoefs[:, None, None, None, :]
  if k == 1 and up == 1:
    # A 1×1 convolution with per-sample weights is a batched matrix product, which keeps the
    # batch axis (XLA's SPMD partitioner mis-splits a 1×1 grouped convolution over a sharded batch).
    return jnp.einsum('bhwi,bio->bhwo', x, w[:, 0, 0].astype(x.dtype))
  # Samples become channel groups: input channel b·I + i, output channel b·O + o.
  w = jnp.transpose(w, (1, 2, 3, 0, 4)).reshape(k, k, in_ch, batch * out_ch)
  x = jnp.transpose(x, (1, 2, 0, 3)).reshape(1, height, width, batch * in_ch)
  x = layers.conv2d_resample(x, w.astype(x.dtype), up=up, groups=batch)
  out_h, out_w = x.shape[1:3]
  return jnp.transpose(x.reshape(out_h, out_w, batch, out_ch), (2, 0, 1, 3))


class ModulatedConv(nn.Module):
  """A style-modulated convolution layer: affine(w) -> modulated conv -> + noise -> bias, act, clamp.

  With demodulate=True (StyleGAN2's SynthesisLayer) the styles are used as they are; with
  demodulate=False (ToRGB) they are scaled by 1/sqrt(fan_in), the equalised-lr gain that
  demodulation would otherwise supply.

  Attributes:
    features: output channels O.
    kernel_size: 3 for synthesis layers, 1 for ToRGB.
    up: 1, or 2 to up-sample by 2.
    demodulate: weight demodulation.
    use_noise: add per-pixel noise scaled by a learned strength (initially 0).
    activation: 'lrelu' (synthesis) or 'linear' (ToRGB).
    conv_clamp: clamp outputs to ±conv_clamp·gain (None: no clamp).
    fused: grouped-convolution form (see modulated_conv2d); equal results, backend-dependent speed.
  """
  features: int
  kernel_size: int = 3
  up: int = 1
  demodulate: bool = True
  use_noise: bool = True
  activation: str = 'lrelu'
  conv_clamp: Optional[float] = None
  fused: bool = False

  @nn.compact
  def __call__(self, x: jnp.ndarray, w: jnp.ndarray, noise_mode: str = 'random',
               gain: float = 1.0) -> jnp.ndarray:
    """Maps x [B, H, W, I] with latents w [B, w_dim] to [B, H·up, W·up, features].

    noise_mode: 'random' (fresh noise from the 'noise' RNG stream), 'const' (the layer's fixed noise
    image in the 'noise_const' collection, drawn at init) or 'none'. gain scales the activation
    gain and the clamp (√½ on residual branches).
    """
    if noise_mode not in NOISE_MODES:
      raise ValueError(f'noise_mode must be one of {NOISE_MODES}; got {noise_mode!r}.')
    batch, height, width, in_ch = x.shape
    chex.assert_shape(w, (batch, None))
    k = self.kernel_size
    styles = layers.Dense(in_ch, bias_init=1.0, name='affine')(w)
    if not self.demodulate:
      styles = styles * (1.0 / math.sqrt(in_ch * k * k))
    weight = self.param('weight', nn.initializers.normal(1.0), (k, k, in_ch, self.features))
    x = modulated_conv2d(x, weight, styles, demodulate=self.demodulate, up=self.up, fused=self.fused)

    if self.use_noise:
      shape = (height * self.up, width * self.up, 1)
      strength = self.param('noise_strength', nn.initializers.zeros, ())
      # Created at init whatever the mode, so that 'const' works with the initial variables.
      if noise_mode == 'const' or self.is_initializing():
        noise_const = self.variable(NOISE_CONST, 'noise', lambda: jax.random.normal(
            self.make_rng('params'), shape)).value
      if noise_mode == 'random':
        noise = jax.random.normal(self.make_rng(NOISE_RNG), (batch,) + shape, x.dtype)
        x = x + noise * strength.astype(x.dtype)
      elif noise_mode == 'const':
        x = x + noise_const.astype(x.dtype) * strength.astype(x.dtype)

    bias = self.param('bias', nn.initializers.zeros, (self.features,))
    return layers.bias_act(x, bias, self.activation, gain=gain, clamp=self.conv_clamp)
