"""BiSeNet face parser (kind 'bisenet'), NHWC.

Mirrors zllrunning/face-parsing.PyTorch (model.py, resnet.py): `BiSeNet` = `ContextPath` ('cp':
the `Resnet18` trunk 'cp.resnet' (torchvision layout, see resnet.py), `AttentionRefinementModule`s
arm16 / arm32, ConvBNReLU conv_head32 / conv_head16 / conv_avg), a `FeatureFusionModule` 'ffm' on
the 1/8 trunk map and the context path, and `BiSeNetOutput` heads conv_out (main) and conv_out16 /
conv_out32 (auxiliary, trained with). Every ConvBNReLU is a bias-free conv + BatchNorm + ReLU.
Context features are up-sampled with torch's 'nearest' rule and the logits with bilinear
align_corners=True, both reproduced exactly here.

The released checkpoint (79999_iter.pth) parses 512x512 ImageNet-normalised RGB into 19
CelebAMask-HQ classes; any multiple of 32 works. The widths are read off the checkpoint so that
small in-domain variants can be built. `parse` is the project-facing entry point for generator
images in [-1, 1].
"""
from collections.abc import Mapping, Sequence
from typing import Any

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from faceshop_jax.analysis import resnet
from faceshop_jax.analysis import torch_layout

DEFAULT_INPUT_SIZE = 512
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _nearest_indices(in_size: int, out_size: int) -> np.ndarray:
  """Source index of each output index under torch's 'nearest' (floor(o · in/out) in float32)."""
  scale = np.float32(in_size / out_size)
  indices = np.floor(np.arange(out_size, dtype=np.float32) * scale).astype(np.int32)
  return np.minimum(indices, in_size - 1)


def resize_nearest(x: jnp.ndarray, size: tuple[int, int]) -> jnp.ndarray:
  """torch's F.interpolate(mode='nearest'): float32[B, H, W, C] -> float32[B, *size, C]."""
  for axis, out_size in zip((1, 2), size):
    x = jnp.take(x, _nearest_indices(x.shape[axis], out_size), axis=axis)
  return x


def _resize_axis_align_corners(x: jnp.ndarray, axis: int, out_size: int) -> jnp.ndarray:
  """Linear interpolation along `axis` with the end samples aligned (torch's float32 indexing)."""
  in_size = x.shape[axis]
  scale = np.float32((in_size - 1) / (out_size - 1)) if out_size > 1 else np.float32(0)
  source = np.arange(out_size, dtype=np.float32) * scale
  lower = source.astype(np.int32)
  upper = np.minimum(lower + 1, in_size - 1)
  weight_shape = [1] * x.ndim
  weight_shape[axis] = out_size
  upper_weight = (source - lower).reshape(weight_shape)
  return (jnp.take(x, lower, axis=axis) * (1 - upper_weight)
          + jnp.take(x, upper, axis=axis) * upper_weight)


def resize_bilinear_align_corners(x: jnp.ndarray, size: tuple[int, int]) -> jnp.ndarray:
  """torch's F.interpolate(mode='bilinear', align_corners=True): [B, H, W, C] -> [B, *size, C]."""
  for axis, out_size in zip((1, 2), size):
    x = _resize_axis_align_corners(x, axis, out_size)
  return x


def _spatial_mean(x: jnp.ndarray) -> jnp.ndarray:
  """torch's adaptive_avg_pool2d(x, 1): float32[B, H, W, C] -> float32[B, 1, 1, C]."""
  return jnp.mean(x, axis=(1, 2), keepdims=True)


class ConvBNReLU(nn.Module):
  """Bias-free conv ('conv', padding kernel_size // 2) + BatchNorm ('bn') + ReLU."""
  features: int
  kernel_size: int = 3

  @nn.compact
  def __call__(self, x: jnp.ndarray, train: bool = False) -> jnp.ndarray:
    x = resnet.conv(self.features, self.kernel_size, name='conv')(x)
    return nn.relu(resnet.batch_norm(train, name='bn')(x))


