"""The vae stage end to end: the command line, export of the control space, bad configs."""
import json
import os

from tests import cli
import device_parity  # tests/train/device_parity.py
import jax
import numpy as np
import pytest

from configs import vae as vae_config
from faceshop_jax import control
from faceshop_jax import face_model
from faceshop_jax.train import loop
from faceshop_jax.train.stages import vae

@pytest.fixture(scope='module')
def cli_workdir(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp('vae'))
  cli.run_main('configs/vae.py:test', workdir, '--config.num_train_steps=6')
  return workdir


def test_cli_runs_end_to_end_and_exports(cli_workdir):
  assert any(f.startswith('events.out') for f in os.listdir(cli_workdir))
  assert sorted(os.listdir(os.path.join(cli_workdir, 'checkpoints'))) == ['2', '4', '6']
  space = control.load_control_space(os.path.join(cli_workdir, 'control_space'))
  samples = control.sample_controls(space, jax.random.PRNGKey(0), 5)
  model = face_model.load('embedded')
  assert samples['identity'].shape == (5, model.n_id + model.n_tex)
  assert samples['expression'].shape == (5, model.n_exp)
  assert samples['illumination'].shape == (5, 27)
  assert control.merge_into_coeffs(model, samples).shape == (5, model.n_coeffs)
  assert os.path.exists(os.path.join(cli_workdir, 'eval.json'))


def test_missing_dataset_fails_fast_with_the_fix(tmp_path):
  config = vae_config.get_config('test')
  config.data.source = 'coefficient_sets'
  config.data.name = 'coefficient_sets/nowhere'
  config.data.data_dir = str(tmp_path)
  with pytest.raises(ValueError, match="'coefficient_sets/nowhere' was not found.*source=prior"):
    loop.train_and_evaluate(config, str(tmp_path / 'run'))


def test_unknown_stage_and_indivisible_batch_fail_fast(tmp_path):
  config = vae_config.get_config('test')
  config.stage = 'imitate'
  with pytest.raises(ValueError, match="Unknown stage 'imitate'"):
    loop.train_and_evaluate(config, str(tmp_path))
  config = vae_config.get_config('test')
  config.batch_size = 20
  with pytest.raises(ValueError, match='batch_size = 20 is not divisible by the 8'):
    loop.train_and_evaluate(config, str(tmp_path))


def test_vae_step_on_8_devices_equals_1_device():
  config = vae_config.get_config('test')
  device_parity.assert_all_devices_match_one(config, vae.STAGE, next(vae.make_data(config)),
                                             steps=2, rtol=2e-4, atol=2e-5)


def test_prior_batches_do_not_depend_on_the_host_count():
  """Two hosts' first two batches, side by side, are one host's: each sample has its own key."""
  config = vae_config.get_config('test')
  one_host = vae.prior_batches(config, 0, 1)
  two_hosts = [vae.prior_batches(config, h, 2) for h in (0, 1)]
  for _ in range(2):
    joined = np.concatenate([next(host)['coeffs'] for host in two_hosts])
    whole = next(one_host)['coeffs']
    assert whole.shape[0] == config.batch_size
    np.testing.assert_array_equal(joined, whole)
  assert not np.array_equal(whole[0], whole[1])  # fresh draws, not one repeated


def test_evaluation_stands_beside_chance_and_the_floor(cli_workdir):
  """The floor (a second held-out set) is judged as the data it is; the constant answer as none."""
  config = vae_config.get_config('test')
  space = control.load_control_space(os.path.join(cli_workdir, 'control_space'))
  heldout, reference = vae.heldout_sets(config)
  assert len(heldout) == len(reference) == config.data.heldout_samples
  assert not np.array_equal(heldout, reference)
  results = vae.evaluate(config, space, heldout, reference)
  for factor in ('identity', 'expression', 'illumination'):
    assert results[f'{factor}/floor/mmd2'] < results[f'{factor}/chance_mean/mmd2']
    assert results[f'{factor}/floor/frechet'] < results[f'{factor}/chance_mean/frechet']
    assert np.isfinite(results[f'{factor}/chance_gaussian/mmd2'])
  # Spread is in the held-out data's std units, which 64 sparse expressions leave near 0 for some
  # units: judged on identity and illumination only.
  for factor in ('identity', 'illumination'):
    assert 0.8 < results[f'{factor}/floor/spread_ratio'] < 1.25
    # The training mean, not the held-out one: only the gap between the two means is left.
    assert results[f'{factor}/chance_mean/spread_ratio'] < 0.5
  assert results['expression/near_neutral_chance_mean'] in (0.0, 1.0)  # one face, repeated
  with open(os.path.join(cli_workdir, 'eval.json')) as f:
    assert 'expression/floor/mmd2' in json.load(f)
