"""A saved directory: a versioned JSON manifest plus orbax variables, written atomically.

Exports, control spaces and analysis nets are all saved the same way:

  saved.write('/tmp/export', 'export.json', {'step': 800, ...}, format_version=1,
              variables={'generator': variables}, extra=write_face_model)
  manifest = saved.read_manifest('/tmp/export', 'export.json', format_version=1, what='export')
  variables = saved.restore('/tmp/export', 'generator', saved.abstract(target))

A directory is complete when its manifest exists. `write` builds the whole directory under a
temporary name beside it (variables first, then the extra files, the manifest last) and renames it
into place, so a crash leaves the previous save, or nothing, never half a save.
"""
import json
import os
import shutil
from collections.abc import Callable
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

FORMAT_KEY = 'format'


def is_saved(directory: str, manifest_file: str) -> bool:
  """Whether `directory` holds a complete save with this manifest."""
  return os.path.isfile(os.path.join(directory, manifest_file))


def write(directory: str, manifest_file: str, manifest: dict[str, Any], format_version: int,
          variables: dict[str, Any], extra: Callable[[str], None] | None = None) -> str:
  """Saves `variables` (one orbax item per name) and `manifest` to `directory`, atomically.

  Args:
    directory: where the save goes. An earlier save with the same manifest there is replaced.
    manifest_file: the manifest's file name, e.g. 'export.json'.
    manifest: JSON-serialisable metadata; FORMAT_KEY is added as format_version.
    format_version: the layout version that read_manifest checks.
    variables: {name: pytree of arrays}; each is written to directory/name with orbax.
    extra: called with the staging directory to write further files before the manifest.

  Returns:
    The absolute path of the directory.

  Raises:
    FileExistsError: `directory` exists and is neither empty nor a save with this manifest.
  """
  directory = os.path.abspath(directory)  # orbax needs absolute paths
  if os.path.exists(directory) and not (os.path.isdir(directory) and (
      not os.listdir(directory) or is_saved(directory, manifest_file))):
    raise FileExistsError(f'{directory} exists and holds no {manifest_file}; refusing to '
                          'overwrite it. Choose another directory or remove it.')
  staging = directory + '.tmp'
  shutil.rmtree(staging, ignore_errors=True)
  os.makedirs(staging)
  try:
    with _checkpointer() as checkpointer:
      for name, tree in variables.items():
        checkpointer.save(os.path.join(staging, name), jax.tree.map(np.asarray, tree))
      checkpointer.wait_until_finished()
    if extra is not None:
      extra(staging)
    with open(os.path.join(staging, manifest_file), 'w') as f:
      json.dump({FORMAT_KEY: format_version, **manifest}, f, indent=2)
  except BaseException:
    shutil.rmtree(staging, ignore_errors=True)
    raise
  if os.path.exists(directory):
    previous = directory + '.old'
    shutil.rmtree(previous, ignore_errors=True)
    os.replace(directory, previous)
    os.replace(staging, directory)
    shutil.rmtree(previous)
  else:
    os.replace(staging, directory)
  return directory


def read_manifest(directory: str, manifest_file: str, format_version: int, what: str,
                  how_to_write: str) -> dict[str, Any]:
  """The manifest of the save in `directory`, checked to be of format_version.

  Args:
    directory: the save.
    manifest_file: its manifest's file name.
    format_version: the layout version this code reads.
    what: what the save is, for error messages ('export', 'control space', ...).
    how_to_write: how a user makes one, for the error when there is none.

  Raises:
    FileNotFoundError: no complete save in `directory`.
    ValueError: a save of another format version.
  """
  path = os.path.join(directory, manifest_file)
  if not os.path.isfile(path):
    raise FileNotFoundError(f'{directory} holds no {what} ({manifest_file} is missing); '
                            f'{how_to_write}.')
  with open(path) as f:
    manifest = json.load(f)
  if manifest.get(FORMAT_KEY) != format_version:
    raise ValueError(f'{directory} holds {what} format {manifest.get(FORMAT_KEY)}; this code reads '
                     f'format {format_version}.')
  return manifest


def restore(directory: str, name: str, target: Any = None) -> Any:
  """The variables `write` saved as `name` in `directory`, in target's structure (an `abstract`
  tree) or, without one, as saved (numpy arrays)."""
  with _checkpointer() as checkpointer:
    return checkpointer.restore(os.path.join(os.path.abspath(directory), name), target)


def _checkpointer() -> ocp.StandardCheckpointer:
  """An orbax checkpointer of this process alone (no barriers with the others).

  Saves are small and written or read by whichever processes call: in a multi-process job the
  primary alone writes a stage's exports, and a process may read one while the others do not.
  """
  process = jax.process_index()
  return ocp.StandardCheckpointer(multiprocessing_options=ocp.options.MultiprocessingOptions(
      primary_host=process, active_processes={process}))


def abstract(tree: Any, shardings: Any = None) -> Any:
  """ShapeDtypeStructs of tree's leaves (arrays or ShapeDtypeStructs), a restore target.

  Args:
    tree: the pytree to mirror.
    shardings: a matching pytree of shardings; None puts every leaf on this process's first device
      (whatever devices the arrays were saved from).
  """
  if shardings is None:
    device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=device), tree)
  return jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), tree,
                      shardings)
