"""Talking-face driving: the motion read from synthetic clips of known motion, held misses,
smoothing, the driven portraits, and the animate command end to end and on bad input.

The driving clips are the synthetic world's (driving.synthetic_clip, 64², the packaged
reconstructors' size): one person with a jawOpen ramp seen from the front, and neutral with a yaw
ramp. The yaw is read by synthetic64, the reconstructor that drives by default. The jaw ramp is
read by judge64: synthetic64's expression head barely beats the mean (its README) and its
jawOpen reading flattens at about 0.15-0.2 from jawOpen 0.4 on, so a monotone reading of the whole
ramp tests that net, not the tracking; judge64 reads it (0.1 to 0.75 on this person).
"""
import dataclasses
import json
import os

import numpy as np
from PIL import Image
import pytest

from faceshop_jax import driving
from faceshop_jax import edit
from faceshop_jax import face_model
from faceshop_jax import geometry
from faceshop_jax import inference
from faceshop_jax import inversion
from faceshop_jax import media
from faceshop_jax.analysis import weights
from faceshop_jax.face_model import prior as prior_lib
from tests.cli import run_module

FRAMES = 8  # per ramp
SIZE = 64
YAW_RAMP = np.linspace(-0.6, 0.6, FRAMES)
SMOOTHING = 1.0  # the command's default sigma, frames
BLANK = 128  # the grey of frames without a face


@pytest.fixture(scope='module')
def model():
  return face_model.load('embedded')


@pytest.fixture(scope='module')
def clips(model):
  """{'jaw': uint8 [8, 64, 64, 3] jawOpen 0 -> 1 frontal, 'yaw': neutral, yaw -0.6 -> 0.6}."""
  expression = np.zeros((2 * FRAMES, model.n_exp), np.float32)
  expression[:FRAMES, model.expression_names.index('jawOpen')] = np.linspace(0, 1, FRAMES)
  yaw = np.concatenate([np.zeros(FRAMES), YAW_RAMP])
  frames = driving.synthetic_clip(model, expression, yaw, np.zeros(2 * FRAMES), SIZE, seed=0)
  return {'jaw': frames[:FRAMES], 'yaw': frames[FRAMES:]}


@pytest.fixture(scope='module')
def synthetic64():
  return weights.load_role_net('synthetic64', 'reconstructor')


def _with_blanks(frames, positions):
  """frames with a grey frame inserted before each of the (increasing) positions of the result."""
  out = list(frames)
  for position in positions:
    out.insert(position, np.full_like(frames[0], BLANK))
  return np.stack(out)


def test_a_jaw_ramp_is_read_rising_and_monotone_after_smoothing(model, clips):
  judge = weights.load_role_net('judge64', 'reconstructor')
  motion = driving.track(clips['jaw'], judge, model, aligned=True)
  assert motion.found.all()
  jaw = driving.smooth(motion, SMOOTHING).expression[:, model.expression_names.index('jawOpen')]
  assert np.all(np.diff(jaw) >= 0), jaw
  assert jaw[-1] - jaw[0] > 0.4, jaw


def test_a_yaw_ramp_is_read_back_monotone(model, clips, synthetic64):
  motion = driving.track(clips['yaw'], synthetic64, model, aligned=True)
  assert motion.found.all()
  assert np.all(np.diff(motion.yaw) > 0), motion.yaw
  assert np.abs(motion.yaw - YAW_RAMP).mean() < 0.08, motion.yaw
  assert np.abs(motion.pitch).max() < 0.1, motion.pitch


def test_frames_without_a_face_hold_the_last_good_values(model, clips, synthetic64):
  blanks = [0, 3, 4]  # a leading miss, then two in a row
  motion = driving.track(_with_blanks(clips['jaw'], blanks), synthetic64, model, aligned=True)
  np.testing.assert_array_equal(np.flatnonzero(~motion.found), blanks)
  assert [motion.reasons[t] for t in blanks] == ['no face'] * len(blanks)
  for t, source in ((0, 1), (3, 2), (4, 2)):  # leading misses take the first good frame's values
    for values in (motion.expression, motion.yaw, motion.pitch):
      np.testing.assert_array_equal(values[t], values[source])
  clean = driving.track(clips['jaw'], synthetic64, model, aligned=True)
  np.testing.assert_allclose(motion.expression[motion.found], clean.expression, atol=1e-5)


