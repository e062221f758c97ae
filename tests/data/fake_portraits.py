"""A stand-in for faceshop_jax.world.portraits and the sizes of the test dataset built with it."""
import numpy as np

from data_pipelines import builders

N_COEFFS = 7
RESOLUTION = 16
TRAIN_COUNT = 25  # Odd, so that two hosts get unequal shards unless the remainder is dropped.
TEST_COUNT = 5
NAME = f'synthetic_portraits/r{RESOLUTION}_n{TRAIN_COUNT}'


def generate_records(seeds, resolution, art_style='photo'):
  """Records as the renderer's generate_records yields them: random but deterministic per seed
  (the same in every art style)."""
  del art_style
  for seed in seeds:
    rng = np.random.default_rng(seed)
    yield {
        'image': rng.integers(0, 256, (resolution, resolution, 3), dtype=np.uint8),
        'camera': rng.normal(size=25).astype(np.float32),
        'coeffs': rng.normal(size=N_COEFFS).astype(np.float32),
        'landmarks': rng.uniform(0, resolution, (68, 2)).astype(np.float32),
        'parsing': rng.integers(0, 19, (resolution, resolution), dtype=np.uint8),
        'seed': np.int64(seed),
    }


def build(data_dir, **sizes) -> builders.SyntheticPortraits:
  """Builds synthetic_portraits (the fake renderer must be installed) with the given sizes."""
  config = builders.SyntheticPortraitsConfig.sized(n_coeffs=N_COEFFS, **sizes)
  builder = builders.SyntheticPortraits(data_dir=str(data_dir), config=config)
  builder.download_and_prepare()
  return builder
