r"""Inversion and pivotal tuning measured where the truth is known, and on a real photo.

  python benchmarks/inversion_eval.py --workdir=/work/runs/imitative [--portraits=4] \
      [--latent_steps=150] [--tuning_steps=100] [--out=/tmp/inversion_eval] [--astronaut]

Held-out synthetic portraits (the world's renders from seeds no dataset uses, at the generator's
size) are inverted (faceshop_jax.inversion). Printed per phase (the start, after the latent, after
pivotal tuning), as medians over the portraits: PSNR, LPIPS and the identity similarity to the
photo, beside the *chance* row: another held-out person's portrait scored against the photo (what
an answer that ignores the photo scores; the exact photo itself, the ceiling, scores ∞ dB, LPIPS 0
and identity 1). Then each portrait gets an edit with the world's truth beside it: the inverted
portrait's expression set to jawOpen 0.8 (volume-blended), compared by LPIPS with the world's
render of the same person with that expression; the *chance* row is the unedited inversion
against the same edited truth (doing nothing), the *floor* the world's unedited render against it
(how far the edit itself moves the picture). Also the time per portrait. With --astronaut,
scikit-image's astronaut photo goes through the real-photo path (detection, landmarks, fit,
alignment), is inverted, and OUT/astronaut.png shows the photo | the inversion | jawOpen 0.8 |
a light from the left | yaw 0.4.
"""
import argparse
import os
import time

import jax
import numpy as np

from faceshop_jax import command_line
from faceshop_jax import edit
from faceshop_jax import inversion
from faceshop_jax import visualize
from faceshop_jax.analysis import weights
from faceshop_jax.face_model import prior as prior_lib
from faceshop_jax.world import portraits as world

HELD_OUT_SEED = 900_000  # far from the synthetic datasets' example seeds
EDIT = {'jawOpen': 0.8}


def invert(bundle, target, judges, reconstructor, config, seed=0):
  """(start, after the latent, tuned bundle) for target uint8 [R, R, 3], and the seconds taken."""
  started = time.time()
  start = inversion.initial_portrait(bundle, target, reconstructor, jax.random.PRNGKey(seed))
  portrait, _ = inversion.invert_latent(bundle, start, target, judges, config)
  tuned, _ = inversion.pivotal_tuning(bundle, portrait, target, judges, config)
  return start, portrait, tuned, time.time() - started


