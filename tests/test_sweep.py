"""Control sweeps: each varies one factor only, R is the face model's render, the command's PNGs."""
import os

from absl import flags
import jax
import numpy as np
from PIL import Image
import pytest

from faceshop_jax import face_model as face_model_lib
from faceshop_jax import geometry
from faceshop_jax import edit
from faceshop_jax import inference
from faceshop_jax import models
from faceshop_jax import sweep as sweep_command
from faceshop_jax import visualize
from faceshop_jax.face_model import prior as prior_lib
from tests.cli import run_module

SEEDS = [0, 1]
IDENTITY_SEEDS = list(range(100, 107))  # the command's default --identity_seeds
FACTORS = face_model_lib.Coefficients._fields


@pytest.fixture(scope='module')
def embedded():
  return face_model_lib.load('embedded')


@pytest.fixture(scope='module')
def base(embedded):
  """Noise [2, 8] and prior coefficients [2, D] of two base seeds."""
  coeffs, _ = prior_lib.sample_controls(jax.random.PRNGKey(0), embedded, 2)
  return jax.random.normal(jax.random.PRNGKey(1), (2, 8)), coeffs


@pytest.fixture(scope='module')
def bundle(gan_workdir):
  return inference.load_from_workdir(gan_workdir)


@pytest.fixture(scope='module')
def sweeps(bundle):
  return {s.name: s for s in sweep_command.control_sweeps(bundle, SEEDS, IDENTITY_SEEDS)}


def _assert_fixed_except(model, sweep, base_noise, base_coeffs, factors=(), cameras_vary=False):
  """Every column keeps each seed's noise and coefficients outside `factors`; `factors` (and the
  cameras if cameras_vary) change from column to column, the same way for every seed."""
  columns = len(sweep.titles)
  np.testing.assert_array_equal(sweep.noise, np.repeat(base_noise[:, None], columns, axis=1))
  parts, base_parts = model.split_coeffs(sweep.coeffs), model.split_coeffs(base_coeffs)
  for name in FACTORS:
    part = np.asarray(getattr(parts, name))
    if name in factors:
      assert np.all(np.any(np.diff(part, axis=1) != 0, axis=-1)), name
      np.testing.assert_array_equal(part[1:], np.broadcast_to(part[:1], part[1:].shape))
    else:
      np.testing.assert_array_equal(
          part, np.repeat(np.asarray(getattr(base_parts, name))[:, None], columns, axis=1))
  cameras = np.asarray(sweep.cameras)
  np.testing.assert_array_equal(cameras[1:], np.broadcast_to(cameras[:1], cameras[1:].shape))
  if cameras_vary:
    assert np.all(np.any(np.diff(cameras[0], axis=0) != 0, axis=-1))
  else:
    np.testing.assert_allclose(cameras, np.broadcast_to(
        geometry.camera_from_yaw_pitch(0.0, 0.0), cameras.shape), atol=1e-6)


def test_pose_sweep_varies_the_camera_only(embedded, base):
  noise, coeffs = base
  sweep = sweep_command.pose_sweep(noise, coeffs)
  _assert_fixed_except(embedded, sweep, noise, coeffs, cameras_vary=True)
  yaw, pitch = geometry.yaw_pitch_from_camera(sweep.cameras[0])
  np.testing.assert_allclose(yaw, np.linspace(-0.6, 0.6, 7), atol=1e-5)
  np.testing.assert_allclose(pitch, 0.0, atol=1e-5)


def test_light_sweep_varies_gamma_only_from_the_right_to_the_left(embedded, base):
  noise, coeffs = base
  sweep = sweep_command.light_sweep(embedded, noise, coeffs, columns=5)
  _assert_fixed_except(embedded, sweep, noise, coeffs, factors=('gamma',))
  gamma = embedded.split_coeffs(sweep.coeffs).gamma[0]
  np.testing.assert_allclose(gamma[0], edit.light_gamma(-np.pi / 2, 0.0, 0.7), atol=1e-6)
  np.testing.assert_allclose(gamma[-1], edit.light_gamma(np.pi / 2, 0.0, 0.7), atol=1e-6)
  # SH coefficient 3 is −a1·c1·x: a light at the subject's right (−x) makes it positive.
  assert gamma[0, 3] > 0 > gamma[-1, 3]


def test_expression_sweep_opens_the_jaw_then_smiles(embedded, base):
  noise, coeffs = base
  sweep = sweep_command.expression_sweep(embedded, noise, coeffs)
  _assert_fixed_except(embedded, sweep, noise, coeffs, factors=('expression',))
  expression = embedded.split_coeffs(sweep.coeffs).expression[0]
  expected = [{}, {'jawOpen': 1 / 3}, {'jawOpen': 2 / 3}, {'jawOpen': 1.0},
              {'mouthSmileLeft': 1 / 3, 'mouthSmileRight': 1 / 3},
              {'mouthSmileLeft': 2 / 3, 'mouthSmileRight': 2 / 3},
              {'mouthSmileLeft': 1.0, 'mouthSmileRight': 1.0}]
  np.testing.assert_allclose(
      expression, np.stack([edit.expression_vector(embedded, e) for e in expected]),
      atol=1e-6)
  assert sweep.titles[0] == 'neutral' and sweep.titles[-1] == 'smile 1.00'


