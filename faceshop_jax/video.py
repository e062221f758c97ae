r"""Videos of generated portraits: a pose orbit and expression animations, as MP4 (or GIF).

  python -m faceshop_jax.video --workdir=/tmp/gan_export --seeds=0-3 --orbit --out=/tmp/videos
  python -m faceshop_jax.video --workdir=/tmp/gan --seeds=0 --expression=jawOpen=0:0.8:0 \
      --out=/tmp/videos [--frames=48] [--fps=24] [--format=gif] [--noblend]

--workdir is a training run or an export. --orbit turns the camera around each portrait (yaw
±ORBIT_YAW, pitch ±ORBIT_PITCH along an ellipse) with the conditioning camera held frontal, so
the person stays the same. --expression animates named units through keyframes spread evenly over
the clip (each unit its own, interpolated linearly), volume-blended into the seed's own portrait
unless --noblend. Writes OUT/seed<k>_orbit.mp4 and OUT/seed<k>_expression.mp4, and beside each a
frame strip (…_strip.png, STRIP_FRAMES evenly spaced frames) for READMEs.
"""
import math
import os
import sys

from absl import app
from absl import flags
import jax
import jax.numpy as jnp
import numpy as np
import tqdm

from faceshop_jax import command_line
from faceshop_jax import console
from faceshop_jax import edit
from faceshop_jax import geometry
from faceshop_jax import inference
from faceshop_jax import media
from faceshop_jax import visualize

FLAGS = flags.FLAGS
# The orbit: yaw = ORBIT_YAW·sin(2πt), pitch = ORBIT_PITCH·cos(2πt) over the clip (inside the
# trained camera range, face_model.prior.PriorConfig).
ORBIT_YAW = 0.5
ORBIT_PITCH = 0.15
STRIP_FRAMES = 6
FORMATS = ('mp4', 'gif')


def orbit(portrait: edit.Portrait, frames: int) -> edit.Portrait:
  """One portrait (a batch of 1) as `frames` frames whose render camera circles it."""
  t = np.arange(frames) / frames
  yaw, pitch = ORBIT_YAW * np.sin(2 * math.pi * t), ORBIT_PITCH * np.cos(2 * math.pi * t)
  repeated = jax.tree.map(lambda x: jnp.repeat(x, frames, axis=0), portrait)
  return repeated.replace(camera=geometry.camera_from_yaw_pitch(jnp.asarray(yaw),
                                                                jnp.asarray(pitch)))


def keyframe_values(keyframes: dict[str, list[float]], frames: int) -> list[dict[str, float]]:
  """Per frame, each unit's value: its keyframes spread evenly over the frames, linearly
  interpolated (the first frame is the first keyframe, the last frame the last)."""
  t = np.linspace(0.0, 1.0, frames)
  tracks = {unit: np.interp(t, np.linspace(0.0, 1.0, len(values)), values)
            for unit, values in keyframes.items()}
  return [{unit: float(track[i]) for unit, track in tracks.items()} for i in range(frames)]


def expression_animation(bundle: inference.GeneratorBundle, portrait: edit.Portrait,
                         keyframes: dict[str, list[float]], frames: int) -> edit.Portrait:
  """One portrait (a batch of 1) as `frames` frames of the keyframed expression (an edit of its
  own expression, so a blended render keeps the rest of the portrait).

  Raises:
    ValueError: an unknown unit or a value outside [0, 1] (edit.expression_vector).
  """
  for unit, values in keyframes.items():  # names the keyframe at fault, not an in-between frame
    for value in values:
      edit.expression_vector(bundle.face_model, {unit: value})
  betas = jnp.stack([edit.expression_vector(bundle.face_model, units)
                     for units in keyframe_values(keyframes, frames)])
  repeated = jax.tree.map(lambda x: jnp.repeat(x, frames, axis=0), portrait)
  return edit.with_expression(bundle, repeated, beta=betas)


def render_frames(bundle: inference.GeneratorBundle, frames: edit.Portrait, batch: int,
                  blend: bool, progress: tqdm.tqdm | None = None) -> np.ndarray:
  """uint8 [F, R, R, 3]: the frames rendered `batch` at a time (the last batch padded, so one
  compilation serves every batch)."""
  images = []
  for start in range(0, len(frames), batch):
    part = frames[start:start + batch]
    short = batch - len(part)
    padded = jax.tree.map(lambda x: jnp.concatenate([x, jnp.repeat(x[-1:], short, 0)]), part)
    images.append(edit.render(bundle, padded, blend=blend).image[:batch - short])
    if progress is not None:
      progress.update(len(part))
  return np.concatenate(images)


