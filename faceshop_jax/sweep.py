r"""Draws one picture per control factor: one control swept, the others fixed, beside the 3DMM.

  python -m faceshop_jax.sweep --workdir=/tmp/gan [--step=N] [--seeds=0,1,2] \
      [--identity_seeds=100-106] --out=/tmp/sweeps

--workdir is a training run (its newest checkpoint, or the one at --step) or an export (python -m
faceshop_jax.export). Writes

  OUT/sweep_pose.png        camera yaw from -0.6 to 0.6 radians
  OUT/sweep_light.png       one directional light turning from the subject's right to their left
  OUT/sweep_expression.png  jawOpen 0 → 1, then a smile (mouthSmileLeft + mouthSmileRight) 0 → 1,
                            volume-blended into the neutral column (--noblend: not)
  OUT/sweep_identity.png    the identity κ of each --identity_seeds seed; ε, β, γ, camera fixed

(control_sweeps). In each picture every base seed has two rows: the generated images,
then the 3DMM renders R of the same controls and cameras over grey.
"""
import math
import os
import sys

from typing import NamedTuple

from absl import app
from absl import flags
import chex
import jax
import jax.numpy as jnp
import numpy as np

from faceshop_jax import command_line
from faceshop_jax import console
from faceshop_jax import edit
from faceshop_jax import face_model as face_model_lib
from faceshop_jax import geometry
from faceshop_jax import inference
from faceshop_jax import models
from faceshop_jax.face_model import prior as prior_lib
from faceshop_jax import visualize

FLAGS = flags.FLAGS

# Control sweeps: one factor swept over columns, everything else of each base seed held fixed.
SWEEP_YAW = 0.6  # the pose sweep's camera yaw runs from -SWEEP_YAW to SWEEP_YAW radians
# The light sweep's light turns from the subject's right (azimuth -π/2) to their left (π/2), in the
# horizontal plane, at a fixed intensity (the control prior draws azimuths within ±0.6π).
SWEEP_LIGHT_AZIMUTH = math.pi / 2
SWEEP_LIGHT_INTENSITY = 0.7
# The expression sweep from neutral: each (title, units) in turn, its units together 0 → 1.
SWEEP_EXPRESSIONS = (('jawOpen', ('jawOpen',)), ('smile', ('mouthSmileLeft', 'mouthSmileRight')))
# 3DMM renders R are drawn over this grey (on [0, 1]) so the face's silhouette shows.
GUIDANCE_BACKGROUND = 0.5


class Sweep(NamedTuple):
  """S base seeds × C columns of controls in which one factor changes from column to column.

  Attributes:
    name: the factor swept: 'pose', 'light', 'expression' or 'identity'.
    titles: C column titles, e.g. 'yaw -0.60'.
    noise: ε [S, C, noise_dim].
    coeffs: [S, C, D] the face model's coefficients.
    cameras: [S, C, 25] cameras (conditioning and rendering).
  """
  name: str
  titles: tuple[str, ...]
  noise: jax.Array
  coeffs: jax.Array
  cameras: jax.Array


class SweepRenders(NamedTuple):
  """A sweep rendered by the generator and by the face model, uint8 [S, C, R, R, 3] each.

  Attributes:
    generated: the generator's super-resolved images.
    guidance: the 3DMM renders R of the same controls and cameras over GUIDANCE_BACKGROUND.
  """
  generated: np.ndarray
  guidance: np.ndarray


def _sweep(name: str, titles, noise: jax.Array, coeffs: jax.Array, yaw=0.0) -> Sweep:
  """A Sweep of coeffs [S, C, D] with the base noise [S, noise_dim] in every column and cameras
  at yaw (radians; a scalar or [C]) and pitch 0."""
  s, c = coeffs.shape[:2]
  chex.assert_shape(noise, (s, None))
  chex.assert_equal(len(titles), c)
  cameras = geometry.camera_from_yaw_pitch(jnp.broadcast_to(yaw, (c,)), jnp.zeros(c))
  return Sweep(name=name, titles=tuple(titles),
               noise=jnp.broadcast_to(noise[:, None], (s, c, noise.shape[-1])), coeffs=coeffs,
               cameras=jnp.broadcast_to(cameras, (s, c, geometry.CAMERA_SIZE)))


def _columns(model: face_model_lib.FaceModel, coeffs: jax.Array, **parts: jax.Array) -> jax.Array:
  """coeffs [S, D] repeated over columns [S, C, D], the named factors set to parts [C, size]."""
  base = model.split_coeffs(coeffs[:, None])
  return model.merge_coeffs(base._replace(**{name: part[None] for name, part in parts.items()}))