def held_out(model, size: int, index: int):
  """The world's portrait number `index` of the held-out seeds, and the same with EDIT."""
  key = jax.random.PRNGKey(HELD_OUT_SEED + index)
  k_controls, k_style, k_background = jax.random.split(key, 3)
  coeffs, camera = prior_lib.sample_controls(k_controls, model, 1)
  scene = world.build_scene(model)
  parts = model.split_coeffs(coeffs)
  edited = model.merge_coeffs(parts._replace(
      expression=model.expression_coefficients(EDIT)[None]))
  return [visualize.to_uint8(np.asarray(world.render_controls(
      k_style, k_background, model, scene, c[0], camera[0], size)['image'])) for c in (coeffs,
                                                                                       edited)]


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--workdir', required=True)
  parser.add_argument('--portraits', type=int, default=4)
  parser.add_argument('--latent_steps', type=int, default=inversion.InversionConfig.latent_steps)
  parser.add_argument('--tuning_steps', type=int, default=inversion.InversionConfig.tuning_steps)
  parser.add_argument('--out', default='/tmp/inversion_eval')
  parser.add_argument('--astronaut', action='store_true')
  args = parser.parse_args()
  bundle = command_line.load_generator(args.workdir)
  size = bundle.config.model.sr_resolution
  model = bundle.face_model
  judges = inversion.load_judges()
  reconstructor = weights.load_role_net('synthetic64', 'reconstructor')
  config = inversion.InversionConfig(latent_steps=args.latent_steps,
                                     tuning_steps=args.tuning_steps)
  os.makedirs(args.out, exist_ok=True)
  rows, edits, seconds = [], [], []
  scores = {'chance: another person': [], 'start': [], 'latent': [], 'tuned': []}
  for index in range(args.portraits):
    target, target_edited = held_out(model, size, index)
    someone_else, _ = held_out(model, size, args.portraits + index)
    scores['chance: another person'].append(
        inversion.scores(someone_else[None], target[None], judges))
    start, portrait, tuned, took = invert(bundle, target, judges, reconstructor, config)
    seconds.append(took)
    renders = {'start': edit.render(bundle, start).image[0],
               'latent': edit.render(bundle, portrait).image[0],
               'tuned': edit.render(tuned, portrait).image[0]}
    for name, image in renders.items():
      scores[name].append(inversion.scores(image[None], target[None], judges))
    edited = edit.render(tuned, edit.with_expression(tuned, portrait, units=EDIT)).image[0]
    edits.append([float(inversion.scores(x[None], target_edited[None], judges).lpips[0])
                  for x in (edited, renders['tuned'], target)])
    rows.append([target, *renders.values(), edited, target_edited])
    print(f'portrait {index}: {took:.0f} s; PSNR start {scores["start"][-1].psnr[0]:.1f}, latent '
          f'{scores["latent"][-1].psnr[0]:.1f}, tuned {scores["tuned"][-1].psnr[0]:.1f} dB; LPIPS '
          f'latent {scores["latent"][-1].lpips[0]:.4f}, tuned {scores["tuned"][-1].lpips[0]:.4f}')
  visualize.save_png(os.path.join(args.out, 'held_out.png'), visualize.image_grid(np.stack(rows)))
  print(f'\n{args.portraits} held-out synthetic portraits ({size}², {args.latent_steps} latent + '
        f'{args.tuning_steps} tuning steps), medians:')
  print('| phase | PSNR (dB) | LPIPS | identity cos |\n|---|---|---|---|')
  for name, values in scores.items():
    print(f'| {name} | {np.median([v.psnr[0] for v in values]):.2f} | '
          f'{np.median([v.lpips[0] for v in values]):.4f} | '
          f'{np.median([v.identity[0] for v in values]):.3f} |')
  lpips_edit, lpips_none, lpips_floor = np.median(np.asarray(edits), axis=0)
  print(f'\nEdit jawOpen 0.8 vs the world\'s render of it, LPIPS (median): inverted + edited '
        f'{lpips_edit:.4f}; chance (inversion, unedited) {lpips_none:.4f}; the world\'s own '
        f'unedited render {lpips_floor:.4f}.')
  tuning_helps = sum(t.lpips[0] < l.lpips[0] for t, l in zip(scores['tuned'], scores['latent']))
  print(f'Pivotal tuning lowered LPIPS on {tuning_helps} of {args.portraits} portraits.')
  print(f'Time per portrait: median {np.median(seconds):.0f} s (this machine).')
  print(f'Pictures (photo | start | latent | tuned | edited | world edited): {args.out}/held_out.png')
  if args.astronaut:
    import skimage.data  # pylint: disable=g-import-not-at-top
    from data_pipelines.prepare import prepare  # pylint: disable=g-import-not-at-top
    photo = prepare.prepare_photo(model, skimage.data.astronaut(), size).image
    start, portrait, tuned, took = invert(bundle, photo, judges, reconstructor, config)
    views = [edit.render(tuned, p).image[0] for p in (
        portrait, edit.with_expression(tuned, portrait, units=EDIT),
        edit.with_light(tuned, portrait, yaw=-1.0, pitch=0.2, intensity=0.9),
        edit.with_pose(portrait, 0.4))]
    visualize.save_png(os.path.join(args.out, 'astronaut.png'),
                       visualize.image_grid(np.stack([[photo, *views]])))
    score = inversion.scores(views[0][None], photo[None], judges)
    print(f'Astronaut: {took:.0f} s; PSNR {score.psnr[0]:.2f} dB, LPIPS {score.lpips[0]:.4f}, '
          f'identity {score.identity[0]:.3f}; picture {args.out}/astronaut.png')


if __name__ == '__main__':
  main()
