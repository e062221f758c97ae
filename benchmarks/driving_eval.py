r"""How well driven portraits follow the driving face: motion read back by the independent judge.

  python benchmarks/driving_eval.py --workdir=/work/runs/imitative [--seeds=0-3] [--frames=24] \
      [--out=/tmp/driving_eval]
  # the README's strip, by the command, from the clip this wrote:
  python -m faceshop_jax.animate --driving=/tmp/driving_eval/driving --aligned \
      --workdir=/work/runs/imitative --seeds=0-3 --out=/tmp/driving_eval/animate
  cp /tmp/driving_eval/animate/strip.png docs/driving_strip.png

The driving clip is the synthetic world's (driving.synthetic_clip, one person at 64²) with a known
motion: jawOpen rising 0 -> 1, yaw sweeping -YAW -> YAW and pitch one period of ±PITCH. It is read
by synthetic64 (the default driver: driving.track, aligned), smoothed and clipped as the animate
command does, and drives every seed (driving.drive, blended). judge64, a reconstructor trained apart
from synthetic64 and used by no loss, then reads expression and pose back from images, compared
with the driving truth:
  chance      a constant answer: the truth's mean over the clip
  floor       judge64 on the driving frames themselves
  tracked     synthetic64's smoothed reading, the motion the generator was given (no judge)
  driven      judge64 on the driven frames (all seeds)
  exact       judge64 on frames driven by the true motion instead (the generator alone)
Columns: β MAE over all units, jawOpen MAE, yaw and pitch MAE (radians), and the correlation over
time of the jawOpen and yaw read with the truth (none for a constant). Writes OUT/driving (the clip
as PNG frames) and OUT/driving_eval.json; prints the table.
"""
import argparse
import json
import os
import time

import numpy as np
from PIL import Image

from faceshop_jax import command_line
from faceshop_jax import driving
from faceshop_jax import geometry
from faceshop_jax.analysis import weights
from faceshop_jax.eval import control_accuracy

SIZE = 64  # the packaged reconstructors' input
YAW = 0.5
PITCH = 0.15
SMOOTHING = 1.0  # the animate command's default
COLUMNS = ('beta_mae', 'jaw_mae', 'yaw_mae', 'pitch_mae', 'jaw_r', 'yaw_r')


def truth(model, frames: int) -> driving.Track:
  """The driving motion over `frames` frames: jawOpen ramp, yaw sweep, one pitch period."""
  t = np.linspace(0.0, 1.0, frames)
  expression = np.zeros((frames, model.n_exp), np.float32)
  expression[:, model.expression_names.index('jawOpen')] = t
  return driving.Track(expression, (YAW * (2 * t - 1)).astype(np.float32),
                       (PITCH * np.sin(2 * np.pi * t)).astype(np.float32), np.ones(frames, bool),
                       ('',) * frames)


def _correlation(read: np.ndarray, true: np.ndarray) -> float | None:
  """Pearson r of a reading [T] with the truth [T]; None for a constant reading."""
  return float(np.corrcoef(read, true)[0, 1]) if np.ptp(read) > 0 else None


def errors(read: driving.Track, true: driving.Track, jaw: int) -> dict:
  """COLUMNS of a reading against the truth (both [T] motions, or readings of S clips [S·T])."""
  repeats = len(read.yaw) // len(true.yaw)
  tiled = true._replace(expression=np.tile(true.expression, (repeats, 1)),
                        yaw=np.tile(true.yaw, repeats), pitch=np.tile(true.pitch, repeats))
  return {'beta_mae': float(np.abs(read.expression - tiled.expression).mean()),
          'jaw_mae': float(np.abs(read.expression[:, jaw] - tiled.expression[:, jaw]).mean()),
          'yaw_mae': float(np.abs(read.yaw - tiled.yaw).mean()),
          'pitch_mae': float(np.abs(read.pitch - tiled.pitch).mean()),
          'jaw_r': _correlation(read.expression[:, jaw], tiled.expression[:, jaw]),
          'yaw_r': _correlation(read.yaw, tiled.yaw)}