def pose_sweep(noise: jax.Array, coeffs: jax.Array, columns: int = 7) -> Sweep:
  """Camera yaw from -SWEEP_YAW to SWEEP_YAW (pitch 0) of noise [S, noise_dim], coeffs [S, D]."""
  yaw = np.linspace(-SWEEP_YAW, SWEEP_YAW, columns)
  repeated = jnp.broadcast_to(coeffs[:, None], (coeffs.shape[0], columns, coeffs.shape[-1]))
  return _sweep('pose', [f'yaw {y:+.2f}' for y in yaw], noise, repeated, yaw=yaw)


def light_sweep(model: face_model_lib.FaceModel, noise: jax.Array, coeffs: jax.Array,
                columns: int = 7) -> Sweep:
  """γ of one directional light (light_gamma) whose azimuth runs from the subject's right to their
  left, frontal camera; noise [S, noise_dim], coeffs [S, D]."""
  azimuth = np.linspace(-SWEEP_LIGHT_AZIMUTH, SWEEP_LIGHT_AZIMUTH, columns)
  gamma = jnp.stack([edit.light_gamma(a, 0.0, SWEEP_LIGHT_INTENSITY) for a in azimuth])
  return _sweep('light', [f'light azimuth {a:+.2f}' for a in azimuth], noise,
                _columns(model, coeffs, gamma=gamma))


