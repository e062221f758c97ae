"""The FID Inception-v3 (kind 'inception'): 2048-d pool3 features for FID and KID, NHWC.

Mirrors mseitzer/pytorch-fid's `fid_inception_v3` (src/pytorch_fid/inception.py), the TensorFlow
FID network ported to torchvision's `Inception3` layout (torchvision/models/inception.py): stem
Conv2d_1a_3x3 ... Conv2d_4a_3x3, blocks Mixed_5b ... Mixed_7c, each conv a `BasicConv2d` (conv
without bias, BatchNorm eps 1e-3, ReLU). Submodules carry the torch names, so the checkpoint
pt_inception-2015-12-05 converts key for key. The FID variants differ from torchvision's blocks:
FIDInceptionA / C / E_1 average-pool without counting the zero padding (as TensorFlow), and
FIDInceptionE_2 (Mixed_7c) max-pools its pool branch.

The 1008-way classifier `fc` of the checkpoint is checked and dropped: pool3 features stop before
it.
"""
from typing import Any

import chex
import flax.linen as nn
from flax import traverse_util
import jax
import jax.numpy as jnp

from faceshop_jax.analysis import torch_layout

# pytorch-fid resizes every image to 299² (bilinear, align_corners=False) and scales it to [-1, 1].
INPUT_SIZE = 299
# The smallest input whose feature maps do not vanish before Mixed_7c (they end 1x1).
MIN_INPUT_SIZE = 75
FEATURE_DIM = 2048
# Classes of the TF graph's logits layer (1000 ImageNet classes + background + 7 unused).
FID_NUM_CLASSES = 1008
BATCH_NORM_EPSILON = 1e-3

IntPair = int | tuple[int, int]


def _pair(value: IntPair) -> tuple[int, int]:
  return (value, value) if isinstance(value, int) else tuple(value)


class BasicConv2d(nn.Module):
  """Conv (no bias), BatchNorm (eps 1e-3) and ReLU: [B, H, W, I] -> [B, H', W', O].

  Attributes:
    features: output channels O.
    kernel_size: (kh, kw) or one int for both.
    strides: stride, both axes.
    padding: symmetric zero padding (ph, pw) as torch's Conv2d, or one int for both.
  """
  features: int
  kernel_size: IntPair
  strides: int = 1
  padding: IntPair = 0

  @nn.compact
  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    x = nn.Conv(self.features, _pair(self.kernel_size), strides=self.strides,
                padding=[(p, p) for p in _pair(self.padding)], use_bias=False, name='conv')(x)
    x = nn.BatchNorm(use_running_average=True, momentum=0.9, epsilon=BATCH_NORM_EPSILON,
                     name='bn')(x)
    return nn.relu(x)


def _chain(x: jnp.ndarray, *layers: nn.Module) -> jnp.ndarray:
  for layer in layers:
    x = layer(x)
  return x


def _max_pool_3x3_stride_2(x: jnp.ndarray) -> jnp.ndarray:
  """torch max_pool2d(kernel 3, stride 2), no padding, floor mode."""
  return nn.max_pool(x, (3, 3), strides=(2, 2), padding='VALID')


def _pool_3x3_same(x: jnp.ndarray, kind: str) -> jnp.ndarray:
  """The pool branch's 3x3 stride-1 pool, padding 1: 'avg' excludes the padding from the mean."""
  padding = ((1, 1), (1, 1))
  if kind == 'avg':
    return nn.avg_pool(x, (3, 3), strides=(1, 1), padding=padding, count_include_pad=False)
  if kind == 'max':  # padded with -inf, as torch's max_pool2d
    return nn.max_pool(x, (3, 3), strides=(1, 1), padding=padding)
  raise ValueError(f"pool must be 'avg' or 'max'; got {kind!r}.")


class InceptionA(nn.Module):
  """pytorch-fid's FIDInceptionA (Mixed_5b/c/d): [B, H, W, C] -> [B, H, W, 224 + pool_features]."""
  pool_features: int

  @nn.compact
  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    branch1x1 = BasicConv2d(64, 1, name='branch1x1')(x)
    branch5x5 = _chain(x, BasicConv2d(48, 1, name='branch5x5_1'),
                       BasicConv2d(64, 5, padding=2, name='branch5x5_2'))
    branch3x3dbl = _chain(x, BasicConv2d(64, 1, name='branch3x3dbl_1'),
                          BasicConv2d(96, 3, padding=1, name='branch3x3dbl_2'),
                          BasicConv2d(96, 3, padding=1, name='branch3x3dbl_3'))
    branch_pool = BasicConv2d(self.pool_features, 1, name='branch_pool')(_pool_3x3_same(x, 'avg'))
    return jnp.concatenate([branch1x1, branch5x5, branch3x3dbl, branch_pool], axis=-1)