def judged(reconstruct, model, images: np.ndarray) -> driving.Track:
  """The judge's reading of uint8 images [N, R, R, 3] as a motion of N frames."""
  out = reconstruct(images.astype(np.float32) / 127.5 - 1.0)
  yaw, pitch = geometry.yaw_pitch_from_camera(out.camera)
  n = len(images)
  return driving.Track(np.asarray(model.split_coeffs(out.coeffs).expression), np.asarray(yaw),
                       np.asarray(pitch), np.ones(n, bool), ('',) * n)


def format_table(rows: dict) -> str:
  """The rows {name: {column: value}} as a plain-text table, a dash where a value is None."""
  lines = [f'{"":10s}' + ''.join(f'{c:>11s}' for c in COLUMNS)]
  for name, row in rows.items():
    lines.append(f'{name:10s}' + ''.join(
        f'{"–":>11s}' if row[c] is None else f'{row[c]:11.3f}' for c in COLUMNS))
  return '\n'.join(lines)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--workdir', required=True, help='A training run or an export.')
  parser.add_argument('--seeds', default='0-3', help='Seeds to drive: 0-3, 1,5,9 or 3.')
  parser.add_argument('--frames', type=int, default=24, help='Frames of the driving clip.')
  parser.add_argument('--person', type=int, default=0, help='Seed of the driving person.')
  parser.add_argument('--out', default='/tmp/driving_eval', help='Directory for the outputs.')
  args = parser.parse_args()
  seeds = command_line.parse_seeds(args.seeds)

  start = time.perf_counter()
  bundle = command_line.load_generator(args.workdir)
  model = bundle.face_model
  jaw = model.expression_names.index('jawOpen')
  true = truth(model, args.frames)
  clip = driving.synthetic_clip(model, true.expression, true.yaw, true.pitch, SIZE, args.person)
  driver = weights.load_role_net('synthetic64', 'reconstructor')
  raw = driving.track(clip, driver, model, aligned=True)
  tracked = driving.clip(driving.smooth(raw, SMOOTHING), model)
  driven = driving.drive(bundle, seeds, tracked)
  exact = driving.drive(bundle, seeds, driving.clip(true, model))
  judge = control_accuracy.judge_reconstructor('judge64', model)
  size = bundle.config.model.sr_resolution
  mean = true._replace(expression=np.broadcast_to(true.expression.mean(0), true.expression.shape),
                       yaw=np.full_like(true.yaw, true.yaw.mean()),
                       pitch=np.full_like(true.pitch, true.pitch.mean()))
  rows = {'chance': errors(mean, true, jaw),
          'floor': errors(judged(judge, model, clip), true, jaw),
          'tracked': errors(tracked, true, jaw),
          'driven': errors(judged(judge, model, driven.reshape(-1, size, size, 3)), true, jaw),
          'exact': errors(judged(judge, model, exact.reshape(-1, size, size, 3)), true, jaw)}

  frames_dir = os.path.join(args.out, 'driving')
  os.makedirs(frames_dir, exist_ok=True)
  for t, frame in enumerate(clip):
    Image.fromarray(frame).save(os.path.join(frames_dir, f'frame{t:03d}.png'))
  report = {'workdir': args.workdir, 'step': bundle.step, 'seeds': seeds, 'frames': args.frames,
            'person': args.person, 'faces_found': int(raw.found.sum()), 'rows': rows}
  with open(os.path.join(args.out, 'driving_eval.json'), 'w') as f:
    json.dump(report, f, indent=1)
  print(f'{args.workdir}: step {bundle.step}, {size}x{size}; {len(seeds)} seeds driven by '
        f'{args.frames} synthetic frames (jawOpen 0 -> 1, yaw ±{YAW}, pitch ±{PITCH}; a face read '
        f'in {int(raw.found.sum())}), read back by judge64; {time.perf_counter() - start:.0f} s.')
  print(format_table(rows))
  print(f'Wrote {frames_dir} and driving_eval.json to {args.out}.')


if __name__ == '__main__':
  main()
