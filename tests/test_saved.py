"""faceshop_jax.saved: one manifest + orbax variables, atomic, versioned, never over a stranger."""
import json
import os

import numpy as np
import pytest

from faceshop_jax import saved

MANIFEST = 'thing.json'


def _write(directory, value=1.0, extra=None):
  return saved.write(str(directory), MANIFEST, {'what': 'a test'}, 3,
                     {'weights': {'w': np.full((2, 3), value, np.float32)}}, extra=extra)


def test_round_trip(tmp_path):
  path = _write(tmp_path / 'save', 2.0)
  assert path == str(tmp_path / 'save') and saved.is_saved(path, MANIFEST)
  manifest = saved.read_manifest(path, MANIFEST, 3, 'thing', 'make one')
  assert manifest == {'format': 3, 'what': 'a test'}
  restored = saved.restore(path, 'weights')
  np.testing.assert_array_equal(restored['w'], np.full((2, 3), 2.0))
  target = saved.abstract({'w': np.zeros((2, 3), np.float32)})
  assert target['w'].shape == (2, 3) and target['w'].sharding is not None
  np.testing.assert_array_equal(saved.restore(path, 'weights', target)['w'], restored['w'])


def test_a_save_replaces_a_save_but_no_other_directory(tmp_path):
  _write(tmp_path / 'save', 1.0)
  _write(tmp_path / 'save', 5.0)
  np.testing.assert_array_equal(saved.restore(tmp_path / 'save', 'weights')['w'], 5.0)
  assert sorted(os.listdir(tmp_path)) == ['save']
  (tmp_path / 'mine').mkdir()
  (tmp_path / 'mine' / 'notes.txt').write_text('keep')
  with pytest.raises(FileExistsError, match='holds no thing.json; refusing to overwrite'):
    _write(tmp_path / 'mine')
  assert os.listdir(tmp_path / 'mine') == ['notes.txt']


def test_a_crash_leaves_the_previous_save(tmp_path):
  _write(tmp_path / 'save', 1.0)

  def crash(staging):
    (open(os.path.join(staging, 'half.bin'), 'w')).close()
    raise OSError('disk full')

  with pytest.raises(OSError, match='disk full'):
    _write(tmp_path / 'save', 9.0, extra=crash)
  assert sorted(os.listdir(tmp_path)) == ['save']
  np.testing.assert_array_equal(saved.restore(tmp_path / 'save', 'weights')['w'], 1.0)
  with pytest.raises(OSError, match='disk full'):
    _write(tmp_path / 'new', 9.0, extra=crash)
  assert sorted(os.listdir(tmp_path)) == ['save']


def test_missing_and_other_format_manifests(tmp_path):
  with pytest.raises(FileNotFoundError, match=r'holds no thing \(thing.json is missing\); make one'):
    saved.read_manifest(str(tmp_path), MANIFEST, 3, 'thing', 'make one')
  (tmp_path / MANIFEST).write_text(json.dumps({'format': 2}))
  with pytest.raises(ValueError, match='holds thing format 2; this code reads format 3'):
    saved.read_manifest(str(tmp_path), MANIFEST, 3, 'thing', 'make one')
