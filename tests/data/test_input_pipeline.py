"""The grain pipeline: host shards, determinism, resumable state, worker processes."""
import ast
import json
import os

from absl import flags
import fake_portraits  # tests/data/fake_portraits.py
import grain
import numpy as np
import pytest

from data_pipelines import builders
from faceshop_jax import data
from faceshop_jax.data import input_pipeline

ONE_HOST = grain.sharding.ShardOptions(0, 1)


@pytest.fixture(scope='module')
def train_source(synthetic_data_dir):
  return data.open_split(fake_portraits.NAME, 'train', synthetic_data_dir)


def _take(iterator, n):
  return [next(iterator) for _ in range(n)]


def _assert_same_batches(a, b):
  assert len(a) == len(b)
  for x, y in zip(a, b):
    assert x.keys() == y.keys()
    for key in x:
      np.testing.assert_array_equal(x[key], y[key], err_msg=key)


@pytest.mark.parametrize('drop_remainder, sizes', [(False, [13, 12]), (True, [12, 12])])
def test_hosts_get_disjoint_shards_covering_the_split(train_source, drop_remainder, sizes):
  seeds = []
  for host in range(2):
    shard = grain.sharding.ShardOptions(host, 2, drop_remainder=drop_remainder)
    ds = data.batched_dataset(train_source, global_batch_size=2, train=False, shard=shard)
    seeds.append([int(s) for batch in ds for s in batch['seed']])
  assert [len(s) for s in seeds] == sizes
  assert not set(seeds[0]) & set(seeds[1])
  assert len(set(seeds[0]) | set(seeds[1])) == sum(sizes)
  if not drop_remainder:
    assert set(seeds[0]) | set(seeds[1]) == set(range(fake_portraits.TRAIN_COUNT))


def test_train_batches_are_deterministic_epochs_of_the_shard(train_source):
  runs = [_take(data.make_train_iterator(train_source, global_batch_size=5, seed=7, shard=ONE_HOST),
                10) for _ in range(2)]
  _assert_same_batches(*runs)
  batch = runs[0][0]
  assert batch['image'].shape == (5, 16, 16, 3) and batch['image'].dtype == np.uint8
  assert batch['parsing'].shape == (5, 16, 16) and batch['coeffs'].shape == (5, 7)
  # 25 records in batches of 5: batches 0-4 are one shuffled epoch, 5-9 the next, shuffled anew.
  epochs = [np.concatenate([b['seed'] for b in runs[0][i:i + 5]]) for i in (0, 5)]
  for epoch in epochs:
    assert sorted(epoch) == list(range(fake_portraits.TRAIN_COUNT))
  assert list(epochs[0]) != list(epochs[1]) and list(epochs[0]) != sorted(epochs[0])
  other_seed = data.make_train_iterator(train_source, global_batch_size=5, seed=8, shard=ONE_HOST)
  assert list(next(other_seed)['seed']) != list(epochs[0][:5])


def test_hosts_read_disjoint_parts_of_the_one_host_global_batches(train_source):
  """2 hosts' training parts, concatenated in host order, are the 1-host global batches, so a run's
  batches do not depend on its host count; within an epoch no record is read twice."""
  one_host = _take(data.make_train_iterator(train_source, global_batch_size=4, seed=7,
                                            shard=ONE_HOST, keys=('seed',)), 12)
  parts = [_take(data.make_train_iterator(
      train_source, global_batch_size=4, seed=7, shard=grain.sharding.ShardOptions(host, 2),
      keys=('seed',)), 12) for host in range(2)]
  assert parts[0][0]['seed'].shape == (2,)
  _assert_same_batches(one_host, [{'seed': np.concatenate([a['seed'], b['seed']])}
                                  for a, b in zip(*parts)])
  # 25 records: global batches 0-5 (24 records) lie in the first epoch.
  first_epoch = [int(s) for host in parts for batch in host[:6] for s in batch['seed']]
  assert len(first_epoch) == len(set(first_epoch)) == 24


