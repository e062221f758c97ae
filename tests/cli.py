"""Running the package's commands as subprocesses (their absl flags would clash in-process), and
the tiny trained gan run the inference tests share (the `gan_workdir` fixture in conftest)."""
import os
import subprocess
import sys

REPO = os.path.join(os.path.dirname(__file__), '..')


def run_module(module: str, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
  """python -m module args... in the repository root; never raises on a non-zero exit."""
  return subprocess.run([sys.executable, '-m', module, *args], cwd=REPO, capture_output=True,
                        text=True, timeout=timeout, check=False)


def run_main(config: str, workdir: str, *flags: str, timeout: int = 900) -> None:
  """`python -m faceshop_jax.main --config=CONFIG --workdir=WORKDIR FLAGS...` must succeed."""
  result = run_module('faceshop_jax.main', f'--config={config}', f'--workdir={workdir}', *flags,
                      timeout=timeout)
  assert result.returncode == 0, result.stderr[-3000:]


def train_tiny_gan(root) -> str:
  """A gan run at the 'test' preset, one step, no lazy regularisers or summaries, trained through
  the command line into root/run (its synthetic data in root/tfds); returns the run's directory."""
  workdir = os.path.join(root, 'run')
  run_main('configs/gan.py:test', workdir, f'--config.data.data_dir={os.path.join(root, "tfds")}',
           '--config.num_train_steps=1', '--config.checkpoint_every_steps=1',
           '--config.summary_every_steps=0', '--config.loss.r1_gamma=0',
           '--config.loss.density_reg=0')
  return workdir
