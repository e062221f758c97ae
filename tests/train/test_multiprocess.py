"""Multi-process jobs, run on this machine exactly as BUILD.md's recipe launches them: 2 processes of
4 fake CPU devices each (coordinator and gloo collectives on the loopback address) checkpoint into
one workdir, resume, and end with the parameters of one process with 8 devices."""
import os
import shutil
import socket
import subprocess
import sys

import jax
import numpy as np
import pytest

from faceshop_jax.train import checkpoints as checkpoints_lib
from tests import cli

PROCESSES = 2
# One step variant (R1 and density every step) and no summaries: one compiled program per job.
FLAGS = ('--config.num_train_steps=2', '--config.checkpoint_every_steps=1',
         '--config.loss.r1_interval=1', '--config.loss.density_reg_interval=1',
         '--config.summary_every_steps=0')
NO_EVALUATION = {'configs/imitative.py:test': ('--config.imitative.evaluation.identities=0',),
                 'configs/gan.py:test': ()}  # the gan stage has none
COLLECTIONS = ('params', 'ema_params', 'opt_state')
# The rounding bound of the comparison, relative to each array's largest entry (see the test). The
# imitative stage's analysis networks route gradients discretely (max-pools, ReLUs, argmax labels),
# which amplifies rounding differences (its 8-vs-1-device step test allows 2e-2): a scalar such as
# a noise strength, whose gradient sums the whole image, was measured 1.8e-5 apart.
RELATIVE_BOUND = {'configs/imitative.py:test': 1e-4, 'configs/gan.py:test': 1e-5}


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def _process_env(process: int, port: int) -> dict[str, str]:
  """BUILD.md's variables for process `process`, with this machine's 8 devices split between the
  processes."""
  flags = os.environ['XLA_FLAGS'].replace('--xla_force_host_platform_device_count=8',
                                          f'--xla_force_host_platform_device_count={8 // PROCESSES}')
  return {**os.environ, 'XLA_FLAGS': flags, 'JAX_COORDINATOR_ADDRESS': f'127.0.0.1:{port}',
          'JAX_NUM_PROCESSES': str(PROCESSES), 'JAX_PROCESS_ID': str(process)}


def _run_job(config: str, workdir: str, *flags: str, timeout: int = 900) -> None:
  """`python -m faceshop_jax.main ... --config.distributed=True` as PROCESSES processes; all must
  exit 0 (their consoles are in WORKDIR.process<i>.log)."""
  port = _free_port()
  command = [sys.executable, '-m', 'faceshop_jax.main', f'--config={config}',
             f'--workdir={workdir}', '--config.distributed=True', *flags]
  logs = [f'{workdir}.process{i}.log' for i in range(PROCESSES)]
  processes = []
  for i, log in enumerate(logs):
    with open(log, 'w') as f:
      processes.append(subprocess.Popen(command, cwd=cli.REPO, env=_process_env(i, port),
                                        stdout=f, stderr=subprocess.STDOUT))
  try:
    codes = [p.wait(timeout=timeout) for p in processes]
  finally:
    for p in processes:
      p.kill()
  for code, log in zip(codes, logs):
    assert code == 0, open(log).read()[-4000:]


def _final_networks(workdir: str) -> dict:
  """{collection: numpy tree} of COLLECTIONS in the newest checkpoint of WORKDIR."""

  def target_fn(config, saved):
    del config
    return {c: {name: jax.tree.map(lambda m: np.zeros(m.shape, m.dtype), tree)
                for name, tree in saved[c].items()} for c in COLLECTIONS}

  _, _, restored = checkpoints_lib.read_run(workdir, target_fn)
  return restored


@pytest.mark.parametrize('config', sorted(NO_EVALUATION))
def test_two_processes_checkpoint_resume_and_end_as_one_process_with_8_devices(
    config, gan_workdir, tmp_path):
  data_flag = f'--config.data.data_dir={os.path.join(os.path.dirname(gan_workdir), "tfds")}'
  reference, job = str(tmp_path / 'one_process'), str(tmp_path / 'two_processes')
  cli.run_main(config, reference, data_flag, *FLAGS, *NO_EVALUATION[config])
  _run_job(config, job, data_flag, *FLAGS, *NO_EVALUATION[config])
  checkpoint = os.path.join(job, 'checkpoints', '2')
  # Both processes wrote their data iterator's position into the one checkpoint.
  assert sorted(f for f in os.listdir(os.path.join(checkpoint, 'data')) if f.startswith('process')
                ) == [f'process_{i}-of-{PROCESSES}.json' for i in range(PROCESSES)]
  # Resumes from step 1 (as after a crash) and runs step 2 again, now with the stage's evaluation.
  shutil.rmtree(checkpoint)
  _run_job(config, job, data_flag, *FLAGS)
  if config.startswith('configs/imitative'):
    assert os.path.isfile(os.path.join(job, 'eval.json'))  # the primary's end-of-stage report
  want, got = _final_networks(reference), _final_networks(job)
  # Same devices, same per-device work: only the order of the cross-process gradient sums differs
  # (gloo's between the processes, XLA's within one), and float32 sums in another order round
  # differently, by ~1e-7 of the summands' size; two GAN steps (D's update feeds G's) leave
  # differences up to ~1e-5 of each array's largest entry (RELATIVE_BOUND), or 1e-6 absolute where
  # a parameter is near 0 (Adam moves each parameter by up to the learning rate, 2e-3, per step).
  for (path, a), b in zip(jax.tree_util.tree_leaves_with_path(want), jax.tree.leaves(got)):
    np.testing.assert_allclose(b, a, rtol=0,
                               atol=RELATIVE_BOUND[config] * float(np.abs(a).max()) + 1e-6,
                               err_msg=jax.tree_util.keystr(path))
