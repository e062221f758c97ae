"""`synthetic_portraits`: records rendered from the synthetic portrait world, one per seed.

Build one of the named configs (`r{resolution}_n{train_count}`) or any size:

  builder = SyntheticPortraits(
      data_dir=..., config=SyntheticPortraitsConfig.sized(resolution=48, train_count=300))
  builder.download_and_prepare()
  source = builder.as_data_source('train')  # or tfds.data_source('synthetic_portraits/r48_n300', ...)

Train seeds are 0 … train_count − 1 and test seeds start at TEST_SEED_OFFSET, so the splits are
disjoint for any counts and a larger config's train split extends a smaller one's.

An art style other than the world's default 'photo' (faceshop_jax.world.portraits.ART_STYLES)
renders the same records in another look and is named `r{resolution}_n{train_count}_{style}`
(e.g. `synthetic_portraits/r64_n400_cartoon`, the out-of-domain fine-tuning data of
configs/finetune.py): a seed's camera, coefficients, landmarks and parsing are those of the photo
config; only the image differs.
"""
import dataclasses
import importlib

import numpy as np
import tensorflow_datasets as tfds

from data_pipelines.builders import common

TEST_SEED_OFFSET = 1 << 30
RENDERER_MODULE = 'faceshop_jax.world.portraits'


@dataclasses.dataclass
class SyntheticPortraitsConfig(tfds.core.BuilderConfig):
  """Sizes of a synthetic portrait set.

  Attributes:
    resolution: image side R (images are [R, R, 3]).
    train_count: number of training records.
    test_count: number of test records.
    n_coeffs: coefficient dimension D; None takes the embedded face model's.
    art_style: the renderer's art style ('photo' or 'cartoon'; see the module docstring).
  """
  resolution: int = 64
  train_count: int = 2000
  test_count: int = 200
  n_coeffs: int | None = None
  art_style: str = 'photo'

  @classmethod
  def sized(cls, resolution: int, train_count: int, test_count: int | None = None,
            n_coeffs: int | None = None, art_style: str = 'photo') -> 'SyntheticPortraitsConfig':
    """A config named `r{resolution}_n{train_count}` (+ `_{art_style}` unless 'photo'); test_count
    defaults to a tenth (at least 1)."""
    test_count = max(1, train_count // 10) if test_count is None else test_count
    suffix = '' if art_style == 'photo' else f'_{art_style}'
    return cls(name=f'r{resolution}_n{train_count}{suffix}',
               description=(f'{train_count} train / {test_count} test {art_style} portraits at '
                            f'{resolution}².'),
               resolution=resolution, train_count=train_count, test_count=test_count,
               n_coeffs=n_coeffs, art_style=art_style)


class SyntheticPortraits(common.ArrayRecordBuilder):
  """Synthetic portraits with their camera, face-model coefficients, landmarks and parsing."""

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'First release.'}
  BUILDER_CONFIGS = [
      SyntheticPortraitsConfig.sized(32, 500),
      SyntheticPortraitsConfig.sized(64, 2000),
      SyntheticPortraitsConfig.sized(128, 10000),
  ]

  def _info(self) -> tfds.core.DatasetInfo:
    config = self.builder_config
    features = common.portrait_features(config.resolution, self._n_coeffs, landmarks=True,
                                        parsing=True)
    features['seed'] = tfds.features.Scalar(dtype=np.int64)
    return tfds.core.DatasetInfo(builder=self, description=__doc__,
                                 features=tfds.features.FeaturesDict(features))

  @property
  def _n_coeffs(self) -> int:
    if self.builder_config.n_coeffs is not None:
      return self.builder_config.n_coeffs
    from faceshop_jax import face_model  # pylint: disable=g-import-not-at-top  (loads JAX)
    return face_model.load_embedded().n_coeffs

  def _split_generators(self, dl_manager):
    del dl_manager  # Nothing to download: records are rendered.
    config = self.builder_config
    return {
        'train': self._generate_examples(range(config.train_count)),
        'test': self._generate_examples(range(TEST_SEED_OFFSET, TEST_SEED_OFFSET + config.test_count)),
    }

  def _generate_examples(self, seeds):
    # Imported here so that reading (and registering) the builder never needs the renderer.
    portraits = importlib.import_module(RENDERER_MODULE)
    n_coeffs = self.info.features['coeffs'].shape[0]
    config = self.builder_config
    for record in portraits.generate_records(list(seeds), config.resolution,
                                             art_style=config.art_style):
      if record['coeffs'].shape != (n_coeffs,):
        raise ValueError(
            f'The renderer gave {record["coeffs"].shape[-1]} coefficients but this config expects '
            f'{n_coeffs}; set SyntheticPortraitsConfig.n_coeffs to match the face model it renders.')
      example = common.portrait_example(record['image'], record['camera'], record['coeffs'],
                                        record['landmarks'], record['parsing'])
      seed = int(record['seed'])
      yield seed, {**example, 'seed': seed}