def test_expression_sweep_errors(embedded, base, tiny_face_model):
  noise, coeffs = base
  with pytest.raises(ValueError, match='at least 3 columns'):
    sweep_command.expression_sweep(embedded, noise, coeffs, columns=2)
  tiny_coeffs = tiny_face_model.zero_coeffs((2,))
  with pytest.raises(ValueError, match=r"\['mouthSmileLeft', 'mouthSmileRight'\].*known units"):
    sweep_command.expression_sweep(tiny_face_model, noise, tiny_coeffs)


def test_sweeps_of_seeds_keep_each_seeds_controls(bundle, sweeps):
  model = bundle.face_model
  coeffs, noise, _ = models.seed_controls(bundle.config, SEEDS)
  assert list(sweeps) == ['pose', 'light', 'expression', 'identity']
  _assert_fixed_except(model, sweeps['pose'], noise, coeffs, cameras_vary=True)
  _assert_fixed_except(model, sweeps['light'], noise, coeffs, factors=('gamma',))
  _assert_fixed_except(model, sweeps['expression'], noise, coeffs, factors=('expression',))
  identity = sweeps['identity']
  _assert_fixed_except(model, identity, noise, coeffs, factors=('identity', 'texture'))
  donors = models.seed_controls(bundle.config, IDENTITY_SEEDS).coeffs
  for name in ('identity', 'texture'):
    for row in getattr(model.split_coeffs(identity.coeffs), name):
      np.testing.assert_array_equal(row, getattr(model.split_coeffs(donors), name))
  assert identity.titles[0] == 'identity of seed 100'


def test_guidance_is_the_face_models_render_over_grey(embedded, base):
  _, coeffs = base
  cameras = geometry.camera_from_yaw_pitch(np.array([0.0, 0.4]), np.zeros(2))
  guidance = sweep_command.render_guidance(embedded, coeffs, cameras, 48)
  render = face_model_lib.render_face(embedded, coeffs, cameras, 48)
  mask = np.asarray(render.mask, bool)
  assert guidance.shape == (2, 48, 48, 3) and guidance.dtype == np.uint8
  assert 0.2 < mask.mean() < 0.95
  np.testing.assert_array_equal(guidance[mask], visualize.to_uint8(render.image)[mask])
  assert np.all(guidance[~mask] == 128)


def test_sweep_renders_the_seeds_generator_images_and_guidance(bundle, sweeps):
  renders = sweep_command.render_sweep(bundle, sweeps['expression'])
  r = bundle.config.model.sr_resolution
  assert renders.generated.shape == renders.guidance.shape == (2, 7, r, r, 3)
  # Column 0: β = 0, frontal camera; the other columns are blended into it, and it into itself.
  neutral = edit.render(bundle, edit.with_expression(bundle, edit.from_seeds(bundle, SEEDS),
                                                     units={}), blend=False)
  np.testing.assert_allclose(renders.generated[:, 0], neutral.image, atol=2)
  whole = sweep_command.render_sweep(bundle, sweeps['expression'], blend=False)
  np.testing.assert_allclose(whole.generated[:, 0], neutral.image, atol=2)
  assert np.any(whole.generated[:, 1:] != renders.generated[:, 1:])
  assert np.any(renders.generated[:, 0] != renders.generated[:, -1])
  assert np.any(renders.guidance[:, 0] != renders.guidance[:, -1])


def test_importing_the_command_defines_no_flags():
  assert 'identity_seeds' not in flags.FLAGS


def test_command_writes_the_four_pictures(gan_workdir, bundle, sweeps, tmp_path):
  result = run_module('faceshop_jax.sweep', f'--workdir={gan_workdir}', '--seeds=0,1',
                      f'--out={tmp_path}')
  assert result.returncode == 0, result.stderr[-3000:]
  names = ['sweep_pose.png', 'sweep_light.png', 'sweep_expression.png', 'sweep_identity.png']
  assert sorted(os.listdir(tmp_path)) == sorted(names)
  r = bundle.config.model.sr_resolution
  for name in names:  # 2 seeds × (generated, R) rows, 7 columns, 2-pixel padding
    assert Image.open(tmp_path / name).size == (7 * (r + 2) + 2, 4 * (r + 2) + 2), name
  lines = result.stdout.strip().splitlines()
  assert [line.split(':')[0] for line in lines[:4]] == [f'Wrote {tmp_path / n}' for n in names]
  assert str(tmp_path) in lines[-1] and 'python -m faceshop_jax.generate' in lines[-1]
  pose = sweep_command.sweep_picture(sweep_command.render_sweep(bundle, sweeps['pose']))
  np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / 'sweep_pose.png')), pose)


@pytest.mark.parametrize('args, message', [
    (['--workdir={tmp}/missing'], 'sweep: No training run at'),
    (['--workdir={tmp}'], 'No checkpoint in'),
    (['--workdir={export}', '--step=3'], 'is an export, which holds one step'),
    (['--workdir={tmp}', '--seeds=2-1'], '--seeds: expected seeds like'),
    ([], "Flag --workdir must have a value other than None"),
])
def test_command_errors(args, message, tmp_path, bundle):
  inference.save_export(bundle, str(tmp_path / 'export'))
  result = run_module('faceshop_jax.sweep', f'--out={tmp_path}/out',
                      *(a.format(tmp=tmp_path, export=tmp_path / 'export') for a in args))
  assert result.returncode != 0
  assert message in result.stderr, result.stderr[-2000:]
  assert not os.path.exists(tmp_path / 'out')
