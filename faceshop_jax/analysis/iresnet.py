"""ArcFace identity network: insightface's arcface_torch IResNet (iresnet50 / iresnet100), NHWC.

Mirrors deepinsight/insightface recognition/arcface_torch/backbones/iresnet.py (`IResNet`,
`IBasicBlock`): a 3x3 stem conv + BatchNorm + PReLU, four stages of pre-activation IBasicBlocks
(BN, conv3x3, BN, PReLU, conv3x3 with the stage's stride 2, BN, plus a 1x1-conv/BN shortcut on each
stage's first block), a final BatchNorm, a linear layer to `num_features` and a BatchNorm1d
(`features`). Flax names follow the torch ones ('layer3_5' for 'layer3.5', 'downsample_conv' /
'downsample_bn' for 'downsample.0' / 'downsample.1').

The public nets take 112x112 RGB in [-1, 1] ((x / 255 - 0.5) / 0.5) and end on a 7x7 map. In-domain
nets may be narrower (`width` channels in the first stage instead of 64) and take other square
input sizes (a multiple of 16; the fc layer is sized for the final map of input_size / 16).

Differences from the torch code: its dropout before `fc` is left out (arcface_torch trains with
p = 0 by default); `features.weight` is a frozen 1 there but an ordinary BatchNorm scale here, so a
net trained in Flax learns it.
"""
from typing import Any, Sequence

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp

from faceshop_jax.analysis import torch_layout

BATCH_NORM_EPSILON = 1e-5  # every BatchNorm2d / BatchNorm1d of iresnet.py
PRELU_INIT = 0.25  # torch.nn.PReLU's initial slope
NUM_STAGES = 4
# Each stage halves the resolution (stride-2 conv3x3 with padding 1: ceil(size / 2)).
DOWNSAMPLE_FACTOR = 2**NUM_STAGES
# Blocks per stage of the published depths.
STAGE_BLOCKS = {
    'iresnet18': (2, 2, 2, 2),
    'iresnet34': (3, 4, 6, 3),
    'iresnet50': (3, 4, 14, 3),
    'iresnet100': (3, 13, 30, 3),
}
PUBLIC_CONFIG = {'stage_blocks': list(STAGE_BLOCKS['iresnet50']), 'width': 64, 'input_size': 112,
                 'num_features': 512}


def _batch_norm(name: str, train: bool) -> nn.BatchNorm:
  # Flax momentum is the weight of the old running value: torch's default momentum 0.1 -> 0.9.
  return nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=BATCH_NORM_EPSILON,
                      name=name)


def _conv(features: int, kernel_size: int, stride: int, name: str) -> nn.Conv:
  """Bias-free conv with torch's symmetric padding (kernel_size // 2 on every side)."""
  pad = kernel_size // 2
  return nn.Conv(features, (kernel_size, kernel_size), strides=stride,
                 padding=((pad, pad), (pad, pad)), use_bias=False, name=name)


class PReLU(nn.Module):
  """torch.nn.PReLU(C): max(0, x) + slope * min(0, x) with one learned slope per channel."""

  @nn.compact
  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    """x: float32[..., C] -> float32[..., C]."""
    slope = self.param('slope', nn.initializers.constant(PRELU_INIT), (x.shape[-1],))
    return jnp.where(x >= 0, x, slope * x)


class IBasicBlock(nn.Module):
  """arcface_torch's IBasicBlock: BN-conv-BN-PReLU-conv(stride)-BN plus (projected) shortcut.

  Attributes:
    features: output channels.
    stride: stride of the second conv (and of the shortcut projection).
    project_shortcut: whether the shortcut is a 1x1 conv + BN ('downsample' in torch).
  """
  features: int
  stride: int = 1
  project_shortcut: bool = False

  @nn.compact
  def __call__(self, x: jnp.ndarray, train: bool = False) -> jnp.ndarray:
    """x: float32[B, H, W, C_in] -> float32[B, ceil(H / stride), ceil(W / stride), features]."""
    out = _batch_norm('bn1', train)(x)
    out = _conv(self.features, 3, 1, 'conv1')(out)
    out = _batch_norm('bn2', train)(out)
    out = PReLU(name='prelu')(out)
    out = _conv(self.features, 3, self.stride, 'conv2')(out)
    out = _batch_norm('bn3', train)(out)
    shortcut = x
    if self.project_shortcut:
      shortcut = _conv(self.features, 1, self.stride, 'downsample_conv')(x)
      shortcut = _batch_norm('downsample_bn', train)(shortcut)
    return out + shortcut


