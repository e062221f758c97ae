"""The imitative stage: the main job's CLI end to end; every imitation term reaches the generator;
8 devices == 1 device; a missing analysis-net directory names the fix."""
import copy
import json
import os

from tests import cli
import device_parity  # tests/train/device_parity.py
import term_gradients  # tests/train/term_gradients.py
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import imitative as imitative_config
from faceshop_jax import models
from faceshop_jax import report
from faceshop_jax.train import loop
from faceshop_jax.train import mesh as mesh_lib
from faceshop_jax.train.stages import gan
from faceshop_jax.train.stages import imitative

@pytest.fixture(scope='module')
def data_dir(tmp_path_factory):
  return str(tmp_path_factory.mktemp('tfds'))


@pytest.fixture(scope='module')
def cli_workdir(tmp_path_factory, data_dir):
  workdir = str(tmp_path_factory.mktemp('imitative'))
  cli.run_main('configs/imitative.py:test', workdir, f'--config.data.data_dir={data_dir}')
  return workdir


@pytest.fixture(scope='module')
def config(cli_workdir, data_dir):
  del cli_workdir  # it built the dataset
  config = imitative_config.get_config('test')
  config.data.data_dir = data_dir
  return config


def test_cli_trains_and_writes_every_term_and_the_grid(cli_workdir):
  scalars = report.scalars(cli_workdir)
  for term in imitative.TERMS:
    assert np.isfinite(scalars[f'imitation/{term}'][1]).all(), term
  [(step, grid)] = report.images(cli_workdir, 'generated_guidance_blend_semantics')
  assert step == 1 and grid.shape[0] > 4 * 32
  assert os.listdir(os.path.join(cli_workdir, 'checkpoints')) == ['1']


def test_every_imitation_term_reaches_the_generator(config):
  mesh = mesh_lib.make_mesh(1, jax.devices()[:1])
  state, _ = loop.build_state(config, imitative.STAGE, mesh)
  generator = models.make_generator(config)
  controls = models.sample_controls(config, jax.random.PRNGKey(0), 2)
  camera = state.constants['samples_camera'][:2]
  state = state.replace(step=jnp.asarray(10**6, jnp.int32))  # every phase on

  def terms(params):
    out, _ = generator.apply({'params': params, **state.constants['generator_state']}, controls.z,
                             camera, camera, mutable=['stats'],
                             rngs=gan._rngs(jax.random.PRNGKey(1)))  # pylint: disable=protected-access
    return imitative.imitation_terms(config, state, out, controls, camera, None)[1]

  term_gradients.assert_every_term_reaches(terms, state.params['generator'], imitative.TERMS,
                                           'imitation')


def test_imitative_step_on_8_devices_equals_1_device(config):
  config.loss.r1_gamma = 0.0  # keeps the compiled step small; R1 is tested in tests/losses
  config.loss.density_reg = 0.0
  # The imitation terms read G's image through the analysis nets, whose max-pools, ReLUs and argmax
  # labels route gradients discretely: rounding-level changes alone (two exact forms of the FIR
  # filter, on one device) move some of G's gradients, e.g. the SR noise strengths, by up to 0.8%.
  # A sharding error moves them by O(1); 2% tells the two apart.
  device_parity.assert_all_devices_match_one(config, imitative.STAGE, next(gan.make_data(config)),
                                             steps=1, rtol=2e-2, atol=1e-4)


def test_missing_analysis_nets_name_the_fix(config):
  config.imitative.analysis_dir = '/nonexistent/analysis'
  with pytest.raises(ValueError, match='configs/analysis.py:cpu'):
    imitative.check_config(config)


def test_a_judge_that_is_also_a_loss_net_is_refused(config):
  config = copy.deepcopy(config)  # the module's config, whatever earlier tests changed in theirs
  config.imitative.analysis_dir = 'synthetic64'
  config.imitative.evaluation.judge = 'synthetic64'
  with pytest.raises(ValueError, match='cannot judge'):
    imitative.check_config(config)


def test_stage_end_and_evaluate_command_measure_control_accuracy(cli_workdir):
  with open(os.path.join(cli_workdir, 'eval.json')) as f:
    at_end = json.load(f)
  assert at_end['step'] == 1 and at_end['images'] == 4 and at_end['judge'] == 'judge64'
  result = cli.run_module('faceshop_jax.evaluate', f'--workdir={cli_workdir}', '--step=1',
                          '--identities=2', '--variations=2', '--fd', '--fd_images=4')
  assert result.returncode == 0, result.stderr[-3000:]
  assert 'normalised' in result.stdout and 'FD-VGG16' in result.stdout
  with open(os.path.join(cli_workdir, 'evaluation_step1.json')) as f:
    again = json.load(f)
  for row in ('chance', 'floor', 'generated'):
    for key in ('AED', 'APD', 'AID', 'IDS'):
      assert np.isfinite(again[row][key]), (row, key)
      assert again[row][key] == pytest.approx(at_end[row][key], rel=1e-4, abs=1e-6), (row, key)
  quality = again['image_quality']
  for key in ('FD-VGG16', 'FD-VGG16/chance_grey', 'FD-VGG16/floor_data'):
    assert np.isfinite(quality[key]) and quality[key] > 0, key
  assert 'a constant grey image' in result.stdout and 'the dataset against itself' in result.stdout
  result = cli.run_module('faceshop_jax.evaluate', f'--workdir={cli_workdir}', '--step=7')
  assert result.returncode != 0 and 'No checkpoint at step 7' in result.stderr
