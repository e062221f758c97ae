"""The disentangle stage: CLI from another run (init_from), partners differ in one factor only,
every L_dis term reaches the generator, 8 devices == 1 device, a missing init_from names the fix."""
import copy
import json
import os

from tests import cli
import device_parity  # tests/train/device_parity.py
import term_gradients  # tests/train/term_gradients.py
import jax
import numpy as np
import pytest

from configs import disentangle as disentangle_config
from faceshop_jax import face_model
from faceshop_jax import models
from faceshop_jax import report
from faceshop_jax.train import loop
from faceshop_jax.train import mesh as mesh_lib
from faceshop_jax.train.stages import disentangle
from faceshop_jax.train.stages import gan


@pytest.fixture(scope='module')
def cli_workdir(tmp_path_factory, gan_workdir):
  """disentangle:test started from the shared tiny gan run (the same generator and data)."""
  workdir = str(tmp_path_factory.mktemp('disentangle'))
  data_dir = os.path.join(os.path.dirname(gan_workdir), 'tfds')
  # Without R1, whose variant of this step the imitative stage's CLI test already runs.
  cli.run_main('configs/disentangle.py:test', workdir, f'--config.data.data_dir={data_dir}',
               f'--config.init_from={gan_workdir}', '--config.loss.r1_gamma=0')
  return workdir


@pytest.fixture(scope='module')
def config(cli_workdir, gan_workdir):
  del cli_workdir
  config = disentangle_config.get_config('test')
  config.data.data_dir = os.path.join(os.path.dirname(gan_workdir), 'tfds')
  config.init_from = gan_workdir
  return config


def test_cli_starts_from_the_run_and_writes_every_term(cli_workdir):
  scalars = report.scalars(cli_workdir)
  for term in disentangle.TERMS:
    steps, values = scalars[f'disentangle/{term}']
    assert np.isfinite(values).all() and values[-1] > 0, term
  assert np.isfinite(scalars['imitation/texture'][1]).all()
  [(step, grid)] = report.images(cli_workdir, 'base_identity_light_expression_blended')
  assert step == 1 and grid.shape[0] > 5 * 32


def test_partners_differ_in_exactly_one_factor(config):
  model = face_model.load(config.data.face_model)
  controls = models.sample_controls(config, jax.random.PRNGKey(0), 3)
  partners = disentangle.partner_controls(config, controls, jax.random.PRNGKey(1))
  base = model.split_coeffs(controls.coeffs)
  fields = {'identity': ('identity', 'texture'), 'illumination': ('gamma',),
            'expression': ('expression',)}
  for factor, partner in partners.items():
    np.testing.assert_array_equal(partner.noise, controls.noise)
    parts = model.split_coeffs(partner.coeffs)
    for field in base._fields:
      same = np.array_equal(getattr(parts, field), getattr(base, field))
      assert same == (field not in fields[factor]), (factor, field)


@pytest.fixture(scope='module')
def terms_of(config):
  """params -> disentangle_terms' (total, metrics) for 2 base samples, rendered by params."""
  state, _ = loop.build_state(config, disentangle.STAGE, mesh_lib.make_mesh(1, jax.devices()[:1]))
  generator = gan.models.make_generator(config)
  controls = models.sample_controls(config, jax.random.PRNGKey(0), 2)
  camera = state.constants['samples_camera'][:2]
  g_state = state.constants['generator_state']

  def terms(params):
    def render(z):
      out, _ = generator.apply({'params': params, **g_state}, z, camera, camera,
                               mutable=['stats'], rngs=gan._rngs(jax.random.PRNGKey(1)))  # pylint: disable=protected-access
      return out
    return disentangle.disentangle_terms(config, state, render(controls.z), controls, camera,
                                         jax.random.PRNGKey(2), render)

  return terms, state.params['generator']


def test_every_disentangle_term_reaches_the_generator(terms_of):
  terms, params = terms_of
  term_gradients.assert_every_term_reaches(lambda p: terms(p)[1], params, disentangle.TERMS,
                                           'disentangle')


