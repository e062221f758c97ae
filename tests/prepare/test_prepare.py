"""The preparation command: a real photo is aligned, bad inputs are skipped, records are whole."""
import json
import os

import numpy as np
from PIL import Image
import pytest

from data_pipelines.prepare import detect
from data_pipelines.prepare import fit as fit_lib
from data_pipelines.prepare import prepare
from faceshop_jax import face_model
from faceshop_jax import geometry
from tests.prepare.conftest import FIT_CONFIG
from tests.prepare.conftest import FIT_SIZE

SIZE = 256


def _save(image, path):
  Image.fromarray(image).save(path)
  return path


def _detection(size):
  return detect.Detection(np.array([0, 0, size, size], np.float32), np.zeros((5, 2)), 0.99)


@pytest.mark.parametrize('sizes, reason', [
    ((), 'no face'),
    ((120, 70), 'several faces'),
    ((50,), 'face too small'),
])
def test_choose_face_skips(sizes, reason):
  with pytest.raises(prepare.Skip) as skip:
    prepare.choose_face([_detection(s) for s in sizes])
  assert skip.value.reason == reason


def test_choose_face_keeps_a_dominant_face():
  faces = [_detection(120), _detection(40)]
  assert prepare.choose_face(faces) is faces[0]


def test_read_photo_rejects_bad_files(tmp_path, astronaut):
  (tmp_path / 'random.jpg').write_bytes(os.urandom(2000))
  png = _save(astronaut, tmp_path / 'full.png').read_bytes()
  (tmp_path / 'truncated.png').write_bytes(png[:len(png) // 2])
  _save(astronaut[..., 0], tmp_path / 'gray_l.png')
  _save(np.repeat(astronaut[..., :1], 3, axis=-1), tmp_path / 'gray_rgb.png')
  for name, reason in [('random.jpg', 'unreadable'), ('truncated.png', 'unreadable'),
                       ('gray_l.png', 'grayscale'), ('gray_rgb.png', 'grayscale')]:
    with pytest.raises(prepare.Skip) as skip:
      prepare.read_photo(str(tmp_path / name))
    assert skip.value.reason == reason, name
  assert prepare.read_photo(str(tmp_path / 'full.png')).shape == (512, 512, 3)


def _run(images, out):
  return prepare.run(str(images), str(out), SIZE, config=FIT_CONFIG, fit_size=FIT_SIZE)


def test_a_folder_of_one_good_and_several_bad_photos(tmp_path, astronaut):
  images, out = tmp_path / 'photos', tmp_path / 'out'
  (images / 'sub').mkdir(parents=True)
  _save(astronaut, images / 'sub' / 'astronaut.jpg')
  _save(np.concatenate([astronaut, astronaut], axis=1), images / 'twins.png')
  _save(np.asarray(Image.fromarray(astronaut).resize((200, 200))), images / 'tiny.png')
  ramp = np.linspace(0, 255, 256, dtype=np.uint8)
  _save(np.stack([np.tile(ramp, (256, 1)), np.tile(ramp[:, None], (1, 256)),
                  np.full((256, 256), 90, np.uint8)], axis=-1), images / 'wall.png')
  _save(astronaut[..., 1], images / 'gray.png')
  (images / 'broken.jpeg').write_bytes(b'\xff\xd8\xff\xe0 not really a jpeg')
  (images / 'notes.txt').write_text('not a photo')
  # Leftovers of an earlier, killed run: a temporary file and a partial record of a bad photo.
  out.mkdir()
  (out / '.twins.png.123.tmp').write_bytes(b'half')
  _save(astronaut, out / 'twins.png')

  report = _run(images, out)

  assert report['prepared'] == ['sub/astronaut.jpg']
  assert {s['file']: s['reason'] for s in report['skipped']} == {
      'broken.jpeg': 'unreadable', 'gray.png': 'grayscale', 'tiny.png': 'face too small',
      'twins.png': 'several faces', 'wall.png': 'no face'}
  assert prepare.summary(report) == ('prepared 1, reused 0 of 6 photos; skipped 1 face too small, '
                                     '1 grayscale, 1 no face, 1 several faces, 1 unreadable')
  assert sorted(p.relative_to(out).as_posix() for p in out.rglob('*')) == [
      'dataset.json', 'report.json', 'sub', 'sub/astronaut.npy', 'sub/astronaut.png',
      'sub/astronaut_lm68.npy']
  assert json.loads((out / 'report.json').read_text()) == report

  (name, camera), = json.loads((out / 'dataset.json').read_text())['labels']
  assert name == 'sub/astronaut.png'
  image = np.asarray(Image.open(out / name))
  landmarks = np.load(out / 'sub' / 'astronaut_lm68.npy')
  coeffs = np.load(out / 'sub' / 'astronaut.npy')
  model = face_model.load_embedded()
  assert image.shape == (SIZE, SIZE, 3) and landmarks.shape == (68, 2)
  assert coeffs.shape == (model.n_coeffs,)
  parts = model.split_coeffs(coeffs)
  np.testing.assert_array_equal(parts.translation, 0)
  # The canonical head (angle zero) seen by the recorded camera is the aligned photo's template:
  # the photo's eyes sit within a few pixels of the mesh's.
  canonical = model.merge_coeffs(parts._replace(angle=np.zeros(3, np.float32)))
  projected = fit_lib.project_landmarks(model, canonical, np.asarray(camera, np.float32), SIZE)
  eye_error = np.linalg.norm(face_model.five_points(projected)[:2]
                             - face_model.five_points(landmarks)[:2], axis=-1)
  assert np.all(eye_error <= 4.0), eye_error
  yaw, pitch = geometry.yaw_pitch_from_camera(np.asarray(camera, np.float32))
  assert abs(np.degrees(yaw)) < 15 and abs(np.degrees(pitch)) < 15  # she faces the camera

  # A re-run reuses the whole record, rewrites nothing and gives the same cameras.
  stamp = os.stat(out / name).st_mtime_ns
  again = _run(images, out)
  assert again['reused'] == ['sub/astronaut.jpg'] and again['prepared'] == []
  assert os.stat(out / name).st_mtime_ns == stamp
  np.testing.assert_allclose(json.loads((out / 'dataset.json').read_text())['labels'][0][1],
                             camera, atol=1e-6)