class IResNet(nn.Module):
  """arcface_torch's IResNet on its native input.

  Attributes:
    stage_blocks: IBasicBlocks in layer1..layer4 (see STAGE_BLOCKS).
    width: channels of the stem and layer1; layer k has width * 2**(k - 1).
    input_size: side of the square input; a multiple of 16.
    num_features: embedding size.
  """
  stage_blocks: Sequence[int] = STAGE_BLOCKS['iresnet50']
  width: int = 64
  input_size: int = 112
  num_features: int = 512

  @nn.compact
  def __call__(self, images: jnp.ndarray, train: bool = False) -> jnp.ndarray:
    """images: float32[B, input_size, input_size, 3] RGB in [-1, 1] -> float32[B, num_features].

    Unnormalised embeddings, as torch's forward. With `train`, BatchNorms use batch statistics and
    update 'batch_stats' (apply with mutable=['batch_stats']).
    """
    chex.assert_shape(images, (None, self.input_size, self.input_size, 3))
    x = _conv(self.width, 3, 1, 'conv1')(images)
    x = _batch_norm('bn1', train)(x)
    x = PReLU(name='prelu')(x)
    for stage, num_blocks in enumerate(self.stage_blocks):
      features = self.width * 2**stage
      for index in range(num_blocks):
        first = index == 0
        x = IBasicBlock(features, stride=2 if first else 1, project_shortcut=first,
                        name=f'layer{stage + 1}_{index}')(x, train)
    x = _batch_norm('bn2', train)(x)
    # Flattened in (H, W, C) order; the converter permutes torch's (C, H, W)-ordered fc rows.
    x = nn.Dense(self.num_features, name='fc')(x.reshape(x.shape[0], -1))
    return _batch_norm('features', train)(x)


def build(config: dict[str, Any]) -> IResNet:
  """The IResNet described by `config` (keys as infer_config returns; see PUBLIC_CONFIG)."""
  if config['input_size'] % DOWNSAMPLE_FACTOR:
    raise ValueError(f'IResNet input_size must be a multiple of {DOWNSAMPLE_FACTOR}; got '
                     f'{config["input_size"]}.')
  return IResNet(stage_blocks=tuple(config['stage_blocks']), width=config['width'],
                 input_size=config['input_size'], num_features=config['num_features'])


def embed(module: IResNet, variables: Any, images: jnp.ndarray) -> jnp.ndarray:
  """Unit-norm identity embeddings of faces (square crops; others are stretched to square).

  Args:
    module: the IResNet (from build / load_analysis_net).
    variables: its variables.
    images: float32[B, H, W, 3] RGB in [-1, 1], any H, W; resized to the net's input size.

  Returns:
    float32[B, num_features] embeddings of unit L2 norm.
  """
  return unit_norm(module.apply(variables, preprocess(module, images)))


def preprocess(module: IResNet, images: jnp.ndarray) -> jnp.ndarray:
  """Generator images float32[B, H, W, 3] in [-1, 1] -> the net's input (resized to its size).

  The net's native normalisation, (x / 255 - 0.5) / 0.5, is already our [-1, 1] range.
  """
  chex.assert_rank(images, 4)
  chex.assert_axis_dimension(images, 3, 3)
  size = module.input_size
  if images.shape[1:3] != (size, size):
    images = jax.image.resize(images, (images.shape[0], size, size, 3), 'linear', antialias=True)
  return images


def unit_norm(features: jnp.ndarray) -> jnp.ndarray:
  """float32[..., D] scaled to unit L2 norm."""
  return features / jnp.maximum(jnp.linalg.norm(features, axis=-1, keepdims=True), 1e-12)


def identity_similarity(a: jnp.ndarray, b: jnp.ndarray) -> jnp.ndarray:
  """Cosine similarity of embeddings: float32[..., D] x float32[..., D] -> float32[...]."""
  chex.assert_equal_shape([a, b])
  norms = jnp.linalg.norm(a, axis=-1) * jnp.linalg.norm(b, axis=-1)
  return jnp.sum(a * b, axis=-1) / jnp.maximum(norms, 1e-12)


def _count_blocks(layout: torch_layout.TorchLayout, stage: int) -> int:
  count = 0
  while layout.has(f'layer{stage}.{count}.conv1.weight'):
    count += 1
  return count


