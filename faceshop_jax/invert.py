r"""Inverts a real photo into a trained generator and writes a personalised export (paper §6.2).

  python -m faceshop_jax.invert --image=photo.jpg --workdir=/tmp/gan_export --out=/tmp/me \
      [--aligned] [--latent_steps=150] [--tuning_steps=100] [--seed=0]

The photo is prepared as training photos are (data_pipelines.prepare: one face detected, landmarks,
the face model fitted, aligned to the generator's image size); --aligned takes an image already in
that framing (e.g. a synthetic portrait) and only resizes it. Then faceshop_jax.inversion: κ, β, γ
and the camera from the reconstructor, the per-layer latent (Z+) optimised with the generator
frozen, then the generator tuned to the photo (pivotal tuning). OUT is an export
(inference.save_export) holding the tuned generator and the inverted portrait, which every editing
command takes: python -m faceshop_jax.generate --workdir=OUT --expression=jawOpen=0.6 --out=EDITS
renders the person with a new expression (no --seeds: the export's own portrait). Beside it,
OUT_report/ holds inversion.png (photo | start | after the latent | after tuning) and
inversion.json (the scores and times of each phase).
"""
import dataclasses
import json
import os
import sys
import time

from absl import app
from absl import flags
import jax
import numpy as np
from PIL import Image
import tqdm

from faceshop_jax import command_line
from faceshop_jax import console
from faceshop_jax import edit
from faceshop_jax import inference
from faceshop_jax import inversion
from faceshop_jax import visualize
from faceshop_jax.analysis import weights

FLAGS = flags.FLAGS
REPORT_SUFFIX = '_report'


def define_flags() -> None:
  """The command's flags (defined only when it runs, so the module imports anywhere)."""
  defaults = inversion.InversionConfig()
  flags.DEFINE_string('image', None, 'The photo to invert (PNG, JPEG, WebP).')
  command_line.define_generator_flags()
  flags.DEFINE_string('out', None, 'Directory for the personalised export.')
  flags.DEFINE_bool('aligned', False, 'The image is already aligned as the generator\'s data: '
                    'resize it only (no detection or fitting).')
  flags.DEFINE_string('analysis', 'synthetic64', 'Analysis nets (reconstructor, identity): a '
                      'packaged set or a directory.')
  flags.DEFINE_integer('latent_steps', defaults.latent_steps, 'Steps of the latent optimisation.')
  flags.DEFINE_integer('tuning_steps', defaults.tuning_steps, 'Steps of pivotal tuning.')
  flags.DEFINE_integer('locality_portraits', defaults.locality_portraits, 'Random portraits pivotal '
                       'tuning keeps where they were.')
  flags.DEFINE_integer('seed', 0, 'Seed of the initial noise ε and the locality portraits.')
  flags.mark_flags_as_required(['image', 'workdir', 'out'])


def aligned_photo(path: str, size: int, aligned: bool, model) -> np.ndarray:
  """uint8 [size, size, 3]: the photo at path, aligned as the generator's data.

  Raises:
    ValueError: an unreadable photo, or one without a single usable face (prepare's reasons).
  """
  if aligned:
    try:
      with Image.open(path) as image:
        return np.asarray(image.convert('RGB').resize((size, size), Image.LANCZOS), np.uint8)
    except (OSError, Image.DecompressionBombError) as e:
      raise ValueError(f'{path}: unreadable ({e})') from None
  # The real-photo pipeline needs the prepare extra (dlib's landmark predictor).
  from data_pipelines.prepare import prepare  # pylint: disable=g-import-not-at-top
  try:
    return prepare.prepare_photo(model, prepare.read_photo(path), size).image
  except prepare.Skip as e:
    raise ValueError(f'{path}: {e} (a photo of one face, large and clear enough, is needed; '
                     'pass --aligned for an image already in the generator\'s framing)') from None


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}.')
  if not os.path.isfile(FLAGS.image):
    sys.exit(f'invert: no image at {FLAGS.image}.')
  if FLAGS.latent_steps < 1 or FLAGS.tuning_steps < 0:
    sys.exit('invert: --latent_steps must be at least 1 and --tuning_steps at least 0.')
  started = time.time()
  try:
    bundle = command_line.load_generator(FLAGS.workdir, FLAGS.step)
    size = bundle.config.model.sr_resolution
    target = aligned_photo(FLAGS.image, size, FLAGS.aligned, bundle.face_model)
    judges = inversion.load_judges(FLAGS.analysis)
    start = inversion.initial_portrait(bundle, target,
                                       weights.load_role_net(FLAGS.analysis, 'reconstructor'),
                                       jax.random.PRNGKey(FLAGS.seed))
  except (FileNotFoundError, ValueError) as e:
    sys.exit(f'invert: {e}')
  config = dataclasses.replace(inversion.InversionConfig(), latent_steps=FLAGS.latent_steps,
                               tuning_steps=FLAGS.tuning_steps,
                               locality_portraits=FLAGS.locality_portraits)
  times = {'prepare': time.time() - started}
  with tqdm.tqdm(total=config.latent_steps, desc='latent (Z+)', dynamic_ncols=True) as progress:
    portrait, _ = inversion.invert_latent(bundle, start, target, judges, config, progress)
  times['latent'] = time.time() - started - sum(times.values())
  with tqdm.tqdm(total=config.tuning_steps, desc='pivotal tuning', dynamic_ncols=True) as progress:
    tuned, _ = inversion.pivotal_tuning(bundle, portrait, target, judges, config,
                                        jax.random.PRNGKey(FLAGS.seed), progress)
  times['tuning'] = time.time() - started - sum(times.values())
  renders = {'start': edit.render(bundle, start).image[0],
             'latent': edit.render(bundle, portrait).image[0],
             'tuned': edit.render(tuned, portrait).image[0]}
  scores = {name: {k: float(v[0]) for k, v in
                   inversion.scores(image[None], target[None], judges)._asdict().items()}
            for name, image in renders.items()}
  personal = dataclasses.replace(tuned, portrait=inversion.portrait_record(portrait))
  try:
    inference.save_export(personal, FLAGS.out)
  except FileExistsError as e:
    sys.exit(f'invert: {e}')
  report = os.path.abspath(FLAGS.out) + REPORT_SUFFIX
  os.makedirs(report, exist_ok=True)
  visualize.save_png(os.path.join(report, 'inversion.png'),
                     visualize.image_grid(np.stack([[target, *renders.values()]])))
  with open(os.path.join(report, 'inversion.json'), 'w') as f:
    json.dump({'image': os.path.abspath(FLAGS.image), 'size': size, 'scores': scores,
               'seconds': times, 'config': dataclasses.asdict(config)}, f, indent=2)
  for name, values in scores.items():
    print(f'{name:>6}: PSNR {values["psnr"]:.2f} dB, LPIPS {values["lpips"]:.4f}, identity '
          f'{values["identity"]:.3f}')
  print(f'Inverted {FLAGS.image} in {sum(times.values()):.0f} s (prepare {times["prepare"]:.0f}, '
        f'latent {times["latent"]:.0f}, tuning {times["tuning"]:.0f}); the personalised export is '
        f'in {FLAGS.out}, the comparison in {report}. Edit the person with python -m '
        f'faceshop_jax.generate --workdir={FLAGS.out} --expression=jawOpen=0.6 --light=0.5,0.3,0.8 '
        f'--yaw=0.3 --out={FLAGS.out}_edits')


if __name__ == '__main__':
  define_flags()
  console.quiet_library_logs()
  app.run(main)
