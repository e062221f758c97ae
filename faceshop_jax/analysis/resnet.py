"""Torchvision-layout ResNet backbone (NHWC) and the converter helpers the analysis nets share.

Mirrors torchvision's `ResNet` with `BasicBlock` (ResNet-18/34) or `Bottleneck` (ResNet-50/101,
v1.5: stride on the 3x3 conv) as copied into Deep3DFaceRecon_pytorch (models/networks.py) and the
`Resnet18` of zllrunning/face-parsing.PyTorch (resnet.py), which shares its parameter names:
conv1, bn1, maxpool, layer1..layer4 of blocks conv1/bn1/conv2/bn2[/conv3/bn3] and a
downsample.0 (1x1 conv) / downsample.1 (BatchNorm) shortcut. The classifier (fc) is left out.
Flax names: layer{s}.{i} is 'layer{s}_{i}', downsample.0/.1 'downsample_conv'/'downsample_bn'.

`width` scales every stage (64 in the public nets) so that small in-domain variants can be trained.
BatchNorm follows torch: epsilon 1e-5, running statistics updated with momentum 0.1 (flax 0.9;
flax averages the biased batch variance where torch takes the unbiased one).
"""
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import chex
import flax.linen as nn
import jax.numpy as jnp

from faceshop_jax.analysis import torch_layout

BLOCKS = ('basic', 'bottleneck')
# Output channels of a block relative to its `planes` (torchvision's block.expansion).
EXPANSION = {'basic': 1, 'bottleneck': 4}
BATCH_NORM_EPSILON = 1e-5
BATCH_NORM_MOMENTUM = 0.9  # flax's decay of the running average; torch's momentum 0.1

# {'params': ..., ['batch_stats': ...]} of one module.
Variables = dict[str, dict[str, Any]]


def conv(features: int, kernel_size: int, stride: int = 1, name: str | None = None) -> nn.Conv:
  """A bias-free square conv padded as torch's `padding=kernel_size // 2` (symmetric, explicit)."""
  pad = kernel_size // 2
  return nn.Conv(features, (kernel_size, kernel_size), strides=(stride, stride),
                 padding=((pad, pad), (pad, pad)), use_bias=False, name=name)


def batch_norm(train: bool, name: str | None = None) -> nn.BatchNorm:
  """torch.nn.BatchNorm2d's defaults: batch statistics when training, running ones otherwise."""
  return nn.BatchNorm(use_running_average=not train, momentum=BATCH_NORM_MOMENTUM,
                      epsilon=BATCH_NORM_EPSILON, name=name)


def global_avg_pool(features: jnp.ndarray) -> jnp.ndarray:
  """torch's AdaptiveAvgPool2d((1, 1)) flattened: float32[B, H, W, C] -> float32[B, C]."""
  return jnp.mean(features, axis=(1, 2))


def stage_planes(width: int, stage: int) -> int:
  """The `planes` of stage `stage` (0-based): width, 2·width, 4·width, 8·width."""
  return width * 2**stage


def block_stride(stage: int, index: int) -> int:
  """The stride of block `index` of stage `stage`: the first block of stages 2-4 halves the size."""
  return 2 if stage > 0 and index == 0 else 1


def block_layers(block: str, planes: int, stride: int) -> tuple[tuple[int, int, int], ...]:
  """(kernel size, output channels, stride) of conv1, conv2[, conv3] on a block's residual path.

  A down-sampling block strides its first 3x3 conv (conv1 of BasicBlock, conv2 of Bottleneck).
  """
  if block == 'basic':
    return (3, planes, stride), (3, planes, 1)
  if block == 'bottleneck':
    return (1, planes, 1), (3, planes, stride), (1, planes * EXPANSION[block], 1)
  raise ValueError(f'block must be one of {BLOCKS}; got {block!r}.')


def needs_downsample(in_features: int, out_features: int, stride: int) -> bool:
  """Whether a block has the 1x1 conv + BatchNorm shortcut (torchvision's `_make_layer` rule)."""
  return stride != 1 or in_features != out_features


