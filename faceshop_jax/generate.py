r"""Renders edited portraits from a trained generator: images, semantic masks, depth, mattes, meshes.

  python -m faceshop_jax.generate --workdir=/tmp/gan_export --seeds=0-7 --out=/tmp/portraits \
      [--yaw=0.3] [--pitch=0.0] [--identity_seed=12] [--expression=jawOpen=0.8,mouthSmileLeft=0.5] \
      [--light=0.5,0.3,0.8] [--background=beach.jpg,studio.png] [--mesh=ply] [--truncation=0.7] [--noblend]

--workdir is a training run (its newest checkpoint, or the one at --step) or an export (python -m
faceshop_jax.export); without --seeds, the personal portrait of an export written by python -m
faceshop_jax.invert is rendered (files named portrait*). For every seed k it writes OUT/seed<k>.png and, at the image size,
OUT/seed<k>_semantics.png (class colours), _depth.png (near white) and _alpha.png (the matte of
the portrait with its background volume made transparent, paper §6.1); for each --background
image B, OUT/seed<k>_over_B.png, the portrait composited over it; with --mesh, OUT/seed<k>.ply
(or .obj), the surface of its density field with vertex colours, and _mesh.png, that mesh drawn
from two sides. OUT/sheet.png puts every output of every seed side by side.

Edits (faceshop_jax.edit): --identity_seed takes that seed's identity κ; --expression sets named
expression units in [0, 1] (all others 0), volume-blended into each seed's own portrait unless
--noblend; --light replaces the sampled illumination by one white light at (yaw, pitch) radians
with the given intensity; --yaw/--pitch turn the camera (the generator stays conditioned on the
frontal view, so the person does not change).
"""
import os
import sys

from absl import app
from absl import flags
import numpy as np

from faceshop_jax import command_line
from faceshop_jax import console
from faceshop_jax import edit
from faceshop_jax import surface
from faceshop_jax import visualize

FLAGS = flags.FLAGS
MESH_FORMATS = ('ply', 'obj')
SHEET = 'sheet.png'  # every output of every seed, a row per seed


def define_flags() -> None:
  """The command's flags (defined only when it runs, so the module imports anywhere)."""
  command_line.define_generator_flags()
  command_line.define(command_line.parse_seeds, 'seeds', None, 'first-last,...',
                      'Seeds to render: 0-7, 1,5,9 or 3; without, the personal portrait of an '
                      'export written by python -m faceshop_jax.invert.')
  flags.DEFINE_float('yaw', None, 'Camera yaw, radians (positive: the subject\'s left); default '
                     'frontal, or the personal portrait\'s own view.')
  flags.DEFINE_float('pitch', 0.0, 'Camera pitch, radians (positive: from above).')
  flags.DEFINE_integer('identity_seed', None, 'Give every portrait the identity κ of this seed.')
  command_line.define(command_line.parse_expression, 'expression', None, 'name=value,...',
                      'Expression units in [0, 1], e.g. jawOpen=0.8,mouthSmileLeft=0.5.')
  command_line.define(command_line.parse_light, 'light', None, 'yaw,pitch,intensity',
                      'One white light: yaw,pitch (radians),intensity, e.g. 0.5,0.3,0.8.')
  flags.DEFINE_float('truncation', 1.0, 'Truncation psi (1 = none).')
  flags.DEFINE_bool('blend', True, 'Render an --expression as a volume-blended edit of each '
                    "seed's own portrait (hair, clothes, background kept; paper §4.4); --noblend "
                    'renders the new controls whole.')
  flags.DEFINE_list('background', None, 'Images to composite the portraits over (§6.1), e.g. '
                    'beach.jpg,studio.png.')
  flags.DEFINE_enum('mesh', None, MESH_FORMATS, 'Also write each portrait\'s surface as a mesh.')
  flags.DEFINE_integer('mesh_resolution', edit.MESH_RESOLUTION, 'Mesh sample grid side.')
  flags.DEFINE_float('mesh_level', edit.MESH_LEVEL, 'Mesh surface density (per metre).')
  flags.DEFINE_string('out', None, 'Directory for the PNGs (created if missing).')
  flags.mark_flags_as_required(['workdir', 'out'])


def edited_portraits(bundle, seeds) -> edit.Portrait:
  """The seeds' portraits (or the bundle's personal one) with the flags' edits applied."""
  portrait = edit.from_bundle(bundle, seeds, FLAGS.yaw, FLAGS.pitch)
  if FLAGS.identity_seed is not None:
    portrait = edit.with_identity(bundle, portrait, seed=FLAGS.identity_seed)
  if FLAGS.light is not None:
    yaw, pitch, intensity = FLAGS.light
    portrait = edit.with_light(bundle, portrait, yaw=yaw, pitch=pitch, intensity=intensity)
  if FLAGS.expression is not None:
    portrait = edit.with_expression(bundle, portrait, units=FLAGS.expression)
  return portrait


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}.')
  try:  # everything is checked and rendered before anything is written
    bundle = command_line.load_generator(FLAGS.workdir, FLAGS.step)
    portrait = edited_portraits(bundle, FLAGS.seeds)
    size = bundle.config.model.sr_resolution
    backgrounds = {f'over_{os.path.splitext(os.path.basename(path))[0]}':
                   edit.load_background(path, size) for path in FLAGS.background or []}
    rendered = edit.render(bundle, portrait, FLAGS.blend, truncation_psi=FLAGS.truncation)
    matted = edit.render(bundle, portrait, FLAGS.blend, transparent_background=True,
                         truncation_psi=FLAGS.truncation)
    meshes = [edit.extract_mesh(bundle, portrait, i, FLAGS.mesh_resolution, FLAGS.mesh_level,
                                FLAGS.blend, FLAGS.truncation)
              for i in range(len(portrait))] if FLAGS.mesh else []
  except (FileNotFoundError, ValueError) as e:
    sys.exit(f'generate: {e}')
  names = [f'seed{seed}' for seed in FLAGS.seeds] if FLAGS.seeds else ['portrait']
  pictures = edit.output_pictures(  # the portrait's own depth and matte, without the backdrop
      rendered._replace(alpha=matted.alpha, depth=matted.depth),
      {name: edit.composite(matted, image) for name, image in backgrounds.items()})
  written = edit.save_pictures(pictures, FLAGS.out, names)
  rows = np.stack(list(pictures.values()), axis=1)  # [N, outputs, R, R, 3]
  for name, (shape, colours), row in zip(names, meshes, rows):
    surface.write_mesh(os.path.join(FLAGS.out, f'{name}.{FLAGS.mesh}'), shape, colours)
    visualize.save_png(os.path.join(FLAGS.out, f'{name}_mesh.png'),
                       edit.mesh_views(shape, colours))
  visualize.save_png(os.path.join(FLAGS.out, SHEET), visualize.image_grid(rows))
  print(f'Wrote {len(written)} PNGs ({size}x{size}: {", ".join(pictures)}) for {len(names)} '
        f'seed(s){f" and their .{FLAGS.mesh} meshes" if meshes else ""}, and {SHEET} (a row per '
        f'seed), to {FLAGS.out}. For videos run python -m faceshop_jax.video '
        f'--workdir={FLAGS.workdir} {f"--seeds={FLAGS.seeds[0]} " if FLAGS.seeds else ""}--orbit '
        f'--out={FLAGS.out}/videos.')


if __name__ == '__main__':
  define_flags()
  console.quiet_library_logs()
  app.run(main)
