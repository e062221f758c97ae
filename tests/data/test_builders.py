"""The tfds builders: what is written is what is read back, and bad inputs are named."""
import importlib
import json
import os
import sys

import fake_portraits  # tests/data/fake_portraits.py
import numpy as np
from PIL import Image
import pytest
import scipy.io

from data_pipelines import builders
from data_pipelines.builders import common
from data_pipelines.builders import portrait_folder
from data_pipelines.builders import synthetic_portraits
from faceshop_jax import data

def _by(key, source):
  """{record[key] as str: record}; tfds gives Text fields back as bytes."""
  as_str = lambda v: v.decode() if isinstance(v, bytes) else str(v)  # noqa: E731
  return {as_str(record[key]): record for record in source}


@pytest.mark.parametrize('split, seeds', [
    ('train', range(fake_portraits.TRAIN_COUNT)),
    ('test', range(synthetic_portraits.TEST_SEED_OFFSET,
                   synthetic_portraits.TEST_SEED_OFFSET + fake_portraits.TEST_COUNT)),
])
def test_synthetic_round_trip(synthetic_data_dir, split, seeds):
  read = _by('seed', data.open_split(fake_portraits.NAME, split, synthetic_data_dir))
  expected = list(fake_portraits.generate_records(seeds, fake_portraits.RESOLUTION))
  assert sorted(read) == sorted(str(r['seed']) for r in expected)
  for want in expected:
    got = read[str(want['seed'])]
    for key in ('image', 'camera', 'coeffs', 'landmarks', 'parsing'):
      assert got[key].dtype == want[key].dtype and np.array_equal(got[key], want[key]), key


def test_synthetic_same_seeds_same_bytes(tmp_path, fake_renderer):
  del fake_renderer
  files = []
  for run in ('a', 'b'):
    builder = fake_portraits.build(tmp_path / run, resolution=8, train_count=6, test_count=2)
    files.append({name: open(os.path.join(builder.data_dir, name), 'rb').read()
                  for name in os.listdir(builder.data_dir) if '.array_record' in name})
  assert len(files[0]) == 2 and files[0] == files[1]


def test_synthetic_coefficient_size_mismatch_is_named(tmp_path, fake_renderer):
  del fake_renderer
  config = builders.SyntheticPortraitsConfig.sized(8, 2, 1, n_coeffs=fake_portraits.N_COEFFS + 1)
  with pytest.raises(ValueError, match='n_coeffs'):
    builders.SyntheticPortraits(data_dir=str(tmp_path), config=config).download_and_prepare()


def _save_png(path, array):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  Image.fromarray(array).save(path)


def _deep3d_mat(path, coeffs):
  sizes = (80, 64, 80, 3, 27, 3)
  parts = np.split(coeffs[None], np.cumsum(sizes)[:-1], axis=-1)
  scipy.io.savemat(path, dict(zip(common.DEEP3D_KEYS, parts)))


@pytest.fixture
def portraits(tmp_path):
  """A folder of 16² portraits: 4 complete (nested, .npy/.npz/.mat coefficients, landmarks from
  files and from landmarks.json, parsing maps), one without a camera, one without coefficients."""
  folder = str(tmp_path / 'portraits')
  rng = np.random.default_rng(0)
  truth, cameras, landmarks_json = {}, [], {}
  for i, suffix in enumerate(('.npy', '.npz', '.mat', '.npy', '.npy', None)):
    key = f'{i // 3:05d}/img{i:08d}.png'
    stem = os.path.join(folder, *key.split('/'))[:-4]
    record = {'image': rng.integers(0, 256, (16, 16, 3), dtype=np.uint8),
              'camera': rng.normal(size=25).astype(np.float32),
              'coeffs': rng.normal(size=257).astype(np.float32),
              'landmarks': rng.uniform(0, 16, (68, 2)).astype(np.float32),
              'parsing': rng.integers(0, 19, (16, 16), dtype=np.uint8)}
    _save_png(stem + '.png', record['image'])
    _save_png(stem + '_parsing.png', record['parsing'])
    if suffix == '.npy':
      np.save(stem + suffix, record['coeffs'])
    elif suffix == '.npz':
      np.savez(stem + suffix, coeffs=record['coeffs'])
    elif suffix == '.mat':
      _deep3d_mat(stem + suffix, record['coeffs'])
    if i % 2:
      landmarks_json[key] = record['landmarks'].tolist()
    else:
      np.save(stem + portrait_folder.LANDMARKS_SUFFIX, record['landmarks'])
    if i != 4:
      cameras.append([key, record['camera'].tolist()])
    truth[key] = record
  with open(os.path.join(folder, 'dataset.json'), 'w') as f:
    json.dump({'labels': cameras}, f)
  with open(os.path.join(folder, 'landmarks.json'), 'w') as f:
    json.dump(landmarks_json, f)
  skipped = {'00001/img00000004.png': 'no camera in dataset.json',
             '00001/img00000005.png': 'no coefficients (.npy/.npz/.mat)'}
  return folder, truth, skipped


