r"""Exports the EMA generator of a training run for inference, without any training state.

  python -m faceshop_jax.export --workdir=/tmp/gan --out=/tmp/gan_export [--step=N] \
      [--control_space=/tmp/vae]

Reads the newest checkpoint (or the one at --step) of a generator stage's run (gan, imitative,
disentangle) and writes OUT/export.json, OUT/generator/ and, when used, OUT/face_model.npz and
OUT/control_space/ (inference.save_export), so the export needs nothing outside it. The control
space is the one the run sampled from, or --control_space (a vae run's WORKDIR or its
WORKDIR/control_space); generation then samples κ, β, γ from its decoders instead of the face
model's prior. An existing export at --out is replaced; any other non-empty directory is left
alone.
"""
import sys

from absl import app
from absl import flags

from faceshop_jax import console
from faceshop_jax import inference

FLAGS = flags.FLAGS


def define_flags() -> None:
  """The command's flags (defined only when it runs, so the module imports anywhere)."""
  flags.DEFINE_string('workdir', None, 'The training run to export.')
  flags.DEFINE_integer('step', None, 'The checkpoint step to export (default: the newest).')
  flags.DEFINE_string('out', None, 'Directory to write the export to.')
  flags.DEFINE_string('control_space', None, 'Optional: a vae run (WORKDIR or '
                      'WORKDIR/control_space) to sample the controls from, instead of the one '
                      'the run was trained with (if any).')
  flags.mark_flags_as_required(['workdir', 'out'])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}.')
  try:
    bundle = inference.load_from_workdir(FLAGS.workdir, FLAGS.step)
    if FLAGS.control_space:
      bundle = inference.attach_control_space(bundle, FLAGS.control_space)
    written = inference.save_export(bundle, FLAGS.out)
  except (FileNotFoundError, FileExistsError, ValueError) as e:
    sys.exit(f'export: {e}')
  resolution = bundle.config.model.sr_resolution
  print(f'Exported the EMA generator of the {bundle.config.stage} run in {FLAGS.workdir} '
        f'(step {bundle.step}; {resolution}x{resolution} images, control vectors of '
        f'{bundle.control_dim}) to {FLAGS.out}: {", ".join(written)}. Render from it with '
        f'python -m faceshop_jax.generate --workdir={FLAGS.out} --seeds=0-3 --out=PORTRAITS.')


if __name__ == '__main__':
  define_flags()
  console.quiet_library_logs()
  app.run(main)
