"""FID / KID on feature sets: closed forms, zero on identical sets, streaming statistics."""
import jax.numpy as jnp
import numpy as np
import pytest

from faceshop_jax import control
from faceshop_jax.eval import fid


def test_streaming_statistics_equal_mean_and_cov_of_concatenation():
  rng = np.random.default_rng(0)
  batches = [rng.normal(3.0, 2.0, (n, 6)).astype(np.float32) for n in (5, 1, 17, 0, 2)]
  statistics = fid.FeatureStatistics(6)
  for batch in batches:
    statistics.update(jnp.asarray(batch))
  everything = np.concatenate(batches).astype(np.float64)
  assert statistics.count == 25
  np.testing.assert_allclose(statistics.mean, everything.mean(0), rtol=1e-12)
  np.testing.assert_allclose(statistics.covariance, np.cov(everything, rowvar=False), rtol=1e-10)


def test_streaming_statistics_reject_bad_input():
  statistics = fid.FeatureStatistics(4)
  with pytest.raises(ValueError, match=r'\[n, 4\]'):
    statistics.update(np.zeros((3, 5)))
  statistics.update(np.zeros((1, 4)))
  with pytest.raises(ValueError, match='at least 2'):
    _ = statistics.covariance


def test_frechet_distance_of_diagonal_gaussians_has_closed_form():
  mu1, mu2 = np.array([0.0, 1.0, -2.0, 0.5]), np.array([1.0, 1.0, 0.0, 0.0])
  var1, var2 = np.array([1.0, 4.0, 0.25, 2.0]), np.array([9.0, 1.0, 0.25, 0.5])
  expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(var1) - np.sqrt(var2)) ** 2)
  actual = fid.frechet_distance(mu1, np.diag(var1), mu2, np.diag(var2))
  np.testing.assert_allclose(actual, expected, rtol=1e-10)


def test_frechet_distance_agrees_with_control_metrics_on_full_covariances():
  rng = np.random.default_rng(1)
  a, b = rng.normal(size=(5, 5)), rng.normal(size=(5, 5))
  cov_a, cov_b = a @ a.T + 0.1 * np.eye(5), b @ b.T + 0.1 * np.eye(5)
  mean_a, mean_b = rng.normal(size=5), rng.normal(size=5)
  expected = control.frechet_distance_from_moments(
      *map(jnp.asarray, (mean_a, cov_a, mean_b, cov_b)))
  np.testing.assert_allclose(fid.frechet_distance(mean_a, cov_a, mean_b, cov_b), expected,
                             rtol=1e-4)


def test_fid_of_a_set_with_itself_is_zero_even_when_rank_deficient():
  # 30 features in 64-d: a singular covariance, as small sets of 2048-d features have.
  features = np.random.default_rng(2).normal(size=(30, 64))
  statistics = fid.FeatureStatistics(64)
  statistics.update(features)
  assert abs(fid.fid(statistics, statistics)) < 1e-3


def test_fid_of_sampled_gaussians_approaches_the_closed_form():
  rng = np.random.default_rng(3)
  a, b = fid.FeatureStatistics(3), fid.FeatureStatistics(3)
  for _ in range(10):
    a.update(rng.normal([0.0, 0.0, 0.0], [1.0, 2.0, 1.0], (2000, 3)))
    b.update(rng.normal([1.0, 0.0, 0.0], [1.0, 1.0, 1.0], (2000, 3)))
  np.testing.assert_allclose(fid.fid(a, b), 1.0 + 1.0, rtol=0.05)


def test_kid_is_near_zero_for_one_distribution_and_positive_for_shifted():
  rng = np.random.default_rng(4)
  x, y = rng.normal(size=(600, 16)), rng.normal(size=(500, 16))
  same_mean, same_std = fid.kernel_inception_distance(x, y, num_subsets=20, max_subset_size=200)
  shifted_mean, _ = fid.kernel_inception_distance(x, y + 0.5, num_subsets=20, max_subset_size=200)
  assert abs(same_mean) < 3 * same_std + 1e-3 and abs(same_mean) < 0.01
  assert shifted_mean > 20 * same_std
  assert shifted_mean > 0.05


def test_polynomial_mmd2_matches_a_direct_double_sum():
  rng = np.random.default_rng(6)
  x, y = rng.normal(size=(7, 3)), rng.normal(1.0, 1.0, size=(5, 3))
  k = lambda a, b: (a @ b / 3 + 1.0) ** 3  # noqa: E731
  def within(s):
    return np.mean([k(s[i], s[j]) for i in range(len(s)) for j in range(len(s)) if i != j])

  across = np.mean([k(a, b) for a in x for b in y])
  np.testing.assert_allclose(fid.polynomial_mmd2(x, y), within(x) + within(y) - 2 * across,
                             rtol=1e-10)
