"""Parity of bisenet.py with zllrunning/face-parsing.PyTorch's BiSeNet.

The torch reference below mirrors that repository's model.py and resnet.py, module and parameter
names included, so its state_dict keys are those of the released 79999_iter.pth; the widths (64,
128, 256, 256, 64 there) are arguments so that a tiny variant can be checked too.
"""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from faceshop_jax.analysis import bisenet
from tests.analysis import torch_parity

_TINY = {'width': 8, 'context': 16, 'fuse': 32, 'head': 32, 'aux': 8}


def conv3x3(in_planes, out_planes, stride=1):
  return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):

  def __init__(self, in_chan, out_chan, stride=1):
    super().__init__()
    self.conv1 = conv3x3(in_chan, out_chan, stride)
    self.bn1 = nn.BatchNorm2d(out_chan)
    self.conv2 = conv3x3(out_chan, out_chan)
    self.bn2 = nn.BatchNorm2d(out_chan)
    self.relu = nn.ReLU(inplace=True)
    self.downsample = None
    if in_chan != out_chan or stride != 1:
      self.downsample = nn.Sequential(
          nn.Conv2d(in_chan, out_chan, kernel_size=1, stride=stride, bias=False),
          nn.BatchNorm2d(out_chan))

  def forward(self, x):
    residual = F.relu(self.bn1(self.conv1(x)))
    residual = self.bn2(self.conv2(residual))
    shortcut = x if self.downsample is None else self.downsample(x)
    return self.relu(shortcut + residual)


def create_layer_basic(in_chan, out_chan, bnum, stride=1):
  layers = [BasicBlock(in_chan, out_chan, stride=stride)]
  layers += [BasicBlock(out_chan, out_chan, stride=1) for _ in range(bnum - 1)]
  return nn.Sequential(*layers)


class Resnet18(nn.Module):

  def __init__(self, width=64):
    super().__init__()
    self.conv1 = nn.Conv2d(3, width, kernel_size=7, stride=2, padding=3, bias=False)
    self.bn1 = nn.BatchNorm2d(width)
    self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
    self.layer1 = create_layer_basic(width, width, bnum=2, stride=1)
    self.layer2 = create_layer_basic(width, width * 2, bnum=2, stride=2)
    self.layer3 = create_layer_basic(width * 2, width * 4, bnum=2, stride=2)
    self.layer4 = create_layer_basic(width * 4, width * 8, bnum=2, stride=2)

  def forward(self, x):
    x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
    feat8 = self.layer2(self.layer1(x))
    feat16 = self.layer3(feat8)
    feat32 = self.layer4(feat16)
    return feat8, feat16, feat32


class ConvBNReLU(nn.Module):

  def __init__(self, in_chan, out_chan, ks=3, stride=1, padding=1):
    super().__init__()
    self.conv = nn.Conv2d(in_chan, out_chan, kernel_size=ks, stride=stride, padding=padding,
                          bias=False)
    self.bn = nn.BatchNorm2d(out_chan)

  def forward(self, x):
    return F.relu(self.bn(self.conv(x)))


class BiSeNetOutput(nn.Module):

  def __init__(self, in_chan, mid_chan, n_classes):
    super().__init__()
    self.conv = ConvBNReLU(in_chan, mid_chan, ks=3, stride=1, padding=1)
    self.conv_out = nn.Conv2d(mid_chan, n_classes, kernel_size=1, bias=False)

  def forward(self, x):
    return self.conv_out(self.conv(x))


class AttentionRefinementModule(nn.Module):

  def __init__(self, in_chan, out_chan):
    super().__init__()
    self.conv = ConvBNReLU(in_chan, out_chan, ks=3, stride=1, padding=1)
    self.conv_atten = nn.Conv2d(out_chan, out_chan, kernel_size=1, bias=False)
    self.bn_atten = nn.BatchNorm2d(out_chan)
    self.sigmoid_atten = nn.Sigmoid()

  def forward(self, x):
    feat = self.conv(x)
    atten = F.adaptive_avg_pool2d(feat, output_size=(1, 1))
    atten = self.sigmoid_atten(self.bn_atten(self.conv_atten(atten)))
    return torch.mul(feat, atten)


