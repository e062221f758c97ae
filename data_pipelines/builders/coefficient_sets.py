"""`coefficient_sets`: face-model coefficient vectors alone (e.g. FFHQ + RAVDESS extractions).

The input is a directory searched recursively for .npy / .npz / .mat files, or one file. A file
holds one vector [D] or a stack [N, D] (.npz under the key `coeffs`; Deep3DFaceRecon's .mat as
id|exp|tex|angle|gamma|trans). Each record is `coeffs` float32 [D] and `source`, the file's path
relative to the input (`path#row` for stacks). Train/test is a hash of `source`: deterministic and
independent of listing order.

  config = CoefficientSetsConfig(name='ffhq_ravdess', path='/data/coeffs', test_fraction=0.05)
  CoefficientSets(data_dir=..., config=config).download_and_prepare()
"""
import dataclasses
import os

import numpy as np
import tensorflow_datasets as tfds

from data_pipelines.builders import common


@dataclasses.dataclass
class CoefficientSetsConfig(tfds.core.BuilderConfig):
  """Where the coefficients are.

  Attributes:
    path: a directory of coefficient files, or one file.
    n_coeffs: coefficient dimension D; None takes the first file's (all must agree).
    test_fraction: share of the vectors held out as `test`.
  """
  path: str = ''
  n_coeffs: int | None = None
  test_fraction: float = 0.05


def read_coefficient_rows(path: str) -> dict[str, np.ndarray]:
  """Every coefficient vector under `path`: {source: [D]} in sorted file order.

  Raises:
    ValueError: if there is none, or if two files disagree on D (naming both).
  """
  if os.path.isdir(path):
    files = sorted(os.path.join(root, name) for root, _, names in os.walk(path) for name in names
                   if name.endswith(common.COEFFICIENT_SUFFIXES))
    root = path
  else:
    files, root = [path], os.path.dirname(path)
  rows, first = {}, None
  for file in files:
    stack = common.load_coefficients(file)
    first = first or (file, stack.shape[-1])
    if stack.shape[-1] != first[1]:
      raise ValueError(f'{file} holds {stack.shape[-1]} coefficients per vector but {first[0]} '
                       f'holds {first[1]}: one set must use one face model.')
    name = os.path.relpath(file, root).replace(os.sep, '/')
    for i, row in enumerate(stack):
      rows[f'{name}#{i}' if len(stack) > 1 else name] = row
  if not rows:
    raise ValueError(f'No coefficient vectors in {path}: expected .npy / .npz (key "coeffs") / '
                     'Deep3DFaceRecon .mat files, each holding [D] or [N, D].')
  return rows


class CoefficientSets(common.ArrayRecordBuilder):
  """Face-model coefficient vectors with the file each came from.

  No named configs: every dataset has inputs of its own, `config=CoefficientSetsConfig(...)`.
  """

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'First release.'}

  def _info(self) -> tfds.core.DatasetInfo:
    features = tfds.features.FeaturesDict({
        'coeffs': tfds.features.Tensor(shape=(self.builder_config.n_coeffs,), dtype=np.float32),
        'source': tfds.features.Text(),
    })
    return tfds.core.DatasetInfo(builder=self, description=__doc__, features=features)

  def _split_generators(self, dl_manager):
    del dl_manager  # The data is already on disk.
    config = self.builder_config
    rows = read_coefficient_rows(config.path)
    d = next(iter(rows.values())).shape[0]
    if config.n_coeffs is not None and d != config.n_coeffs:
      raise ValueError(f'{config.path} holds {d} coefficients per vector, the config asks for '
                       f'{config.n_coeffs}.')
    return {split: self._generate_examples({k: rows[k] for k in keys})
            for split, keys in common.hash_split(list(rows), config.test_fraction).items()}

  def _generate_examples(self, rows: dict[str, np.ndarray]):
    for source, coeffs in rows.items():
      yield source, {'coeffs': coeffs, 'source': source}