class AttentionRefinementModule(nn.Module):
  """3x3 ConvBNReLU scaled per channel by sigmoid(bn(1x1 conv(global mean))): -> [B, H, W, F]."""
  features: int

  @nn.compact
  def __call__(self, x: jnp.ndarray, train: bool = False) -> jnp.ndarray:
    features = ConvBNReLU(self.features, name='conv')(x, train)
    attention = resnet.conv(self.features, 1, name='conv_atten')(_spatial_mean(features))
    attention = nn.sigmoid(resnet.batch_norm(train, name='bn_atten')(attention))
    return features * attention


class FeatureFusionModule(nn.Module):
  """1x1 ConvBNReLU of the concatenated inputs plus its squeeze-excited copy: -> [B, H, W, F]."""
  features: int

  @nn.compact
  def __call__(self, spatial: jnp.ndarray, context: jnp.ndarray,
               train: bool = False) -> jnp.ndarray:
    fused = ConvBNReLU(self.features, 1, name='convblk')(
        jnp.concatenate([spatial, context], axis=-1), train)
    attention = resnet.conv(self.features // 4, 1, name='conv1')(_spatial_mean(fused))
    attention = nn.sigmoid(resnet.conv(self.features, 1, name='conv2')(nn.relu(attention)))
    return fused * attention + fused


class BiSeNetOutput(nn.Module):
  """3x3 ConvBNReLU ('conv') + bias-free 1x1 classifier ('conv_out'): -> [B, H, W, n_classes]."""
  mid_features: int
  n_classes: int

  @nn.compact
  def __call__(self, x: jnp.ndarray, train: bool = False) -> jnp.ndarray:
    x = ConvBNReLU(self.mid_features, name='conv')(x, train)
    return resnet.conv(self.n_classes, 1, name='conv_out')(x)


class ContextPath(nn.Module):
  """The trunk's 1/8 map and the attention-refined context at 1/8 and 1/16.

  Attributes:
    block, stage_sizes, width: the trunk ('resnet'; ResNet-18 in the public net).
    context_width: channels of the refined context (128 in the public net).
  """
  block: str
  stage_sizes: Sequence[int]
  width: int
  context_width: int

  @nn.compact
  def __call__(self, x: jnp.ndarray, train: bool = False):
    """(feat8 [B, H/8, W/8, C8], context at 1/8, context at 1/16 [..., context_width])."""
    trunk = resnet.ResNet(self.block, self.stage_sizes, self.width, name='resnet')
    feat8, feat16, feat32 = trunk(x, train)[-3:]
    size = lambda features: features.shape[1:3]  # noqa: E731
    global_context = ConvBNReLU(self.context_width, 1, name='conv_avg')(_spatial_mean(feat32),
                                                                        train)
    feat32_sum = (AttentionRefinementModule(self.context_width, name='arm32')(feat32, train)
                  + resize_nearest(global_context, size(feat32)))
    feat32_up = ConvBNReLU(self.context_width, name='conv_head32')(
        resize_nearest(feat32_sum, size(feat16)), train)
    feat16_sum = (AttentionRefinementModule(self.context_width, name='arm16')(feat16, train)
                  + feat32_up)
    feat16_up = ConvBNReLU(self.context_width, name='conv_head16')(
        resize_nearest(feat16_sum, size(feat8)), train)
    return feat8, feat16_up, feat32_up


class BiSeNet(nn.Module):
  """Face parser: images float32[B, H, W, 3] (ImageNet-normalised) -> logits [B, H, W, n_classes].

  Attributes:
    n_classes: parsing classes (19 in the public net).
    block, stage_sizes, width: the context path's trunk.
    context_width: context path channels (128).
    fuse_width: feature fusion channels (256).
    head_width: the main head's hidden channels (256).
    aux_head_width: the auxiliary heads' hidden channels (64).
    input_size: the square resolution the net was trained at (used by `parse`).
  """
  n_classes: int = 19
  block: str = 'basic'
  stage_sizes: Sequence[int] = (2, 2, 2, 2)
  width: int = 64
  context_width: int = 128
  fuse_width: int = 256
  head_width: int = 256
  aux_head_width: int = 64
  input_size: int = DEFAULT_INPUT_SIZE

  @nn.compact
  def __call__(self, images: jnp.ndarray, train: bool = False, with_aux: bool = False):
    """Parsing logits at the input resolution.

    Args:
      images: float32[B, H, W, 3], H and W multiples of 32.
      train: use (and update) batch statistics.
      with_aux: also return the auxiliary heads' logits (BiSeNet trains on all three); initialise
        with with_aux=True to create their parameters.

    Returns:
      logits float32[B, H, W, n_classes], or with `with_aux` the tuple (logits, logits from the 1/8
      context, logits from the 1/16 context).
    """
    chex.assert_rank(images, 4)
    feat8, context8, context16 = ContextPath(self.block, self.stage_sizes, self.width,
                                             self.context_width, name='cp')(images, train)
    fused = FeatureFusionModule(self.fuse_width, name='ffm')(feat8, context8, train)
    heads = [('conv_out', self.head_width, fused)]
    if with_aux:
      heads += [('conv_out16', self.aux_head_width, context8),
                ('conv_out32', self.aux_head_width, context16)]
    logits = tuple(
        resize_bilinear_align_corners(
            BiSeNetOutput(mid, self.n_classes, name=name)(features, train), images.shape[1:3])
        for name, mid, features in heads)
    return logits if with_aux else logits[0]


def build(config: Mapping[str, Any]) -> BiSeNet:
  """BiSeNet from a config as `infer_config` returns."""
  backbone = config['backbone']
  return BiSeNet(n_classes=config['n_classes'], block=backbone['block'],
                 stage_sizes=tuple(backbone['stage_sizes']), width=backbone['width'],
                 context_width=config['context_width'], fuse_width=config['fuse_width'],
                 head_width=config['head_width'], aux_head_width=config['aux_head_width'],
                 input_size=config['input_size'])


def infer_config(layout: torch_layout.TorchLayout) -> dict[str, Any]:
  """The architecture of a face-parsing.PyTorch checkpoint (input_size: the released 512)."""
  out_channels = lambda key: int(layout.take(f'{key}.weight').shape[0])  # noqa: E731
  return {'n_classes': out_channels('conv_out.conv_out'),
          'backbone': resnet.resnet_config_from_torch(layout, 'cp.resnet.'),
          'context_width': out_channels('cp.arm16.conv.conv'),
          'fuse_width': out_channels('ffm.convblk.conv'),
          'head_width': out_channels('conv_out.conv.conv'),
          'aux_head_width': out_channels('conv_out16.conv.conv'),
          'input_size': DEFAULT_INPUT_SIZE}


def _conv_bn_relu_from_torch(layout: torch_layout.TorchLayout, key: str, in_features: int,
                             features: int, kernel_size: int = 3) -> resnet.Variables:
  return resnet.nest_variables({
      'conv': resnet.conv_from_torch(layout, f'{key}.conv', in_features, features, kernel_size),
      'bn': resnet.batch_norm_from_torch(layout, f'{key}.bn', features)})


def _attention_refinement_from_torch(layout: torch_layout.TorchLayout, key: str,
                                     in_features: int, features: int) -> resnet.Variables:
  return resnet.nest_variables({
      'conv': _conv_bn_relu_from_torch(layout, f'{key}.conv', in_features, features),
      'conv_atten': resnet.conv_from_torch(layout, f'{key}.conv_atten', features, features, 1),
      'bn_atten': resnet.batch_norm_from_torch(layout, f'{key}.bn_atten', features)})


def _output_from_torch(layout: torch_layout.TorchLayout, key: str, in_features: int,
                       mid_features: int, n_classes: int) -> resnet.Variables:
  return resnet.nest_variables({
      'conv': _conv_bn_relu_from_torch(layout, f'{key}.conv', in_features, mid_features),
      'conv_out': resnet.conv_from_torch(layout, f'{key}.conv_out', mid_features, n_classes, 1)})


def variables_from_torch(layout: torch_layout.TorchLayout,
                         config: Mapping[str, Any]) -> resnet.Variables:
  """Variables of `build(config)` from a face-parsing.PyTorch state dict."""
  backbone, context, fuse = config['backbone'], config['context_width'], config['fuse_width']
  last_stage = len(backbone['stage_sizes']) - 1
  trunk8, trunk16, trunk32 = (resnet.stage_features(backbone, last_stage - offset)
                              for offset in (2, 1, 0))
  context_path = resnet.nest_variables({
      'resnet': resnet.resnet_variables_from_torch(layout, 'cp.resnet.', backbone),
      'arm16': _attention_refinement_from_torch(layout, 'cp.arm16', trunk16, context),
      'arm32': _attention_refinement_from_torch(layout, 'cp.arm32', trunk32, context),
      'conv_head32': _conv_bn_relu_from_torch(layout, 'cp.conv_head32', context, context),
      'conv_head16': _conv_bn_relu_from_torch(layout, 'cp.conv_head16', context, context),
      'conv_avg': _conv_bn_relu_from_torch(layout, 'cp.conv_avg', trunk32, context, 1)})
  fusion = resnet.nest_variables({
      'convblk': _conv_bn_relu_from_torch(layout, 'ffm.convblk', trunk8 + context, fuse, 1),
      'conv1': resnet.conv_from_torch(layout, 'ffm.conv1', fuse, fuse // 4, 1),
      'conv2': resnet.conv_from_torch(layout, 'ffm.conv2', fuse // 4, fuse, 1)})
  n_classes, aux_width = config['n_classes'], config['aux_head_width']
  return resnet.nest_variables({
      'cp': context_path,
      'ffm': fusion,
      'conv_out': _output_from_torch(layout, 'conv_out', fuse, config['head_width'], n_classes),
      'conv_out16': _output_from_torch(layout, 'conv_out16', context, aux_width, n_classes),
      'conv_out32': _output_from_torch(layout, 'conv_out32', context, aux_width, n_classes)})


def preprocess(module: BiSeNet, images: jnp.ndarray) -> jnp.ndarray:
  """Generator images float32[B, H, W, 3] in [-1, 1] -> the net's input: resized to its input size,
  ImageNet-normalised (float32[B, S, S, 3])."""
  chex.assert_rank(images, 4)
  chex.assert_axis_dimension(images, -1, 3)
  size = module.input_size
  if images.shape[1:3] != (size, size):
    images = jax.image.resize(images, (images.shape[0], size, size, 3), 'linear', antialias=True)
  return ((images + 1.0) / 2.0 - jnp.asarray(IMAGENET_MEAN)) / jnp.asarray(IMAGENET_STD)


def parse(module: BiSeNet, variables: Any, images: jnp.ndarray) -> jnp.ndarray:
  """Face-parsing logits of generator images.

  The images are resized to the net's input size, ImageNet-normalised and parsed; the logits are
  resized back.

  Args:
    module: the net (`build(config)` or a loaded AnalysisNet's module).
    variables: its variables (the auxiliary heads' may be among them; they are not run).
    images: float32[B, H, W, 3] RGB in [-1, 1], any H, W.

  Returns:
    float32[B, H, W, module.n_classes] logits.
  """
  batch, height, width, _ = images.shape
  logits = module.apply(variables, preprocess(module, images))
  if (height, width) == logits.shape[1:3]:
    return logits
  return jax.image.resize(logits, (batch, height, width, module.n_classes), 'linear',
                          antialias=True)
