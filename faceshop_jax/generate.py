r"""Renders portraits from a trained generator: one image and one semantic map per seed.

  python -m faceshop_jax.generate --checkpoint=/tmp/gan_export --seeds=0-7 --out=/tmp/portraits \
      [--yaw=0.3] [--pitch=0.0] [--expression=jawOpen=0.8,mouthSmileLeft=0.5] \
      [--light=0.5,0.3,0.8] [--truncation=0.7] [--noblend]

The generator comes from exactly one of --workdir (a training run's newest checkpoint) or
--checkpoint (a directory written by python -m faceshop_jax.export). Writes OUT/seed<k>.png and
OUT/seed<k>_semantics.png (class colours, upsampled to the image size) for every seed k.
--expression sets named expression units in [0, 1] (all others 0) instead of the sampled
expression, volume-blended into the seed's own portrait unless --noblend; --light replaces the sampled illumination by one white light at (yaw, pitch) radians
with the given intensity (inference.light_gamma).
"""
import os
import sys

from absl import app
from absl import flags
import numpy as np

from faceshop_jax import classes
from faceshop_jax import inference
from faceshop_jax import visualize


def parse_expression(text: str) -> dict[str, float]:
  """'jawOpen=0.8,mouthSmileLeft=0.5' -> {'jawOpen': 0.8, 'mouthSmileLeft': 0.5}."""
  expression = {}
  for part in text.split(','):
    name, sep, value = part.partition('=')
    try:
      if not (sep and name.strip()):
        raise ValueError
      expression[name.strip()] = float(value)
    except ValueError:
      raise ValueError(f'expected name=value pairs like jawOpen=0.8,mouthSmileLeft=0.5; '
                       f'got {text!r}') from None
  return expression


def parse_light(text: str) -> tuple[float, float, float]:
  """'yaw,pitch,intensity' (radians, radians, >= 0) -> the three floats."""
  try:
    yaw, pitch, intensity = (float(v) for v in text.split(','))
  except ValueError:
    raise ValueError('expected yaw,pitch,intensity (radians, radians, intensity >= 0), e.g. '
                     f'0.5,0.3,0.8; got {text!r}') from None
  return yaw, pitch, intensity


class _Parser(flags.ArgumentParser):
  """A flag parser from one of the parse_* functions (their ValueError is absl's flag error)."""

  def __init__(self, parse, syntax: str):
    self._parse, self.syntactic_help = parse, syntax

  def parse(self, argument):
    return self._parse(argument)


_WORKDIR = flags.DEFINE_string('workdir', None, 'A training run (its newest checkpoint is used).')
_CHECKPOINT = flags.DEFINE_string('checkpoint', None,
                                  'An export written by python -m faceshop_jax.export.')
_SEEDS = flags.DEFINE(_Parser(inference.parse_seeds, 'first-last,...'), 'seeds', None,
                      'Seeds to render: 0-7, 1,5,9 or 3.')
_YAW = flags.DEFINE_float('yaw', 0.0, 'Camera yaw, radians (positive: the subject\'s left).')
_PITCH = flags.DEFINE_float('pitch', 0.0, 'Camera pitch, radians (positive: from above).')
_EXPRESSION = flags.DEFINE(_Parser(parse_expression, 'name=value,...'), 'expression', None,
                           'Expression units in [0, 1], e.g. jawOpen=0.8,mouthSmileLeft=0.5.')
_LIGHT = flags.DEFINE(_Parser(parse_light, 'yaw,pitch,intensity'), 'light', None,
                      'One white light: yaw,pitch (radians),intensity, e.g. 0.5,0.3,0.8.')
_TRUNCATION = flags.DEFINE_float('truncation', 1.0, 'Truncation psi (1 = none).')
_BLEND = flags.DEFINE_bool('blend', True, 'Render an --expression as a volume-blended edit of '
                           "each seed's own portrait (hair, clothes, background kept; paper §4.4); "
                           '--noblend renders the new controls whole.')
_OUT = flags.DEFINE_string('out', None, 'Directory for the PNGs (created if missing).')
flags.mark_flags_as_required(['seeds', 'out'])
flags.mark_flags_as_mutual_exclusive(['workdir', 'checkpoint'], required=True)


def _upsample_nearest(labels: np.ndarray, size: int) -> np.ndarray:
  """[N, r, r] -> [N, size, size] by nearest neighbour."""
  rows = np.arange(size) * labels.shape[1] // size
  cols = np.arange(size) * labels.shape[2] // size
  return labels[:, rows][:, :, cols]


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}.')
  try:
    bundle = (inference.load_from_workdir(_WORKDIR.value) if _WORKDIR.value
              else inference.load_export(_CHECKPOINT.value))
    portraits = inference.generate(bundle, _SEEDS.value, _YAW.value, _PITCH.value,
                                   _EXPRESSION.value, _LIGHT.value, _TRUNCATION.value,
                                   blend=_BLEND.value)
  except (FileNotFoundError, ValueError) as e:
    sys.exit(f'generate: {e}')
  os.makedirs(_OUT.value, exist_ok=True)
  size = portraits.images.shape[1]
  semantics = classes.colorize(_upsample_nearest(portraits.labels, size))
  for seed, image, labels in zip(_SEEDS.value, portraits.images, semantics):
    visualize.save_png(os.path.join(_OUT.value, f'seed{seed}.png'), image)
    visualize.save_png(os.path.join(_OUT.value, f'seed{seed}_semantics.png'), labels)
  print(f'Wrote seed<k>.png and seed<k>_semantics.png ({size}x{size}) for {len(_SEEDS.value)} '
        f'seed(s) to {_OUT.value}.')


if __name__ == '__main__':
  app.run(main)
