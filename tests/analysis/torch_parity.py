"""Parity against PyTorch reference modules built in the tests with random weights.

torch is a test/convert extra, never a runtime dependency; torchvision does not import beside it here,
so each test writes its reference architecture in plain torch.nn.
"""
import numpy as np
import torch

from faceshop_jax.analysis import convert


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
