"""VGG16 features (kind 'vgg16'): the five LPIPS taps relu1_2 ... relu5_3, and Gram matrices, NHWC.

Mirrors torchvision's `vgg16().features` (torchvision/models/vgg.py, configuration 'D'): thirteen
3x3 convolutions (padding 1, bias) each followed by ReLU, in five stages separated by 2x2 stride-2
max pools. A torch checkpoint's keys are `features.<i>.weight|bias`, i being the layer's index in
that `nn.Sequential` (0, 2, 5, 7, 10, ..., 28). The taps are the last ReLU of each stage, the slices
richzhang/PerceptualSimilarity's `pretrained_networks.vgg16` returns (the final pool is not run).

A full torchvision VGG16 checkpoint also holds the ImageNet classifier `classifier.{0,3,6}`: the
converter takes and drops it (its width depends on the number of classes, so its shapes are not
checked); any other extra tensor still fails `TorchLayout.finish()`.

The real ImageNet weights ship with LPIPS: see `lpips.load_vgg16`.
"""
from typing import Any

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp

from faceshop_jax.analysis import torch_layout

# Conv widths of the five stages (torchvision cfg 'D'); a max pool precedes stages 2 to 5.
STAGE_WIDTHS = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))
# The output of each stage's last conv + ReLU, in the order the net returns them.
TAP_NAMES = ('relu1_2', 'relu2_2', 'relu3_3', 'relu4_3', 'relu5_3')
TAP_CHANNELS = tuple(widths[-1] for widths in STAGE_WIDTHS)
# ImageNet training resolution, the size `vgg_features` resizes to by default.
INPUT_SIZE = 224
# Four pools: a smaller input leaves relu5_3 empty.
MIN_INPUT_SIZE = 16
# torchvision's ImageNet normalisation of RGB in [0, 1].
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_CLASSIFIER_LAYERS = (0, 3, 6)

Taps = tuple[jnp.ndarray, ...]


def conv_layers() -> tuple[tuple[str, int, int, int], ...]:
  """(Flax name, torch `features` index, in channels, out channels) of the 13 convs, in order.

  Flax names follow the VGG paper (conv<stage>_<layer>); in torch each conv is followed by its ReLU
  (two indices) and stages 2 to 5 start with a pool (one index).
  """
  layers = []
  torch_index, in_channels = 0, 3
  for stage, widths in enumerate(STAGE_WIDTHS):
    if stage:
      torch_index += 1
    for layer, width in enumerate(widths):
      layers.append((f'conv{stage + 1}_{layer + 1}', torch_index, in_channels, width))
      torch_index += 2
      in_channels = width
  return tuple(layers)


class VGG16Features(nn.Module):
  """torchvision VGG16 `features` up to relu5_3 (or its first `stages` stages), on its native input.

  Input: images float32[B, H, W, 3], ImageNet-normalised RGB ((x - mean) / std, x in [0, 1]),
    H, W >= 16.
  Output: the taps (relu1_2, relu2_2, relu3_3, relu4_3, relu5_3), as TAP_NAMES: float32[B, H / 2^s,
    W / 2^s, C_s] for stage s = 0..4 (floored as torch's pools), C = (64, 128, 256, 512, 512); the
    first `stages` of them when it is smaller (their params: `first_stages`).
  """
  stages: int = len(STAGE_WIDTHS)

  @nn.compact
  def __call__(self, images: jnp.ndarray) -> Taps:
    chex.assert_rank(images, 4)
    chex.assert_axis_dimension(images, 3, 3)
    if min(images.shape[1:3]) < MIN_INPUT_SIZE:
      raise ValueError(f'VGG16 needs inputs of at least {MIN_INPUT_SIZE}x{MIN_INPUT_SIZE}; '
                       f'got {images.shape[1]}x{images.shape[2]}.')
    x = images
    taps = []
    for stage, widths in enumerate(STAGE_WIDTHS[:self.stages]):
      if stage:
        x = nn.max_pool(x, (2, 2), strides=(2, 2), padding='VALID')
      for layer, width in enumerate(widths):
        x = nn.Conv(width, (3, 3), padding=((1, 1), (1, 1)), name=f'conv{stage + 1}_{layer + 1}')(x)
        x = nn.relu(x)
      taps.append(x)
    return tuple(taps)


