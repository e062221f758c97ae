"""EG3D's dual discriminator: a camera-conditioned residual StyleGAN2 D on [SR RGB, up-sampled raw RGB].

Both images may first be blurred (EG3D's blur fade, annealed to 0 early in training); the raw image
is then resized bilinearly to the SR resolution and concatenated after the SR image (6 channels).
The projection head follows StyleGAN2-ADA's conditional D: logits = Σ(x · cmap) / sqrt(cmap_dim)
where cmap = mapping(camera).
"""
import math
from typing import Optional

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp

from faceshop_jax.stylegan import layers
from faceshop_jax.stylegan import mapping


def minibatch_std(x: jnp.ndarray, group_size: int = 4, num_channels: int = 1) -> jnp.ndarray:
  """Appends the minibatch standard deviation as `num_channels` features: [N, H, W, C] -> [..., C + F].

  Samples are split into groups of G (sample g·(N/G) + j is member g of group j, as StyleGAN2); the
  channels into F groups. Each feature is the mean over its channels and pixels of the per-pixel
  standard deviation across the group's members. G is the largest divisor of N not above
  group_size, so any batch size works (StyleGAN2 requires N % group_size == 0 when N > group_size).
  """
  n, h, w, c = x.shape
  if c % num_channels:
    raise ValueError(f'{c} channels do not split into {num_channels} minibatch-std features.')
  g = max(d for d in range(1, min(group_size, n) + 1) if n % d == 0)
  y = x.astype(jnp.float32).reshape(g, n // g, h, w, num_channels, c // num_channels)
  y = jnp.sqrt(jnp.var(y, axis=0) + 1e-8)  # [n/G, H, W, F, c]
  y = jnp.mean(y, axis=(1, 2, 4))  # [n/G, F]
  y = jnp.tile(y, (g, 1))  # [N, F], sample g·(N/G) + j gets group j's value
  y = jnp.broadcast_to(y[:, None, None, :], (n, h, w, num_channels)).astype(x.dtype)
  return jnp.concatenate([x, y], axis=-1)


def blur(images: jnp.ndarray, sigma, max_sigma: float) -> jnp.ndarray:
  """EG3D's discriminator-input blur of images [B, H, W, C] (same shape out).

  EG3D filters with taps 2^(−(x/σ)²) for integer |x| ≤ floor(3σ), normalised (no blur when
  floor(3σ) = 0). `sigma` may be traced (it is annealed every step); the kernel is laid out for
  `max_sigma` with the taps beyond floor(3σ) zeroed, so the result equals EG3D's for any
  σ ≤ max_sigma without recompiling.
  """
  radius = int(math.floor(3 * max_sigma))
  if radius == 0:
    return images
  sigma = jnp.asarray(sigma, jnp.float32)
  offsets = jnp.arange(-radius, radius + 1, dtype=jnp.float32)
  taps = jnp.where(jnp.abs(offsets) <= jnp.floor(3 * sigma),
                   jnp.exp2(-jnp.square(offsets / jnp.maximum(sigma, 1e-8))), 0.0)
  return layers.upfirdn2d(images, taps, padding=(radius, radius))


class DiscriminatorBlock(nn.Module):
  """Residual D block: [B, r, r, C_in] -> [B, r/2, r/2, out_channels] (FIR down-sampling).

  The first block (in_channels == 0) reads the image through a 1×1 FromRGB instead.

  Attributes:
    in_channels: channels of x (0: first block, x comes from the image).
    tmp_channels: channels inside the block.
    out_channels: channels after the block.
    conv_clamp: clamp of the convolutions (None: none).
  """
  in_channels: int
  tmp_channels: int
  out_channels: int
  conv_clamp: Optional[float] = None

  @nn.compact
  def __call__(self, x: Optional[jnp.ndarray], img: jnp.ndarray) -> jnp.ndarray:
    if self.in_channels == 0:
      x = layers.Conv2d(self.tmp_channels, 1, activation='lrelu', conv_clamp=self.conv_clamp,
                        name='fromrgb')(img)
    chex.assert_shape(x, (None, None, None, self.tmp_channels))
    y = layers.Conv2d(self.out_channels, 1, use_bias=False, down=2, name='skip')(
        x, gain=math.sqrt(0.5))
    x = layers.Conv2d(self.tmp_channels, 3, activation='lrelu', conv_clamp=self.conv_clamp,
                      name='conv0')(x)
    x = layers.Conv2d(self.out_channels, 3, activation='lrelu', down=2, conv_clamp=self.conv_clamp,
                      name='conv1')(x, gain=math.sqrt(0.5))
    return y + x


class DualDiscriminator(nn.Module):
  """(SR image, raw image, camera) -> logits [B].

  Attributes:
    resolution: resolution of the SR image (512); blocks run at resolution, ..., 8, then a 4×4
      epilogue.
    c_dim: camera size (25; 0 disables conditioning and the projection).
    img_channels: channels of each image (3).
    channel_base: channels at resolution r are min(channel_base // r, channel_max).
    channel_max: see channel_base.
    cmap_dim: size of the mapped camera (None: the 4×4 channels).
    mapping_layers: Dense layers of the camera mapping (lr multiplier 0.01, as StyleGAN2).
    conv_clamp: clamp of the convolutions (EG3D: 256; None: none).
    mbstd_group_size: minibatch-std group size (4).
    mbstd_num_channels: minibatch-std features (1; 0 disables).
    max_blur_sigma: largest blur σ the module is built for (EG3D starts the fade at 10; 0 removes
      the blur from the graph once the fade is over).
    antialias: antialiased bilinear resizing of the raw image (only matters when it is larger).
  """
  resolution: int
  c_dim: int = 25
  img_channels: int = 3
  channel_base: int = 32768
  channel_max: int = 512
  cmap_dim: Optional[int] = None
  mapping_layers: int = 8
  conv_clamp: Optional[float] = 256.0
  mbstd_group_size: int = 4
  mbstd_num_channels: int = 1
  max_blur_sigma: float = 10.0
  antialias: bool = True

  @nn.compact
  def __call__(self, image: jnp.ndarray, image_raw: jnp.ndarray, c: Optional[jnp.ndarray],
               blur_sigma=0.0) -> jnp.ndarray:
    """Scores image pairs.

    Args:
      image: SR (or real) images [B, R, R, img_channels], R = resolution, on [-1, 1].
      image_raw: raw (or real, downsampled) images [B, r, r, img_channels].
      c: cameras [B, c_dim] (None when c_dim == 0).
      blur_sigma: blur σ in pixels of each image's own resolution (scalar, may be traced;
        ≤ max_blur_sigma).

    Returns:
      logits [B].
    """
    batch, res = image.shape[0], self.resolution
    chex.assert_shape(image, (batch, res, res, self.img_channels))
    chex.assert_shape(image_raw, (batch, None, None, self.img_channels))
    image = blur(image, blur_sigma, self.max_blur_sigma)
    image_raw = blur(image_raw, blur_sigma, self.max_blur_sigma)
    image_raw = jax.image.resize(image_raw, image.shape, 'bilinear', antialias=self.antialias)
    img = jnp.concatenate([image, image_raw], axis=-1).astype(jnp.float32)

    ch = lambda r: layers.channels(self.channel_base, self.channel_max, r)  # noqa: E731
    x = None
    r = res
    while r > 4:
      x = DiscriminatorBlock(0 if x is None else ch(r), ch(r), ch(r // 2), self.conv_clamp,
                             name=f'b{r}')(x, img)
      r //= 2

    # Epilogue at 4×4.
    if self.mbstd_num_channels > 0:
      x = minibatch_std(x, self.mbstd_group_size, self.mbstd_num_channels)
    x = layers.Conv2d(ch(4), 3, activation='lrelu', conv_clamp=self.conv_clamp, name='b4_conv')(x)
    x = layers.Dense(ch(4), activation='lrelu', name='b4_fc')(x.reshape(batch, -1))
    if self.c_dim == 0:
      return layers.Dense(1, name='b4_out')(x)[:, 0]
    cmap_dim = self.cmap_dim or ch(4)
    x = layers.Dense(cmap_dim, name='b4_out')(x)
    cmap = mapping.MappingNetwork(z_dim=0, c_dim=self.c_dim, w_dim=cmap_dim, num_ws=None,
                                  num_layers=self.mapping_layers, w_avg_beta=None,
                                  name='mapping')(None, c)
    return jnp.sum(x * cmap, axis=-1) / math.sqrt(cmap_dim)
