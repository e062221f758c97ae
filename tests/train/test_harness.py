"""The training harness: events and checkpoints, exact resume, preemption, NaN guard, sharding,
bad configs."""
import dataclasses
import glob
import logging
import os
import signal
import subprocess
import sys
import time

import device_parity  # tests/train/device_parity.py
import jax
import numpy as np
import pytest
import toy_stage  # tests/train/toy_stage.py

from faceshop_jax import console
from faceshop_jax import data
from faceshop_jax.train import loop
from faceshop_jax.train import mesh as mesh_lib
from faceshop_jax.train import stage as stage_lib


def _leaves(state):
  return [np.asarray(x) for x in jax.tree.leaves(state)]


@pytest.fixture(scope='module')
def uninterrupted(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp('full'))
  return workdir, loop.train_and_evaluate(toy_stage.config(), workdir, toy_stage.STAGE)


def test_run_writes_events_and_checkpoints_and_learns(uninterrupted):
  workdir, state = uninterrupted
  assert glob.glob(os.path.join(workdir, 'events.out.tfevents.*'))
  steps = sorted(int(d) for d in os.listdir(os.path.join(workdir, 'checkpoints')) if d.isdigit())
  assert steps == [10, 15, 20]  # every 5 steps, the newest 3 kept
  assert int(state.step) == 20
  assert np.abs(np.asarray(state.params['model']['w']) - toy_stage.TRUE_W).max() < 1.0
  assert set(state.ema_params) == {'model'}


class _Crash(Exception):
  pass


def test_killed_and_resumed_run_ends_identical(uninterrupted, tmp_path):
  _, expected = uninterrupted
  workdir, config = str(tmp_path), toy_stage.config()
  # Dies mid-run, after the checkpoint of step 10 and before that of step 15.
  with pytest.raises(_Crash):
    loop.train_and_evaluate(config, workdir, dataclasses.replace(
        toy_stage.STAGE, make_data=lambda c: _crash_at(c, 13)))
  resumed = loop.train_and_evaluate(config, workdir, toy_stage.STAGE)
  for got, want in zip(_leaves(resumed), _leaves(expected)):
    np.testing.assert_array_equal(got, want)


def _crash_at(config, index):
  """The toy data, except that making batch `index` raises, as a killed job stops mid-run."""

  def make_batch(i):
    if i == index:
      raise _Crash()
    return toy_stage._make_batch(config, i)  # pylint: disable=protected-access

  return data.generated_batches(make_batch)


def test_nan_guard_names_the_step_and_term_and_keeps_the_last_good_checkpoint(tmp_path):
  config = toy_stage.config(nan_at_step=12)
  with pytest.raises(loop.NonFiniteLossError, match=r'Step 12: loss term\(s\) loss = nan.*step 10'):
    loop.train_and_evaluate(config, str(tmp_path), toy_stage.STAGE)
  steps = sorted(int(d) for d in os.listdir(tmp_path / 'checkpoints') if d.isdigit())
  assert steps == [5, 10]


def test_sharded_step_equals_single_device_step():
  config = toy_stage.config()
  batch = toy_stage._make_batch(config, 0)  # pylint: disable=protected-access
  device_parity.assert_all_devices_match_one(config, toy_stage.STAGE, batch, steps=3, rtol=1e-5,
                                             atol=1e-6)


def test_model_axis_shards_large_parameters():
  mesh = mesh_lib.make_mesh(2)
  assert dict(mesh.shape) == {'data': 4, 'model': 2}
  assert mesh_lib.leaf_spec((512, 1024), 2, 1 << 18) == jax.sharding.PartitionSpec(None, 'model')
  assert mesh_lib.leaf_spec((10,), 2, 1 << 18) == jax.sharding.PartitionSpec()


def test_bad_configs_fail_fast(tmp_path):
  with pytest.raises(ValueError, match=r"Unknown stage 'nope'.*known stages: \[.*'vae'"):
    stage_lib.get_stage('nope')
  with pytest.raises(ValueError, match='batch_size = 12 is not divisible by the 8 data-parallel'):
    loop.train_and_evaluate(toy_stage.config(batch_size=12), str(tmp_path), toy_stage.STAGE)
  with pytest.raises(ValueError, match='must divide the 8 devices'):
    mesh_lib.make_mesh(3)


