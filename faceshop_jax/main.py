r"""Entry point of every training stage.

  python -m faceshop_jax.main --config=configs/vae.py:cpu --workdir=/tmp/vae [--config.batch_size=8]

The config file's `stage` picks the stage; the text after ':' is its preset ('' = the paper's
scale, 'cpu' = minutes on a CPU, 'test' = tests). A workdir that holds checkpoints is resumed.
"""
from absl import app
from absl import flags
import jax
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
  if FLAGS.config.distributed:
    jax.distributed.initialize()
  loop.train_and_evaluate(FLAGS.config, FLAGS.workdir)


if __name__ == '__main__':
  app.run(main)
