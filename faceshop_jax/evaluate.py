r"""Control accuracy and image quality of a trained generator, as a command.

  python -m faceshop_jax.evaluate --workdir=/tmp/imitative [--step=800] [--judge=judge64] [--fd]

Reads the EMA generator of a gan or imitative run (its newest checkpoint, or --step) and prints
  control accuracy (eval/control_accuracy.py): AED, APD, AID and the identity similarity IDS of
      --identities × --variations portraits drawn from the control prior and read back by the judge
      (a reconstructor trained apart from every net a loss uses), each as four rows: chance (a
      constant answer), floor (the judge on the synthetic world's exact renders of the same
      controls and cameras), generated, and the normalised score (0 no control, 1 as readable as
      the exact renders);
  with --disentanglement (eval/disentanglement.py), DS for expression, pose and illumination and
      the identity similarity IS (paper §5.4.3) beside chance and ceiling rows, and the non-face
      error of expression edits rendered whole and volume-blended (Fig. 3), with a picture of
      their error maps;
  with --fd, image quality (eval/image_quality.py): FD-VGG16, the Fréchet distance of --fd_images
      generated and as many dataset images in pooled ImageNet VGG16 features (a stand-in for FID),
      beside its chance (a constant grey image) and floor (the dataset's next --fd_images images),
      and true FID with --inception_dir (pytorch-fid weights converted by
      `python -m faceshop_jax.analysis.convert --kind inception`).
Writes WORKDIR/evaluation_step<N>.json. Comparing two runs at the same step (the gan stage alone
and the imitative stage) measures what imitative learning bought.
"""
from collections.abc import Sequence
import functools
import json
import os
import sys

from absl import app
from absl import flags
import jax
import numpy as np

from faceshop_jax import data
from faceshop_jax import face_model
from faceshop_jax import inference
from faceshop_jax import visualize
from faceshop_jax.eval import control_accuracy
from faceshop_jax.eval import disentanglement
from faceshop_jax.eval import fid
from faceshop_jax.eval import image_quality
from faceshop_jax.face_model import prior as prior_lib

FLAGS = flags.FLAGS
_FD_BATCH = 25


def define_flags() -> None:
  """The command's flags (defined only when it runs, so the module imports anywhere)."""
  flags.DEFINE_string('workdir', None, 'A gan or imitative training run.')
  flags.DEFINE_integer('step', None, 'Checkpoint step (default: the newest).')
  flags.DEFINE_string('judge', 'judge64', 'Role nets (a directory or packaged name) whose '
                      'reconstructor reads the controls back; never one a loss used.')
  flags.DEFINE_integer('identities', 50, 'People drawn from the prior.')
  flags.DEFINE_integer('variations', 4, 'Expressions/poses/lights per person.')
  flags.DEFINE_integer('seed', 0, 'Seed of the evaluation controls.')
  flags.DEFINE_bool('fd', False, 'Also measure FD-VGG16 (and FID with --inception_dir).')
  flags.DEFINE_integer('fd_images', 500, 'Generated and dataset images for --fd.')
  flags.DEFINE_string('inception_dir', '', 'Converted Inception-v3 weights for true FID.')
  flags.DEFINE_string('fd_data', '', 'With --fd: the dataset to compare with (default: the run\'s '
                      'own), e.g. synthetic_portraits/r64_n400_cartoon.')
  flags.DEFINE_string('fd_data_dir', '', 'With --fd_data: its tfds data_dir (default: the run\'s).')
  flags.DEFINE_bool('disentanglement', False, 'Also measure DS and IS (--bases portraits, '
                    '--edits edits of each factor) and the non-face error of expression edits '
                    'with and without volume blending (--edit_sources portraits).')
  flags.DEFINE_integer('bases', 50, 'Source portraits of the DS/IS protocol.')
  flags.DEFINE_integer('edits', 4, 'Edits of each factor per source (at least 2).')
  flags.DEFINE_integer('edit_sources', 64, 'Portraits whose expression is edited for the '
                       'non-face error.')
  flags.mark_flags_as_required(['workdir'])


def generated_batches(config, variables, count: int, batch_size: int, seed: int):
  """Images float32[b, R, R, 3] of `count` prior draws (controls, noise, cameras), in batches."""
  model = face_model.load(config.data.face_model)
  generate = control_accuracy.generator_images(config, variables)
  for start in range(0, count, batch_size):
    key_controls, key_noise = jax.random.split(jax.random.fold_in(jax.random.PRNGKey(seed), start))
    coeffs, camera = prior_lib.sample_controls(key_controls, model, min(batch_size, count - start))
    yield np.asarray(generate(coeffs, camera, key_noise))


