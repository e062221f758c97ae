r"""Renders a grid of the embedded head: identities × expressions, lights and views, + label maps.

  python -m faceshop_jax.face_grid --out face_grid.png [--size 160] [--identities 4] [--seed 0]

Each row is one random identity (shape α and albedo δ drawn from N(0, I)); the columns are
expressions (ARKit units by name), then SH lights, then camera views; the last row shows the
semantic label maps of the first identity.
"""
import argparse

import jax
import jax.numpy as jnp
import numpy as np

from faceshop_jax import classes
from faceshop_jax import face_model
from faceshop_jax import geometry
from faceshop_jax import visualize

EXPRESSIONS = (
    ('neutral', {}),
    ('jawOpen', {'jawOpen': 0.7}),
    ('smile', {'mouthSmileLeft': 0.9, 'mouthSmileRight': 0.9}),
    ('surprise', {'browInnerUp': 1.0, 'eyeWideLeft': 0.8, 'eyeWideRight': 0.8, 'jawOpen': 0.3}),
    ('blink', {'eyeBlinkLeft': 1.0, 'eyeBlinkRight': 1.0}),
)


# (title, direction toward the light, light colour, ambient): turned into SH by gamma_from_lights.
LIGHTS = (
    ('key light from the left', (1.0, 0.2, 0.6), (0.9, 0.9, 0.9), 0.3),
    ('warm light from above', (0.0, 1.0, 0.5), (1.0, 0.8, 0.55), 0.3),
    ('low-key from the right', (-1.0, 0.0, 0.3), (0.8, 0.8, 0.8), 0.08),
)
VIEWS = (('yaw −0.6', (-0.6, 0.0)), ('yaw +0.6', (0.6, 0.0)), ('pitch +0.3, yaw 0.3', (0.3, 0.3)))


def grid_coefficients(model, identities: int, seed: int):
  """Coefficients [R, C, D] and cameras [C, 25] of the grid, and the column titles."""
  rng = np.random.default_rng(seed)
  alpha = rng.normal(size=(identities, model.n_id)).astype(np.float32)
  delta = rng.normal(size=(identities, model.n_tex)).astype(np.float32)
  columns = []  # (title, expression [n_exp], gamma [27], (yaw, pitch))
  for title, weights in EXPRESSIONS:
    columns.append((title, model.expression_coefficients(weights), np.zeros(27), (0.0, 0.0)))
  for title, direction, colour, ambient in LIGHTS:
    gamma = face_model.gamma_from_lights(jnp.array([direction]), jnp.array([colour]),
                                         jnp.full(3, ambient))
    columns.append((title, jnp.zeros(model.n_exp), gamma, (0.0, 0.0)))
  for title, yaw_pitch in VIEWS:
    columns.append((title, jnp.zeros(model.n_exp), np.zeros(27), yaw_pitch))
  coeffs = np.zeros((identities, len(columns), model.n_coeffs), np.float32)
  for c, (_, expression, gamma, _) in enumerate(columns):
    parts = model.split_coeffs(jnp.asarray(coeffs[:, c]))
    coeffs[:, c] = model.merge_coeffs(parts._replace(
        identity=jnp.asarray(alpha), texture=jnp.asarray(delta),
        expression=jnp.broadcast_to(expression, (identities, model.n_exp)),
        gamma=jnp.broadcast_to(jnp.asarray(gamma, jnp.float32), (identities, 27))))
  yaw, pitch = np.array([c[3] for c in columns], np.float32).T
  cameras = geometry.camera_from_yaw_pitch(yaw, pitch)
  return jnp.asarray(coeffs), cameras, [c[0] for c in columns]


def render_grid(model, identities: int = 4, size: int = 160, seed: int = 0) -> np.ndarray:
  """The grid picture, uint8 [H, W, 3]."""
  coeffs, cameras, _ = grid_coefficients(model, identities, seed)
  rows, cols = coeffs.shape[:2]
  flat_cameras = jnp.broadcast_to(cameras, (rows, cols, geometry.CAMERA_SIZE)).reshape(-1, 25)
  out = jax.jit(face_model.render_face, static_argnums=3)(model, coeffs.reshape(rows * cols, -1),
                                                           flat_cameras, size)
  white = 1.0 - out.mask[..., None]  # white background shows the silhouette
  images = visualize.to_uint8(out.image + white).reshape(rows, cols, size, size, 3)
  labels = classes.colorize(np.asarray(out.labels).reshape(rows, cols, size, size))
  return visualize.image_grid(np.concatenate([images, labels[:1]], axis=0))


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--out', required=True, help='PNG path to write.')
  parser.add_argument('--size', type=int, default=160, help='Pixels per cell.')
  parser.add_argument('--identities', type=int, default=4, help='Rows of random identities.')
  parser.add_argument('--seed', type=int, default=0)
  args = parser.parse_args(argv)
  picture = render_grid(face_model.load_embedded(), args.identities, args.size, args.seed)
  visualize.save_png(args.out, picture)
  print(f'Wrote {args.out} ({picture.shape[1]}x{picture.shape[0]}): rows = identities + label maps; '
        'columns = ' + ', '.join(t for t, _ in EXPRESSIONS) + ' | ' + ', '.join(light[0] for light in LIGHTS)
        + ' | ' + ', '.join(t for t, _ in VIEWS))


if __name__ == '__main__':
  main()
