r"""Exports the EMA generator of a training run for inference, without any training state.

  python -m faceshop_jax.export --workdir=/tmp/gan --out=/tmp/gan_export \
      [--control_space=/tmp/vae]

Reads the newest checkpoint of a generator stage's run (gan, imitative) and writes OUT/export.json,
OUT/generator/ and, when used, OUT/face_model.npz and OUT/control_space/ (inference.save_export).
--control_space takes a vae run's WORKDIR (or its WORKDIR/control_space); generation then samples
κ, β, γ from its decoders instead of the face model's prior. An existing export at --out is
replaced; any other non-empty directory is left alone.
"""
import sys

from absl import app
from absl import flags

from faceshop_jax import inference

_WORKDIR = flags.DEFINE_string('workdir', None, 'The training run to export.')
_OUT = flags.DEFINE_string('out', None, 'Directory to write the export to.')
_CONTROL_SPACE = flags.DEFINE_string(
    'control_space', None, 'Optional: a vae run (WORKDIR or WORKDIR/control_space) to sample the '
    'controls from.')
flags.mark_flags_as_required(['workdir', 'out'])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}.')
  try:
    bundle = inference.load_from_workdir(_WORKDIR.value)
    if _CONTROL_SPACE.value:
      bundle = inference.attach_control_space(bundle, _CONTROL_SPACE.value)
    written = inference.save_export(bundle, _OUT.value)
  except (FileNotFoundError, FileExistsError, ValueError) as e:
    sys.exit(f'export: {e}')
  resolution = bundle.config.model.sr_resolution
  print(f'Exported the EMA generator of the {bundle.config.stage} run in {_WORKDIR.value} '
        f'(step {bundle.step}; {resolution}x{resolution} images, control vectors of '
        f'{bundle.control_dim}) to {_OUT.value}: {", ".join(written)}.')


if __name__ == '__main__':
  app.run(main)
