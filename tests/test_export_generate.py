"""Inference from a trained generator: workdir and export loading, seeds, the export and generate CLIs.

One gan run at the 'test' preset (conftest's gan_workdir) is shared by the session; the CLIs run as
subprocesses only where a test is about the command line (their flags would clash with other
modules' absl flags in this process).
"""
import json
import os
import shutil

from absl import flags
import jax
import numpy as np
from PIL import Image
import pytest

from faceshop_jax import control
from faceshop_jax import data as data_lib
from faceshop_jax import edit
from faceshop_jax import inference
from faceshop_jax import models
from faceshop_jax.train import checkpoints as checkpoints_lib
from tests.cli import run_module
from tests.control.random_space import random_control_space

SEEDS = [0, 1]


@pytest.fixture(scope='module')
def bundle(gan_workdir):
  return inference.load_from_workdir(gan_workdir)


@pytest.fixture(scope='module')
def export_dir(gan_workdir, tmp_path_factory):
  out = str(tmp_path_factory.mktemp('export') / 'generator')
  result = run_module('faceshop_jax.export', f'--workdir={gan_workdir}', f'--out={out}')
  assert result.returncode == 0, result.stderr[-3000:]
  assert 'export.json, generator' in result.stdout
  return out


@pytest.fixture(scope='module')
def portraits(bundle):
  return edit.render(bundle, edit.from_seeds(bundle, SEEDS))


def test_render_shapes(bundle, portraits):
  r, raw = bundle.config.model.sr_resolution, bundle.config.model.rendering_resolution
  assert portraits.image.shape == (2, r, r, 3) and portraits.image.dtype == np.uint8
  assert portraits.labels.shape == portraits.depth.shape == portraits.alpha.shape == (2, raw, raw)
  assert bundle.step == 1


def test_export_round_trip_is_bit_identical(bundle, export_dir, portraits):
  exported = inference.load_export(export_dir)
  assert exported.step == bundle.step and not exported.config.model.control_space
  jax.tree.map(np.testing.assert_array_equal, exported.variables, bundle.variables)
  again = edit.render(exported, edit.from_seeds(exported, SEEDS))
  np.testing.assert_array_equal(again.image, portraits.image)
  np.testing.assert_array_equal(again.labels, portraits.labels)


def test_same_seed_same_image_different_seeds_differ(bundle, portraits):
  swapped = edit.render(bundle, edit.from_seeds(bundle, SEEDS[::-1]))
  np.testing.assert_array_equal(swapped.image[1], portraits.image[0])
  np.testing.assert_array_equal(swapped.image[0], portraits.image[1])
  assert np.any(portraits.image[0] != portraits.image[1])


def test_seed_controls_are_the_training_sampler_per_seed(bundle):
  controls = models.seed_controls(bundle.config, [5, 7])
  for row, seed in enumerate([5, 7]):
    alone = models.sample_controls(bundle.config, jax.random.PRNGKey(seed), 1)
    for got, expected in zip(controls, alone):
      np.testing.assert_allclose(got[row], expected[0], rtol=1e-6, atol=1e-6)
  with pytest.raises(ValueError, match='non-empty list of integers'):
    models.seed_controls(bundle.config, [])
  with pytest.raises(ValueError, match=r'\[0, 2\^32\)'):
    models.seed_controls(bundle.config, [-1])


def test_workdir_errors(tmp_path):
  with pytest.raises(FileNotFoundError, match='does not exist'):
    inference.load_from_workdir(str(tmp_path / 'missing'))
  with pytest.raises(FileNotFoundError, match='train first with python -m faceshop_jax.main'):
    inference.load_from_workdir(str(tmp_path))
  os.makedirs(tmp_path / 'checkpoints')
  with pytest.raises(FileNotFoundError, match='No checkpoint in .*checkpoints; train first'):
    inference.load_from_workdir(str(tmp_path))


def test_a_run_without_a_generator_is_refused(tmp_path):
  checkpoints = checkpoints_lib.Checkpoints(str(tmp_path), asynchronous=False)
  batches = data_lib.generated_batches(lambda i: {'x': np.zeros(1)})
  checkpoints.save(3, {'params': {'vae_identity': np.zeros(4, np.float32)}}, batches,
                   json.dumps({'stage': 'vae'}))
  checkpoints.close()
  with pytest.raises(ValueError, match=r"step 3 .*stage 'vae'\) holds no generator"):
    inference.load_from_workdir(str(tmp_path))


def test_a_generator_unlike_its_config_is_refused(gan_workdir, tmp_path):
  copy = shutil.copytree(gan_workdir, tmp_path / 'run')
  config_file = copy / 'checkpoints' / '1' / 'config' / 'metadata'
  config = json.loads(config_file.read_text())
  config['model']['w_dim'] *= 2
  config_file.write_text(json.dumps(config))
  with pytest.raises(ValueError, match=r'does not match .*config.model.*saved \(32,\), expected'):
    inference.load_from_workdir(str(copy))