def test_unaligned_frames_are_framed_from_the_face_not_its_place(model, synthetic64):
  """A real face (scikit-image's astronaut), then the same face moved, turned in the picture
  plane and shrunk, then no face: the framing (prepare's) undoes the move, so the reading hardly
  changes."""
  skimage_data = pytest.importorskip('skimage.data')
  photo = skimage_data.astronaut()
  moved = Image.fromarray(photo).rotate(8, translate=(-40, 30), fillcolor=(90, 90, 90))
  canvas = np.full_like(photo, 90)
  canvas[60:460, 100:500] = np.asarray(moved.resize((400, 400), Image.LANCZOS))
  motion = driving.track(np.stack([photo, canvas, np.full_like(photo, BLANK)]), synthetic64, model,
                         aligned=False)
  np.testing.assert_array_equal(motion.found, [True, True, False])
  assert abs(motion.yaw[1] - motion.yaw[0]) < 0.1 and abs(motion.pitch[1] - motion.pitch[0]) < 0.1
  assert np.abs(motion.expression[1] - motion.expression[0]).max() < 0.1


def test_a_clip_without_any_face_is_an_error(model, synthetic64):
  with pytest.raises(ValueError, match='No usable face in any of the 3 driving frames'):
    driving.track(np.full((3, SIZE, SIZE, 3), BLANK, np.uint8), synthetic64, model, aligned=True)


def _motion(expression, yaw, pitch):
  frames = len(yaw)
  return driving.Track(np.asarray(expression, np.float32), np.asarray(yaw, np.float32),
                       np.asarray(pitch, np.float32), np.ones(frames, bool), ('',) * frames)


def test_smoothing_keeps_ramps_monotone_and_removes_jitter():
  rng = np.random.default_rng(0)
  frames = 40
  for _ in range(5):  # random non-decreasing sequences stay non-decreasing
    ramp = np.cumsum(rng.exponential(size=frames) * (rng.random(frames) < 0.5))
    smoothed = driving.smooth(_motion(ramp[:, None], ramp, -ramp), SMOOTHING)
    assert np.all(np.diff(smoothed.yaw) >= -1e-9) and np.all(np.diff(smoothed.pitch) <= 1e-9)
    assert np.all(np.diff(smoothed.expression[:, 0]) >= -1e-9)
  amplitude = 0.03  # of a frame-to-frame alternation, above half the ramp's step (0.026)
  jitter = amplitude * (-1.0)**np.arange(frames)
  ramp = np.linspace(0, 1, frames) + jitter  # not monotone: every other step goes down
  assert np.any(np.diff(ramp) < 0)
  smoothed = driving.smooth(_motion(ramp[:, None], ramp, jitter), SMOOTHING)
  assert np.all(np.diff(smoothed.yaw) > 0)
  # The jitter alone: below 2 % of its amplitude away from the ends (where 'nearest' repeats it).
  assert np.abs(smoothed.pitch[4:-4]).max() < 0.02 * amplitude
  np.testing.assert_array_equal(driving.smooth(_motion(ramp[:, None], ramp, jitter), 0.0).yaw,
                                ramp.astype(np.float32))


def test_clip_keeps_the_motion_in_the_trained_range(model):
  prior = prior_lib.PriorConfig()
  expression = np.full((2, model.n_exp), 1.5, np.float32)
  expression[1] = -0.5
  motion = driving.clip(_motion(expression, [2.0, -2.0], [-1.0, 1.0]), model)
  np.testing.assert_allclose(motion.yaw, [prior.max_yaw, -prior.max_yaw])
  np.testing.assert_allclose(motion.pitch, [-prior.max_pitch, prior.max_pitch])
  assert motion.expression.max() == 1.0 and motion.expression.min() == 0.0


@pytest.fixture(scope='module')
def bundle(gan_workdir):
  return inference.load_from_workdir(gan_workdir)


def test_the_driven_portrait_is_the_seed_with_each_frames_expression_and_view(bundle, model):
  expression = np.zeros((3, model.n_exp), np.float32)
  expression[:, model.expression_names.index('jawOpen')] = [0.0, 0.5, 1.0]
  motion = _motion(expression, [-0.3, 0.0, 0.4], [0.1, 0.0, -0.2])
  portrait = driving.driven_portrait(bundle, 5, motion)
  seed = edit.from_seeds(bundle, [5])
  parts, own = (bundle.face_model.split_coeffs(p.coeffs) for p in (portrait, seed))
  np.testing.assert_array_equal(parts.expression, expression)
  np.testing.assert_array_equal(portrait.base_expression, np.repeat(own.expression, 3, 0))
  np.testing.assert_array_equal(parts.identity, np.repeat(own.identity, 3, 0))
  np.testing.assert_array_equal(parts.gamma, np.repeat(own.gamma, 3, 0))
  np.testing.assert_array_equal(portrait.conditioning_camera,
                                np.repeat(seed.conditioning_camera, 3, 0))
  yaw, pitch = geometry.yaw_pitch_from_camera(portrait.camera)
  np.testing.assert_allclose(yaw, motion.yaw, atol=1e-5)
  np.testing.assert_allclose(pitch, motion.pitch, atol=1e-5)
  with pytest.raises(ValueError, match='pass it through driving.clip'):
    driving.driven_portrait(bundle, 5, _motion(expression, [1.5, 0, 0], [0, 0, 0]))


