"""Parity against PyTorch reference modules built in the tests with random weights.

torch is a test/convert extra, never a runtime dependency; torchvision does not import beside it here,
so each test writes its reference architecture in plain torch.nn.
"""
import re

import jax
import numpy as np
import pytest
import torch

from faceshop_jax.analysis import convert
from faceshop_jax.analysis import weights


def randomize(module: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
  """Random weights everywhere, including BatchNorm affine terms and running statistics; eval mode.

  Default inits leave BatchNorm at identity (scale 1, bias 0, mean 0, var 1), which would hide a
  converter that drops or swaps them.
  """
  generator = torch.Generator().manual_seed(seed)
  with torch.no_grad():
    for name, tensor in module.state_dict().items():
      if not tensor.is_floating_point():
        continue
      if name.endswith('running_var'):
        tensor.copy_(torch.rand(tensor.shape, generator=generator) + 0.5)
      elif name.endswith(('running_mean', 'bias')):
        tensor.copy_(torch.randn(tensor.shape, generator=generator) * 0.1)
      elif tensor.ndim == 1:  # BatchNorm / PReLU scales
        tensor.copy_(torch.rand(tensor.shape, generator=generator) + 0.5)
      else:  # He-style scale keeps activations O(1) through deep nets
        fan_in = tensor[0].numel()
        tensor.copy_(torch.randn(tensor.shape, generator=generator) * (2.0 / fan_in) ** 0.5)
  return module.eval()


def state_dict_numpy(module: torch.nn.Module) -> dict[str, np.ndarray]:
  return {k: v.detach().numpy() for k, v in module.state_dict().items()}


def convert_module(kind: str, module: torch.nn.Module):
  """(config, variables) for `kind` converted from a torch module's state dict."""
  return convert.convert_state_dict(kind, state_dict_numpy(module))


def torch_forward(module: torch.nn.Module, images_nhwc: np.ndarray):
  """The module's output(s) on NHWC images, as numpy (NCHW feature maps are returned as NHWC)."""
  with torch.no_grad():
    out = module(torch.from_numpy(np.ascontiguousarray(images_nhwc.transpose(0, 3, 1, 2))))
  to_numpy = lambda t: t.numpy().transpose(0, 2, 3, 1) if t.ndim == 4 else t.numpy()  # noqa: E731
  if isinstance(out, (tuple, list)):
    return type(out)(to_numpy(t) for t in out)
  return to_numpy(out)


def assert_close(actual, expected, rtol: float = 1e-4, atol: float = 1e-4):
  """Max abs error relative to the reference's scale, with the numbers in the message."""
  actual, expected = np.asarray(actual), np.asarray(expected)
  assert actual.shape == expected.shape, (actual.shape, expected.shape)
  error = np.max(np.abs(actual - expected))
  scale = np.max(np.abs(expected))
  assert error <= atol + rtol * scale, f'max abs error {error:.3g} at reference scale {scale:.3g}'


def assert_bad_checkpoints_are_named(kind: str, state_dict: dict[str, np.ndarray], *,
                                     wrong_shape_key: str, missing_key: str, extra_key: str,
                                     extra_shape: tuple[int, ...] = (4, 4)):
  """convert_state_dict(kind, ...) names the bad key of three broken copies of `state_dict`.

  A tensor of the wrong shape (one more along its last axis) raises ValueError, a missing one
  KeyError, and one the module does not use ValueError (from TorchLayout.finish).
  """
  wrong = np.asarray(state_dict[wrong_shape_key])
  wrong_shape = {**state_dict,
                 wrong_shape_key: np.zeros((*wrong.shape[:-1], wrong.shape[-1] + 1), wrong.dtype)}
  with pytest.raises(ValueError, match=re.escape(wrong_shape_key)):
    convert.convert_state_dict(kind, wrong_shape)
  missing = {k: v for k, v in state_dict.items() if k != missing_key}
  assert len(missing) == len(state_dict) - 1, f'{missing_key!r} is not in the state dict'
  with pytest.raises(KeyError, match=re.escape(missing_key)):
    convert.convert_state_dict(kind, missing)
  assert extra_key not in state_dict, f'{extra_key!r} is already in the state dict'
  extra = {**state_dict, extra_key: np.zeros(extra_shape, np.float32)}
  with pytest.raises(ValueError, match=re.escape(extra_key)):
    convert.convert_state_dict(kind, extra)


def assert_save_load_round_trip(directory, kind: str, config: dict, variables, images):
  """save_analysis_net then load_analysis_net gives `config` and bitwise the same outputs."""
  weights.save_analysis_net(str(directory), kind, config, variables)
  net = weights.load_analysis_net(str(directory), kind)
  assert net.config == config
  apply = jax.jit(net.module.apply)
  loaded, original = apply(net.variables, images), apply(variables, images)
  assert jax.tree.structure(loaded) == jax.tree.structure(original)
  for loaded_leaf, original_leaf in zip(jax.tree.leaves(loaded), jax.tree.leaves(original)):
    np.testing.assert_array_equal(loaded_leaf, original_leaf)