class ResidualBlock(nn.Module):
  """torchvision's BasicBlock / Bottleneck: float32[B, H, W, I] -> float32[B, H/s, W/s, O].

  Attributes:
    block: 'basic' (two 3x3 convs, O = planes) or 'bottleneck' (1x1, 3x3, 1x1, O = 4·planes).
    planes: the block's inner width.
    stride: 1, or 2 to halve the resolution.
  """
  block: str
  planes: int
  stride: int = 1

  @nn.compact
  def __call__(self, x: jnp.ndarray, train: bool = False) -> jnp.ndarray:
    layers = block_layers(self.block, self.planes, self.stride)
    residual = x
    for index, (kernel_size, features, stride) in enumerate(layers, start=1):
      residual = conv(features, kernel_size, stride, name=f'conv{index}')(residual)
      residual = batch_norm(train, name=f'bn{index}')(residual)
      if index < len(layers):
        residual = nn.relu(residual)
    block_features = layers[-1][1]
    shortcut = x
    if needs_downsample(x.shape[-1], block_features, self.stride):
      shortcut = conv(block_features, 1, self.stride, name='downsample_conv')(x)
      shortcut = batch_norm(train, name='downsample_bn')(shortcut)
    return nn.relu(residual + shortcut)


class ResNet(nn.Module):
  """The torchvision ResNet trunk without its classifier.

  Attributes:
    block: 'basic' or 'bottleneck'.
    stage_sizes: blocks per stage ([2, 2, 2, 2] ResNet-18, [3, 4, 6, 3] ResNet-34/50).
    width: stem channels and planes of the first stage (64 in torchvision).
  """
  block: str = 'bottleneck'
  stage_sizes: Sequence[int] = (3, 4, 6, 3)
  width: int = 64

  @nn.compact
  def __call__(self, images: jnp.ndarray, train: bool = False) -> tuple[jnp.ndarray, ...]:
    """The output of every stage.

    Args:
      images: float32[B, H, W, 3], normalised as the checkpoint expects.
      train: use (and update) batch statistics rather than the running ones.

    Returns:
      One map per stage; stage s is float32[B, H/2^(s+2), W/2^(s+2), stage_planes(s)·expansion]
      (sizes rounded as torch's strided convs and max pool do).
    """
    chex.assert_rank(images, 4)
    chex.assert_axis_dimension(images, -1, 3)
    x = conv(self.width, 7, stride=2, name='conv1')(images)
    x = nn.relu(batch_norm(train, name='bn1')(x))
    x = nn.max_pool(x, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)))
    stages = []
    for stage, n_blocks in enumerate(self.stage_sizes):
      for index in range(n_blocks):
        x = ResidualBlock(self.block, stage_planes(self.width, stage), block_stride(stage, index),
                          name=f'layer{stage + 1}_{index}')(x, train)
      stages.append(x)
    return tuple(stages)


def build_resnet(config: Mapping[str, Any]) -> ResNet:
  """ResNet from a config {'block', 'stage_sizes', 'width'} (see resnet_config_from_torch)."""
  return ResNet(block=config['block'], stage_sizes=tuple(config['stage_sizes']),
                width=config['width'])


def stage_features(config: Mapping[str, Any], stage: int) -> int:
  """Channels of stage `stage`'s output map (e.g. 2048 for ResNet-50's last stage)."""
  return stage_planes(config['width'], stage) * EXPANSION[config['block']]


# Converter helpers -------------------------------------------------------------------------------


def nest_variables(children: Mapping[str, Variables]) -> Variables:
  """The variables of a module whose submodules, by Flax name, hold `children`."""
  nested: Variables = {}
  for name, child in children.items():
    for collection, tree in child.items():
      nested.setdefault(collection, {})[name] = tree
  return nested


