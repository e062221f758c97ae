r"""Control accuracy and image quality of a trained generator, as a command.

  python -m faceshop_jax.evaluate --workdir=/tmp/imitative [--step=800] [--judge=judge64] [--fd]

Reads the EMA generator of a gan or imitative run (its newest checkpoint, or --step) and prints
  control accuracy (eval/control_accuracy.py): AED, APD, AID and the identity similarity IDS of
      --identities × --variations portraits drawn from the control prior and read back by the judge
      (a reconstructor trained apart from every net a loss uses), each as four rows: chance (a
      constant answer), floor (the judge on the synthetic world's exact renders of the same
      controls and cameras), generated, and the normalised score (0 no control, 1 as readable as
      the exact renders);
  with --fd, image quality (eval/image_quality.py): FD-VGG16, the Fréchet distance of --fd_images
      generated and as many dataset images in pooled ImageNet VGG16 features (a stand-in for FID),
      and true FID with --inception_dir (pytorch-fid weights converted by
      `python -m faceshop_jax.analysis.convert --kind inception`).
Writes WORKDIR/evaluation_step<N>.json. Comparing two runs at the same step (the gan stage alone
and the imitative stage) measures what imitative learning bought.
"""
from collections.abc import Sequence
import json
import os
import sys

from absl import app
from absl import flags
import jax
import numpy as np

from faceshop_jax import face_model
from faceshop_jax import inference
from faceshop_jax.eval import control_accuracy
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
  """{'FD-VGG16': ..., ['FID': ...], 'fd_images': n} against the run's training dataset."""
  feature_fns = {'FD-VGG16': image_quality.fd_vgg16_feature_fn()}
  if FLAGS.inception_dir:
    feature_fns['FID'] = image_quality.fid_inception_feature_fn(FLAGS.inception_dir)
  results = {}
  for name, feature_fn in feature_fns.items():
    real = image_quality.dataset_image_batches(config.data.name, FLAGS.fd_images, _FD_BATCH,
                                               data_dir=config.data.data_dir or None)
    fake = generated_batches(config, variables, FLAGS.fd_images, _FD_BATCH, FLAGS.seed + 1)
    distance = image_quality.frechet_distance_of_sets(fake, real, feature_fn,
                                                      max_images=FLAGS.fd_images)
    results[name] = distance['fd']
    results['fd_images'] = min(distance['images'], distance['real_images'])
  return results


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
  except (FileNotFoundError, ValueError) as e:
    sys.exit(f'evaluate: {e}')
  path = os.path.join(FLAGS.workdir, f'evaluation_step{bundle.step}.json')
  with open(path, 'w') as f:
    json.dump(results, f, indent=2, sort_keys=True)
  print(f'Control accuracy of {FLAGS.workdir} at step {bundle.step} ({bundle.config.stage} stage), '
        f'{report["images"]} portraits read by {FLAGS.judge} (AED, APD, AID: lower is better; '
        'IDS: higher; normalised: 0 = chance, 1 = exact renders):')
  print(control_accuracy.format_report(report))
  if FLAGS.fd:
    quality = results['image_quality']
    print('Image quality, ' + ', '.join(f'{k} {v:.2f}' for k, v in quality.items()
                                        if k != 'fd_images')
          + f' ({quality["fd_images"]} generated vs dataset images; lower is better).')
  print(f'Saved {path}; pictures of each control: python -m faceshop_jax.sweep '
        f'--workdir={FLAGS.workdir} --step={bundle.step} --out={FLAGS.workdir}/sweeps')


if __name__ == '__main__':
  define_flags()
  app.run(main)
