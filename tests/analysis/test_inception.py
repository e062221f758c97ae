"""FID Inception-v3: parity with pytorch-fid's fid_inception_v3 (written here in plain torch.nn).

The reference mirrors torchvision's Inception3 attribute names (as pytorch-fid builds on it, with
aux_logits=False and 1008 classes), so its state dict has pt_inception-2015-12-05's keys.
"""
import jax
import numpy as np
import pytest
import torch
from torch import nn
import torch.nn.functional as F

from faceshop_jax.analysis import convert
from faceshop_jax.analysis import inception
from tests.analysis import torch_parity


class BasicConv2d(nn.Module):

  def __init__(self, in_channels, out_channels, **kwargs):
    super().__init__()
    self.conv = nn.Conv2d(in_channels, out_channels, bias=False, **kwargs)
    self.bn = nn.BatchNorm2d(out_channels, eps=0.001)

  def forward(self, x):
    return F.relu(self.bn(self.conv(x)))


def _fid_avg_pool(x):
  return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class FIDInceptionA(nn.Module):

  def __init__(self, in_channels, pool_features):
    super().__init__()
    self.branch1x1 = BasicConv2d(in_channels, 64, kernel_size=1)
    self.branch5x5_1 = BasicConv2d(in_channels, 48, kernel_size=1)
    self.branch5x5_2 = BasicConv2d(48, 64, kernel_size=5, padding=2)
    self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, kernel_size=1)
    self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
    self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, padding=1)
    self.branch_pool = BasicConv2d(in_channels, pool_features, kernel_size=1)

  def forward(self, x):
    branch5x5 = self.branch5x5_2(self.branch5x5_1(x))
    branch3x3dbl = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
    return torch.cat([self.branch1x1(x), branch5x5, branch3x3dbl,
                      self.branch_pool(_fid_avg_pool(x))], 1)


class InceptionB(nn.Module):

  def __init__(self, in_channels):
    super().__init__()
    self.branch3x3 = BasicConv2d(in_channels, 384, kernel_size=3, stride=2)
    self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, kernel_size=1)
    self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
    self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, stride=2)

  def forward(self, x):
    branch3x3dbl = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
    return torch.cat([self.branch3x3(x), branch3x3dbl, F.max_pool2d(x, kernel_size=3, stride=2)], 1)


class FIDInceptionC(nn.Module):

  def __init__(self, in_channels, channels_7x7):
    super().__init__()
    c7 = channels_7x7
    self.branch1x1 = BasicConv2d(in_channels, 192, kernel_size=1)
    self.branch7x7_1 = BasicConv2d(in_channels, c7, kernel_size=1)
    self.branch7x7_2 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
    self.branch7x7_3 = BasicConv2d(c7, 192, kernel_size=(7, 1), padding=(3, 0))
    self.branch7x7dbl_1 = BasicConv2d(in_channels, c7, kernel_size=1)
    self.branch7x7dbl_2 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
    self.branch7x7dbl_3 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
    self.branch7x7dbl_4 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
    self.branch7x7dbl_5 = BasicConv2d(c7, 192, kernel_size=(1, 7), padding=(0, 3))
    self.branch_pool = BasicConv2d(in_channels, 192, kernel_size=1)

  def forward(self, x):
    branch7x7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
    branch7x7dbl = x
    for layer in (self.branch7x7dbl_1, self.branch7x7dbl_2, self.branch7x7dbl_3,
                  self.branch7x7dbl_4, self.branch7x7dbl_5):
      branch7x7dbl = layer(branch7x7dbl)
    return torch.cat([self.branch1x1(x), branch7x7, branch7x7dbl,
                      self.branch_pool(_fid_avg_pool(x))], 1)