def test_portrait_folder_round_trip_and_skip_list(tmp_path, portraits):
  folder, truth, skipped = portraits
  config = builders.PortraitFolderConfig(name='tiny', folder=folder, with_landmarks=True,
                                         with_parsing=True, test_fraction=0.25)
  builders.PortraitFolder(data_dir=str(tmp_path / 'tfds'), config=config).download_and_prepare()
  read = {split: _by('source', data.open_split('portrait_folder/tiny', split, str(tmp_path / 'tfds')))
          for split in ('train', 'test')}
  assert (len(read['train']), len(read['test'])) == (3, 1)
  assert set(read['train']) | set(read['test']) == set(truth) - set(skipped)
  for key, got in {**read['train'], **read['test']}.items():
    for field in ('image', 'camera', 'coeffs', 'landmarks', 'parsing'):
      assert np.array_equal(got[field], truth[key][field]), (key, field)
  reread = builders.PortraitFolder(data_dir=str(tmp_path / 'tfds'), config=config)
  assert reread.info.metadata['skipped'] == skipped


def test_portrait_folder_resizes_with_landmarks_and_parsing(tmp_path, portraits):
  folder, truth, _ = portraits
  config = builders.PortraitFolderConfig(name='r8', folder=folder, resolution=8,
                                         with_landmarks=True, with_parsing=True)
  builders.PortraitFolder(data_dir=str(tmp_path), config=config).download_and_prepare()
  for key, got in _by('source', data.open_split('portrait_folder/r8', 'train', str(tmp_path))).items():
    assert got['image'].shape == (8, 8, 3)
    np.testing.assert_allclose(got['landmarks'], truth[key]['landmarks'] / 2, rtol=1e-6)
    # NEAREST keeps every label a label of the full-size map.
    assert set(np.unique(got['parsing'])) <= set(np.unique(truth[key]['parsing']))


def test_portrait_folder_without_usable_images_is_named(tmp_path, portraits):
  empty = tmp_path / 'empty'
  empty.mkdir()
  config = builders.PortraitFolderConfig(name='empty', folder=str(empty))
  with pytest.raises(ValueError, match=f'No usable portrait in {empty}: expected images.*dataset.json'):
    builders.PortraitFolder(data_dir=str(tmp_path / 'tfds'), config=config).download_and_prepare()
  folder, _, _ = portraits
  os.remove(os.path.join(folder, 'dataset.json'))
  with pytest.raises(ValueError, match='(?s)found 6 images, none usable.*00000.png: no dataset.json'):
    portrait_folder.scan_folder(folder)


def test_coefficient_sets_round_trip(tmp_path):
  rng = np.random.default_rng(1)
  rows = rng.normal(size=(7, 257)).astype(np.float32)
  src = tmp_path / 'coeffs'
  (src / 'ravdess').mkdir(parents=True)
  np.save(src / 'single.npy', rows[0])
  np.save(src / 'stack.npy', rows[1:4])
  np.savez(src / 'ravdess' / 'clip.npz', coeffs=rows[4:6])
  _deep3d_mat(src / 'ravdess' / 'frame.mat', rows[6])
  expected = {'single.npy': rows[0], 'stack.npy#0': rows[1], 'stack.npy#1': rows[2],
              'stack.npy#2': rows[3], 'ravdess/clip.npz#0': rows[4], 'ravdess/clip.npz#1': rows[5],
              'ravdess/frame.mat': rows[6]}
  config = builders.CoefficientSetsConfig(name='mixed', path=str(src), test_fraction=0.3)
  builders.CoefficientSets(data_dir=str(tmp_path / 'tfds'), config=config).download_and_prepare()
  splits = [_by('source', data.open_split('coefficient_sets/mixed', s, str(tmp_path / 'tfds')))
            for s in ('train', 'test')]
  assert (len(splits[0]), len(splits[1])) == (5, 2)
  read = {**splits[0], **splits[1]}
  assert set(read) == set(expected)
  for source, row in expected.items():
    np.testing.assert_array_equal(read[source]['coeffs'], row)