def test_the_base_is_read_once_by_each_analysis_net(terms_of, monkeypatch):
  """L_dis reuses the base's identity embeddings, landmarks and 3DMM render from the imitation
  terms: per base image, the identity net reads 4 images (base, guidance target, relit and
  re-expressed partners), the reconstructor 2 (base, relit) and the rasterizer renders 2 faces."""
  terms, params = terms_of
  seen = {'identity_embeddings': 0, 'reconstruct': 0, 'render_face': 0}

  def counted(module, name, images_arg):
    original = getattr(module, name)

    def wrapper(*args, **kwargs):
      seen[name] += args[images_arg].shape[0] if images_arg is not None else 1
      return original(*args, **kwargs)
    monkeypatch.setattr(module, name, wrapper)

  counted(disentangle.imitative, 'identity_embeddings', 2)
  counted(disentangle.imitative, 'reconstruct', 2)
  counted(face_model, 'render_face', None)
  jax.eval_shape(terms, params)
  assert seen == {'identity_embeddings': 4 * 2, 'reconstruct': 2 * 2, 'render_face': 2}


def test_disentangle_step_on_8_devices_equals_1_device(config):
  config = copy.deepcopy(config)
  config.loss.r1_gamma = 0.0
  config.loss.density_reg = 0.0
  # As the imitative stage's parity test: the analysis nets route gradients discretely, so
  # rounding moves a few entries (Adam moments of ~100 by ~1e-3); a sharding error moves all.
  device_parity.assert_all_devices_match_one(config, disentangle.STAGE,
                                             next(gan.make_data(config)), steps=1, rtol=2e-2,
                                             atol=2e-3)


def test_finish_writes_the_disentanglement_report(config, tmp_path):
  """The stage's end: the EMA generator's disentanglement scores, read by the judge, in
  WORKDIR/disentanglement.json (the test preset skips it in the CLI run)."""
  config = copy.deepcopy(config)
  config.imitative.evaluation.identities = 0  # control accuracy: the imitative stage's test
  config.disentangle.evaluation.update({'bases': 2, 'variations': 2})
  state, _ = loop.build_state(config, disentangle.STAGE, mesh_lib.make_mesh(1, jax.devices()[:1]))
  disentangle.finish(config, str(tmp_path), state)
  assert not os.path.exists(os.path.join(tmp_path, 'eval.json'))
  with open(os.path.join(tmp_path, 'disentanglement.json')) as f:
    written = json.load(f)
  assert written['step'] == int(state.step)
  assert written['judge'] == config.imitative.evaluation.judge
  for metric in ('DS_expression', 'DS_pose', 'DS_illumination', 'IS'):
    assert np.isfinite(written['generated'][metric]), metric


def test_config_errors_name_the_fix(config):
  config = copy.deepcopy(config)
  config.init_from = ''
  with pytest.raises(ValueError, match='--config.init_from=WORKDIR of an imitative run'):
    disentangle.check_config(config)
  config.init_from = '/somewhere'
  config.disentangle.weights['lips'] = 1.0
  with pytest.raises(ValueError, match=r"unknown terms \['lips'\]"):
    disentangle.check_config(config)


def test_evaluate_measures_disentanglement_and_blending(cli_workdir):
  result = cli.run_module('faceshop_jax.evaluate', f'--workdir={cli_workdir}', '--identities=2',
                          '--variations=2', '--disentanglement', '--bases=2', '--edits=2',
                          '--edit_sources=3')
  assert result.returncode == 0, result.stderr[-3000:]
  assert 'DS_expression' in result.stdout and 'volume-blended' in result.stdout
  with open(os.path.join(cli_workdir, 'evaluation_step1.json')) as f:
    results = json.load(f)
  for row in ('chance', 'ceiling', 'generated', 'normalised'):
    for metric in ('DS_expression', 'DS_pose', 'DS_illumination', 'IS'):
      assert np.isfinite(results['disentanglement'][row][metric]), (row, metric)
  edits = results['expression_edits']
  assert edits['sources'] == 3
  for name in ('unblended', 'blended', 'chance'):
    assert 0.0 <= edits[name] <= 1.0, name
  assert os.path.isfile(os.path.join(cli_workdir, 'expression_edit_errors_step1.png'))
