r"""Entry point of every training stage.

  python -m faceshop_jax.main --config=configs/vae.py:cpu --workdir=/tmp/vae [--config.batch_size=8]

The config file's `stage` picks the stage; the text after ':' is its preset ('' = the paper's
scale, 'cpu' = minutes on a CPU, 'test' = tests). A workdir that holds checkpoints is resumed.
"""
import os

from absl import app
from absl import flags
from absl import logging
import jax
from jax.experimental import multihost_utils
from ml_collections import config_flags

from faceshop_jax import console
from faceshop_jax.train import loop
from faceshop_jax.train import stage as stage_lib

FLAGS = flags.FLAGS


def define_flags() -> None:
  """The command's flags (defined only when it runs, so the module imports anywhere)."""
  flags.DEFINE_string('workdir', None, 'Directory for checkpoints and summaries; resumed if '
                      'present.')
  config_flags.DEFINE_config_file(
      'config', None, 'Stage config file and preset, e.g. configs/vae.py:cpu.', lock_config=True)
  flags.DEFINE_bool('library_logs', False, "Keep the libraries' INFO logs on the console "
                    "(orbax's per-save lines, tfds, jax); by default only progress, losses and "
                    'warnings show.')
  flags.mark_flags_as_required(['config', 'workdir'])


def initialize_distributed() -> None:
  """jax.distributed.initialize() for a multi-process job.

  The coordinator is given by JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES and JAX_PROCESS_ID where
  they are set (a hand-launched or local job; see BUILD.md) and discovered otherwise (TPU pods,
  SLURM, Open MPI, GKE).
  """
  count, index = os.environ.get('JAX_NUM_PROCESSES'), os.environ.get('JAX_PROCESS_ID')
  if bool(count) != bool(index):
    raise ValueError(f'Only one of JAX_NUM_PROCESSES ({count!r}) and JAX_PROCESS_ID ({index!r}) is '
                     'set; set both (and JAX_COORDINATOR_ADDRESS), or neither to let JAX discover '
                     'the cluster.')
  jax.distributed.initialize(num_processes=int(count) if count else None,
                             process_id=int(index) if index else None)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}.')
  if not FLAGS.library_logs:
    console.quiet_library_logs()
  config = FLAGS.config
  if config.distributed:
    initialize_distributed()
  if config.get('data') and config.data.get('build_synthetic'):
    # The one place the library reaches into data_pipelines: the embedded default dataset.
    from data_pipelines import build  # pylint: disable=g-import-not-at-top
    if jax.process_index() == 0:
      build.ensure_synthetic_portraits(config.data.name, config.data.data_dir or None)
    multihost_utils.sync_global_devices('synthetic dataset ready')
  state = loop.train_and_evaluate(config, FLAGS.workdir)
  if int(state.step) < config.num_train_steps:
    return  # preempted: the loop has said how to resume
  stage = stage_lib.get_stage(config.stage)
  workdir = os.path.abspath(FLAGS.workdir)
  logging.info('Done: %s stage, %d steps; checkpoints and TensorBoard summaries in %s. Next: %s',
               config.stage, config.num_train_steps, workdir, stage.next_steps.format(workdir=workdir))


if __name__ == '__main__':
  define_flags()
  app.run(main)
