r"""Talking-face driving (paper §6.1): generated portraits move as the face in a driving video does.

  python -m faceshop_jax.animate --driving=talk.mp4 --workdir=/tmp/gan_export --seeds=0-3 \
      --out=/tmp/driven [--aligned] [--smoothing=1.0] [--reconstructor=synthetic64] [--fps=24] \
      [--format=gif] [--batch=8] [--noblend]

--driving is a video (.mp4, .gif) or a directory of frames (.png, .jpg, ..., in name order);
--workdir a training run or an export. Each frame's face is put in the portrait framing (as
data_pipelines.prepare frames photos; --aligned: the frames already are, as the synthetic world
renders them, and are only resized) and the reconstructor (a packaged name or a directory of role
nets) reads its expression β and head pose; the motion is smoothed over time by a Gaussian of
--smoothing frames (0: none) and clipped into the range the generator was trained on. Frames
without a usable face hold the last good frame's motion and are listed. Every seed's portrait is
then rendered with β(t), volume-blended into it unless --noblend, from the camera at the pose(t)
(faceshop_jax.driving).

Writes OUT/seed<k>_driven.mp4 (or .gif; portrait_driven for an inverted person's export without
--seeds): the driving frame beside the driven one; OUT/track.json:
per frame whether a face was found (and why not), the pose and the values of the TOP_UNITS
expression units that move most; OUT/strip.png: STRIP_FRAMES moments, the driving frames above a
row per seed. Bad input (no such file, an unreadable video, no face in any frame) writes nothing.
"""
import json
import os
import sys

from absl import app
from absl import flags
import numpy as np
import tqdm

from faceshop_jax import command_line
from faceshop_jax import console
from faceshop_jax import driving
from faceshop_jax import media
from faceshop_jax import video
from faceshop_jax import visualize
from faceshop_jax.analysis import weights

FLAGS = flags.FLAGS
STRIP_FRAMES = 6
TOP_UNITS = 5  # expression units in track.json: those with the largest range over the clip
TRACK_FILE = 'track.json'
STRIP_FILE = 'strip.png'


def define_flags() -> None:
  """The command's flags (defined only when it runs, so the module imports anywhere)."""
  flags.DEFINE_string('driving', None, 'The driving video (.mp4, .gif) or a directory of frames.')
  command_line.define_generator_flags()
  command_line.define(command_line.parse_seeds, 'seeds', None, 'first-last,...',
                      'Seeds to drive: 0-3, 1,5,9 or 3; without, the inverted person of an export '
                      'written by python -m faceshop_jax.invert (or seed 0).')
  flags.DEFINE_string('reconstructor', 'synthetic64', 'The reconstructor reading the driving face: '
                      f'a packaged set ({", ".join(sorted(weights.PACKAGED))}) or a directory of '
                      'role nets.')
  flags.DEFINE_bool('aligned', False, 'The frames are already in the portrait framing (as the '
                    'synthetic world renders them): only resize them.')
  flags.DEFINE_float('smoothing', 1.0, 'Sigma of the Gaussian smoothing the motion over time, in '
                     'frames (0: none).')
  video.define_output_flags()
  flags.mark_flags_as_required(['driving', 'workdir', 'out'])


def unit_names(model) -> list[str]:
  """The expression units' names (exp<i> for a model with unnamed units)."""
  return list(model.expression_names) or [f'exp{i}' for i in range(model.n_exp)]


def track_summary(motion: driving.Track, names: list[str], top: int = TOP_UNITS) -> dict:
  """track.json's content: the `top` units moving most (largest range over the clip) and per
  frame whether a face was found (and why not), yaw, pitch and those units' values."""
  ranges = np.ptp(motion.expression, axis=0)
  units = [int(u) for u in np.argsort(-ranges, kind='stable')[:top]]
  frames = [{'frame': t, 'found': bool(motion.found[t]), 'reason': motion.reasons[t],
             'yaw': round(float(motion.yaw[t]), 4), 'pitch': round(float(motion.pitch[t]), 4),
             'expression': {names[u]: round(float(motion.expression[t, u]), 4) for u in units}}
            for t in range(len(motion.yaw))]
  return {'units': [names[u] for u in units], 'frames': frames}