class ContextPath(nn.Module):

  def __init__(self, width=64, context=128):
    super().__init__()
    self.resnet = Resnet18(width)
    self.arm16 = AttentionRefinementModule(width * 4, context)
    self.arm32 = AttentionRefinementModule(width * 8, context)
    self.conv_head32 = ConvBNReLU(context, context, ks=3, stride=1, padding=1)
    self.conv_head16 = ConvBNReLU(context, context, ks=3, stride=1, padding=1)
    self.conv_avg = ConvBNReLU(width * 8, context, ks=1, stride=1, padding=0)

  def forward(self, x):
    feat8, feat16, feat32 = self.resnet(x)
    H8, W8 = feat8.size()[2:]  # noqa: N806  (the reference's names)
    H16, W16 = feat16.size()[2:]  # noqa: N806
    H32, W32 = feat32.size()[2:]  # noqa: N806
    avg = self.conv_avg(F.adaptive_avg_pool2d(feat32, output_size=(1, 1)))
    avg_up = F.interpolate(avg, (H32, W32), mode='nearest')
    feat32_sum = self.arm32(feat32) + avg_up
    feat32_up = self.conv_head32(F.interpolate(feat32_sum, (H16, W16), mode='nearest'))
    feat16_sum = self.arm16(feat16) + feat32_up
    feat16_up = self.conv_head16(F.interpolate(feat16_sum, (H8, W8), mode='nearest'))
    return feat8, feat16_up, feat32_up


class FeatureFusionModule(nn.Module):

  def __init__(self, in_chan, out_chan):
    super().__init__()
    self.convblk = ConvBNReLU(in_chan, out_chan, ks=1, stride=1, padding=0)
    self.conv1 = nn.Conv2d(out_chan, out_chan // 4, kernel_size=1, stride=1, padding=0,
                           bias=False)
    self.conv2 = nn.Conv2d(out_chan // 4, out_chan, kernel_size=1, stride=1, padding=0,
                           bias=False)
    self.relu = nn.ReLU(inplace=True)
    self.sigmoid = nn.Sigmoid()

  def forward(self, fsp, fcp):
    feat = self.convblk(torch.cat([fsp, fcp], dim=1))
    atten = F.adaptive_avg_pool2d(feat, output_size=(1, 1))
    atten = self.sigmoid(self.conv2(self.relu(self.conv1(atten))))
    return torch.mul(feat, atten) + feat


class BiSeNet(nn.Module):

  def __init__(self, n_classes, width=64, context=128, fuse=256, head=256, aux=64):
    super().__init__()
    self.cp = ContextPath(width, context)
    self.ffm = FeatureFusionModule(width * 2 + context, fuse)
    self.conv_out = BiSeNetOutput(fuse, head, n_classes)
    self.conv_out16 = BiSeNetOutput(context, aux, n_classes)
    self.conv_out32 = BiSeNetOutput(context, aux, n_classes)

  def forward(self, x):
    H, W = x.size()[2:]  # noqa: N806
    feat_res8, feat_cp8, feat_cp16 = self.cp(x)
    feat_fuse = self.ffm(feat_res8, feat_cp8)
    outputs = (self.conv_out(feat_fuse), self.conv_out16(feat_cp8), self.conv_out32(feat_cp16))
    return tuple(F.interpolate(out, (H, W), mode='bilinear', align_corners=True)
                 for out in outputs)


def _images(shape, seed=0):
  return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


@functools.lru_cache(maxsize=None)
def _tiny_parser():
  """(torch net, config, variables) of a narrow parser (widths _TINY)."""
  torch_net = torch_parity.randomize(BiSeNet(19, **_TINY), seed=1)
  config, variables = torch_parity.convert_module('bisenet', torch_net)
  return torch_net, config, variables


def test_bisenet_matches_torch_with_aux_heads():
  torch_net = torch_parity.randomize(BiSeNet(19))
  config, variables = torch_parity.convert_module('bisenet', torch_net)
  assert config == {'n_classes': 19,
                    'backbone': {'block': 'basic', 'stage_sizes': [2, 2, 2, 2], 'width': 64},
                    'context_width': 128, 'fuse_width': 256, 'head_width': 256,
                    'aux_head_width': 64, 'input_size': 512}
  images = _images((2, 64, 64, 3))
  logits = jax.jit(functools.partial(bisenet.build(config).apply, with_aux=True))(variables, images)
  expected = torch_parity.torch_forward(torch_net, images)
  assert logits[0].shape == (2, 64, 64, 19)
  for actual, reference in zip(logits, expected):
    torch_parity.assert_close(actual, reference)