class InceptionD(nn.Module):

  def __init__(self, in_channels):
    super().__init__()
    self.branch3x3_1 = BasicConv2d(in_channels, 192, kernel_size=1)
    self.branch3x3_2 = BasicConv2d(192, 320, kernel_size=3, stride=2)
    self.branch7x7x3_1 = BasicConv2d(in_channels, 192, kernel_size=1)
    self.branch7x7x3_2 = BasicConv2d(192, 192, kernel_size=(1, 7), padding=(0, 3))
    self.branch7x7x3_3 = BasicConv2d(192, 192, kernel_size=(7, 1), padding=(3, 0))
    self.branch7x7x3_4 = BasicConv2d(192, 192, kernel_size=3, stride=2)

  def forward(self, x):
    branch3x3 = self.branch3x3_2(self.branch3x3_1(x))
    branch7x7x3 = x
    for layer in (self.branch7x7x3_1, self.branch7x7x3_2, self.branch7x7x3_3, self.branch7x7x3_4):
      branch7x7x3 = layer(branch7x7x3)
    return torch.cat([branch3x3, branch7x7x3, F.max_pool2d(x, kernel_size=3, stride=2)], 1)


class FIDInceptionE(nn.Module):
  """FIDInceptionE_1 (avg_pool2d, count_include_pad=False) or FIDInceptionE_2 (max_pool2d)."""

  def __init__(self, in_channels, max_pool):
    super().__init__()
    self.max_pool = max_pool
    self.branch1x1 = BasicConv2d(in_channels, 320, kernel_size=1)
    self.branch3x3_1 = BasicConv2d(in_channels, 384, kernel_size=1)
    self.branch3x3_2a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
    self.branch3x3_2b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
    self.branch3x3dbl_1 = BasicConv2d(in_channels, 448, kernel_size=1)
    self.branch3x3dbl_2 = BasicConv2d(448, 384, kernel_size=3, padding=1)
    self.branch3x3dbl_3a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
    self.branch3x3dbl_3b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
    self.branch_pool = BasicConv2d(in_channels, 192, kernel_size=1)

  def forward(self, x):
    branch3x3 = self.branch3x3_1(x)
    branch3x3 = torch.cat([self.branch3x3_2a(branch3x3), self.branch3x3_2b(branch3x3)], 1)
    branch3x3dbl = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
    branch3x3dbl = torch.cat([self.branch3x3dbl_3a(branch3x3dbl),
                              self.branch3x3dbl_3b(branch3x3dbl)], 1)
    if self.max_pool:
      pooled = F.max_pool2d(x, kernel_size=3, stride=1, padding=1)
    else:
      pooled = _fid_avg_pool(x)
    return torch.cat([self.branch1x1(x), branch3x3, branch3x3dbl, self.branch_pool(pooled)], 1)


class FIDInception3(nn.Module):
  """fid_inception_v3(): torchvision Inception3(num_classes=1008, aux_logits=False), FID blocks.

  forward is pytorch-fid's InceptionV3 with output_blocks=(3,), resize_input=False,
  normalize_input=False: images in [-1, 1] -> pool3 features [B, 2048].
  """

  def __init__(self):
    super().__init__()
    self.Conv2d_1a_3x3 = BasicConv2d(3, 32, kernel_size=3, stride=2)
    self.Conv2d_2a_3x3 = BasicConv2d(32, 32, kernel_size=3)
    self.Conv2d_2b_3x3 = BasicConv2d(32, 64, kernel_size=3, padding=1)
    self.maxpool1 = nn.MaxPool2d(kernel_size=3, stride=2)
    self.Conv2d_3b_1x1 = BasicConv2d(64, 80, kernel_size=1)
    self.Conv2d_4a_3x3 = BasicConv2d(80, 192, kernel_size=3)
    self.maxpool2 = nn.MaxPool2d(kernel_size=3, stride=2)
    self.Mixed_5b = FIDInceptionA(192, pool_features=32)
    self.Mixed_5c = FIDInceptionA(256, pool_features=64)
    self.Mixed_5d = FIDInceptionA(288, pool_features=64)
    self.Mixed_6a = InceptionB(288)
    self.Mixed_6b = FIDInceptionC(768, channels_7x7=128)
    self.Mixed_6c = FIDInceptionC(768, channels_7x7=160)
    self.Mixed_6d = FIDInceptionC(768, channels_7x7=160)
    self.Mixed_6e = FIDInceptionC(768, channels_7x7=192)
    self.Mixed_7a = InceptionD(768)
    self.Mixed_7b = FIDInceptionE(1280, max_pool=False)
    self.Mixed_7c = FIDInceptionE(2048, max_pool=True)
    self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
    self.dropout = nn.Dropout(p=0.5)
    self.fc = nn.Linear(2048, 1008)

  def forward(self, x):
    for name, _ in self.named_children():
      if name == 'avgpool':
        break
      x = getattr(self, name)(x)
    return torch.flatten(self.avgpool(x), 1)


