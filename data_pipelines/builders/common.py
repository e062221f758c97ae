"""What the portrait builders share: the record features, coefficient files and a stable split.

Records (DESIGN §7): `image` uint8 [H, W, 3] · `camera` float32 [25] (EG3D layout) · `coeffs`
float32 [D] in the face model's layout · optional `landmarks` float32 [68, 2] (pixels) · optional
`parsing` uint8 [H, W] (19 classes). Everything is written as array_record so that it can be read
without TensorFlow (`as_data_source` + grain); images therefore go in as PIL images, never arrays
(tfds encodes numpy images with a TensorFlow graph).
"""
from collections.abc import Mapping, Sequence
import os
import zlib

import numpy as np
from PIL import Image
import tensorflow_datasets as tfds

from faceshop_jax import classes

CAMERA_DIM = 25
NUM_LANDMARKS = 68
# Deep3DFaceRecon's .mat keys, in the order of the coefficient layout (id|exp|tex|angle|gamma|trans).
DEEP3D_KEYS = ('id', 'exp', 'tex', 'angle', 'gamma', 'trans')
COEFFICIENT_SUFFIXES = ('.npy', '.npz', '.mat')


class ArrayRecordBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """A GeneratorBasedBuilder that writes array_record unless told otherwise.

  A builder without named configs reads inputs that only its config names: it says so, and how to
  pass one, instead of failing later on a missing attribute.
  """

  def __init__(self, *, file_format: str = 'array_record', **kwargs):
    if not self.BUILDER_CONFIGS and kwargs.get('config') is None:
      raise ValueError(
          f'{type(self).__name__} has no named configs: pass config={type(self).__name__}Config(...) '
          'naming its inputs, e.g. tfds.builder(..., config=...) or '
          f'{type(self).__name__}(data_dir=..., config=...).')
    super().__init__(file_format=file_format, **kwargs)


def portrait_features(resolution: int | None, n_coeffs: int | None, *, landmarks: bool,
                      parsing: bool) -> dict[str, tfds.features.FeatureConnector]:
  """The portrait record's features (a builder adds its own id field).

  Args:
    resolution: the square image size R, or None for images of any size.
    n_coeffs: the coefficient dimension D, or None for any D (the builder checks it is constant).
    landmarks: whether records carry 68 landmarks.
    parsing: whether records carry a parsing map.
  """
  features = {
      'image': tfds.features.Image(shape=(resolution, resolution, 3), encoding_format='png'),
      'camera': tfds.features.Tensor(shape=(CAMERA_DIM,), dtype=np.float32),
      'coeffs': tfds.features.Tensor(shape=(n_coeffs,), dtype=np.float32),
  }
  if landmarks:
    features['landmarks'] = tfds.features.Tensor(shape=(NUM_LANDMARKS, 2), dtype=np.float32)
  if parsing:
    # zlib bytes rather than a PNG: exact, any size, and decodes to [H, W] without a channel axis.
    features['parsing'] = tfds.features.Tensor(shape=(resolution, resolution), dtype=np.uint8,
                                               encoding='zlib')
  return features


def portrait_example(image: np.ndarray, camera: np.ndarray, coeffs: np.ndarray,
                     landmarks: np.ndarray | None = None,
                     parsing: np.ndarray | None = None) -> dict[str, object]:
  """Checks one record's arrays and converts them to what the features encode.

  Args:
    image: uint8 [H, W, 3].
    camera: [25] (EG3D layout).
    coeffs: [D] coefficients.
    landmarks: optional [68, 2] pixel coordinates.
    parsing: optional uint8 [H, W] class map.

  Returns:
    A dict with a PIL `image` and float32 / uint8 arrays, optional fields only when given.

  Raises:
    ValueError: naming the field whose shape or dtype is wrong.
  """
  image = np.asarray(image)
  if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != 3:
    raise ValueError(f'image must be uint8 [H, W, 3], got {image.dtype} {image.shape}.')
  example = {
      'image': Image.fromarray(image),
      'camera': _float_vector('camera', camera, CAMERA_DIM),
      'coeffs': _float_vector('coeffs', coeffs, None),
  }
  if landmarks is not None:
    landmarks = np.asarray(landmarks, np.float32)
    if landmarks.shape != (NUM_LANDMARKS, 2):
      raise ValueError(f'landmarks must be [68, 2], got {landmarks.shape}.')
    example['landmarks'] = landmarks
  if parsing is not None:
    parsing = np.asarray(parsing)
    if parsing.shape != image.shape[:2] or parsing.max(initial=0) >= classes.NUM_CLASSES:
      raise ValueError(f'parsing must be [H, W] = {image.shape[:2]} with classes < '
                       f'{classes.NUM_CLASSES}, got {parsing.shape} with max '
                       f'{parsing.max(initial=0)}.')
    example['parsing'] = parsing.astype(np.uint8)
  return example


def _float_vector(name: str, value, size: int | None) -> np.ndarray:
  value = np.asarray(value, np.float32)
  if value.ndim != 1 or (size is not None and value.shape[0] != size):
    raise ValueError(f'{name} must be a vector of {size or "D"} floats, got shape {value.shape}.')
  return value


def load_coefficients(path: str | os.PathLike) -> np.ndarray:
  """Coefficient rows from one file: [N, D] float32.

  `.npy`: a vector [D] or a stack [N, D]. `.npz`: the same under the key `coeffs`. `.mat`
  (Deep3DFaceRecon): the arrays id, exp, tex, angle, gamma, trans concatenated in that order.

  Raises:
    ValueError: naming the file when it lacks a key or is not one or two dimensional.
  """
  path = os.fspath(path)
  if path.endswith('.npy'):
    rows = np.load(path, allow_pickle=False)
  elif path.endswith('.npz'):
    with np.load(path, allow_pickle=False) as data:
      if 'coeffs' not in data.files:
        raise ValueError(f'{path} has no array "coeffs" (it has {data.files}).')
      rows = data['coeffs']
  elif path.endswith('.mat'):
    import scipy.io  # pylint: disable=g-import-not-at-top  (only .mat inputs need it)
    mat = scipy.io.loadmat(path)
    missing = [k for k in DEEP3D_KEYS if k not in mat]
    if missing:
      raise ValueError(f'{path} is not a Deep3DFaceRecon coefficient file: it lacks {missing}.')
    rows = np.concatenate([np.atleast_2d(mat[k]) for k in DEEP3D_KEYS], axis=-1)
  else:
    raise ValueError(f'{path}: coefficient files end in one of {COEFFICIENT_SUFFIXES}.')
  rows = np.asarray(rows, np.float32)
  if rows.ndim not in (1, 2):
    raise ValueError(f'{path}: coefficients must be [D] or [N, D], got shape {rows.shape}.')
  return np.atleast_2d(rows)


def hash_split(keys: Sequence[str], test_fraction: float) -> Mapping[str, list[str]]:
  """Splits keys into train and test by a hash of each key.

  The split depends only on the set of keys (not their listing order), and the round(fraction·N)
  keys with the smallest hashes go to test, so small sets still get the asked-for test size.

  Returns:
    {'train': keys, 'test': keys}, each in the input order; 'test' only when it is not empty.
  """
  if not 0.0 <= test_fraction < 1.0:
    raise ValueError(f'test_fraction must lie in [0, 1), got {test_fraction}.')
  by_hash = sorted(keys, key=lambda k: (zlib.crc32(k.encode()), k))
  test = set(by_hash[:round(test_fraction * len(keys))])
  splits = {'train': [k for k in keys if k not in test]}
  if test:
    splits['test'] = [k for k in keys if k in test]
  return splits
