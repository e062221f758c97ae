"""ArcFace IResNet: parity with arcface_torch's iresnet.py (random weights) and the conversion checks."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from torch import nn
import torch_parity  # tests/analysis/torch_parity.py

from faceshop_jax.analysis import iresnet

# A tiny in-domain variant keeps the conversion-error and jit tests cheap.
TINY = {'stage_blocks': [1, 1, 1, 1], 'width': 8, 'input_size': 32, 'num_features': 16}


def conv3x3(in_planes, out_planes, stride=1):
  return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


def conv1x1(in_planes, out_planes, stride=1):
  return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


class IBasicBlock(nn.Module):
  """insightface recognition/arcface_torch/backbones/iresnet.py IBasicBlock (names and forward)."""

  def __init__(self, inplanes, planes, stride=1, downsample=None):
    super().__init__()
    self.bn1 = nn.BatchNorm2d(inplanes, eps=1e-05)
    self.conv1 = conv3x3(inplanes, planes)
    self.bn2 = nn.BatchNorm2d(planes, eps=1e-05)
    self.prelu = nn.PReLU(planes)
    self.conv2 = conv3x3(planes, planes, stride)
    self.bn3 = nn.BatchNorm2d(planes, eps=1e-05)
    self.downsample = downsample

  def forward(self, x):
    out = self.bn3(self.conv2(self.prelu(self.bn2(self.conv1(self.bn1(x))))))
    identity = x if self.downsample is None else self.downsample(x)
    return out + identity


class IResNet(nn.Module):
  """arcface_torch's IResNet; `width` and `input_size` generalise its fixed 64 and 112 (7 * 7)."""

  def __init__(self, layers, width=64, input_size=112, num_features=512):
    super().__init__()
    self.inplanes = width
    self.conv1 = nn.Conv2d(3, width, kernel_size=3, stride=1, padding=1, bias=False)
    self.bn1 = nn.BatchNorm2d(width, eps=1e-05)
    self.prelu = nn.PReLU(width)
    self.layer1 = self._make_layer(width, layers[0])
    self.layer2 = self._make_layer(width * 2, layers[1])
    self.layer3 = self._make_layer(width * 4, layers[2])
    self.layer4 = self._make_layer(width * 8, layers[3])
    self.bn2 = nn.BatchNorm2d(width * 8, eps=1e-05)
    self.dropout = nn.Dropout(p=0, inplace=True)
    self.fc = nn.Linear(width * 8 * (input_size // 16)**2, num_features)
    self.features = nn.BatchNorm1d(num_features, eps=1e-05)

  def _make_layer(self, planes, blocks, stride=2):
    downsample = nn.Sequential(conv1x1(self.inplanes, planes, stride),
                               nn.BatchNorm2d(planes, eps=1e-05))
    layers = [IBasicBlock(self.inplanes, planes, stride, downsample)]
    self.inplanes = planes
    layers += [IBasicBlock(planes, planes) for _ in range(1, blocks)]
    return nn.Sequential(*layers)

  def forward(self, x):
    x = self.prelu(self.bn1(self.conv1(x)))
    x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
    x = self.dropout(torch.flatten(self.bn2(x), 1))
    return self.features(self.fc(x))


def _torch_net(config, seed=0):
  net = IResNet(config['stage_blocks'], config['width'], config['input_size'],
                config['num_features'])
  return torch_parity.randomize(net, seed)


def _faces(batch, size, seed=0):
  return np.random.default_rng(seed).uniform(-1, 1, (batch, size, size, 3)).astype(np.float32)


def _unit(x):
  return x / np.linalg.norm(x, axis=-1, keepdims=True)


@pytest.fixture(scope='module')
def public_net():
  """iresnet50 at its public size: torch reference, converted config, module and variables."""
  torch.manual_seed(0)
  torch_net = _torch_net(iresnet.PUBLIC_CONFIG)
  config, variables = torch_parity.convert_module('arcface', torch_net)
  return torch_net, config, iresnet.build(config), variables


def test_iresnet50_matches_torch(public_net):
  torch_net, config, module, variables = public_net
  assert config == iresnet.PUBLIC_CONFIG
  images = _faces(2, 112)
  torch_parity.assert_close(jax.jit(module.apply)(variables, images),
                            torch_parity.torch_forward(torch_net, images))


def test_embed_cosines_match_torch(public_net):
  torch_net, _, module, variables = public_net
  images = _faces(2, 112, seed=1)
  expected = _unit(torch_parity.torch_forward(torch_net, images))
  embeddings = jax.jit(functools.partial(iresnet.embed, module))(variables, images)
  np.testing.assert_allclose(np.linalg.norm(embeddings, axis=-1), 1.0, atol=1e-5)
  torch_parity.assert_close(embeddings, expected)
  np.testing.assert_allclose(iresnet.identity_similarity(embeddings[0], embeddings[1]),
                             np.dot(expected[0], expected[1]), atol=1e-4)


@pytest.mark.parametrize('depth', ['iresnet50', 'iresnet100'])
def test_infer_config_reads_depth(depth):
  config = dict(TINY, stage_blocks=list(iresnet.STAGE_BLOCKS[depth]))
  inferred, variables = torch_parity.convert_module('arcface', _torch_net(config))
  assert inferred == config
  assert len([name for name in variables['params'] if name.startswith('layer3_')]) == (
      config['stage_blocks'][2])


@pytest.mark.parametrize('train', [False, True])
def test_small_in_domain_net_matches_torch(train):
  # Activations stay O(1) here; through iresnet50's 24 random blocks they reach ~1e11.
  torch_net = _torch_net(TINY).train(train)
  config, variables = torch_parity.convert_module('arcface', torch_net)
  images = _faces(4, 32, seed=2)
  apply = functools.partial(iresnet.build(config).apply, train=train, mutable=['batch_stats'])
  outputs, updates = jax.jit(apply)(variables, images)
  torch_parity.assert_close(outputs, torch_parity.torch_forward(torch_net, images))
  running_mean = updates['batch_stats']['features']['mean']
  assert np.array_equal(running_mean, variables['batch_stats']['features']['mean']) != train


def test_embed_resizes_any_size_under_jit():
  config, variables = torch_parity.convert_module('arcface', _torch_net(TINY))
  module = iresnet.build(config)
  embed = jax.jit(functools.partial(iresnet.embed, module))
  images = jnp.asarray(np.random.default_rng(3).uniform(-1, 1, (3, 48, 40, 3)), jnp.float32)
  embeddings = embed(variables, images)
  assert embeddings.shape == (3, 16) and embeddings.dtype == jnp.float32
  np.testing.assert_allclose(np.linalg.norm(embeddings, axis=-1), 1.0, atol=1e-5)
  similarity = iresnet.identity_similarity(embeddings, embeddings[::-1])
  assert similarity.shape == (3,)
  np.testing.assert_allclose(similarity[1], 1.0, atol=1e-5)


def test_bad_checkpoints_are_named():
  torch_parity.assert_bad_checkpoints_are_named(
      'arcface', torch_parity.state_dict_numpy(_torch_net(TINY)),
      wrong_shape_key='layer2.0.conv2.weight', missing_key='layer3.0.downsample.1.running_var',
      extra_key='head.weight', extra_shape=(16, 16))


def test_save_load_round_trip(tmp_path):
  config, variables = torch_parity.convert_module('arcface', _torch_net(TINY))
  torch_parity.assert_save_load_round_trip(tmp_path, 'arcface', config, variables,
                                           _faces(2, 32, seed=4))