@pytest.fixture(scope='module')
def reference():
  return torch_parity.randomize(FIDInception3(), seed=3)


@pytest.fixture(scope='module')
def converted(reference):
  config, variables = torch_parity.convert_module('inception', reference)
  return inception.build(config), variables


def _images(shape, seed=0):
  return np.random.default_rng(seed).uniform(-1.0, 1.0, shape).astype(np.float32)


def test_state_dict_has_pt_inception_keys(reference):
  state = reference.state_dict()
  assert state['Conv2d_1a_3x3.conv.weight'].shape == (32, 3, 3, 3)
  assert state['Mixed_7c.branch3x3dbl_3b.bn.running_var'].shape == (384,)
  assert state['fc.weight'].shape == (1008, 2048)
  assert not any(k.startswith('AuxLogits') for k in state)


def test_pool3_features_match_torch_at_smallest_input(reference, converted):
  module, variables = converted
  images = _images((2, inception.MIN_INPUT_SIZE, inception.MIN_INPUT_SIZE, 3))
  expected = torch_parity.torch_forward(reference, images)
  actual = jax.jit(module.apply)(variables, images)
  assert actual.shape == (2, inception.FEATURE_DIM)
  torch_parity.assert_close(actual, expected)


def test_inception_features_jits_and_matches_pytorch_fid_resize(reference, converted):
  # pytorch-fid up-samples with bilinear align_corners=False; the role function must agree.
  module, variables = converted
  images = _images((2, 64, 48, 3), seed=1)
  features = jax.jit(lambda v, x: inception.inception_features(module, v, x))(variables, images)
  with torch.no_grad():
    resized = F.interpolate(torch.from_numpy(images.transpose(0, 3, 1, 2)),
                            size=(inception.INPUT_SIZE, inception.INPUT_SIZE), mode='bilinear',
                            align_corners=False)
    expected = reference(resized).numpy()
  torch_parity.assert_close(features, expected)


def test_too_small_input_is_rejected(converted):
  module, variables = converted
  with pytest.raises(ValueError, match='at least 75x75'):
    module.apply(variables, _images((1, 74, 80, 3)))


def test_bad_checkpoints_are_named(reference):
  torch_parity.assert_bad_checkpoints_are_named(
      'inception', torch_parity.state_dict_numpy(reference),
      wrong_shape_key='Mixed_6c.branch7x7_2.conv.weight',
      missing_key='Mixed_5b.branch_pool.bn.running_mean', extra_key='AuxLogits.fc.weight',
      extra_shape=(1008, 768))


def test_wrong_classifier_width_raises_naming_key(reference):
  # torchvision's ImageNet Inception (1000 classes) has non-FID pooling: not this kind.
  state = torch_parity.state_dict_numpy(reference)
  state['fc.weight'], state['fc.bias'] = state['fc.weight'][:1000], state['fc.bias'][:1000]
  with pytest.raises(ValueError, match='fc.weight'):
    convert.convert_state_dict('inception', state)


def test_save_load_round_trip(converted, tmp_path):
  _, variables = converted
  images = _images((1, inception.MIN_INPUT_SIZE, inception.MIN_INPUT_SIZE, 3), seed=2)
  torch_parity.assert_save_load_round_trip(tmp_path / 'inception', 'inception', {}, variables,
                                           images)
