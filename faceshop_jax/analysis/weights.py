"""Saved analysis networks: DIR/analysis.json (kind, architecture config) + DIR/variables (orbax).

Written by the converters (`python -m faceshop_jax.analysis.convert`) and by the in-domain `analysis`
stage; read by the losses and metrics by directory. A net is rebuilt from its kind and config, so a
saved directory needs no training code.
"""
import dataclasses
import importlib
import os
from typing import Any

import flax.linen as nn

from faceshop_jax import saved

_FORMAT_VERSION = 1
_CONFIG_FILE = 'analysis.json'
_VARIABLES_DIR = 'variables'

# kind -> module implementing the net. Each module defines
#   build(config: dict) -> nn.Module
#   infer_config(layout: TorchLayout) -> dict        (architecture read off a torch checkpoint)
#   variables_from_torch(layout: TorchLayout, config: dict) -> {'params': ..., ['batch_stats': ...]}
KINDS = {
    'deep3d': 'faceshop_jax.analysis.deep3d',
    'bisenet': 'faceshop_jax.analysis.bisenet',
    'arcface': 'faceshop_jax.analysis.iresnet',
    'inception': 'faceshop_jax.analysis.inception',
    'vgg16': 'faceshop_jax.analysis.vgg',
}


# The roles the losses and metrics use, and the kind of net each is.
ROLE_KINDS = {'reconstructor': 'deep3d', 'parser': 'bisenet', 'identity': 'arcface'}


def net_module(kind: str):
  """The Python module implementing `kind` (see KINDS)."""
  if kind not in KINDS:
    raise ValueError(f'Unknown analysis net kind {kind!r}; known kinds: {sorted(KINDS)}.')
  return importlib.import_module(KINDS[kind])


@dataclasses.dataclass(frozen=True)
class AnalysisNet:
  """A restored analysis net: apply with `net.module.apply(net.variables, images)`."""
  kind: str
  config: dict[str, Any]
  module: nn.Module
  variables: Any


def save_analysis_net(directory: str, kind: str, config: dict[str, Any], variables: Any):
  """Writes a net to `directory` (faceshop_jax.saved, atomically; a previous net there is
  replaced)."""
  saved.write(directory, _CONFIG_FILE, {'kind': kind, 'config': config}, _FORMAT_VERSION,
              {_VARIABLES_DIR: variables})


def load_analysis_net(directory: str, kind: str | None = None) -> AnalysisNet:
  """The net saved in `directory`; `kind`, when given, must match what was saved.

  Raises:
    FileNotFoundError: no complete save in `directory`.
    ValueError: a different kind or format was saved there.
  """
  manifest = saved.read_manifest(
      directory, _CONFIG_FILE, _FORMAT_VERSION, 'analysis net',
      'write one with `python -m faceshop_jax.analysis.convert` or the analysis stage')
  if kind is not None and manifest['kind'] != kind:
    raise ValueError(f'{directory} holds a {manifest["kind"]!r} net, not the {kind!r} net asked '
                     'for.')
  module = net_module(manifest['kind']).build(manifest['config'])
  return AnalysisNet(manifest['kind'], manifest['config'], module,
                     saved.restore(directory, _VARIABLES_DIR))


# Analysis nets shipped in the package, by name -> directory under faceshop_jax/analysis/assets.
PACKAGED = {
    # configs/analysis.py:cpu, trained here on the synthetic world at 64² (assets/README.md).
    'synthetic64': 'synthetic64',
    # configs/analysis.py:judge: a reconstructor trained apart from synthetic64 (another seed,
    # other people, wider, longer), for evaluation only; never a loss.
    'judge64': 'judge64',
}


def resolve_directory(spec: str) -> str:
  """A directory of role nets: a PACKAGED name or a path."""
  if spec in PACKAGED:
    return os.path.join(os.path.dirname(__file__), 'assets', PACKAGED[spec])
  if not spec:
    raise ValueError('No analysis-net directory given: name one of the packaged sets '
                     f'{sorted(PACKAGED)} or a directory holding {{{",".join(ROLE_KINDS)}}}/.')
  return spec


def load_role_net(directory: str, role: str) -> AnalysisNet:
  """The `role` net ('reconstructor', 'parser' or 'identity') saved in directory/role, as the
  analysis stage exports (WORKDIR/analysis) or as converted checkpoints laid out the same way.
  `directory` may name a packaged set (PACKAGED)."""
  directory = resolve_directory(directory)
  if role not in ROLE_KINDS:
    raise ValueError(f'Unknown analysis role {role!r}; known roles: {sorted(ROLE_KINDS)}.')
  return load_analysis_net(os.path.join(directory, role), ROLE_KINDS[role])
