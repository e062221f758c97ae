"""Parity of resnet.py and deep3d.py with Deep3DFaceRecon_pytorch's torchvision ResNet + heads.

The torch reference below mirrors sicxu/Deep3DFaceRecon_pytorch models/networks.py (ReconNetWrapper
with use_last_fc=False around torchvision's ResNet), module and parameter names included, so its
state_dict keys are those of the released checkpoint's 'net_recon'. `width` (64 there) shrinks it.
"""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import torch
from torch import nn

from faceshop_jax.analysis import deep3d
from faceshop_jax.analysis import resnet
from faceshop_jax.analysis import torch_layout
from tests.analysis import torch_parity

_CUSTOM_OUT_SIZES = [80, 52, 80, 3, 27, 2, 1]  # our face model: 52 expression units


def conv3x3(in_planes, out_planes, stride=1):
  return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


def conv1x1(in_planes, out_planes, stride=1, bias=False):
  return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=bias)


class BasicBlock(nn.Module):
  expansion = 1

  def __init__(self, inplanes, planes, stride=1, downsample=None):
    super().__init__()
    self.conv1 = conv3x3(inplanes, planes, stride)
    self.bn1 = nn.BatchNorm2d(planes)
    self.relu = nn.ReLU(inplace=True)
    self.conv2 = conv3x3(planes, planes)
    self.bn2 = nn.BatchNorm2d(planes)
    self.downsample = downsample

  def forward(self, x):
    out = self.relu(self.bn1(self.conv1(x)))
    out = self.bn2(self.conv2(out))
    identity = x if self.downsample is None else self.downsample(x)
    return self.relu(out + identity)


class Bottleneck(nn.Module):
  expansion = 4

  def __init__(self, inplanes, planes, stride=1, downsample=None):
    super().__init__()
    self.conv1 = conv1x1(inplanes, planes)
    self.bn1 = nn.BatchNorm2d(planes)
    self.conv2 = conv3x3(planes, planes, stride)
    self.bn2 = nn.BatchNorm2d(planes)
    self.conv3 = conv1x1(planes, planes * self.expansion)
    self.bn3 = nn.BatchNorm2d(planes * self.expansion)
    self.relu = nn.ReLU(inplace=True)
    self.downsample = downsample

  def forward(self, x):
    out = self.relu(self.bn1(self.conv1(x)))
    out = self.relu(self.bn2(self.conv2(out)))
    out = self.bn3(self.conv3(out))
    identity = x if self.downsample is None else self.downsample(x)
    return self.relu(out + identity)


class ResNet(nn.Module):
  """torchvision's ResNet without fc (use_last_fc=False); `width` = 64 there."""

  def __init__(self, block, layers, width=64):
    super().__init__()
    self.inplanes = width
    self.conv1 = nn.Conv2d(3, width, kernel_size=7, stride=2, padding=3, bias=False)
    self.bn1 = nn.BatchNorm2d(width)
    self.relu = nn.ReLU(inplace=True)
    self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
    self.layer1 = self._make_layer(block, width, layers[0])
    self.layer2 = self._make_layer(block, width * 2, layers[1], stride=2)
    self.layer3 = self._make_layer(block, width * 4, layers[2], stride=2)
    self.layer4 = self._make_layer(block, width * 8, layers[3], stride=2)
    self.avgpool = nn.AdaptiveAvgPool2d((1, 1))

  def _make_layer(self, block, planes, blocks, stride=1):
    downsample = None
    if stride != 1 or self.inplanes != planes * block.expansion:
      downsample = nn.Sequential(conv1x1(self.inplanes, planes * block.expansion, stride),
                                 nn.BatchNorm2d(planes * block.expansion))
    layers = [block(self.inplanes, planes, stride, downsample)]
    self.inplanes = planes * block.expansion
    layers += [block(self.inplanes, planes) for _ in range(1, blocks)]
    return nn.Sequential(*layers)

  def stages(self, x):
    x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
    outputs = []
    for layer in (self.layer1, self.layer2, self.layer3, self.layer4):
      x = layer(x)
      outputs.append(x)
    return outputs

  def forward(self, x):
    return self.avgpool(self.stages(x)[-1])


class ReconNetWrapper(nn.Module):
  """Deep3DFaceRecon's regressor: ResNet-50 + seven 1x1-conv heads (257 outputs)."""

  def __init__(self, width=64, out_sizes=(80, 64, 80, 3, 27, 2, 1)):
    super().__init__()
    self.backbone = ResNet(Bottleneck, [3, 4, 6, 3], width)
    self.final_layers = nn.ModuleList([conv1x1(width * 32, size, bias=True) for size in out_sizes])

  def forward(self, x):
    x = self.backbone(x)
    return torch.flatten(torch.cat([layer(x) for layer in self.final_layers], dim=1), 1)


def _images(shape, seed=0):
  return np.random.default_rng(seed).uniform(0.0, 1.0, shape).astype(np.float32)


