"""Reading PyTorch state dicts into Flax variables, with errors that name the bad key or shape.

Converters walk a `TorchLayout` in the order their Flax module declares its layers, taking each tensor
once; `finish()` then reports any checkpoint tensor nobody took (a wrong architecture or depth).
Layouts: torch conv weight (O, I, kh, kw) -> Flax kernel (kh, kw, I, O); linear (O, I) -> (I, O).
"""
from collections.abc import Mapping
import difflib
from typing import Any

import numpy as np

# Bookkeeping tensors torch keeps beside BatchNorm statistics; never needed by inference.
_IGNORED_SUFFIXES = ('num_batches_tracked',)
# Wrappers checkpoints commonly nest the state dict in, and prefixes DataParallel adds.
_WRAPPER_KEYS = ('state_dict', 'net_recon', 'model', 'net', 'params')  # net_recon: Deep3DFaceRecon
_PREFIXES = ('module.',)


def load_torch_state_dict(path: str) -> dict[str, np.ndarray]:
  """The tensors of a PyTorch checkpoint as float32 numpy arrays (needs the `convert` extra).

  Unwraps {'state_dict': ...}-style nesting and strips DataParallel's 'module.' prefix.

  Raises:
    ImportError: torch is not installed (pip install -e '.[convert]').
    FileNotFoundError, ValueError: the file is missing or holds no tensors.
  """
  try:
    import torch  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise ImportError("Converting PyTorch checkpoints needs torch: pip install -e '.[convert]'") from e
  try:
    checkpoint = torch.load(path, map_location='cpu', weights_only=True)
  except FileNotFoundError as e:
    raise FileNotFoundError(f'No checkpoint at {path!r}; pass --src the .pth/.pt file.') from e
  for key in _WRAPPER_KEYS:
    if isinstance(checkpoint, Mapping) and isinstance(checkpoint.get(key), Mapping):
      checkpoint = checkpoint[key]
  if not isinstance(checkpoint, Mapping):
    raise ValueError(f'{path} holds a {type(checkpoint).__name__}, not a state dict; save '
                     'model.state_dict() rather than the pickled module.')
  tensors = {k: v for k, v in checkpoint.items() if isinstance(v, torch.Tensor)}
  if not tensors:
    raise ValueError(f'{path} holds no tensors (keys: {sorted(checkpoint)[:10]}).')
  return {_strip_prefixes(k): v.detach().float().numpy() for k, v in tensors.items()}


def _strip_prefixes(key: str) -> str:
  for prefix in _PREFIXES:
    if key.startswith(prefix):
      key = key[len(prefix):]
  return key


class TorchLayout:
  """A state dict consumed key by key; every take is checked for presence and shape.

  Attributes:
    kind: converter name used in error messages (e.g. 'deep3d').
  """

  def __init__(self, state_dict: Mapping[str, Any], kind: str):
    self.kind = kind
    self._tensors = {k: np.asarray(v, np.float32) for k, v in state_dict.items()
                     if not k.endswith(_IGNORED_SUFFIXES)}
    self._taken: set[str] = set()

  def take(self, key: str, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """The tensor at `key`, checked against `shape` (torch layout) when given."""
    if key not in self._tensors:
      close = difflib.get_close_matches(key, list(self._tensors), n=3)
      raise KeyError(f'{self.kind} checkpoint has no tensor {key!r}'
                     + (f' (closest: {close})' if close else '')
                     + '; is it the architecture --kind names?')
    value = self._tensors[key]
    if shape is not None and tuple(value.shape) != tuple(shape):
      raise ValueError(f'{self.kind} checkpoint tensor {key!r} has shape {tuple(value.shape)}; '
                       f'the Flax module expects {tuple(shape)} (torch layout). Wrong depth/width?')
    self._taken.add(key)
    return value

  def has(self, key: str) -> bool:
    return key in self._tensors

  def conv(self, prefix: str, bias: bool = True) -> dict[str, np.ndarray]:
    """Params of a Conv at `prefix` ('<prefix>.weight' (O, I, kh, kw) [, '<prefix>.bias'])."""
    params = {'kernel': self.take(f'{prefix}.weight').transpose(2, 3, 1, 0)}
    if bias:
      params['bias'] = self.take(f'{prefix}.bias')
    return params

  def linear(self, prefix: str, bias: bool = True) -> dict[str, np.ndarray]:
    """Params of a Dense at `prefix` ('<prefix>.weight' (O, I) [, '<prefix>.bias'])."""
    params = {'kernel': self.take(f'{prefix}.weight').T}
    if bias:
      params['bias'] = self.take(f'{prefix}.bias')
    return params

  def batch_norm(self, prefix: str) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(params, batch_stats) of a BatchNorm at `prefix` (affine, with running statistics)."""
    params = {'scale': self.take(f'{prefix}.weight'), 'bias': self.take(f'{prefix}.bias')}
    stats = {'mean': self.take(f'{prefix}.running_mean'), 'var': self.take(f'{prefix}.running_var')}
    return params, stats

  def finish(self):
    """Raises ValueError naming checkpoint tensors no converter step took."""
    unused = sorted(set(self._tensors) - self._taken)
    if unused:
      raise ValueError(f'{self.kind} checkpoint has {len(unused)} tensors the Flax module does not '
                       f'use, e.g. {unused[:5]}; is it the architecture --kind names?')
