"""Endless batches made by a function of their index, as a checkpointable grain iterator.

For data drawn on the fly (e.g. the synthetic world's control prior): batch k of host h is
make_batch(k · hosts + h), so hosts never repeat each other's batches, a run is a function of the
seed alone, and the iterator state (the next index) resumes exactly. When make_batch(i) makes items
i·n … (i+1)·n − 1 of one endless sequence (n the batch per host), as the vae and analysis stages'
do, global batch k is items k·B … (k+1)·B − 1 whatever the host count.
"""
from typing import Callable

import grain
import jax
import numpy as np

_ENDLESS = 1 << 40


def generated_batches(make_batch: Callable[[int], dict[str, np.ndarray]],
                      process_index: int | None = None, process_count: int | None = None,
                      prefetch: int = 2) -> grain.DatasetIterator:
  """A grain iterator over make_batch(index) for this host's indices (see module docstring).

  One background thread makes up to `prefetch` batches ahead (grain's default of 500 would hold
  hundreds of batches in memory).
  """
  index = jax.process_index() if process_index is None else process_index
  count = jax.process_count() if process_count is None else process_count
  dataset = grain.MapDataset.range(index, _ENDLESS, count).map(make_batch)
  return iter(dataset.to_iter_dataset(grain.ReadOptions(num_threads=1,
                                                        prefetch_buffer_size=prefetch)))