_KILLABLE_RUN = '''
import sys
sys.path.insert(0, {tests!r})
import toy_stage
from faceshop_jax.train import loop
loop.train_and_evaluate(toy_stage.config(num_train_steps=60, checkpoint_every_steps=1,
                                         log_every_steps=20), {workdir!r}, toy_stage.STAGE)
'''


def test_sigkill_at_any_moment_leaves_only_checkpoints_that_restore_right(tmp_path):
  """A process killed while saving every step; the resumed run matches an uninterrupted one."""
  workdir = str(tmp_path / 'killed')
  code = _KILLABLE_RUN.format(tests=os.path.dirname(__file__), workdir=workdir)
  process = subprocess.Popen([sys.executable, '-c', code], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
  checkpoints = os.path.join(workdir, 'checkpoints')
  deadline = time.time() + 240
  while time.time() < deadline and process.poll() is None:
    if os.path.isdir(checkpoints) and any(d.isdigit() and int(d) >= 5 for d in os.listdir(checkpoints)):
      break
    time.sleep(0.02)
  assert process.poll() is None, 'the run ended before it could be killed mid-run'
  process.send_signal(signal.SIGKILL)
  process.wait()
  config = toy_stage.config(num_train_steps=60, checkpoint_every_steps=1, log_every_steps=20)
  assert loop.checkpoints_lib.Checkpoints(workdir).latest_step() is not None
  resumed = loop.train_and_evaluate(config, workdir, toy_stage.STAGE)
  expected = loop.train_and_evaluate(config, str(tmp_path / 'whole'), toy_stage.STAGE)
  for got, want in zip(_leaves(resumed), _leaves(expected)):
    np.testing.assert_array_equal(got, want)


_PREEMPTIBLE_RUN = '''
import dataclasses
import sys
import time
sys.path.insert(0, {tests!r})
from absl import logging
import toy_stage
from faceshop_jax import data
from faceshop_jax.train import loop
logging.set_verbosity('info')
config = toy_stage.config(**{config!r})

def slow_batch(i):  # ~25 steps a second: still running when the signal comes
  time.sleep(0.04)
  return toy_stage._make_batch(config, i)

loop.train_and_evaluate(config, {workdir!r}, dataclasses.replace(
    toy_stage.STAGE, make_data=lambda c: data.generated_batches(slow_batch)))
'''


def _launch(code: str, log_path: str) -> subprocess.Popen:
  with open(log_path, 'w') as log:
    return subprocess.Popen([sys.executable, '-c', code], stdout=log, stderr=subprocess.STDOUT)


def test_sigterm_checkpoints_the_current_step_exits_0_and_the_same_command_resumes(tmp_path):
  """A preempted run (SIGTERM) saves the step it was on and says so; relaunched, it ends as an
  uninterrupted run does."""
  workdir = str(tmp_path / 'preempted')
  overrides = {'num_train_steps': 150, 'checkpoint_every_steps': 10, 'log_every_steps': 10}
  code = _PREEMPTIBLE_RUN.format(tests=os.path.dirname(__file__), workdir=workdir,
                                 config=overrides)
  process = _launch(code, str(tmp_path / 'first.log'))
  checkpoints = os.path.join(workdir, 'checkpoints')
  deadline = time.time() + 240
  while time.time() < deadline and process.poll() is None:
    if os.path.isdir(checkpoints) and any(d.isdigit() for d in os.listdir(checkpoints)):
      break
    time.sleep(0.02)
  assert process.poll() is None, 'the run ended before it could be preempted'
  process.send_signal(signal.SIGTERM)
  assert process.wait(timeout=120) == 0, (tmp_path / 'first.log').read_text()[-3000:]
  step = loop.checkpoints_lib.Checkpoints(workdir).latest_step()
  assert 0 < step < overrides['num_train_steps']
  last_lines = (tmp_path / 'first.log').read_text().strip().splitlines()[-3:]
  assert any(f'Preempted (SIGTERM) at step {step}: checkpoint saved in {checkpoints}; relaunch '
             'the same command to resume.' in line for line in last_lines), last_lines

  process = _launch(code, str(tmp_path / 'second.log'))
  assert process.wait(timeout=240) == 0, (tmp_path / 'second.log').read_text()[-3000:]
  assert f'Resuming from the checkpoint at step {step} ' in (tmp_path / 'second.log').read_text()
  config = toy_stage.config(**overrides)
  resumed = loop.train_and_evaluate(config, workdir, toy_stage.STAGE)  # restores step 150
  expected = loop.train_and_evaluate(config, str(tmp_path / 'whole'), toy_stage.STAGE)
  assert int(resumed.step) == overrides['num_train_steps']
  for got, want in zip(_leaves(resumed), _leaves(expected)):
    np.testing.assert_array_equal(got, want)


def test_step_variants_are_chosen_by_step_and_compiled_once_each(tmp_path):
  traced = []

  def train_step(config, state, batch, key, variant=None):
    traced.append(variant)  # runs once per compiled program
    return toy_stage.STAGE.train_step(config, state, batch, key)

  stage = dataclasses.replace(toy_stage.STAGE, train_step=train_step,
                              step_variant=lambda config, step: step % 3 == 0)
  state = loop.train_and_evaluate(toy_stage.config(num_train_steps=7), str(tmp_path), stage)
  assert sorted(traced) == [False, True] and int(state.step) == 7


def test_init_from_takes_the_networks_and_leaves_the_rest_fresh(uninterrupted):
  source_dir, source = uninterrupted
  config = toy_stage.config(init_from=source_dir, init_from_step=15, seed=3)
  mesh = mesh_lib.make_mesh(1)
  fresh, shardings = loop.build_state(config, toy_stage.STAGE, mesh)
  state = loop.init_from_run(config, fresh, shardings)
  step_15 = loop.checkpoints_lib.read_run(
      source_dir, lambda c, saved: {'params': {'model': fresh.params['model']}}, 15)[2]
  for got, want in zip(_leaves(state.params), _leaves(step_15['params'])):
    np.testing.assert_array_equal(got, want)
  assert not np.array_equal(state.params['model']['w'], source.params['model']['w'])  # step 15
  assert int(state.step) == 0
  for got, want in zip(_leaves(state.opt_state), _leaves(fresh.opt_state)):
    np.testing.assert_array_equal(got, want)
  np.testing.assert_array_equal(state.rng, fresh.rng)


def test_init_from_refuses_a_run_that_does_not_fit(uninterrupted, tmp_path):
  source_dir, _ = uninterrupted
  mesh = mesh_lib.make_mesh(1)

  def init(config, stage=toy_stage.STAGE):
    state, shardings = loop.build_state(config, stage, mesh)
    return loop.init_from_run(config, state, shardings)

  wider = dataclasses.replace(toy_stage.STAGE, init_state=lambda c, rng, constants: (
      toy_stage.STAGE.init_state(c, rng, constants).replace(
          params={'model': {'w': jax.numpy.zeros(5), 'b': jax.numpy.zeros(())}})))
  with pytest.raises(ValueError, match=r"init_from = .*full.*\['model'\]\['w'\]: saved \(4,\), "
                     r"expected \(5,\).*This run \(stage 'toy'"):
    init(toy_stage.config(init_from=source_dir), wider)
  other_model = toy_stage.config(init_from=source_dir, data={'face_model': '/x/bfm.npz'})
  with pytest.raises(ValueError, match=r"face model None, but this run uses '/x/bfm.npz'"):
    init(other_model)
  with pytest.raises(FileNotFoundError, match=r'No checkpoint at step 7 .* steps \[10, 15, 20\]'):
    init(toy_stage.config(init_from=source_dir, init_from_step=7))
  with pytest.raises(FileNotFoundError, match='No checkpoint in'):
    init(toy_stage.config(init_from=str(tmp_path)))


def test_library_chatter_is_dropped_and_warnings_kept():
  def record(path, level):
    return logging.LogRecord('absl', level, path, 1, 'message', None, None)

  chatter = console.LibraryChatter()
  assert not chatter.filter(record('/site-packages/orbax/checkpoint/manager.py', logging.INFO))
  assert chatter.filter(record('/site-packages/orbax/checkpoint/manager.py', logging.WARNING))
  assert not chatter.filter(record('/site-packages/tensorflow_datasets/core/x.py', logging.WARNING))
  assert chatter.filter(record('/work/faceshop_jax/train/loop.py', logging.INFO))
  assert chatter.filter(record('/site-packages/clu/metric_writers/logging_writer.py', logging.INFO))


def test_every_stage_says_what_to_run_next():
  for name in stage_lib.known_stages():
    assert '{workdir}' in stage_lib.get_stage(name).next_steps, name