class InceptionB(nn.Module):
  """torchvision's InceptionB (Mixed_6a), stride 2: [B, H, W, C] -> [B, H', W', 480 + C]."""

  @nn.compact
  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    branch3x3 = BasicConv2d(384, 3, strides=2, name='branch3x3')(x)
    branch3x3dbl = _chain(x, BasicConv2d(64, 1, name='branch3x3dbl_1'),
                          BasicConv2d(96, 3, padding=1, name='branch3x3dbl_2'),
                          BasicConv2d(96, 3, strides=2, name='branch3x3dbl_3'))
    return jnp.concatenate([branch3x3, branch3x3dbl, _max_pool_3x3_stride_2(x)], axis=-1)


class InceptionC(nn.Module):
  """pytorch-fid's FIDInceptionC (Mixed_6b..e), factorised 7x7: [B, H, W, C] -> [B, H, W, 768]."""
  channels_7x7: int

  @nn.compact
  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    c7 = self.channels_7x7
    branch1x1 = BasicConv2d(192, 1, name='branch1x1')(x)
    branch7x7 = _chain(x, BasicConv2d(c7, 1, name='branch7x7_1'),
                       BasicConv2d(c7, (1, 7), padding=(0, 3), name='branch7x7_2'),
                       BasicConv2d(192, (7, 1), padding=(3, 0), name='branch7x7_3'))
    branch7x7dbl = _chain(x, BasicConv2d(c7, 1, name='branch7x7dbl_1'),
                          BasicConv2d(c7, (7, 1), padding=(3, 0), name='branch7x7dbl_2'),
                          BasicConv2d(c7, (1, 7), padding=(0, 3), name='branch7x7dbl_3'),
                          BasicConv2d(c7, (7, 1), padding=(3, 0), name='branch7x7dbl_4'),
                          BasicConv2d(192, (1, 7), padding=(0, 3), name='branch7x7dbl_5'))
    branch_pool = BasicConv2d(192, 1, name='branch_pool')(_pool_3x3_same(x, 'avg'))
    return jnp.concatenate([branch1x1, branch7x7, branch7x7dbl, branch_pool], axis=-1)


class InceptionD(nn.Module):
  """torchvision's InceptionD (Mixed_7a), stride 2: [B, H, W, C] -> [B, H', W', 512 + C]."""

  @nn.compact
  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    branch3x3 = _chain(x, BasicConv2d(192, 1, name='branch3x3_1'),
                       BasicConv2d(320, 3, strides=2, name='branch3x3_2'))
    branch7x7x3 = _chain(x, BasicConv2d(192, 1, name='branch7x7x3_1'),
                         BasicConv2d(192, (1, 7), padding=(0, 3), name='branch7x7x3_2'),
                         BasicConv2d(192, (7, 1), padding=(3, 0), name='branch7x7x3_3'),
                         BasicConv2d(192, 3, strides=2, name='branch7x7x3_4'))
    return jnp.concatenate([branch3x3, branch7x7x3, _max_pool_3x3_stride_2(x)], axis=-1)


class InceptionE(nn.Module):
  """pytorch-fid's FIDInceptionE_1 (pool 'avg') / _2 (pool 'max'): [B, H, W, C] -> [B, H, W, 2048].

  Attributes:
    pool: the pool branch's pooling, 'avg' (Mixed_7b) or 'max' (Mixed_7c).
  """
  pool: str

  @nn.compact
  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    def split_1x3_3x1(y, prefix):
      """The [1x3 | 3x1] pair of convolutions every E branch ends in, concatenated."""
      return jnp.concatenate([BasicConv2d(384, (1, 3), padding=(0, 1), name=f'{prefix}a')(y),
                              BasicConv2d(384, (3, 1), padding=(1, 0), name=f'{prefix}b')(y)],
                             axis=-1)

    branch1x1 = BasicConv2d(320, 1, name='branch1x1')(x)
    branch3x3 = split_1x3_3x1(BasicConv2d(384, 1, name='branch3x3_1')(x), 'branch3x3_2')
    branch3x3dbl = _chain(x, BasicConv2d(448, 1, name='branch3x3dbl_1'),
                          BasicConv2d(384, 3, padding=1, name='branch3x3dbl_2'))
    branch3x3dbl = split_1x3_3x1(branch3x3dbl, 'branch3x3dbl_3')
    branch_pool = BasicConv2d(192, 1, name='branch_pool')(_pool_3x3_same(x, self.pool))
    return jnp.concatenate([branch1x1, branch3x3, branch3x3dbl, branch_pool], axis=-1)


