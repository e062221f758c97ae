"""Building the embedded default dataset on first use (called by the command-line entry point).

The library never imports data_pipelines; `faceshop_jax.main` calls `ensure_synthetic_portraits`
when a config asks for it (config.data.build_synthetic), so a fresh checkout trains at once.
"""
import re

from absl import logging

from data_pipelines.builders import synthetic_portraits

_NAME = re.compile(r'^synthetic_portraits/r(\d+)_n(\d+)(?:_([a-z]+))?$')


def ensure_synthetic_portraits(name: str, data_dir: str | None) -> None:
  """Renders `synthetic_portraits/r{R}_n{N}[_{art style}]` into data_dir unless it is already there.

  Raises:
    ValueError: if name is not of that form (an unknown art style is named by the renderer).
  """
  match = _NAME.match(name)
  if not match:
    raise ValueError(f'config.data.build_synthetic needs a name like synthetic_portraits/r64_n2000 '
                     f'(resolution, train count) or synthetic_portraits/r64_n400_cartoon (and an '
                     f'art style); got {name!r}.')
  resolution, count = int(match[1]), int(match[2])
  config = synthetic_portraits.SyntheticPortraitsConfig.sized(resolution, count,
                                                              art_style=match[3] or 'photo')
  registered = {c.name for c in synthetic_portraits.SyntheticPortraits.BUILDER_CONFIGS}
  if config.name in registered:  # tfds refuses a custom config that shadows a registered one
    config = config.name
  builder = synthetic_portraits.SyntheticPortraits(data_dir=data_dir, config=config)
  if not builder.is_prepared():
    logging.info('Rendering %s into %s (first use).', name, builder.data_dir)
  builder.download_and_prepare()
