"""Reads prepared tfds datasets with grain: per-host shards, seeded shuffle, batches, resumable.

A split is opened as a random-access source (`open_split`, tfds' array_record data source: records
decoded to numpy, images to uint8 [H, W, 3]) and turned into a grain pipeline:

  training:   shuffle(seed) → repeat → select arrays → batch(global / count) → [i::count]
  evaluation: source[i::count] → select arrays → batch(global / count, drop remainder)
  → threads (ReadOptions) → worker processes (mp_prefetch, if worker_count > 0)

Training batches are a function of (source, seed, global batch size) only: every host walks the
same shuffled order and host i takes part i of each global batch, so the global batch (the hosts'
parts concatenated in host order) is the same with 1 host or 16, and within an epoch no record is
read by two hosts. Two runs, in-process or with any number of workers, give the same batches
(batching happens before the workers split the work, so each worker makes whole batches and grain
interleaves them in order). Each epoch is shuffled differently (grain folds the epoch into the
seed); batches may straddle epochs, so nothing is dropped.

Checkpointing: the iterators are `grain.DatasetIterator`s. `it.get_state()` is a small JSON-able
dict and `it.set_state(state)` on a fresh iterator built with the same arguments continues with
exactly the batches the original would have produced. With orbax, save it beside the train state:

  manager.save(step, args=ocp.args.Composite(
      state=ocp.args.StandardSave(state), data=grain.checkpoint.CheckpointSave(iterator)))
  manager.restore(step, args=ocp.args.Composite(
      state=ocp.args.StandardRestore(abstract_state), data=grain.checkpoint.CheckpointRestore(iterator)))

`grain.checkpoint.CheckpointHandler` (alias `grain.python.PyGrainCheckpointHandler` in grain 0.2.18)
writes one `process_{i}-of-{n}.json` per host, so every host restores its own shard's position.
A state is only valid for the same worker_count.
"""
from collections.abc import Mapping, Sequence
import functools
from typing import Any

import grain
import numpy as np
import tensorflow_datasets as tfds

Batch = dict[str, np.ndarray]


def open_split(name: str, split: str, data_dir: str | None = None) -> Sequence[Mapping[str, Any]]:
  """A prepared split as a random-access source, read from its files alone.

  Never builds (that is data_pipelines' job) and never runs builder code, even when the builder is
  imported: `tfds.data_source(name)` would instantiate a registered config's builder, whose
  `_info` may need assets (the synthetic builder loads the face model for D).

  Args:
    name: 'dataset/config' (optionally ':version'), e.g. 'synthetic_portraits/r64_n2000'.
    split: e.g. 'train', 'test', 'train[:90%]'.
    data_dir: where the dataset was prepared; None for tfds' default.

  Returns:
    A sequence of records: numpy arrays, images decoded to uint8 [H, W, 3], text as bytes.
  """
  builder = tfds.core.read_only_builder.builder_from_files(name, data_dir=data_dir)
  return builder.as_data_source(split=split)


def batched_dataset(source: Sequence[Mapping[str, Any]], *, global_batch_size: int, train: bool,
                    seed: int = 0, shard: grain.sharding.ShardOptions | None = None,
                    keys: Sequence[str] | None = None) -> grain.MapDataset:
  """This host's batches as a MapDataset (endless and shuffled when training, one pass otherwise).

  Args:
    source: random-access records (e.g. `open_split(...)`).
    global_batch_size: batch size summed over hosts; each host's batches hold
      global_batch_size / shard_count records.
    train: shuffle with `seed` and repeat forever; otherwise one pass in order.
    seed: shuffle seed in [0, 2**32).
    shard: which host this is; default `ShardByJaxProcess(drop_remainder=True)`. Training: this
      host's part of every global batch. Evaluation: the records [index::count]; drop_remainder
      (equal shards: hosts run the same number of batches) or not (the shards' union is the whole
      split).
    keys: record fields to keep; None keeps every array (text fields such as `source` cannot be
      batched onto devices and are dropped).

  Returns:
    A MapDataset of dicts {key: [B_local, ...]}.
  """
  shard = shard or grain.sharding.ShardByJaxProcess(drop_remainder=True)
  if global_batch_size % shard.shard_count:
    raise ValueError(f'global_batch_size {global_batch_size} does not split over '
                     f'{shard.shard_count} hosts.')
  local_batch_size = global_batch_size // shard.shard_count
  ds = grain.MapDataset.source(source)
  if train:
    # One global order, then global batch k's part h goes to host h: chunk k·count + h.
    ds = ds.shuffle(seed=seed).repeat().map(functools.partial(_arrays, keys=keys))
    return ds.batch(local_batch_size, drop_remainder=True)[shard.shard_index::shard.shard_count]
  if shard.drop_remainder:
    ds = ds[:len(ds) - len(ds) % shard.shard_count]
  ds = ds[shard.shard_index::shard.shard_count].map(functools.partial(_arrays, keys=keys))
  return ds.batch(local_batch_size, drop_remainder=True)


def _arrays(record: Mapping[str, Any], keys: Sequence[str] | None) -> Batch:
  """The record's array fields (module-level so that worker processes can unpickle it)."""
  if keys is None:
    keys = [k for k, v in record.items() if not isinstance(v, (str, bytes))]
  return {k: np.asarray(record[k]) for k in keys}


def make_train_iterator(source: Sequence[Mapping[str, Any]], *, global_batch_size: int, seed: int,
                        shard: grain.sharding.ShardOptions | None = None, worker_count: int = 0,
                        keys: Sequence[str] | None = None, read_threads: int = 8,
                        prefetch_batches: int = 16) -> grain.DatasetIterator:
  """Endless shuffled batches for this host, resumable with get_state()/set_state().

  Args:
    source, global_batch_size, seed, shard, keys: as in `batched_dataset`.
    worker_count: worker processes (0: read in this process with threads).
    read_threads: threads reading records (per process).
    prefetch_batches: batches read ahead by those threads.
  """
  ds = batched_dataset(source, global_batch_size=global_batch_size, train=True, seed=seed,
                       shard=shard, keys=keys)
  return _iterate(ds, worker_count, read_threads, prefetch_batches)


def make_eval_iterator(source: Sequence[Mapping[str, Any]], *, global_batch_size: int,
                       shard: grain.sharding.ShardOptions | None = None, worker_count: int = 0,
                       keys: Sequence[str] | None = None, read_threads: int = 8,
                       prefetch_batches: int = 16) -> grain.DatasetIterator:
  """One in-order pass over this host's shard in full batches (see make_train_iterator)."""
  ds = batched_dataset(source, global_batch_size=global_batch_size, train=False, shard=shard,
                       keys=keys)
  return _iterate(ds, worker_count, read_threads, prefetch_batches)


def _iterate(ds: grain.MapDataset, worker_count: int, read_threads: int,
             prefetch_batches: int) -> grain.DatasetIterator:
  # grain's default read-ahead is 500 elements: 500 batches of portraits would be gigabytes.
  it_ds = ds.to_iter_dataset(grain.ReadOptions(num_threads=read_threads,
                                               prefetch_buffer_size=prefetch_batches))
  if worker_count > 0:
    it_ds = it_ds.mp_prefetch(grain.MultiprocessingOptions(num_workers=worker_count))
  return iter(it_ds)
