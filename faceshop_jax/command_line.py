"""What the commands share: parsing their text arguments, and loading the generator they name.

Each parse_* turns one flag's text into a value or raises a ValueError saying what was expected;
`flag_parser` makes it an absl flag parser, so a bad value is reported as that flag's error.
"""
from absl import flags

from faceshop_jax import inference


def parse_seeds(text: str) -> list[int]:
  """'0-7', '1,5,9', '3' or a mix ('0-3,9') -> the seeds, in order, without repeats."""
  seeds = []
  try:
    for part in text.split(','):
      first, _, last = part.strip().partition('-')
      low, high = int(first), int(last or first)
      if low > high:
        raise ValueError
      seeds += range(low, high + 1)
  except ValueError:
    raise ValueError(f'expected seeds like 0-7, 1,5,9 or 3; got {text!r}') from None
  return list(dict.fromkeys(seeds))


def _name_values(text: str, example: str) -> dict[str, str]:
  """'a=1,b=2' -> {'a': '1', 'b': '2'}."""
  pairs = {}
  for part in text.split(','):
    name, sep, value = part.partition('=')
    if not (sep and name.strip() and value.strip()):
      raise ValueError(f'expected name=value pairs like {example}; got {text!r}')
    pairs[name.strip()] = value.strip()
  return pairs


def parse_expression(text: str) -> dict[str, float]:
  """'jawOpen=0.8,mouthSmileLeft=0.5' -> {'jawOpen': 0.8, 'mouthSmileLeft': 0.5}."""
  example = 'jawOpen=0.8,mouthSmileLeft=0.5'
  try:
    return {name: float(value) for name, value in _name_values(text, example).items()}
  except ValueError:
    raise ValueError(f'expected name=value pairs like {example}; got {text!r}') from None


def parse_keyframes(text: str) -> dict[str, list[float]]:
  """'jawOpen=0:0.8,mouthSmileLeft=0:0:1' -> {'jawOpen': [0, 0.8], 'mouthSmileLeft': [0, 0, 1]}:
  each unit's keyframe values, spread evenly over an animation."""
  example = 'jawOpen=0:0.8,mouthSmileLeft=0:0:1'
  try:
    keyframes = {name: [float(v) for v in value.split(':')]
                 for name, value in _name_values(text, example).items()}
  except ValueError:
    raise ValueError(f'expected unit=value:value:... like {example}; got {text!r}') from None
  if any(len(values) < 2 for values in keyframes.values()):
    raise ValueError(f'each unit needs at least two keyframes (start:end), like {example}; got '
                     f'{text!r}')
  return keyframes


def parse_light(text: str) -> tuple[float, float, float]:
  """'yaw,pitch,intensity' (radians, radians, >= 0) -> the three floats."""
  try:
    yaw, pitch, intensity = (float(v) for v in text.split(','))
  except ValueError:
    raise ValueError('expected yaw,pitch,intensity (radians, radians, intensity >= 0), e.g. '
                     f'0.5,0.3,0.8; got {text!r}') from None
  return yaw, pitch, intensity


class _Parser(flags.ArgumentParser):
  """An absl flag parser from one of the parse_* functions."""

  def __init__(self, parse, syntax: str):
    self._parse, self.syntactic_help = parse, syntax

  def parse(self, argument):
    return self._parse(argument)


def define(parse, name: str, default, syntax: str, help_text: str):
  """Defines flag `name` parsed by `parse` (its ValueError becomes the flag's error)."""
  return flags.DEFINE(_Parser(parse, syntax), name, default, help_text)


def define_generator_flags() -> None:
  """--workdir and --step: the generator load_generator reads (a training run or an export)."""
  flags.DEFINE_string('workdir', None, 'A training run of a generator stage, or an export.')
  flags.DEFINE_integer('step', None, 'With a training run: the checkpoint step (default: newest).')


def load_generator(directory: str, step: int | None = None) -> inference.GeneratorBundle:
  """The generator in `directory`: an export (python -m faceshop_jax.export) or a training run
  (its checkpoint at `step`, default the newest).

  Raises:
    FileNotFoundError, ValueError: nothing loadable there (inference.load_export /
      load_from_workdir say what).
  """
  if inference.is_export(directory):
    if step is not None:
      raise ValueError(f'{directory} is an export, which holds one step; drop --step.')
    return inference.load_export(directory)
  return inference.load_from_workdir(directory, step)