def test_tiny_bisenet_matches_torch_off_multiples_of_32():
  """80x72: the 1/32 map (3x3) is up-sampled to 5x5 by torch's nearest rule, not by doubling."""
  torch_net, config, variables = _tiny_parser()
  images = _images((1, 80, 72, 3))
  logits = jax.jit(bisenet.build(config).apply)(variables, images)
  torch_parity.assert_close(logits, torch_parity.torch_forward(torch_net, images)[0])


@pytest.mark.parametrize('in_size, out_size', [((5, 7), (13, 4)), ((1, 3), (4, 1))])
def test_resizes_match_torch_interpolate(in_size, out_size):
  x = _images((2, *in_size, 3))
  x_torch = torch.from_numpy(x.transpose(0, 3, 1, 2))
  for resize, options in ((bisenet.resize_nearest, {'mode': 'nearest'}),
                          (bisenet.resize_bilinear_align_corners,
                           {'mode': 'bilinear', 'align_corners': True})):
    expected = F.interpolate(x_torch, out_size, **options).numpy().transpose(0, 2, 3, 1)
    torch_parity.assert_close(resize(jnp.asarray(x), out_size), expected, rtol=1e-6, atol=1e-6)


def test_parse_jits_and_matches_torch_on_resized_images():
  torch_net, config, variables = _tiny_parser()
  module = bisenet.build({**config, 'input_size': 64})
  images = np.random.default_rng(2).uniform(-1.0, 1.0, (2, 48, 40, 3)).astype(np.float32)
  logits = jax.jit(functools.partial(bisenet.parse, module))(variables, images)
  assert logits.shape == (2, 48, 40, 19)
  resized = np.asarray(jax.image.resize(jnp.asarray(images), (2, 64, 64, 3), 'linear',
                                        antialias=True))
  normalised = ((resized + 1) / 2 - np.float32(bisenet.IMAGENET_MEAN)) / np.float32(
      bisenet.IMAGENET_STD)
  expected = torch_parity.torch_forward(torch_net, normalised)[0]
  expected = jax.image.resize(expected, (2, 48, 40, 19), 'linear', antialias=True)
  torch_parity.assert_close(logits, expected)


def test_bad_checkpoints_are_named():
  torch_parity.assert_bad_checkpoints_are_named(
      'bisenet', torch_parity.state_dict_numpy(_tiny_parser()[0]),
      wrong_shape_key='cp.arm32.conv_atten.weight', missing_key='ffm.conv2.weight',
      extra_key='cp.resnet.fc.weight', extra_shape=(1000, 64))


def test_save_load_round_trip(tmp_path):
  _, config, variables = _tiny_parser()
  torch_parity.assert_save_load_round_trip(tmp_path, 'bisenet', config, variables,
                                           _images((1, 64, 64, 3)))


def test_converted_variables_are_the_modules_and_train_mode_updates_batch_stats():
  """The tiny parser: converted tree = init's tree (aux heads included); training updates stats."""
  _, config, variables = _tiny_parser()
  module = bisenet.build(config)
  images = _images((2, 64, 64, 3))
  # eval_shape: compiling the random initialisers takes ~20 s on XLA:CPU.
  initial = jax.eval_shape(functools.partial(module.init, with_aux=True), jax.random.key(0),
                           images)
  shapes = lambda tree: jax.tree.map(lambda leaf: tuple(leaf.shape), tree)  # noqa: E731
  assert shapes(variables) == shapes(initial)
  train_step = jax.jit(functools.partial(module.apply, train=True, with_aux=True,
                                         mutable=['batch_stats']))
  logits, updates = train_step(variables, images)
  assert [out.shape for out in logits] == [(2, 64, 64, 19)] * 3
  changed = jax.tree.map(lambda new, old: bool(np.any(new != old)), updates['batch_stats'],
                         variables['batch_stats'])
  assert all(jax.tree.leaves(changed))