@functools.lru_cache(maxsize=None)
def _tiny_recon():
  """(torch net, config, variables) of a width-8 regressor with our 52-expression heads."""
  torch_net = torch_parity.randomize(ReconNetWrapper(width=8, out_sizes=_CUSTOM_OUT_SIZES), seed=1)
  config, variables = torch_parity.convert_module('deep3d', torch_net)
  return torch_net, config, variables


def test_deep3d_matches_torch_resnet50():
  torch_net = torch_parity.randomize(ReconNetWrapper())
  config, variables = torch_parity.convert_module('deep3d', torch_net)
  assert config == {'backbone': {'block': 'bottleneck', 'stage_sizes': [3, 4, 6, 3], 'width': 64},
                    'out_sizes': [80, 64, 80, 3, 27, 2, 1], 'input_size': 224}
  images = _images((2, 64, 64, 3))
  coefficients = jax.jit(deep3d.build(config).apply)(variables, images)
  assert coefficients.shape == (2, 257)
  torch_parity.assert_close(coefficients, torch_parity.torch_forward(torch_net, images))


def test_deep3d_custom_heads_match_torch():
  torch_net, config, variables = _tiny_recon()
  assert config['out_sizes'] == _CUSTOM_OUT_SIZES
  assert config['backbone']['width'] == 8
  images = _images((2, 32, 32, 3))
  coefficients = jax.jit(deep3d.build(config).apply)(variables, images)
  assert coefficients.shape == (2, sum(_CUSTOM_OUT_SIZES))
  torch_parity.assert_close(coefficients, torch_parity.torch_forward(torch_net, images))


def test_resnet_basic_stages_match_torch_at_odd_size():
  """Every stage map of a ResNet-34-layout trunk, on a size that exercises the rounding."""
  torch_net = torch_parity.randomize(ResNet(BasicBlock, [3, 4, 6, 3], width=8))
  layout = torch_layout.TorchLayout(torch_parity.state_dict_numpy(torch_net), 'resnet')
  config = resnet.resnet_config_from_torch(layout, '')
  assert config == {'block': 'basic', 'stage_sizes': [3, 4, 6, 3], 'width': 8}
  variables = resnet.resnet_variables_from_torch(layout, '', config)
  layout.finish()
  images = _images((1, 45, 38, 3))
  stages = jax.jit(resnet.build_resnet(config).apply)(variables, images)
  with torch.no_grad():
    expected = torch_net.stages(torch.from_numpy(images.transpose(0, 3, 1, 2)))
  for stage, (actual, reference) in enumerate(zip(stages, expected)):
    assert actual.shape[-1] == resnet.stage_features(config, stage)
    torch_parity.assert_close(actual, reference.numpy().transpose(0, 2, 3, 1))


def test_reconstruct_jits_and_matches_torch_on_resized_images():
  torch_net, config, variables = _tiny_recon()
  module = deep3d.build({**config, 'input_size': 32})
  images = np.random.default_rng(2).uniform(-1.0, 1.0, (2, 48, 40, 3)).astype(np.float32)
  coefficients = jax.jit(functools.partial(deep3d.reconstruct, module))(variables, images)
  resized = jax.image.resize(jnp.asarray(images), (2, 32, 32, 3), 'linear', antialias=True)
  expected = torch_parity.torch_forward(torch_net, (np.asarray(resized) + 1.0) / 2.0)
  torch_parity.assert_close(coefficients, expected)


def test_bad_checkpoints_are_named():
  torch_parity.assert_bad_checkpoints_are_named(
      'deep3d', torch_parity.state_dict_numpy(_tiny_recon()[0]),
      wrong_shape_key='backbone.layer3.0.conv2.weight',
      missing_key='backbone.layer2.1.bn2.running_var', extra_key='backbone.fc.weight',
      extra_shape=(257, 256))


def test_save_load_round_trip(tmp_path):
  _, config, variables = _tiny_recon()
  torch_parity.assert_save_load_round_trip(tmp_path, 'deep3d', config, variables,
                                           _images((1, 32, 32, 3)))


def test_converted_variables_are_the_modules_and_train_mode_updates_batch_stats():
  """The width-8 regressor: converted tree = init's tree; train mode returns new statistics."""
  _, config, variables = _tiny_recon()
  module = deep3d.build(config)
  images = _images((4, 32, 32, 3))
  # eval_shape: compiling the random initialisers of a ResNet takes ~20 s on XLA:CPU.
  initial = jax.eval_shape(module.init, jax.random.key(0), images)
  shapes = lambda tree: jax.tree.map(lambda leaf: tuple(leaf.shape), tree)  # noqa: E731
  assert shapes(variables) == shapes(initial)
  train_step = jax.jit(functools.partial(module.apply, train=True, mutable=['batch_stats']))
  coefficients, updates = train_step(variables, images)
  assert coefficients.shape == (4, sum(_CUSTOM_OUT_SIZES))
  changed = jax.tree.map(lambda new, old: bool(np.any(new != old)), updates['batch_stats'],
                         variables['batch_stats'])
  assert all(jax.tree.leaves(changed))
