"""Inference from a trained generator: workdir and export loading, control overrides, the CLIs.

One gan run at the 'test' preset (conftest's gan_workdir) is shared by the session; the CLIs run as
subprocesses only where a test is about the command line (their flags would clash with other
modules' absl flags in this process).
"""
import dataclasses
import json
import os
import shutil

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image
import pytest

from faceshop_jax import control
from faceshop_jax import data as data_lib
from faceshop_jax import geometry
from faceshop_jax import inference
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
  return inference.generate(bundle, SEEDS)


def test_generate_shapes(bundle, portraits):
  r, raw = bundle.config.model.sr_resolution, bundle.config.model.rendering_resolution
  assert portraits.images.shape == (2, r, r, 3) and portraits.images.dtype == np.uint8
  assert portraits.labels.shape == (2, raw, raw) and portraits.depth.shape == (2, raw, raw)
  assert bundle.step == 1


def test_export_round_trip_is_bit_identical(bundle, export_dir, portraits):
  exported = inference.load_export(export_dir)
  assert exported.step == bundle.step and exported.control_space is None
  jax.tree.map(np.testing.assert_array_equal, exported.variables, bundle.variables)
  again = inference.generate(exported, SEEDS)
  np.testing.assert_array_equal(again.images, portraits.images)
  np.testing.assert_array_equal(again.labels, portraits.labels)


def test_same_seed_same_image_different_seeds_differ(bundle, portraits):
  swapped = inference.generate(bundle, SEEDS[::-1])
  np.testing.assert_array_equal(swapped.images[1], portraits.images[0])
  np.testing.assert_array_equal(swapped.images[0], portraits.images[1])
  assert np.any(portraits.images[0] != portraits.images[1])


def test_expression_and_light_overrides(bundle, portraits):
  model = bundle.face_model
  z, coeffs = inference.control_vectors(bundle, SEEDS)
  expression = {'jawOpen': 1.0, 'mouthSmileLeft': 0.5}
  z_new, coeffs_new = inference.control_vectors(bundle, SEEDS, expression=expression,
                                                light=(0.5, 0.2, 0.8))
  parts, new = model.split_coeffs(coeffs), model.split_coeffs(coeffs_new)
  for row in new.expression:
    np.testing.assert_array_equal(row, inference.expression_vector(model, expression))
  for row in new.gamma:
    np.testing.assert_allclose(row, inference.light_gamma(0.5, 0.2, 0.8), atol=1e-6)
  np.testing.assert_array_equal(new.identity, parts.identity)
  np.testing.assert_array_equal(new.texture, parts.texture)
  noise_dim = bundle.config.model.noise_dim
  np.testing.assert_array_equal(z_new[:, :noise_dim], z[:, :noise_dim])
  changed = inference.generate(bundle, SEEDS, expression=expression, blend=False)
  assert np.any(changed.images != portraits.images)
  blended = inference.generate(bundle, SEEDS, expression=expression)
  assert np.any(blended.images != changed.images) and np.any(blended.images != portraits.images)


def test_blending_a_portrait_into_itself_renders_it(bundle, portraits):
  noise, coeffs = inference.seed_controls(bundle, SEEDS)
  camera = geometry.camera_from_yaw_pitch(jnp.zeros(len(SEEDS)), jnp.zeros(len(SEEDS)))
  blended = inference.render_controls(bundle, coeffs, noise, camera, blend_from=coeffs)
  np.testing.assert_allclose(blended.images, portraits.images, atol=1)


def test_override_errors(bundle):
  with pytest.raises(ValueError, match=r"\['jawOpn'\].*known units: .*jawOpen"):
    inference.control_vectors(bundle, SEEDS, expression={'jawOpn': 0.5})
  with pytest.raises(ValueError, match=r"'jawOpen' = 1.5 is outside \[0, 1\]"):
    inference.control_vectors(bundle, SEEDS, expression={'jawOpen': 1.5})
  with pytest.raises(ValueError, match='intensity -1.0 is negative'):
    inference.control_vectors(bundle, SEEDS, light=(0.0, 0.0, -1.0))
  with pytest.raises(ValueError, match=r'--yaw = 3.0 is outside \[-0.8, 0.8\]'):
    inference.generate(bundle, SEEDS, yaw=3.0)
  with pytest.raises(ValueError, match=r'--pitch = -0.5 is outside \[-0.4, 0.4\]'):
    inference.generate(bundle, SEEDS, pitch=-0.5)
  with pytest.raises(ValueError, match='non-empty list of integers'):
    inference.control_vectors(bundle, [])


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
  checkpoints.save(3, {'params': {'vae_identity': jnp.zeros(4)}}, batches,
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
  z_prior, _ = inference.control_vectors(bundle, SEEDS)
  z_space, _ = inference.control_vectors(with_space, SEEDS)
  assert not np.allclose(z_space, z_prior)
  assert inference.save_export(with_space, str(tmp_path / 'out')) == [
      'control_space', 'export.json', 'generator']
  exported = inference.load_export(str(tmp_path / 'out'))
  np.testing.assert_array_equal(inference.control_vectors(exported, SEEDS)[0], z_space)


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
  with pytest.raises(FileExistsError, match='not an export'):
    inference.save_export(bundle, str(tmp_path / 'notes'))
  assert os.listdir(tmp_path / 'notes') == ['keep.txt']
  (tmp_path / 'file').write_text('mine')
  with pytest.raises(FileExistsError, match='not an export'):
    inference.save_export(bundle, str(tmp_path / 'file'))
  (tmp_path / 'file').unlink()

  def crash(*args):
    raise OSError('disk full')

  monkeypatch.setattr(control, 'save_control_space', crash)
  with_space = dataclasses.replace(bundle, control_space=random_control_space(bundle.face_model))
  with pytest.raises(OSError, match='disk full'):
    inference.save_export(with_space, str(tmp_path / 'crashed'))
  assert sorted(os.listdir(tmp_path)) == ['notes', 'out']


def test_generate_cli_writes_pngs(export_dir, bundle, portraits, tmp_path):
  result = run_module('faceshop_jax.generate', f'--checkpoint={export_dir}', '--seeds=0-1',
                      f'--out={tmp_path}')
  assert result.returncode == 0, result.stderr[-3000:]
  r = bundle.config.model.sr_resolution
  assert sorted(os.listdir(tmp_path)) == ['seed0.png', 'seed0_semantics.png', 'seed1.png',
                                          'seed1_semantics.png']
  for seed in SEEDS:
    image = np.asarray(Image.open(tmp_path / f'seed{seed}.png'))
    np.testing.assert_array_equal(image, portraits.images[seed])
    assert Image.open(tmp_path / f'seed{seed}_semantics.png').size == (r, r)


@pytest.mark.parametrize('args, message', [
    ([], 'Exactly one of (workdir, checkpoint)'),
    (['--workdir=a', '--checkpoint=b'], 'Exactly one of (workdir, checkpoint)'),
    (['--checkpoint=b', '--light=0.5,0.3'], 'expected yaw,pitch,intensity'),
])
def test_generate_cli_usage_errors(args, message, tmp_path):
  result = run_module('faceshop_jax.generate', '--seeds=0', f'--out={tmp_path}', *args)
  assert result.returncode != 0
  assert message in result.stderr