def first_stages(variables: Any, stages: int) -> dict[str, Any]:
  """The part of VGG16Features' variables that VGG16Features(stages=stages) uses."""
  names = {f'conv{stage + 1}_{layer + 1}' for stage, widths in enumerate(STAGE_WIDTHS[:stages])
           for layer in range(len(widths))}
  return {'params': {name: value for name, value in variables['params'].items() if name in names}}


def resize_images(images: jnp.ndarray, size: int | None) -> jnp.ndarray:
  """images float32[B, H, W, C] resized to [B, size, size, C] (unchanged when size is None).

  Bilinear, anti-aliased when down-sampling (half-pixel centres, torch's align_corners=False).
  """
  images = images.astype(jnp.float32)
  if size is None or images.shape[1:3] == (size, size):
    return images
  return jax.image.resize(images, (images.shape[0], size, size, images.shape[3]), 'linear',
                          antialias=True)


def imagenet_normalise(images: jnp.ndarray) -> jnp.ndarray:
  """RGB in [-1, 1] (the generator's range) -> the ImageNet normalisation VGG16 was trained on."""
  return ((images + 1.0) / 2.0 - jnp.asarray(IMAGENET_MEAN)) / jnp.asarray(IMAGENET_STD)


def vgg_features(module: nn.Module, variables: Any, images: jnp.ndarray,
                 size: int | None = INPUT_SIZE) -> Taps:
  """The five VGG16 taps of images in the generator's range.

  Args:
    module: the net from `build` (or a loaded AnalysisNet's module).
    variables: its {'params'}.
    images: float32[B, H, W, 3], RGB in [-1, 1], any H, W.
    size: the square side images are resized to first (ImageNet's 224 by default); None keeps
      H, W (then at least 16).

  Returns:
    The taps (relu1_2, ..., relu5_3), as `VGG16Features`.
  """
  chex.assert_rank(images, 4)
  chex.assert_axis_dimension(images, 3, 3)
  return module.apply(variables, imagenet_normalise(resize_images(images, size)))


def gram_matrix(features: jnp.ndarray) -> jnp.ndarray:
  """Gram matrices of feature maps, normalised by H * W * C (style loss, paper Eq. 21).

  Args:
    features: float32[B, H, W, C].

  Returns:
    float32[B, C, C]: sum over pixels of features[b, p, c] * features[b, p, d], / (H * W * C).
  """
  chex.assert_rank(features, 4)
  _, height, width, channels = features.shape
  gram = jnp.einsum('bhwc,bhwd->bcd', features, features, precision=jax.lax.Precision.HIGHEST)
  return gram / (height * width * channels)


def _check_no_config(config: dict[str, Any]):
  if config:
    raise ValueError(f'VGG16 takes no architecture config; got {config}.')


def build(config: dict[str, Any]) -> nn.Module:
  """VGG16's features; the architecture is fixed, so `config` is empty."""
  _check_no_config(config)
  return VGG16Features()


def infer_config(layout: torch_layout.TorchLayout) -> dict[str, Any]:
  """{}: VGG16 has one architecture; variables_from_torch checks every key and shape."""
  del layout
  return {}


def variables_from_torch(layout: torch_layout.TorchLayout,
                         config: dict[str, Any]) -> dict[str, Any]:
  """{'params'} from torchvision's `features.<i>` keys, every shape checked.

  A full checkpoint's classifier (`classifier.{0,3,6}.weight|bias`) is taken unchecked and dropped.
  """
  _check_no_config(config)
  params = {}
  for name, torch_index, in_channels, out_channels in conv_layers():
    prefix = f'features.{torch_index}'
    weight = layout.take(f'{prefix}.weight', (out_channels, in_channels, 3, 3))
    params[name] = {'kernel': weight.transpose(2, 3, 1, 0),
                    'bias': layout.take(f'{prefix}.bias', (out_channels,))}
  if layout.has('classifier.0.weight'):
    for index in _CLASSIFIER_LAYERS:
      layout.take(f'classifier.{index}.weight')
      layout.take(f'classifier.{index}.bias')
  return {'params': params}
