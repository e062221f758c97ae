"""StyleGAN2's synthesis network: ws -> image (here: 96-channel tri-plane features), NHWC."""
import math
from typing import Any, Optional

import chex
import flax.linen as nn
import jax.numpy as jnp

from faceshop_jax.stylegan import layers
from faceshop_jax.stylegan import modulated_conv

# StyleGAN's learned constant input is 4 × 4.
START_RESOLUTION = 4
ARCHITECTURES = ('skip', 'resnet')


class SynthesisBlock(nn.Module):
  """One resolution of StyleGAN2's generator: (x, img) -> (x, img).

  Two modulated 3×3 convolutions (the first up-samples by `up`; the first block instead starts from
  a learned 4×4 constant and has one), then, in the 'skip' architecture or when `is_last`, a ToRGB
  (1×1, not demodulated) whose output is added to the (FIR up-sampled) running image. The 'resnet'
  architecture adds a 1×1 up-sampling shortcut to x and scales both branches by √½.

  Attributes:
    in_channels: channels of the incoming x (0: first block, learned constant input).
    out_channels: channels of x after the block.
    img_channels: channels of the image (3 for RGB, 96 for tri-planes).
    up: 2 to double the resolution, 1 to keep it (EG3D's SynthesisBlockNoUp).
    architecture: 'skip' or 'resnet'.
    is_last: the last block always has a ToRGB.
    conv_clamp: clamp of every convolution's output (None: none).
    fused_modconv: grouped-convolution form of the modulated convolutions.
    dtype: compute dtype of x (bfloat16 for mixed precision); the running image stays float32.
  """
  in_channels: int
  out_channels: int
  img_channels: int
  up: int = 2
  architecture: str = 'skip'
  is_last: bool = False
  conv_clamp: Optional[float] = None
  fused_modconv: bool = False
  dtype: Any = jnp.float32

  @property
  def num_conv(self) -> int:
    return 1 if self.in_channels == 0 else 2

  @property
  def num_torgb(self) -> int:
    return int(self.is_last or self.architecture == 'skip')

  @nn.compact
  def __call__(self, x: Optional[jnp.ndarray], img: Optional[jnp.ndarray], ws: jnp.ndarray,
               noise_mode: str = 'random') -> tuple[jnp.ndarray, Optional[jnp.ndarray]]:
    """Runs the block.

    Args:
      x: features [B, r, r, in_channels] (None for the first block).
      img: running image [B, r, r, img_channels] or None.
      ws: latents [B, num_conv + num_torgb, w_dim], one per layer in order.
      noise_mode: see ModulatedConv.

    Returns:
      x [B, r·up, r·up, out_channels] and img [B, r·up, r·up, img_channels] (None if the block has
      no ToRGB and got no image).
    """
    if self.architecture not in ARCHITECTURES:
      raise ValueError(f'architecture must be one of {ARCHITECTURES}; got {self.architecture!r}.')
    batch = ws.shape[0]
    chex.assert_shape(ws, (batch, self.num_conv + self.num_torgb, None))
    conv = lambda up, name: modulated_conv.ModulatedConv(  # noqa: E731
        self.out_channels, up=up, conv_clamp=self.conv_clamp, fused=self.fused_modconv, name=name)

    if self.in_channels == 0:
      const = self.param('const', nn.initializers.normal(1.0),
                         (START_RESOLUTION, START_RESOLUTION, self.out_channels))
      x = jnp.broadcast_to(const, (batch,) + const.shape).astype(self.dtype)
      x = conv(1, 'conv1')(x, ws[:, 0], noise_mode)
    else:
      chex.assert_shape(x, (batch, None, None, self.in_channels))
      x = x.astype(self.dtype)
      if self.architecture == 'resnet':
        shortcut = layers.Conv2d(self.out_channels, 1, use_bias=False, up=self.up, name='skip')
        y = shortcut(x, gain=math.sqrt(0.5))
        x = conv(self.up, 'conv0')(x, ws[:, 0], noise_mode)
        x = y + conv(1, 'conv1')(x, ws[:, 1], noise_mode, gain=math.sqrt(0.5))
      else:
        x = conv(self.up, 'conv0')(x, ws[:, 0], noise_mode)
        x = conv(1, 'conv1')(x, ws[:, 1], noise_mode)

    if img is not None and self.up == 2:
      img = layers.upsample2d(img)
    if self.num_torgb:
      to_rgb = modulated_conv.ModulatedConv(
          self.img_channels, kernel_size=1, demodulate=False, use_noise=False, activation='linear',
          conv_clamp=self.conv_clamp, fused=self.fused_modconv, name='torgb')
      y = to_rgb(x, ws[:, self.num_conv]).astype(jnp.float32)
      img = y if img is None else img + y
    return x, img


class SynthesisNetwork(nn.Module):
  """ws [B, num_ws, w_dim] -> image [B, resolution, resolution, img_channels] ('skip' StyleGAN2).

  Blocks at 4, 8, ..., resolution with channels(channel_base, channel_max, res) features each.
  Block i takes ws[:, j : j + num_conv + num_torgb] and advances j by num_conv, so a ToRGB shares
  its w with the next block's first convolution (as StyleGAN2).

  Attributes:
    w_dim: latent size.
    resolution: output resolution (a power of two ≥ 4); 256 for 3DFaceShop's tri-planes.
    img_channels: output channels; 96 for tri-planes (3 planes × 32).
    channel_base: channels at resolution r are min(channel_base // r, channel_max).
    channel_max: see channel_base.
    conv_clamp: clamp of every convolution's output (None: none; StyleGAN2/EG3D use 256 with fp16).
    fused_modconv: grouped-convolution form of the modulated convolutions.
    dtype: compute dtype of the activations (bfloat16 for mixed precision); parameters and the
      output stay float32.
  """
  w_dim: int
  resolution: int
  img_channels: int
  channel_base: int = 32768
  channel_max: int = 512
  conv_clamp: Optional[float] = None
  fused_modconv: bool = False
  dtype: Any = jnp.float32

  @property
  def block_resolutions(self) -> tuple[int, ...]:
    log2 = int(math.log2(self.resolution))
    if self.resolution < START_RESOLUTION or 2 ** log2 != self.resolution:
      raise ValueError(f'resolution must be a power of two ≥ 4; got {self.resolution}.')
    return tuple(2 ** i for i in range(2, log2 + 1))

  @property
  def num_ws(self) -> int:
    """Latents consumed: one per convolution, plus the last ToRGB's (2·log2(resolution) − 2)."""
    return 2 * len(self.block_resolutions)

  @nn.compact
  def __call__(self, ws: jnp.ndarray, noise_mode: str = 'random') -> jnp.ndarray:
    chex.assert_shape(ws, (None, self.num_ws, self.w_dim))
    ws = ws.astype(jnp.float32)
    x = img = None
    w_idx = 0
    for res in self.block_resolutions:
      block = SynthesisBlock(
          in_channels=0 if res == START_RESOLUTION else x.shape[-1],
          out_channels=layers.channels(self.channel_base, self.channel_max, res),
          img_channels=self.img_channels, is_last=res == self.resolution,
          conv_clamp=self.conv_clamp, fused_modconv=self.fused_modconv, dtype=self.dtype,
          name=f'b{res}')
      x, img = block(x, img, ws[:, w_idx:w_idx + block.num_conv + block.num_torgb], noise_mode)
      w_idx += block.num_conv
    chex.assert_shape(img, (ws.shape[0], self.resolution, self.resolution, self.img_channels))
    return img
