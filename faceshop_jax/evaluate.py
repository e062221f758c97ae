r"""Control accuracy (AED, APD, AID; paper §5.4.2) of a trained generator, as a command.

  python -m faceshop_jax.evaluate --workdir=/tmp/imitative [--step=200] --analysis_dir=synthetic64

Reads the EMA generator of a gan or imitative run (its newest checkpoint, or --step), generates
--identities × --variations portraits from the control prior and reads their controls back with the
reconstructor in --analysis_dir (a directory of role nets or a packaged name). Prints one JSON line
and writes WORKDIR/control_accuracy_step<N>.json. Comparing a run's last adversarial-only checkpoint
with its last checkpoint measures what imitative learning bought.
"""
from collections.abc import Sequence
import json
import os

from absl import app
from absl import flags

from faceshop_jax import inference
from faceshop_jax.train.stages import imitative

_WORKDIR = flags.DEFINE_string('workdir', None, 'A gan or imitative training run.')
_STEP = flags.DEFINE_integer('step', None, 'Checkpoint step (default: the newest).')
_ANALYSIS_DIR = flags.DEFINE_string('analysis_dir', 'synthetic64',
                                    'Role nets (directory or packaged name) for the reconstructor.')
_IDENTITIES = flags.DEFINE_integer('identities', 50, 'People drawn from the prior.')
_VARIATIONS = flags.DEFINE_integer('variations', 4, 'Expressions/poses/lights per person.')
_SEED = flags.DEFINE_integer('seed', 0, 'Seed of the evaluation controls.')


def main(argv: Sequence[str]):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  bundle = inference.load_from_workdir(_WORKDIR.value, step=_STEP.value)
  results = {'step': bundle.step, 'stage': bundle.config.stage, **imitative.control_accuracy(
      bundle.config, bundle.variables, _ANALYSIS_DIR.value, _IDENTITIES.value, _VARIATIONS.value,
      _SEED.value)}
  path = os.path.join(_WORKDIR.value, f'control_accuracy_step{bundle.step}.json')
  with open(path, 'w') as f:
    json.dump(results, f, indent=2, sort_keys=True)
  print(json.dumps(results))


if __name__ == '__main__':
  flags.mark_flags_as_required(['workdir'])
  app.run(main)
