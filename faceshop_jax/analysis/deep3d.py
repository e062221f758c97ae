"""Deep3DFaceRecon's coefficient regressor (kind 'deep3d'), NHWC.

Mirrors `ReconNetWrapper` of sicxu/Deep3DFaceRecon_pytorch (models/networks.py) with
`use_last_fc=False`: a torchvision ResNet-50 ('backbone.*', see resnet.py) globally average-pooled,
then `final_layers`, seven 1x1 convs with bias whose outputs are concatenated: identity (80),
expression (64), texture (80), angles (3), SH lighting (27), translation xy (2) and z (1), 257 in
all. On the pooled 1x1 map a 1x1 conv is a dense layer, which is how it is computed here. The head
sizes are read off the checkpoint, so heads for other face models (e.g. 52 expression units) work.

The released checkpoint (epoch_20.pth, {'net_recon': state dict}) takes aligned 224x224 RGB in
[0, 1]. `reconstruct` is the project-facing entry point for generator images in [-1, 1].
"""
from collections.abc import Mapping, Sequence
from typing import Any

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp

from faceshop_jax.analysis import resnet
from faceshop_jax.analysis import torch_layout

DEFAULT_INPUT_SIZE = 224
# Deep3DFaceRecon's heads: id, exp, tex, angle, gamma, (tx, ty), tz.
DEFAULT_OUT_SIZES = (80, 64, 80, 3, 27, 2, 1)
_HEAD_PREFIX = 'final_layers'


class ReconNet(nn.Module):
  """ResNet trunk + linear heads: images float32[B, H, W, 3] -> float32[B, sum(out_sizes)].

  Attributes:
    block, stage_sizes, width: the backbone (resnet.ResNet); ResNet-50 in the public net.
    out_sizes: coefficients per head, concatenated in this order.
    input_size: the square resolution the net was trained at (used by `reconstruct`).
  """
  block: str = 'bottleneck'
  stage_sizes: Sequence[int] = (3, 4, 6, 3)
  width: int = 64
  out_sizes: Sequence[int] = DEFAULT_OUT_SIZES
  input_size: int = DEFAULT_INPUT_SIZE

  @nn.compact
  def __call__(self, images: jnp.ndarray, train: bool = False) -> jnp.ndarray:
    """Coefficients float32[B, sum(out_sizes)] of images float32[B, H, W, 3] RGB in [0, 1]."""
    backbone = resnet.ResNet(self.block, self.stage_sizes, self.width, name='backbone')
    features = resnet.global_avg_pool(backbone(images, train)[-1])
    heads = [nn.Dense(size, name=f'{_HEAD_PREFIX}_{index}')(features)
             for index, size in enumerate(self.out_sizes)]
    return jnp.concatenate(heads, axis=-1)


def build(config: Mapping[str, Any]) -> ReconNet:
  """ReconNet from a config as `infer_config` returns."""
  backbone = config['backbone']
  return ReconNet(block=backbone['block'], stage_sizes=tuple(backbone['stage_sizes']),
                  width=backbone['width'], out_sizes=tuple(config['out_sizes']),
                  input_size=config['input_size'])


def infer_config(layout: torch_layout.TorchLayout) -> dict[str, Any]:
  """{'backbone': ResNet config, 'out_sizes': head sizes, 'input_size': 224} of a checkpoint."""
  head_key = lambda index: f'{_HEAD_PREFIX}.{index}.weight'  # noqa: E731
  n_heads = resnet.count_indexed(layout, head_key)
  out_sizes = [int(layout.take(head_key(index)).shape[0]) for index in range(n_heads)]
  return {'backbone': resnet.resnet_config_from_torch(layout, 'backbone.'),
          'out_sizes': out_sizes, 'input_size': DEFAULT_INPUT_SIZE}


def variables_from_torch(layout: torch_layout.TorchLayout,
                         config: Mapping[str, Any]) -> resnet.Variables:
  """Variables of `build(config)` from a ReconNetWrapper state dict."""
  backbone = config['backbone']
  children = {'backbone': resnet.resnet_variables_from_torch(layout, 'backbone.', backbone)}
  in_features = resnet.stage_features(backbone, len(backbone['stage_sizes']) - 1)
  for index, size in enumerate(config['out_sizes']):
    # A 1x1 conv on the pooled map is a dense layer: kernel [1, 1, I, O] -> [I, O].
    head = resnet.conv_from_torch(layout, f'{_HEAD_PREFIX}.{index}', in_features, size, 1,
                                  use_bias=True)
    head['params']['kernel'] = head['params']['kernel'][0, 0]
    children[f'{_HEAD_PREFIX}_{index}'] = head
  return resnet.nest_variables(children)


def preprocess(module: ReconNet, images: jnp.ndarray) -> jnp.ndarray:
  """Generator images float32[B, H, W, 3] in [-1, 1] -> the net's input: resized to its input size,
  RGB in [0, 1] (float32[B, S, S, 3])."""
  chex.assert_rank(images, 4)
  chex.assert_axis_dimension(images, -1, 3)
  size = module.input_size
  if images.shape[1:3] != (size, size):
    images = jax.image.resize(images, (images.shape[0], size, size, 3), 'linear', antialias=True)
  return (images + 1.0) / 2.0


def reconstruct(module: ReconNet, variables: Any, images: jnp.ndarray) -> jnp.ndarray:
  """Face-model coefficients of generator images.

  Args:
    module: the net (`build(config)` or a loaded AnalysisNet's module).
    variables: its variables.
    images: float32[B, H, W, 3] RGB in [-1, 1], any H, W (faces framed as the net was trained).

  Returns:
    float32[B, sum(module.out_sizes)]: the heads' coefficients, concatenated in order.
  """
  return module.apply(variables, preprocess(module, images))
