"""MP4 (PyAV) and GIF (Pillow) video files and frame strips: round trips, fallback, errors."""
import os

import numpy as np
import pytest
from PIL import Image

from faceshop_jax import media


def _moving_gradient(count=10, height=48, width=64):
  """Smooth uint8 [count, height, width, 3] frames whose pattern moves from frame to frame."""
  t, y, x = np.meshgrid(np.arange(count), np.arange(height), np.arange(width), indexing='ij')
  return np.stack([128 + 100 * np.sin(x / 10 + t / 3), 128 + 100 * np.cos(y / 8 - t / 4),
                   64 + x + y], axis=-1).astype(np.uint8)


def _mean_abs_error(a, b):
  return np.mean(np.abs(a.astype(np.float64) - b))


@pytest.mark.parametrize('name, max_error', [('orbit.mp4', 6), ('orbit.gif', 8)])
def test_round_trip(tmp_path, name, max_error):
  frames = _moving_gradient()
  path = str(tmp_path / name)
  assert media.write_video(path, frames, fps=25) == path
  decoded = media.read_video(path)
  assert decoded.shape == frames.shape and decoded.dtype == np.uint8
  assert _mean_abs_error(decoded, frames) < max_error
  assert os.listdir(tmp_path) == [name]


def test_odd_sized_mp4_is_padded_to_even_by_edge_replication(tmp_path):
  frames = _moving_gradient(count=4, height=47, width=63)
  path = media.write_video(str(tmp_path / 'odd.MP4'), frames)
  decoded = media.read_video(path)
  assert decoded.shape == (4, 48, 64, 3)
  padded = media.pad_to_even(frames)
  np.testing.assert_array_equal(padded[:, :47, :63], frames)
  np.testing.assert_array_equal(padded[:, 47], padded[:, 46])
  np.testing.assert_array_equal(padded[:, :, 63], padded[:, :, 62])
  assert _mean_abs_error(decoded, padded) < 6


def test_gif_loops_forever_at_the_frame_rate(tmp_path):
  path = media.write_video(str(tmp_path / 'orbit.gif'), _moving_gradient(count=3), fps=25)
  with Image.open(path) as image:
    assert image.info['loop'] == 0 and image.info['duration'] == 40


def test_missing_mp4_encoder_falls_back_to_gif(tmp_path, monkeypatch):
  monkeypatch.setattr(media, '_MP4_CODEC', 'no_such_encoder')
  frames = _moving_gradient(count=3)
  with pytest.warns(UserWarning, match='no no_such_encoder encoder'):
    written = media.write_video(str(tmp_path / 'orbit.mp4'), frames)
  assert written == str(tmp_path / 'orbit.gif')
  assert os.listdir(tmp_path) == ['orbit.gif']
  assert media.read_video(written).shape == frames.shape


@pytest.mark.parametrize('frames, message', [
    (np.zeros((2, 8, 8, 3), np.float32), 'uint8'),
    (np.zeros((2, 8, 8, 4), np.uint8), r'\[T, H, W, 3\]'),
    (np.zeros((8, 8, 3), np.uint8), r'\[T, H, W, 3\]'),
    (np.zeros((0, 8, 8, 3), np.uint8), 'T == 0'),
], ids=['float', 'rgba', 'one_image', 'no_frames'])
@pytest.mark.parametrize('extension', ['.mp4', '.gif'])
def test_bad_frames_are_an_error_and_write_nothing(tmp_path, frames, message, extension):
  with pytest.raises(ValueError, match=message):
    media.write_video(str(tmp_path / f'video{extension}'), frames)
  assert os.listdir(tmp_path) == []


def test_unknown_extension_is_an_error_naming_the_supported_ones(tmp_path):
  with pytest.raises(ValueError, match=r"'\.avi'.*\.mp4, \.gif"):
    media.write_video(str(tmp_path / 'video.avi'), _moving_gradient(count=2))
  with pytest.raises(ValueError, match=r'\.mp4, \.gif'):
    media.read_video(str(tmp_path / 'video.avi'))
  assert os.listdir(tmp_path) == []


def test_a_failed_encode_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
  def failing_write_mp4(path, frames, fps):
    with open(path, 'wb') as f:
      f.write(b'half a video')
    raise RuntimeError('encoder crashed')

  monkeypatch.setattr(media, '_write_mp4', failing_write_mp4)
  path = tmp_path / 'orbit.mp4'
  path.write_bytes(b'previous')
  with pytest.raises(RuntimeError, match='encoder crashed'):
    media.write_video(str(path), _moving_gradient(count=2))
  assert os.listdir(tmp_path) == ['orbit.mp4'] and path.read_bytes() == b'previous'


def test_frame_strip_shows_evenly_spaced_frames_side_by_side():
  frames = np.broadcast_to(np.arange(10, dtype=np.uint8)[:, None, None, None], (10, 4, 5, 3))
  strip = media.frame_strip(frames, 4)
  assert strip.shape == (4, 20, 3) and strip.dtype == np.uint8
  np.testing.assert_array_equal(strip[0, ::5, 0], [0, 3, 6, 9])
  np.testing.assert_array_equal(media.frame_strip(frames, 1), frames[0])
  assert media.frame_strip(frames, 3, pad=2).shape == (8, 23, 3)
  for count in (0, 11):
    with pytest.raises(ValueError, match=r'count must be in \[1, 10\]'):
      media.frame_strip(frames, count)