def held_report(motion: driving.Track) -> str:
  """One line: which frames had no usable face (held), and why."""
  missed = [t for t, found in enumerate(motion.found) if not found]
  if not missed:
    return f'A face was read in all {len(motion.found)} driving frames.'
  listed = ', '.join(f'{t} ({motion.reasons[t]})' for t in missed)
  return (f'{len(missed)} of {len(motion.found)} driving frames had no usable face and hold the '
          f'last good frame\'s motion: {listed}.')


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}.')
  if FLAGS.batch < 1 or FLAGS.fps <= 0 or FLAGS.smoothing < 0:
    sys.exit(f'animate: --batch ({FLAGS.batch}) must be at least 1, --fps ({FLAGS.fps}) positive '
             f'and --smoothing ({FLAGS.smoothing}) not negative.')
  try:
    frames = driving.read_frames(FLAGS.driving)
    bundle = command_line.load_generator(FLAGS.workdir, FLAGS.step)
    net = weights.load_role_net(FLAGS.reconstructor, 'reconstructor')
    with tqdm.tqdm(total=len(frames), unit='frame', desc='reading the driving face',
                   dynamic_ncols=True) as progress:
      motion = driving.track(frames, net, bundle.face_model, FLAGS.aligned, progress)
  except (FileNotFoundError, ValueError) as e:
    sys.exit(f'animate: {e}')
  motion = driving.clip(driving.smooth(motion, FLAGS.smoothing), bundle.face_model)
  seeds = [None] if FLAGS.seeds is None and bundle.portrait else FLAGS.seeds or [0]
  names = ['portrait' if seed is None else f'seed{seed}' for seed in seeds]
  with tqdm.tqdm(total=len(seeds) * len(frames), unit='frame', desc='rendering',
                 dynamic_ncols=True) as progress:
    driven = driving.drive(bundle, seeds, motion, FLAGS.batch, FLAGS.blend, progress)
  os.makedirs(FLAGS.out, exist_ok=True)
  written = [media.write_video(os.path.join(FLAGS.out, f'{name}_driven.{FLAGS.format}'),
                               driving.side_by_side(frames, seed_frames), FLAGS.fps)
             for name, seed_frames in zip(names, driven)]
  summary = {'driving': FLAGS.driving, 'reconstructor': FLAGS.reconstructor,
             'aligned': FLAGS.aligned, 'smoothing': FLAGS.smoothing,
             **track_summary(motion, unit_names(bundle.face_model))}
  with media.atomic_output(os.path.join(FLAGS.out, TRACK_FILE)) as temporary:
    with open(temporary, 'w') as f:
      json.dump(summary, f, indent=1)
  visualize.save_png(os.path.join(FLAGS.out, STRIP_FILE),
                     driving.frame_strip(frames, driven, STRIP_FRAMES))
  print(held_report(motion))
  size = bundle.config.model.sr_resolution
  print(f'Wrote {len(written)} driven video(s) of {len(frames)} frames (driving | {size}x{size} '
        f'driven, {FLAGS.fps:g} fps), {TRACK_FILE} and {STRIP_FILE} to {FLAGS.out}: '
        f'{", ".join(os.path.basename(p) for p in written)}. To pose and edit one of these '
        f'portraits by hand, python -m faceshop_jax.serve --workdir={FLAGS.workdir}; for its '
        f'stills, mattes and meshes, python -m faceshop_jax.generate --workdir={FLAGS.workdir} '
        f'{"" if seeds[0] is None else f"--seeds={seeds[0]} "}--out={FLAGS.out}/portraits.')


if __name__ == '__main__':
  define_flags()
  console.quiet_library_logs()
  app.run(main)