class FIDInceptionV3(nn.Module):
  """pytorch-fid's FID Inception-v3 up to pool3, on its native input.

  Input: images float32[B, H, W, 3], RGB in [-1, 1], H, W >= 75 (299 for comparable FIDs).
  Output: pool3 features float32[B, 2048] (the mean of Mixed_7c over space).
  """

  @nn.compact
  def __call__(self, images: jnp.ndarray) -> jnp.ndarray:
    chex.assert_rank(images, 4)
    chex.assert_axis_dimension(images, 3, 3)
    if min(images.shape[1:3]) < MIN_INPUT_SIZE:
      raise ValueError(f'FID Inception needs inputs of at least {MIN_INPUT_SIZE}x{MIN_INPUT_SIZE}; '
                       f'got {images.shape[1]}x{images.shape[2]}.')
    x = _chain(images, BasicConv2d(32, 3, strides=2, name='Conv2d_1a_3x3'),
               BasicConv2d(32, 3, name='Conv2d_2a_3x3'),
               BasicConv2d(64, 3, padding=1, name='Conv2d_2b_3x3'))
    x = _max_pool_3x3_stride_2(x)
    x = _chain(x, BasicConv2d(80, 1, name='Conv2d_3b_1x1'),
               BasicConv2d(192, 3, name='Conv2d_4a_3x3'))
    x = _max_pool_3x3_stride_2(x)
    x = _chain(x, InceptionA(32, name='Mixed_5b'), InceptionA(64, name='Mixed_5c'),
               InceptionA(64, name='Mixed_5d'), InceptionB(name='Mixed_6a'),
               InceptionC(128, name='Mixed_6b'), InceptionC(160, name='Mixed_6c'),
               InceptionC(160, name='Mixed_6d'), InceptionC(192, name='Mixed_6e'),
               InceptionD(name='Mixed_7a'), InceptionE('avg', name='Mixed_7b'),
               InceptionE('max', name='Mixed_7c'))
    return jnp.mean(x, axis=(1, 2))


def inception_features(module: nn.Module, variables: Any, images: jnp.ndarray) -> jnp.ndarray:
  """pool3 features of images, resized to 299² as FID expects.

  Args:
    module: the net from `build` (or a loaded AnalysisNet's module).
    variables: its {'params', 'batch_stats'}.
    images: float32[B, H, W, 3], RGB in [-1, 1] (the generator's range), any H, W.

  Returns:
    float32[B, 2048].
  """
  chex.assert_rank(images, 4)
  chex.assert_axis_dimension(images, 3, 3)
  # pytorch-fid's bilinear align_corners=False resize, the same when up-sampling; anti-aliased
  # when down-sampling. The net's input range is [-1, 1] already.
  resized = jax.image.resize(images.astype(jnp.float32),
                             (images.shape[0], INPUT_SIZE, INPUT_SIZE, 3), 'linear', antialias=True)
  return module.apply(variables, resized)


def build(config: dict[str, Any]) -> nn.Module:
  """The FID Inception-v3; its architecture is fixed, so `config` is empty."""
  if config:
    raise ValueError(f'The FID Inception takes no architecture config; got {config}.')
  return FIDInceptionV3()


def infer_config(layout: torch_layout.TorchLayout) -> dict[str, Any]:
  """{}: pt_inception-2015-12-05 has one architecture; variables_from_torch checks every shape."""
  del layout
  return {}


# Flax leaf name -> torch tensor name within the same (conv / bn) submodule.
_TORCH_NAMES = {'kernel': 'weight', 'scale': 'weight', 'bias': 'bias', 'mean': 'running_mean',
                'var': 'running_var'}


def _take_leaf(layout: torch_layout.TorchLayout, path: tuple[str, ...],
               shape: tuple[int, ...]) -> Any:
  """The torch tensor of the Flax leaf at `path` (e.g. Mixed_5b/branch1x1/conv/kernel), as Flax."""
  key = '.'.join(path[:-1] + (_TORCH_NAMES[path[-1]],))
  if path[-1] == 'kernel':  # Flax (kh, kw, I, O) <- torch (O, I, kh, kw)
    return layout.take(key, (shape[3], shape[2], shape[0], shape[1])).transpose(2, 3, 1, 0)
  return layout.take(key, shape)


def variables_from_torch(layout: torch_layout.TorchLayout,
                         config: dict[str, Any]) -> dict[str, Any]:
  """{'params', 'batch_stats'} from torchvision-Inception3 names, every shape checked.

  The Flax module is the one description of the architecture: its abstract variables name each
  torch key and its shape. The classifier `fc` [1008, 2048] is taken (checked) and dropped.
  """
  module = build(config)
  abstract_input = jax.ShapeDtypeStruct((1, MIN_INPUT_SIZE, MIN_INPUT_SIZE, 3), jnp.float32)
  abstract = jax.eval_shape(module.init, jax.random.PRNGKey(0), abstract_input)
  variables = {}
  for collection in ('params', 'batch_stats'):
    leaves = traverse_util.flatten_dict(abstract[collection])
    variables[collection] = traverse_util.unflatten_dict(
        {path: _take_leaf(layout, path, leaf.shape) for path, leaf in leaves.items()})
  layout.take('fc.weight', (FID_NUM_CLASSES, FEATURE_DIM))
  layout.take('fc.bias', (FID_NUM_CLASSES,))
  return variables
