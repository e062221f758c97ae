"""Super-resolution of the rendered feature image (128² -> 512², or 64² -> 128²), conditioned on ws.

Two variants, both two StyleGAN2 synthesis blocks at out/2 and out resolution, the second
up-sampling by 2 and the first by (out/2) / in (1 or 2):
  'eg3d': EG3D's SuperresolutionHybrid{2X,4X,8XDC}. 'skip' blocks, each with a ToRGB added to the
          running image, which starts as the rendered RGB (so the output is a learned residual over
          the FIR-up-sampled raw RGB). Every layer is modulated by the last w (ws[:, -1]).
  'copo': 3DFaceShop's release (SRModel in its stylegan/network.py, read there): 'resnet' blocks of
          64 channels, a ToRGB in the last block only and no RGB skip, so the output comes from the
          features alone; the first block takes ws[:, 0:2], the second ws[:, 1:4].
Inputs at another resolution than `in_resolution` are first resized bilinearly (antialiased when
shrinking), as EG3D does for its 64² warm-up renders; the 'copo' release has no such step.
The output is an RGB image on the [-1, 1] scale of the training images; like EG3D and CoPo it is not
clamped (clamping would cut gradients).
"""
from typing import Any, Optional

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp

from faceshop_jax.stylegan import synthesis

VARIANTS = ('eg3d', 'copo')


def default_block_channels(variant: str, in_resolution: int, out_resolution: int) -> tuple[int, int]:
  """The two blocks' channels in the reference code.

  EG3D: 256/128 for 4× (SuperresolutionHybrid8XDC), 128/64 for 2×; CoPo: 64/64.
  """
  if variant == 'copo':
    return (64, 64)
  return (256, 128) if out_resolution == 4 * in_resolution else (128, 64)


class SuperResolution(nn.Module):
  """(rgb, features, ws) -> RGB [B, out_resolution, out_resolution, 3].

  Attributes:
    in_resolution: resolution the blocks expect (128 for 512² output, 64 for 128²).
    out_resolution: output resolution; 2× or 4× in_resolution.
    variant: 'eg3d' or 'copo' (module docstring).
    block_channels: channels of the two blocks (see default_block_channels).
    img_channels: output channels (3).
    antialias: antialiased bilinear resizing of off-size inputs.
    conv_clamp: clamp of every convolution (None: none; EG3D uses 256 with fp16).
    fused_modconv: grouped-convolution form of the modulated convolutions.
    dtype: compute dtype of the blocks' activations (bfloat16 for mixed precision); the output is
      float32.
  """
  in_resolution: int
  out_resolution: int
  variant: str = 'eg3d'
  block_channels: tuple[int, int] = (128, 64)
  img_channels: int = 3
  antialias: bool = True
  conv_clamp: Optional[float] = None
  fused_modconv: bool = False
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, rgb: jnp.ndarray, features: jnp.ndarray, ws: jnp.ndarray,
               noise_mode: str = 'random') -> jnp.ndarray:
    """Super-resolves one rendered image.

    Args:
      rgb: rendered RGB [B, r, r, img_channels] on the [-1, 1] scale (used by 'eg3d' only; in both
        systems it is also the first channels of `features`).
      features: rendered feature image [B, r, r, C] (C = 32).
      ws: generator latents [B, N, w_dim]; 'eg3d' uses the last, 'copo' the first four (N ≥ 4).
      noise_mode: see ModulatedConv ('none' in EG3D's training config).

    Returns:
      [B, out_resolution, out_resolution, img_channels].
    """
    if self.variant not in VARIANTS:
      raise ValueError(f'variant must be one of {VARIANTS}; got {self.variant!r}.')
    first_up = self.out_resolution // 2 // self.in_resolution
    if first_up not in (1, 2) or first_up * 2 * self.in_resolution != self.out_resolution:
      raise ValueError(f'SuperResolution goes up 2× or 4×; got {self.in_resolution} -> '
                       f'{self.out_resolution}.')
    batch = features.shape[0]
    chex.assert_rank([rgb, features, ws], [4, 4, 3])
    chex.assert_equal_shape_prefix([rgb, features], 3)
    features = self._resize(features)

    skip = self.variant == 'eg3d'
    block = lambda i, in_ch, up, name: synthesis.SynthesisBlock(  # noqa: E731
        in_channels=in_ch, out_channels=self.block_channels[i], img_channels=self.img_channels,
        up=up, architecture='skip' if skip else 'resnet', is_last=i == 1,
        conv_clamp=self.conv_clamp, fused_modconv=self.fused_modconv, dtype=self.dtype, name=name)
    block0 = block(0, features.shape[-1], first_up, 'block0')
    block1 = block(1, self.block_channels[0], 2, 'block1')
    if skip:
      img = self._resize(rgb).astype(jnp.float32)
      ws0 = ws1 = jnp.repeat(ws[:, -1:], 3, axis=1)
    else:
      if ws.shape[1] < 4:
        raise ValueError(f"The 'copo' variant reads ws[:, 0:4]; got ws of shape {ws.shape}.")
      img, ws0, ws1 = None, ws[:, 0:2], ws[:, 1:4]
    x, img = block0(features, img, ws0, noise_mode)
    _, img = block1(x, img, ws1, noise_mode)
    chex.assert_shape(img, (batch, self.out_resolution, self.out_resolution, self.img_channels))
    return img

  def _resize(self, x: jnp.ndarray) -> jnp.ndarray:
    if x.shape[1:3] == (self.in_resolution, self.in_resolution):
      return x
    shape = (x.shape[0], self.in_resolution, self.in_resolution, x.shape[-1])
    return jax.image.resize(x, shape, 'bilinear', antialias=self.antialias)
