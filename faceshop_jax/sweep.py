r"""Draws one picture per control factor: one control swept, the others fixed, beside the 3DMM.

  python -m faceshop_jax.sweep --workdir=/tmp/gan [--step=N] [--seeds=0,1,2] \
      [--identity_seeds=100-106] --out=/tmp/sweeps

The generator comes from exactly one of --workdir (a training run; its newest checkpoint, or the
one at --step) or --export (a directory written by python -m faceshop_jax.export). Writes

  OUT/sweep_pose.png        camera yaw from -0.6 to 0.6 radians
  OUT/sweep_light.png       one directional light turning from the subject's right to their left
  OUT/sweep_expression.png  jawOpen 0 → 1, then a smile (mouthSmileLeft + mouthSmileRight) 0 → 1,
                            volume-blended into the neutral column (--noblend: not)
  OUT/sweep_identity.png    the identity κ of each --identity_seeds seed; ε, β, γ, camera fixed

(inference.control_sweeps). In each picture every base seed has two rows: the generated images,
then the 3DMM renders R of the same controls and cameras over grey.
"""
import os
import sys

from absl import app
from absl import flags
import numpy as np

from faceshop_jax import inference
from faceshop_jax import visualize

FLAGS = flags.FLAGS


def define_flags() -> None:
  """The command's flags (defined only when it runs, so the module imports anywhere)."""
  flags.DEFINE_string('workdir', None, 'A training run of a generator stage (gan, imitative).')
  flags.DEFINE_integer('step', None, 'With --workdir: the checkpoint step (default: the newest).')
  flags.DEFINE_string('export', None, 'An export written by python -m faceshop_jax.export.')
  flags.DEFINE_string('seeds', '0,1,2', 'Base seeds, one pair of rows each: 0-2, 1,5,9 or 3.')
  flags.DEFINE_string('identity_seeds', '100-106', 'Seeds whose identities κ are the columns of '
                      'sweep_identity.png.')
  flags.DEFINE_string('out', None, 'Directory for the PNGs (created if missing).')
  flags.DEFINE_bool('blend', True, 'Render the expression sweep as volume-blended edits of its '
                    'neutral column (paper §4.4); --noblend renders each column whole.')
  flags.mark_flags_as_required(['out'])
  flags.mark_flags_as_mutual_exclusive(['workdir', 'export'], required=True)


def sweep_picture(renders: inference.SweepRenders) -> np.ndarray:
  """uint8 [2·S·(R+2)+2, C·(R+2)+2, 3]: for each base seed, its generated row above its R row."""
  rows = np.stack([renders.generated, renders.guidance], axis=1)  # [S, 2, C, R, R, 3]
  return visualize.image_grid(rows.reshape(-1, *rows.shape[2:]))


def write_sweeps(bundle: inference.GeneratorBundle, seeds, identity_seeds, out_dir: str,
                 blend: bool = True) -> list[tuple[str, inference.Sweep]]:
  """Renders and writes OUT_DIR/sweep_<factor>.png for each sweep; returns (path, sweep) pairs."""
  os.makedirs(out_dir, exist_ok=True)
  written = []
  for sweep in inference.control_sweeps(bundle, seeds, identity_seeds):
    path = os.path.join(out_dir, f'sweep_{sweep.name}.png')
    visualize.save_png(path, sweep_picture(inference.render_sweep(bundle, sweep, blend)))
    written.append((path, sweep))
  return written


def _seeds_flag(name: str) -> list[int]:
  try:
    return inference.parse_seeds(FLAGS[name].value)
  except ValueError as e:
    raise ValueError(f'--{name}: {e}') from None


def _load_bundle() -> inference.GeneratorBundle:
  if FLAGS.export:
    if FLAGS.step is not None:
      raise ValueError('--step applies to --workdir only; an export holds one step.')
    return inference.load_export(FLAGS.export)
  return inference.load_from_workdir(FLAGS.workdir, FLAGS.step)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}.')
  try:
    seeds, identity_seeds = _seeds_flag('seeds'), _seeds_flag('identity_seeds')
    bundle = _load_bundle()
    written = write_sweeps(bundle, seeds, identity_seeds, FLAGS.out, FLAGS.blend)
  except (FileNotFoundError, ValueError) as e:
    sys.exit(f'sweep: {e}')
  for path, sweep in written:
    print(f'Wrote {path}: {sweep.name}, {sweep.titles[0]} ... {sweep.titles[-1]} '
          f'({len(sweep.titles)} columns); seeds {", ".join(map(str, seeds))}, each a row of '
          'generated images above a row of 3DMM renders R.')
  source = (f'--workdir={FLAGS.workdir}' if FLAGS.workdir else f'--checkpoint={FLAGS.export}')
  print(f'The sweeps of step {bundle.step} are in {FLAGS.out}; to render single portraits at a '
        f'chosen view, expression and light, run python -m faceshop_jax.generate {source} '
        f'--seeds={FLAGS.seeds} --yaw=0.3 --expression=jawOpen=0.8 --out={FLAGS.out}/portraits')


if __name__ == '__main__':
  define_flags()
  app.run(main)