def define_flags() -> None:
  """The command's flags (defined only when it runs, so the module imports anywhere)."""
  command_line.define_generator_flags()
  command_line.define(command_line.parse_seeds, 'seeds', None, 'first-last,...',
                      'Seeds to animate: 0-3, 1,5,9 or 3; without, the personal portrait of an '
                      'export written by python -m faceshop_jax.invert (or seed 0).')
  flags.DEFINE_bool('orbit', False, 'Write a pose orbit of each seed.')
  command_line.define(command_line.parse_keyframes, 'expression', None, 'unit=v:v:...,...',
                      'Write an expression animation: unit keyframes in [0, 1], e.g. '
                      'jawOpen=0:0.8:0,mouthSmileLeft=0:0:1.')
  flags.DEFINE_integer('frames', 48, 'Frames per video.')
  define_output_flags()
  flags.mark_flags_as_required(['workdir', 'out'])


def define_output_flags() -> None:
  """The flags every video-writing command shares: --fps, --format, --batch, --blend, --out."""
  flags.DEFINE_float('fps', 24.0, 'Frames per second of the videos written.')
  flags.DEFINE_enum('format', 'mp4', FORMATS, 'mp4 (H.264) or gif.')
  flags.DEFINE_integer('batch', 8, 'Frames rendered at a time.')
  flags.DEFINE_bool('blend', True, 'Render expression frames volume-blended into the seed\'s own '
                    'portrait (paper §4.4); --noblend renders them whole.')
  flags.DEFINE_string('out', None, 'Directory for the videos (created if missing).')


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}.')
  if not (FLAGS.orbit or FLAGS.expression):
    sys.exit('video: nothing to render; ask for --orbit and/or --expression=jawOpen=0:0.8.')
  if FLAGS.frames < 2 or FLAGS.batch < 1 or FLAGS.fps <= 0:
    sys.exit(f'video: --frames ({FLAGS.frames}) must be at least 2, --batch ({FLAGS.batch}) at '
             f'least 1 and --fps ({FLAGS.fps}) positive.')
  try:
    bundle = command_line.load_generator(FLAGS.workdir, FLAGS.step)
    clips = []  # (name, frames as a Portrait), all checked before anything is rendered
    sources = ([('portrait', edit.from_bundle(bundle))] if FLAGS.seeds is None and bundle.portrait
               else [(f'seed{seed}', edit.from_seeds(bundle, [seed])) for seed in FLAGS.seeds or [0]])
    for name, portrait in sources:
      if FLAGS.orbit:
        clips.append((f'{name}_orbit', orbit(portrait, FLAGS.frames)))
      if FLAGS.expression:
        clips.append((f'{name}_expression',
                      expression_animation(bundle, portrait, FLAGS.expression, FLAGS.frames)))
  except (FileNotFoundError, ValueError) as e:
    sys.exit(f'video: {e}')
  os.makedirs(FLAGS.out, exist_ok=True)
  written = []
  with tqdm.tqdm(total=sum(len(frames) for _, frames in clips), unit='frame',
                 desc='rendering', dynamic_ncols=True) as progress:
    for name, frames in clips:
      images = render_frames(bundle, frames, FLAGS.batch, FLAGS.blend, progress)
      path = media.write_video(os.path.join(FLAGS.out, f'{name}.{FLAGS.format}'), images,
                               FLAGS.fps)
      visualize.save_png(os.path.join(FLAGS.out, f'{name}_strip.png'),
                         media.frame_strip(images, min(STRIP_FRAMES, len(images))))
      written.append(path)
  size = bundle.config.model.sr_resolution
  print(f'Wrote {len(written)} video(s) of {FLAGS.frames} frames ({size}x{size}, {FLAGS.fps:g} '
        f'fps) and their frame strips to {FLAGS.out}: '
        f'{", ".join(os.path.basename(p) for p in written)}. For single edited frames, meshes and '
        f'mattes run python -m faceshop_jax.generate --workdir={FLAGS.workdir} --seeds=0 '
        f'--out={FLAGS.out}/portraits; to edit interactively, python -m faceshop_jax.serve '
        f'--workdir={FLAGS.workdir}.')


if __name__ == '__main__':
  define_flags()
  console.quiet_library_logs()
  app.run(main)