def image_quality_of(config, variables) -> dict[str, float]:
  """{'FD-VGG16': ..., ['FID': ...], 'fd_images': n, and per distance its chance and floor rows}
  against the run's training dataset, or the one --fd_data names (e.g. a fine-tuning target's, to
  measure a run before it).

  The same judge scores two more sets against the same dataset images: chance, `{name}/chance_grey`,
  a constant mid-grey image (what a generator that learnt nothing scores), and the floor,
  `{name}/floor_data`, the next --fd_images dataset images (the dataset against itself: what an
  exact sampler of the data scores at this many images); the floor is left out when the dataset
  holds fewer than twice --fd_images records.
  """
  feature_fns = {'FD-VGG16': image_quality.fd_vgg16_feature_fn()}
  if FLAGS.inception_dir:
    feature_fns['FID'] = image_quality.fid_inception_feature_fn(FLAGS.inception_dir)
  name = FLAGS.fd_data or config.data.name
  data_dir = FLAGS.fd_data_dir or config.data.data_dir or None
  size = len(data.open_split(name, 'train', data_dir))

  def real_batches(start):
    return image_quality.dataset_image_batches(name, FLAGS.fd_images, _FD_BATCH,
                                               data_dir=data_dir, start=start)

  def grey_batches():
    shape = next(real_batches(0)).shape[1:]
    for start in range(0, FLAGS.fd_images, _FD_BATCH):
      yield np.zeros((min(_FD_BATCH, FLAGS.fd_images - start), *shape), np.float32)

  results = {}
  for fd_name, feature_fn in feature_fns.items():
    statistics = functools.partial(image_quality.image_feature_statistics, feature_fn=feature_fn,
                                   max_images=FLAGS.fd_images)
    real = statistics(real_batches(0))
    fake = statistics(generated_batches(config, variables, FLAGS.fd_images, _FD_BATCH,
                                        FLAGS.seed + 1))
    results[fd_name] = fid.fid(fake, real)
    results[f'{fd_name}/chance_grey'] = fid.fid(statistics(grey_batches()), real)
    if size >= 2 * FLAGS.fd_images:
      results[f'{fd_name}/floor_data'] = fid.fid(statistics(real_batches(FLAGS.fd_images)), real)
    results['fd_images'] = min(fake.count, real.count)
  return results


def format_image_quality(quality: dict[str, float]) -> str:
  """One line per distance of `image_quality_of`'s results, beside its chance and floor rows."""
  lines = []
  for name in ('FD-VGG16', 'FID'):
    if name in quality:
      floor = quality.get(f'{name}/floor_data')
      lines.append(f'{name} {quality[name]:.2f} (chance, a constant grey image: '
                   f'{quality[name + "/chance_grey"]:.2f}; floor, the dataset against itself: '
                   + ('not measured, the dataset holds fewer than twice the images'
                      if floor is None else f'{floor:.2f}') + ')')
  return ('Image quality, ' + str(quality['fd_images']) + ' generated vs dataset images (lower is '
          'better):\n  ' + '\n  '.join(lines))


def error_maps_picture(maps: dict[str, np.ndarray]) -> np.ndarray:
  """uint8 grid of the unblended and blended mean error maps [R, R], 0 black to 0.1 white (of the
  full intensity range), each enlarged to at least 256 pixels."""
  scale = max(1, 256 // maps['unblended'].shape[0])
  tiles = np.stack([visualize.to_uint8(maps[name], 0.0, 0.1).repeat(scale, 0).repeat(scale, 1)
                    for name in ('unblended', 'blended')])
  return visualize.image_grid(np.repeat(tiles[None, ..., None], 3, axis=-1))


def main(argv: Sequence[str]):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  try:
    bundle = inference.load_from_workdir(FLAGS.workdir, step=FLAGS.step)
    report = control_accuracy.generator_report(bundle.config, bundle.variables, FLAGS.judge,
                                               FLAGS.identities, FLAGS.variations, FLAGS.seed)
    results = {'step': bundle.step, 'stage': bundle.config.stage, 'judge': FLAGS.judge, **report}
    if FLAGS.fd:
      results['image_quality'] = image_quality_of(bundle.config, bundle.variables)
    if FLAGS.disentanglement:
      results['disentanglement'] = disentanglement.generator_report(
          bundle.config, bundle.variables, FLAGS.judge, FLAGS.bases, FLAGS.edits, FLAGS.seed)
      edits = disentanglement.expression_edit_errors(bundle.config, bundle.variables,
                                                     FLAGS.edit_sources, FLAGS.seed)
      maps = edits.pop('maps')
  except (FileNotFoundError, ValueError) as e:
    sys.exit(f'evaluate: {e}')
  if FLAGS.disentanglement:
    results['expression_edits'] = edits
    map_path = os.path.join(FLAGS.workdir, f'expression_edit_errors_step{bundle.step}.png')
    visualize.save_png(map_path, error_maps_picture(maps))
  path = os.path.join(FLAGS.workdir, f'evaluation_step{bundle.step}.json')
  with open(path, 'w') as f:
    json.dump(results, f, indent=2, sort_keys=True)
  print(f'Control accuracy of {FLAGS.workdir} at step {bundle.step} ({bundle.config.stage} stage), '
        f'{report["images"]} portraits read by {FLAGS.judge} (AED, APD, AID: lower is better; '
        'IDS: higher; normalised: 0 = chance, 1 = exact renders):')
  print(control_accuracy.format_report(report))
  if FLAGS.fd:
    print(format_image_quality(results['image_quality']))
  if FLAGS.disentanglement:
    print(f'Disentanglement, {results["disentanglement"]["images"]} portraits (DS: higher is '
          'better, Eq. 25; IS: identity kept across edits; normalised: 0 = chance (every factor '
          'redrawn), 1 = the exact renders):')
    print(disentanglement.format_report(results['disentanglement']))
    print(f'Non-face error of {edits["sources"]} expression edits (mean |change| outside the face, '
          f'0-1 scale): unblended {edits["unblended"]:.4f}, volume-blended {edits["blended"]:.4f} '
          f'({edits["blended"] / max(edits["unblended"], 1e-12):.1%} of unblended), chance (another '
          f'portrait) {edits["chance"]:.4f}; error maps (unblended | blended): {map_path}')
  print(f'Saved {path}; pictures of each control: python -m faceshop_jax.sweep '
        f'--workdir={FLAGS.workdir} --step={bundle.step} --out={FLAGS.workdir}/sweeps')


if __name__ == '__main__':
  define_flags()
  app.run(main)