def test_control_space_is_sampled_and_exported(bundle, tmp_path):
  control.save_control_space(random_control_space(bundle.face_model),
                             str(tmp_path / 'vae' / 'control_space'))
  with_space = inference.attach_control_space(bundle, str(tmp_path / 'vae'))
  z_prior = models.seed_controls(bundle.config, SEEDS).z
  z_space = models.seed_controls(with_space.config, SEEDS).z
  assert not np.allclose(z_space, z_prior)
  assert not bundle.config.model.control_space  # attaching copies the config
  assert inference.save_export(with_space, str(tmp_path / 'out')) == [
      'control_space', 'export.json', 'generator']
  shutil.rmtree(tmp_path / 'vae')  # the export needs nothing outside it
  exported = inference.load_export(str(tmp_path / 'out'))
  np.testing.assert_array_equal(models.seed_controls(exported.config, SEEDS).z, z_space)


def test_control_space_of_another_face_model_is_refused(bundle, tiny_face_model, tmp_path):
  control.save_control_space(random_control_space(tiny_face_model), str(tmp_path))
  with pytest.raises(ValueError, match='same face model'):
    inference.attach_control_space(bundle, str(tmp_path))


def test_export_replaces_an_export_but_no_other_directory(bundle, tmp_path, monkeypatch):
  out = tmp_path / 'out'
  inference.save_export(bundle, str(out))
  inference.save_export(bundle, str(out))  # an export is replaced
  assert sorted(os.listdir(tmp_path)) == ['out']
  (tmp_path / 'notes').mkdir()
  (tmp_path / 'notes' / 'keep.txt').write_text('mine')
  with pytest.raises(FileExistsError, match='holds no export.json'):
    inference.save_export(bundle, str(tmp_path / 'notes'))
  assert os.listdir(tmp_path / 'notes') == ['keep.txt']
  (tmp_path / 'file').write_text('mine')
  with pytest.raises(FileExistsError, match='holds no export.json'):
    inference.save_export(bundle, str(tmp_path / 'file'))
  (tmp_path / 'file').unlink()

  def crash(*args):
    raise OSError('disk full')

  control.save_control_space(random_control_space(bundle.face_model), str(tmp_path / 'space'))
  with_space = inference.attach_control_space(bundle, str(tmp_path / 'space'))
  monkeypatch.setattr(control, 'save_control_space', crash)
  with pytest.raises(OSError, match='disk full'):
    inference.save_export(with_space, str(tmp_path / 'crashed'))
  assert sorted(os.listdir(tmp_path)) == ['notes', 'out', 'space']


def test_generate_cli_writes_the_outputs(export_dir, bundle, portraits, tmp_path):
  background = np.zeros((40, 60, 3), np.uint8)
  background[..., 2] = 255
  Image.fromarray(background).save(tmp_path / 'blue.png')
  out = tmp_path / 'out'
  result = run_module('faceshop_jax.generate', f'--workdir={export_dir}', '--seeds=0-1',
                      f'--background={tmp_path / "blue.png"}', '--mesh=obj', '--mesh_resolution=20',
                      '--mesh_level=0.5', f'--out={out}')
  assert result.returncode == 0, result.stderr[-3000:]
  r = bundle.config.model.sr_resolution
  outputs = ['', '_semantics', '_depth', '_alpha', '_over_blue']
  assert sorted(os.listdir(out)) == sorted(
      [f'seed{s}{o}.png' for s in SEEDS for o in outputs + ['_mesh']] +
      [f'seed{s}.obj' for s in SEEDS] + ['sheet.png'])
  assert Image.open(out / 'sheet.png').size == (5 * (r + 2) + 2, 2 * (r + 2) + 2)
  for seed in SEEDS:
    image = np.asarray(Image.open(out / f'seed{seed}.png'))
    np.testing.assert_array_equal(image, portraits.image[seed])
    for output in outputs[1:]:
      assert Image.open(out / f'seed{seed}{output}.png').size == (r, r)
  assert 'python -m faceshop_jax.video' in result.stdout.splitlines()[-1]


@pytest.mark.parametrize('args, message', [
    (['--workdir={tmp}/missing'], 'generate: No training run at'),
    (['--expression=jawOpn=0.5'], "Unknown expression unit(s) ['jawOpn']"),
    (['--expression=jawOpen=1.5'], "'jawOpen' = 1.5 is outside [0, 1]"),
    (['--yaw=3'], 'yaw = 3.0 is outside [-0.8, 0.8]'),
    (['--light=0,0,-1'], 'must not be negative'),
    (['--background={tmp}/nothing.png'], 'No background image at'),
    (['--background={tmp}/bad.png'], 'Cannot read the background image'),
    (['--seeds=2-1'], '--seeds=2-1: expected seeds like'),
])
def test_generate_cli_errors_write_nothing(export_dir, args, message, tmp_path):
  (tmp_path / 'bad.png').write_text('not an image')
  args = [a.format(tmp=tmp_path) for a in args]
  if not any(a.startswith('--workdir') for a in args):
    args.append(f'--workdir={export_dir}')
  if not any(a.startswith('--seeds') for a in args):
    args.append('--seeds=0')
  result = run_module('faceshop_jax.generate', f'--out={tmp_path}/out', *args)
  assert result.returncode != 0
  assert message in result.stderr, result.stderr[-2000:]
  assert not os.path.exists(tmp_path / 'out')


def test_importing_the_commands_defines_no_flags():
  from faceshop_jax import export, generate, video  # pylint: disable=g-import-not-at-top,unused-import
  assert 'seeds' not in flags.FLAGS and 'control_space' not in flags.FLAGS
