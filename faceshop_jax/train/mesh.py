"""One device mesh, ('data', 'model'), and the sharding rules every stage uses.

Batches are split over 'data'. Parameters (and their optimiser moments and EMA copies) are sharded
FSDP-style over 'model' when they are large: a leaf of at least `min_shard_size` elements is split
along its largest axis that the 'model' size divides; everything else is replicated. With
mesh.model == 1 (the default) this is plain data parallelism.
"""
import jax
from jax.experimental import mesh_utils
import numpy as np
from jax.sharding import Mesh
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

DATA, MODEL = 'data', 'model'


def make_mesh(model_axis: int = 1, devices=None) -> Mesh:
  """A (data, model) mesh over all devices of all hosts (or the given ones).

  Raises:
    ValueError: if the device count is not a multiple of model_axis.
  """
  devices = jax.devices() if devices is None else list(devices)
  if model_axis < 1 or len(devices) % model_axis:
    raise ValueError(f'config.mesh.model = {model_axis} must divide the {len(devices)} devices.')
  shape = (len(devices) // model_axis, model_axis)
  try:
    grid = mesh_utils.create_device_mesh(shape, devices)
  except (ValueError, NotImplementedError, AssertionError):  # odd topologies: plain order
    grid = np.asarray(devices).reshape(shape)
  return Mesh(grid, (DATA, MODEL))


def batch_sharding(mesh: Mesh) -> NamedSharding:
  """Leading (batch) axis over 'data', the rest replicated."""
  return NamedSharding(mesh, P(DATA))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def leaf_spec(shape: tuple[int, ...], model_size: int, min_shard_size: int) -> P:
  """The PartitionSpec of one array by the FSDP rule (see module docstring)."""
  if model_size == 1 or int(np.prod(shape, dtype=np.int64)) < min_shard_size:
    return P()
  for axis in sorted(range(len(shape)), key=lambda a: -shape[a]):
    if shape[axis] % model_size == 0:
      spec = [None] * len(shape)
      spec[axis] = MODEL
      return P(*spec)
  return P()


def tree_shardings(mesh: Mesh, tree, min_shard_size: int = 1 << 18):
  """NamedShardings for every array leaf of a (possibly abstract) pytree."""
  model_size = mesh.shape[MODEL]
  return jax.tree.map(
      lambda x: NamedSharding(mesh, leaf_spec(tuple(x.shape), model_size, min_shard_size)), tree)


def check_batch_size(batch_size: int, mesh: Mesh) -> None:
  """Fails fast with the fix when the global batch does not split over the data axis."""
  data = mesh.shape[DATA]
  if batch_size % data:
    raise ValueError(
        f'config.batch_size = {batch_size} is not divisible by the {data} data-parallel devices '
        f'(mesh {dict(mesh.shape)}); use a multiple of {data}, e.g. --config.batch_size='
        f'{max(data, batch_size // data * data)}.')
