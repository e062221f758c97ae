r"""Entry point of every training stage.

  python -m faceshop_jax.main --config=configs/vae.py:cpu --workdir=/tmp/vae [--config.batch_size=8]

The config file's `stage` picks the stage; the text after ':' is its preset ('' = the paper's
scale, 'cpu' = minutes on a CPU, 'test' = tests). A workdir that holds checkpoints is resumed.
"""
from absl import app
from absl import flags
import jax
from jax.experimental import multihost_utils
from ml_collections import config_flags

from faceshop_jax.train import loop

FLAGS = flags.FLAGS
flags.DEFINE_string('workdir', None, 'Directory for checkpoints and summaries; resumed if present.')
config_flags.DEFINE_config_file(
    'config', None, 'Stage config file and preset, e.g. configs/vae.py:cpu.', lock_config=True)
flags.mark_flags_as_required(['config', 'workdir'])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}.')
  config = FLAGS.config
  if config.distributed:
    jax.distributed.initialize()
  if config.get('data') and config.data.get('build_synthetic'):
    # The one place the library reaches into data_pipelines: the embedded default dataset.
    from data_pipelines import build  # pylint: disable=g-import-not-at-top
    if jax.process_index() == 0:
      build.ensure_synthetic_portraits(config.data.name, config.data.data_dir or None)
    multihost_utils.sync_global_devices('synthetic dataset ready')
  loop.train_and_evaluate(config, FLAGS.workdir)


if __name__ == '__main__':
  app.run(main)