def expression_sweep(model: face_model_lib.FaceModel, noise: jax.Array, coeffs: jax.Array,
                     columns: int = 7) -> Sweep:
  """β from neutral through SWEEP_EXPRESSIONS: jawOpen 0 → 1 over columns // 2 columns, then the
  smile 0 → 1 over the rest; frontal camera; noise [S, noise_dim], coeffs [S, D].

  Raises:
    ValueError: fewer than 3 columns, or a face model without the units (listing its own).
  """
  if columns < 3:
    raise ValueError(f'The expression sweep needs at least 3 columns (neutral, jaw, smile); got '
                     f'{columns}.')
  steps = (columns // 2, columns - 1 - columns // 2)
  settings = [('neutral', {})]
  for (title, units), count in zip(SWEEP_EXPRESSIONS, steps):
    settings += [(f'{title} {v:.2f}', dict.fromkeys(units, float(v)))
                 for v in np.linspace(0.0, 1.0, count + 1)[1:]]
  expression = jnp.stack([edit.expression_vector(model, units) for _, units in settings])
  return _sweep('expression', [title for title, _ in settings], noise,
                _columns(model, coeffs, expression=expression))


def identity_sweep(model: face_model_lib.FaceModel, noise: jax.Array, coeffs: jax.Array,
                   identities: jax.Array, titles) -> Sweep:
  """κ = (α, δ) of identities [C, D] with each base seed's ε, β, γ and a frontal camera; noise
  [S, noise_dim], coeffs [S, D]; titles: C column titles."""
  return _sweep('identity', titles, noise,
                prior_lib.with_identity(model, coeffs[:, None], identities[None]))


def control_sweeps(bundle: inference.GeneratorBundle, seeds, identity_seeds,
                   columns: int = 7) -> tuple[Sweep, ...]:
  """The pose, light, expression and identity sweeps of the base seeds (models.seed_controls).

  The identity sweep's columns are the identities κ of identity_seeds (the same for every base
  seed); the others have `columns` columns.
  """
  coeffs, noise, _ = models.seed_controls(bundle.config, seeds)
  identities = models.seed_controls(bundle.config, identity_seeds).coeffs
  model = bundle.face_model
  return (pose_sweep(noise, coeffs, columns), light_sweep(model, noise, coeffs, columns),
          expression_sweep(model, noise, coeffs, columns),
          identity_sweep(model, noise, coeffs, identities,
                         [f'identity of seed {s}' for s in identity_seeds]))


_render_face = jax.jit(face_model_lib.render_face, static_argnums=3)


def render_guidance(model: face_model_lib.FaceModel, coeffs: jax.Array, camera: jax.Array,
                    size: int) -> np.ndarray:
  """uint8 [N, size, size, 3]: the 3DMM renders R (face_model.render_face) of coeffs [N, D]
  through cameras [N, 25], over GUIDANCE_BACKGROUND."""
  chex.assert_shape(camera, (coeffs.shape[0], geometry.CAMERA_SIZE))
  render = jax.device_get(_render_face(model, coeffs, camera, size))
  mask = render.mask[..., None]
  return visualize.to_uint8(render.image * mask + GUIDANCE_BACKGROUND * (1.0 - mask))


def render_sweep(bundle: inference.GeneratorBundle, sweep: Sweep,
                 blend: bool = True) -> SweepRenders:
  """The sweep through the generator (edit.render, conditioned on the frontal camera, so the pose
  sweep turns one person) and the face model (render_guidance), both at the generator's output
  size. With `blend`, the expression sweep's columns are edits of its first (neutral) column,
  volume-blended into it (paper §4.4)."""
  s, c = sweep.coeffs.shape[:2]

  def flat(x):
    return x.reshape(s * c, x.shape[-1])

  portrait = edit.from_controls(flat(sweep.coeffs), flat(sweep.noise)).replace(
      camera=flat(sweep.cameras))
  if sweep.name == 'expression':
    neutral = bundle.face_model.split_coeffs(flat(jnp.broadcast_to(sweep.coeffs[:, :1],
                                                                   sweep.coeffs.shape)))
    portrait = portrait.replace(base_expression=neutral.expression)
  generated = edit.render(bundle, portrait, blend=blend).image
  size = generated.shape[1]
  guidance = render_guidance(bundle.face_model, portrait.coeffs, portrait.camera, size)
  return SweepRenders(generated=generated.reshape(s, c, size, size, 3),
                      guidance=guidance.reshape(s, c, size, size, 3))

def define_flags() -> None:
  """The command's flags (defined only when it runs, so the module imports anywhere)."""
  command_line.define_generator_flags()
  flags.DEFINE_string('seeds', '0,1,2', 'Base seeds, one pair of rows each: 0-2, 1,5,9 or 3.')
  flags.DEFINE_string('identity_seeds', '100-106', 'Seeds whose identities κ are the columns of '
                      'sweep_identity.png.')
  flags.DEFINE_string('out', None, 'Directory for the PNGs (created if missing).')
  flags.DEFINE_bool('blend', True, 'Render the expression sweep as volume-blended edits of its '
                    'neutral column (paper §4.4); --noblend renders each column whole.')
  flags.mark_flags_as_required(['workdir', 'out'])


def sweep_picture(renders: SweepRenders) -> np.ndarray:
  """uint8 [2·S·(R+2)+2, C·(R+2)+2, 3]: for each base seed, its generated row above its R row."""
  rows = np.stack([renders.generated, renders.guidance], axis=1)  # [S, 2, C, R, R, 3]
  return visualize.image_grid(rows.reshape(-1, *rows.shape[2:]))


def write_sweeps(bundle: inference.GeneratorBundle, seeds, identity_seeds, out_dir: str,
                 blend: bool = True) -> list[tuple[str, Sweep]]:
  """Renders and writes OUT_DIR/sweep_<factor>.png for each sweep; returns (path, sweep) pairs."""
  os.makedirs(out_dir, exist_ok=True)
  written = []
  for sweep in control_sweeps(bundle, seeds, identity_seeds):
    path = os.path.join(out_dir, f'sweep_{sweep.name}.png')
    visualize.save_png(path, sweep_picture(render_sweep(bundle, sweep, blend)))
    written.append((path, sweep))
  return written


def _seeds_flag(name: str) -> list[int]:
  try:
    return command_line.parse_seeds(FLAGS[name].value)
  except ValueError as e:
    raise ValueError(f'--{name}: {e}') from None


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}.')
  try:
    seeds, identity_seeds = _seeds_flag('seeds'), _seeds_flag('identity_seeds')
    bundle = command_line.load_generator(FLAGS.workdir, FLAGS.step)
    written = write_sweeps(bundle, seeds, identity_seeds, FLAGS.out, FLAGS.blend)
  except (FileNotFoundError, ValueError) as e:
    sys.exit(f'sweep: {e}')
  for path, sweep in written:
    print(f'Wrote {path}: {sweep.name}, {sweep.titles[0]} ... {sweep.titles[-1]} '
          f'({len(sweep.titles)} columns); seeds {", ".join(map(str, seeds))}, each a row of '
          'generated images above a row of 3DMM renders R.')
  print(f'The sweeps of step {bundle.step} are in {FLAGS.out}; to render single portraits at a '
        f'chosen view, expression and light, run python -m faceshop_jax.generate '
        f'--workdir={FLAGS.workdir} --seeds={FLAGS.seeds} --yaw=0.3 --expression=jawOpen=0.8 --out={FLAGS.out}/portraits')


if __name__ == '__main__':
  define_flags()
  console.quiet_library_logs()
  app.run(main)