def test_an_inverted_person_is_driven_like_the_seed_it_holds(bundle, model):
  motion = _motion(np.zeros((2, model.n_exp), np.float32), [-0.2, 0.2], [0.0, 0.1])
  personal = dataclasses.replace(
      bundle, portrait=inversion.portrait_record(edit.from_seeds(bundle, [5])))
  np.testing.assert_array_equal(driving.drive(personal, [None], motion),
                                driving.drive(bundle, [5], motion))


def test_side_by_side_and_strip_sizes():
  driving_frames = np.zeros((4, 60, 90, 3), np.uint8)
  driven = np.ones((2, 4, 32, 32, 3), np.uint8)
  assert driving.side_by_side(driving_frames, driven[0]).shape == (4, 32, 48 + 32, 3)
  strip = driving.frame_strip(driving_frames, driven, 3)
  assert strip.shape == (3 * 34 + 2, 3 * 34 + 2, 3)


def test_read_frames_from_a_directory_a_gif_and_bad_paths(tmp_path, clips):
  frames = clips['jaw'][:3]
  folder = tmp_path / 'frames'
  folder.mkdir()
  for name, frame in zip(('b.png', 'c.jpg', 'a.png'), (frames[1], frames[2], frames[0])):
    Image.fromarray(frame).save(folder / name, quality=95)
  (folder / 'notes.txt').write_text('not a frame')
  read = driving.read_frames(str(folder))
  assert read.shape == (3, SIZE, SIZE, 3)
  np.testing.assert_array_equal(read[:2], frames[:2])  # name order; the PNGs exactly
  gif = media.write_video(str(tmp_path / 'clip.gif'), frames)
  assert driving.read_frames(gif).shape == (3, SIZE, SIZE, 3)
  with pytest.raises(FileNotFoundError):
    driving.read_frames(str(tmp_path / 'missing.mp4'))
  (tmp_path / 'empty').mkdir()
  with pytest.raises(ValueError, match='No frames in'):
    driving.read_frames(str(tmp_path / 'empty'))
  (tmp_path / 'broken.mp4').write_bytes(os.urandom(3000))
  with pytest.raises(ValueError, match='Cannot read the driving video'):
    driving.read_frames(str(tmp_path / 'broken.mp4'))
  Image.fromarray(np.zeros((10, 20, 3), np.uint8)).save(folder / 'd.png')
  with pytest.raises(ValueError, match='differ in size'):
    driving.read_frames(str(folder))


def _write_frames(folder, frames):
  folder.mkdir()
  for t, frame in enumerate(frames):
    Image.fromarray(frame).save(folder / f'frame{t:03d}.png')
  return str(folder)


def test_the_command_writes_driven_videos_a_track_and_a_strip(gan_workdir, clips, tmp_path):
  frames = _with_blanks(clips['jaw'], [4])
  driving_dir = _write_frames(tmp_path / 'driving', frames)
  out = tmp_path / 'out'
  result = run_module('faceshop_jax.animate', f'--driving={driving_dir}',
                      f'--workdir={gan_workdir}', '--seeds=0,1', '--aligned', f'--out={out}')
  assert result.returncode == 0, result.stderr[-3000:]
  for seed in (0, 1):
    video = media.read_video(str(out / f'seed{seed}_driven.mp4'))
    assert video.shape == (len(frames), 32, 32 + 32, 3)  # driving (64² shown at 32²) | driven
  track = json.loads((out / 'track.json').read_text())
  assert [frame['found'] for frame in track['frames']] == [t != 4 for t in range(len(frames))]
  assert track['frames'][4]['reason'] == 'no face'
  assert len(track['units']) == 5 and set(track['frames'][0]['expression']) == set(track['units'])
  strip = np.asarray(Image.open(out / 'strip.png'))
  assert strip.shape == (3 * 34 + 2, 6 * 34 + 2, 3)  # driving + 2 seeds, 6 moments
  lines = result.stdout.strip().splitlines()
  assert '4 (no face)' in lines[-2]
  assert str(out) in lines[-1] and 'python -m faceshop_jax.serve' in lines[-1]


def test_the_command_refuses_bad_input_and_writes_nothing(gan_workdir, tmp_path):
  (tmp_path / 'broken.mp4').write_bytes(os.urandom(3000))
  blank = _write_frames(tmp_path / 'blank', np.full((3, SIZE, SIZE, 3), BLANK, np.uint8))
  for source, message in ((tmp_path / 'missing.mp4', 'animate: No driving video'),
                          (tmp_path / 'broken.mp4', 'animate: Cannot read the driving video'),
                          (blank, 'animate: No usable face in any of the 3 driving frames')):
    out = tmp_path / 'out'
    result = run_module('faceshop_jax.animate', f'--driving={source}', f'--workdir={gan_workdir}',
                        '--aligned', f'--out={out}')
    assert result.returncode != 0
    assert message in result.stderr, result.stderr[-2000:]
    assert not out.exists()