def conv_from_torch(layout: torch_layout.TorchLayout, key: str, in_features: int, features: int,
                    kernel_size: int, use_bias: bool = False) -> Variables:
  """A conv (see `conv`) from torch's '<key>.weight' [O, I, k, k] (and '<key>.bias' [O])."""
  weight = layout.take(f'{key}.weight', (features, in_features, kernel_size, kernel_size))
  params = {'kernel': weight.transpose(2, 3, 1, 0)}
  if use_bias:
    params['bias'] = layout.take(f'{key}.bias', (features,))
  return {'params': params}


def batch_norm_from_torch(layout: torch_layout.TorchLayout, key: str, features: int) -> Variables:
  """A BatchNorm from torch's '<key>.weight/bias/running_mean/running_var' [C]."""
  take = lambda name: layout.take(f'{key}.{name}', (features,))  # noqa: E731
  return {'params': {'scale': take('weight'), 'bias': take('bias')},
          'batch_stats': {'mean': take('running_mean'), 'var': take('running_var')}}


def count_indexed(layout: torch_layout.TorchLayout, key_of_index: Callable[[int], str]) -> int:
  """How many of key_of_index(0), key_of_index(1), ... the checkpoint holds, in a row.

  Raises:
    KeyError: naming key_of_index(0), when even that is missing.
  """
  layout.take(key_of_index(0))
  count = 1
  while layout.has(key_of_index(count)):
    count += 1
  return count


def resnet_config_from_torch(layout: torch_layout.TorchLayout, prefix: str) -> dict[str, Any]:
  """{'block', 'stage_sizes', 'width'} of the torchvision-layout ResNet under `prefix`.

  Args:
    layout: the checkpoint.
    prefix: the backbone's key prefix with its trailing dot ('backbone.', 'cp.resnet.').
  """
  width = int(layout.take(f'{prefix}conv1.weight').shape[0])
  block = 'bottleneck' if layout.has(f'{prefix}layer1.0.conv3.weight') else 'basic'
  n_stages = count_indexed(layout, lambda stage: f'{prefix}layer{stage + 1}.0.conv1.weight')
  stage_sizes = [
      count_indexed(layout, lambda index, s=stage: f'{prefix}layer{s + 1}.{index}.conv1.weight')
      for stage in range(n_stages)]
  return {'block': block, 'stage_sizes': stage_sizes, 'width': width}


def _block_from_torch(layout: torch_layout.TorchLayout, prefix: str, block: str,
                      in_features: int, planes: int, stride: int) -> Variables:
  children = {}
  features = in_features
  for index, (kernel_size, out, _) in enumerate(block_layers(block, planes, stride), start=1):
    children[f'conv{index}'] = conv_from_torch(layout, f'{prefix}conv{index}', features, out,
                                               kernel_size)
    children[f'bn{index}'] = batch_norm_from_torch(layout, f'{prefix}bn{index}', out)
    features = out
  if needs_downsample(in_features, features, stride):
    children['downsample_conv'] = conv_from_torch(layout, f'{prefix}downsample.0', in_features,
                                                  features, 1)
    children['downsample_bn'] = batch_norm_from_torch(layout, f'{prefix}downsample.1', features)
  return nest_variables(children)


def resnet_variables_from_torch(layout: torch_layout.TorchLayout, prefix: str,
                                config: Mapping[str, Any]) -> Variables:
  """Variables of `build_resnet(config)` from the torchvision-layout keys under `prefix`."""
  width, block = config['width'], config['block']
  children = {'conv1': conv_from_torch(layout, f'{prefix}conv1', 3, width, 7),
              'bn1': batch_norm_from_torch(layout, f'{prefix}bn1', width)}
  in_features = width
  for stage, n_blocks in enumerate(config['stage_sizes']):
    for index in range(n_blocks):
      children[f'layer{stage + 1}_{index}'] = _block_from_torch(
          layout, f'{prefix}layer{stage + 1}.{index}.', block, in_features,
          stage_planes(width, stage), block_stride(stage, index))
      in_features = stage_features(config, stage)
  return nest_variables(children)