def infer_config(layout: torch_layout.TorchLayout) -> dict[str, Any]:
  """Depth, width, input size and embedding size of an arcface_torch IResNet checkpoint."""
  width = layout.take('conv1.weight').shape[0]
  num_features, fc_inputs = layout.take('fc.weight').shape
  stage_blocks = [_count_blocks(layout, stage) for stage in range(1, NUM_STAGES + 1)]
  if not all(stage_blocks):
    raise KeyError(f'{layout.kind} checkpoint has stages with no blocks {stage_blocks} (no '
                   "'layer<k>.0.conv1.weight'); is it an arcface_torch IResNet?")
  final_channels = width * 2**(NUM_STAGES - 1)
  final_size = int(round((fc_inputs / final_channels)**0.5))
  if final_channels * final_size**2 != fc_inputs:
    raise ValueError(f"{layout.kind} checkpoint 'fc.weight' takes {fc_inputs} inputs, not "
                     f'{final_channels} channels times a square map; is it an IResNet?')
  return {'stage_blocks': stage_blocks, 'width': int(width),
          'input_size': DOWNSAMPLE_FACTOR * final_size, 'num_features': int(num_features)}


class _VariableTree:
  """Flax params / batch_stats of one module scope, read off a layout with every shape checked."""

  def __init__(self, layout: torch_layout.TorchLayout):
    self.layout = layout
    self.params: dict[str, Any] = {}
    self.batch_stats: dict[str, Any] = {}

  def child(self, name: str) -> '_VariableTree':
    child = _VariableTree(self.layout)
    self.params[name] = child.params
    self.batch_stats[name] = child.batch_stats
    return child

  def conv(self, name: str, key: str, in_channels: int, out_channels: int, kernel_size: int):
    shape = (out_channels, in_channels, kernel_size, kernel_size)
    weight = self.layout.take(f'{key}.weight', shape)
    self.params[name] = {'kernel': weight.transpose(2, 3, 1, 0)}

  def batch_norm(self, name: str, key: str, channels: int):
    take = lambda suffix: self.layout.take(f'{key}.{suffix}', (channels,))  # noqa: E731
    self.params[name] = {'scale': take('weight'), 'bias': take('bias')}
    self.batch_stats[name] = {'mean': take('running_mean'), 'var': take('running_var')}

  def prelu(self, name: str, key: str, channels: int):
    self.params[name] = {'slope': self.layout.take(f'{key}.weight', (channels,))}


def variables_from_torch(layout: torch_layout.TorchLayout,
                         config: dict[str, Any]) -> dict[str, Any]:
  """{'params', 'batch_stats'} of build(config) from an arcface_torch IResNet state dict."""
  width, input_size = config['width'], config['input_size']
  tree = _VariableTree(layout)
  tree.conv('conv1', 'conv1', 3, width, 3)
  tree.batch_norm('bn1', 'bn1', width)
  tree.prelu('prelu', 'prelu', width)
  in_channels = width
  for stage, num_blocks in enumerate(config['stage_blocks']):
    features = width * 2**stage
    for index in range(num_blocks):
      key = f'layer{stage + 1}.{index}'
      block = tree.child(f'layer{stage + 1}_{index}')
      block.batch_norm('bn1', f'{key}.bn1', in_channels)
      block.conv('conv1', f'{key}.conv1', in_channels, features, 3)
      block.batch_norm('bn2', f'{key}.bn2', features)
      block.prelu('prelu', f'{key}.prelu', features)
      block.conv('conv2', f'{key}.conv2', features, features, 3)
      block.batch_norm('bn3', f'{key}.bn3', features)
      if index == 0:
        block.conv('downsample_conv', f'{key}.downsample.0', in_channels, features, 1)
        block.batch_norm('downsample_bn', f'{key}.downsample.1', features)
      in_channels = features
  tree.batch_norm('bn2', 'bn2', in_channels)
  # torch flattens the final map in (C, H, W) order, Flax in (H, W, C): permute the fc rows.
  final_size = input_size // DOWNSAMPLE_FACTOR
  num_features = config['num_features']
  weight = layout.take('fc.weight', (num_features, in_channels * final_size**2))
  kernel = weight.reshape(num_features, in_channels, final_size, final_size).transpose(2, 3, 1, 0)
  tree.params['fc'] = {'kernel': kernel.reshape(-1, num_features),
                       'bias': layout.take('fc.bias', (num_features,))}
  tree.batch_norm('features', 'features', num_features)
  return {'params': tree.params, 'batch_stats': tree.batch_stats}