def test_coefficient_sets_refuse_mixed_sizes(tmp_path):
  np.save(tmp_path / 'a.npy', np.zeros(257, np.float32))
  np.save(tmp_path / 'b.npy', np.zeros(245, np.float32))
  with pytest.raises(ValueError, match='b.npy holds 245 .*a.npy holds 257'):
    builders.coefficient_sets.read_coefficient_rows(str(tmp_path))


def test_hash_split_ignores_order_and_keeps_the_fraction():
  keys = [f'k{i}' for i in range(40)]
  split = common.hash_split(keys, 0.25)
  assert len(split['test']) == 10 and not set(split['test']) & set(split['train'])
  assert set(common.hash_split(keys[::-1], 0.25)['test']) == set(split['test'])
  assert 'test' not in common.hash_split(keys, 0.0)


@pytest.mark.parametrize('builder', [builders.PortraitFolder, builders.CoefficientSets])
def test_builders_without_named_configs_ask_for_one(tmp_path, builder):
  with pytest.raises(ValueError, match='has no named configs: pass config='):
    builder(data_dir=str(tmp_path))


def test_synthetic_builder_renders_the_real_world(tmp_path, monkeypatch):
  # The session's fake renderer may be installed: build with the real one.
  monkeypatch.delitem(sys.modules, synthetic_portraits.RENDERER_MODULE, raising=False)
  portraits = importlib.import_module(synthetic_portraits.RENDERER_MODULE)
  assert portraits.__file__.endswith(os.path.join('world', 'portraits.py'))
  config = synthetic_portraits.SyntheticPortraitsConfig.sized(resolution=32, train_count=3,
                                                              test_count=1)
  builder = synthetic_portraits.SyntheticPortraits(data_dir=str(tmp_path), config=config)
  builder.download_and_prepare()
  record = builder.as_data_source('train')[0]
  assert record['image'].shape == (32, 32, 3) and record['parsing'].shape == (32, 32)
  (expected,) = portraits.generate_records([record['seed']], 32)
  np.testing.assert_array_equal(record['image'], expected['image'])
  np.testing.assert_array_equal(record['parsing'], expected['parsing'])
  np.testing.assert_array_equal(record['coeffs'], expected['coeffs'])


def test_first_use_build_accepts_registered_and_custom_names(tmp_path, monkeypatch):
  from data_pipelines import build  # pylint: disable=g-import-not-at-top
  built = []
  monkeypatch.setattr(synthetic_portraits.SyntheticPortraits, 'download_and_prepare',
                      lambda self, *a, **k: built.append(self.builder_config.name))
  build.ensure_synthetic_portraits('synthetic_portraits/r32_n500', str(tmp_path))  # registered
  build.ensure_synthetic_portraits('synthetic_portraits/r16_n7', str(tmp_path))  # custom
  assert built == ['r32_n500', 'r16_n7']
  with pytest.raises(ValueError, match='like synthetic_portraits/r64_n2000'):
    build.ensure_synthetic_portraits('portrait_folder/ffhq', str(tmp_path))


def test_art_style_names_the_config_and_reaches_the_renderer(tmp_path, monkeypatch, fake_renderer):
  styles, render = [], fake_renderer.generate_records

  def recording_renderer(seeds, resolution, art_style):
    styles.append(art_style)
    return render(seeds, resolution)

  monkeypatch.setattr(fake_renderer, 'generate_records', recording_renderer)
  builder = fake_portraits.build(tmp_path, resolution=8, train_count=2, test_count=1,
                                 art_style='cartoon')
  assert builder.builder_config.name == 'r8_n2_cartoon' and styles == ['cartoon', 'cartoon']


def test_first_use_build_reads_the_art_style_from_the_name(tmp_path, monkeypatch):
  from data_pipelines import build  # pylint: disable=g-import-not-at-top
  built = []
  monkeypatch.setattr(synthetic_portraits.SyntheticPortraits, 'download_and_prepare',
                      lambda self, *a, **k: built.append((self.builder_config.name,
                                                          self.builder_config.art_style)))
  build.ensure_synthetic_portraits('synthetic_portraits/r16_n7_cartoon', str(tmp_path))
  build.ensure_synthetic_portraits('synthetic_portraits/r16_n7', str(tmp_path))
  assert built == [('r16_n7_cartoon', 'cartoon'), ('r16_n7', 'photo')]