def test_restored_state_continues_with_the_same_batches(train_source):
  make = lambda: data.make_train_iterator(  # noqa: E731
      train_source, global_batch_size=4, seed=3, shard=ONE_HOST, keys=('seed', 'coeffs'))
  original = make()
  _take(original, 4)
  state = json.loads(json.dumps(original.get_state()))  # What a checkpoint stores.
  expected = _take(original, 8)  # Crosses the epoch boundary (25 records, 4 per batch).
  restored = make()
  restored.set_state(state)
  _assert_same_batches(_take(restored, 8), expected)


def test_grain_checkpoint_handler_round_trip(train_source, tmp_path):
  from etils import epath  # pylint: disable=g-import-not-at-top
  make = lambda: data.make_train_iterator(  # noqa: E731
      train_source, global_batch_size=4, seed=3, shard=ONE_HOST, keys=('seed',))
  original = make()
  _take(original, 3)
  handler = grain.checkpoint.CheckpointHandler()
  handler.save(epath.Path(tmp_path), args=grain.checkpoint.CheckpointSave(original))
  restored = handler.restore(epath.Path(tmp_path), args=grain.checkpoint.CheckpointRestore(make()))
  _assert_same_batches(_take(restored, 3), _take(original, 3))


def test_worker_processes_give_the_in_process_batches(train_source):
  flags.FLAGS.mark_as_parsed()  # grain's workers read absl flags.
  kwargs = dict(global_batch_size=4, seed=5, shard=ONE_HOST, keys=('seed', 'image'))
  expected = _take(data.make_train_iterator(train_source, **kwargs), 9)
  workers = data.make_train_iterator(train_source, worker_count=2, **kwargs)
  try:
    _assert_same_batches(_take(workers, 6), expected[:6])
    state = workers.get_state()
  finally:
    workers.close()
  restored = data.make_train_iterator(train_source, worker_count=2, **kwargs)
  try:
    restored.set_state(state)
    _assert_same_batches(_take(restored, 3), expected[6:])
  finally:
    restored.close()


def test_eval_is_one_ordered_pass_in_full_batches(synthetic_data_dir):
  source = data.open_split(fake_portraits.NAME, 'train', synthetic_data_dir)
  batches = list(data.make_eval_iterator(source, global_batch_size=4, shard=ONE_HOST))
  assert len(batches) == fake_portraits.TRAIN_COUNT // 4
  np.testing.assert_array_equal(np.concatenate([b['seed'] for b in batches]),
                                [source[i]['seed'] for i in range(24)])


def test_open_split_reads_files_without_running_builder_code(tmp_path, fake_renderer, monkeypatch):
  """A registered config's builder needs the face model for D; reading must not."""
  del fake_renderer
  monkeypatch.setattr(builders.SyntheticPortraits, '_n_coeffs', fake_portraits.N_COEFFS)
  builders.SyntheticPortraits(data_dir=str(tmp_path), config='r32_n500').download_and_prepare()
  monkeypatch.setattr(builders.SyntheticPortraits, '_info', lambda self: pytest.fail('code ran'))
  source = data.open_split('synthetic_portraits/r32_n500', 'test', str(tmp_path))
  assert len(source) == 50 and source[0]['coeffs'].shape == (fake_portraits.N_COEFFS,)


def test_text_fields_are_left_out_and_keys_select():
  source = [{'x': np.full(3, i, np.float32), 'source': f'r{i}'.encode()} for i in range(4)]
  everything = data.batched_dataset(source, global_batch_size=2, train=False, shard=ONE_HOST)
  assert list(everything[0]) == ['x'] and everything[0]['x'].shape == (2, 3)
  with pytest.raises(ValueError, match='does not split over 3 hosts'):
    data.batched_dataset(source, global_batch_size=4, train=False,
                         shard=grain.sharding.ShardOptions(0, 3))


def test_library_never_imports_data_pipelines():
  folder = os.path.dirname(input_pipeline.__file__)
  for name in os.listdir(folder):
    if name.endswith('.py'):
      tree = ast.parse(open(os.path.join(folder, name)).read())
      imported = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
      imported += [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
      assert not [m for m in imported if m.startswith('data_pipelines')], name
