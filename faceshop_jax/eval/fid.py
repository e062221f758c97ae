"""FID and KID of two image sets from their Inception pool3 features, in float64 numpy.

- FeatureStatistics: mean and covariance accumulated batch by batch (the features of a large set
  never need to be held at once);
- frechet_distance: pytorch-fid's `calculate_frechet_distance` (mseitzer/pytorch-fid,
  src/pytorch_fid/fid_score.py), scipy.linalg.sqrtm with its eps-offset fallback;
- kernel_inception_distance: unbiased MMD² under the cubic polynomial kernel, averaged over random
  subsets as torch-fidelity's `kid` and clean-fid's `kernel_distance` (subsets of ≤ 1000).
Features come from faceshop_jax.analysis.inception.inception_features.

faceshop_jax.control.metrics has a Fréchet distance and an MMD² for coefficient sets; neither is
reused: its Fréchet distance works in JAX float32 (not pytorch-fid's float64 sqrtm, whose numbers
published FIDs are comparable with) and its MMD² uses RBF kernels, not KID's polynomial one.
"""
import warnings

import chex
import numpy as np
from scipy import linalg


class FeatureStatistics:
  """Running mean and covariance of feature batches, merged in float64 (Chan et al.'s update).

  Equals np.mean / np.cov(rowvar=False) of all batches concatenated, without keeping them.
  """

  def __init__(self, dim: int):
    self.dim = dim
    self.count = 0
    self._mean = np.zeros(dim, np.float64)
    self._scatter = np.zeros((dim, dim), np.float64)  # Σ (x − mean)(x − mean)ᵀ

  def update(self, features) -> None:
    """Adds a batch of features [n, dim] (numpy or jax, any float dtype)."""
    features = np.asarray(features, np.float64)
    if features.ndim != 2 or features.shape[1] != self.dim:
      raise ValueError(f'Expected features [n, {self.dim}]; got shape {features.shape}.')
    n = features.shape[0]
    if n == 0:
      return
    batch_mean = features.mean(axis=0)
    centered = features - batch_mean
    delta = batch_mean - self._mean
    total = self.count + n
    self._scatter += centered.T @ centered + np.outer(delta, delta) * (self.count * n / total)
    self._mean += delta * (n / total)
    self.count = total

  @property
  def mean(self) -> np.ndarray:
    """float64[dim]."""
    if self.count == 0:
      raise ValueError('FeatureStatistics has seen no features.')
    return self._mean.copy()

  @property
  def covariance(self) -> np.ndarray:
    """float64[dim, dim], unbiased (n − 1) as np.cov and pytorch-fid."""
    if self.count < 2:
      raise ValueError(f'A covariance needs at least 2 features; got {self.count}.')
    return self._scatter / (self.count - 1)


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray,
                     eps: float = 1e-6) -> float:
  """|μ1 − μ2|² + tr(Σ1 + Σ2 − 2(Σ1Σ2)^½), as pytorch-fid's calculate_frechet_distance.

  Args:
    mu1, mu2: means [d].
    sigma1, sigma2: covariances [d, d].
    eps: diagonal offset added to both covariances when Σ1Σ2 is singular (its square root not
      finite).

  Raises:
    ValueError: the square root has a significant imaginary diagonal (|imag| > 1e-3).
  """
  mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
  sigma1 = np.atleast_2d(np.asarray(sigma1, np.float64))
  sigma2 = np.atleast_2d(np.asarray(sigma2, np.float64))
  chex.assert_equal_shape([mu1, mu2])
  chex.assert_equal_shape([sigma1, sigma2])
  chex.assert_shape(sigma1, (mu1.shape[0], mu1.shape[0]))
  diff = mu1 - mu2
  with warnings.catch_warnings():
    # Fewer images than feature dimensions, or a constant image set, make Σ1Σ2 singular; scipy
    # warns, and a square root that is not finite is handled here.
    warnings.simplefilter('ignore', linalg.LinAlgWarning)
    covmean = linalg.sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
      offset = np.eye(sigma1.shape[0]) * eps
      covmean = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
  if np.iscomplexobj(covmean):
    if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
      raise ValueError(f'Imaginary component {np.max(np.abs(covmean.imag)):.3g} in sqrt(Σ1Σ2).')
    covmean = covmean.real
  return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean))


def fid(statistics_a: FeatureStatistics, statistics_b: FeatureStatistics) -> float:
  """The Fréchet Inception Distance of two sets' accumulated feature statistics."""
  return frechet_distance(statistics_a.mean, statistics_a.covariance, statistics_b.mean,
                          statistics_b.covariance)


def polynomial_mmd2(x: np.ndarray, y: np.ndarray) -> float:
  """Unbiased MMD² of x [m, d] and y [n, d] (m, n ≥ 2) under k(a, b) = (a·b / d + 1)³."""
  x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
  chex.assert_rank([x, y], 2)
  chex.assert_equal_shape_suffix([x, y], 1)
  dim = x.shape[1]
  kernel = lambda a, b: (a @ b.T / dim + 1.0) ** 3  # noqa: E731
  def within_set_mean(a):  # leaves out the i = j terms: the unbiased estimate
    k = kernel(a, a)
    return (k.sum() - np.trace(k)) / (len(a) * (len(a) - 1))

  return float(within_set_mean(x) + within_set_mean(y) - 2.0 * kernel(x, y).mean())


def kernel_inception_distance(features_a: np.ndarray, features_b: np.ndarray,
                              num_subsets: int = 100, max_subset_size: int = 1000,
                              seed: int = 0) -> tuple[float, float]:
  """KID: (mean, std) of polynomial_mmd2 over random equal-size subsets of the two sets.

  Args:
    features_a: [n, d] features of one set.
    features_b: [m, d] features of the other.
    num_subsets: subsets drawn (each set sampled without replacement within a subset).
    max_subset_size: subset size cap; the size is min(n, m, max_subset_size).
    seed: seed of the subset sampling.

  Returns:
    (mean, std) over subsets; ≈ 0 (either sign) for sets from one distribution.
  """
  features_a = np.asarray(features_a, np.float64)
  features_b = np.asarray(features_b, np.float64)
  chex.assert_rank([features_a, features_b], 2)
  subset_size = min(len(features_a), len(features_b), max_subset_size)
  if subset_size < 2:
    raise ValueError(f'KID needs at least 2 features per set; got {len(features_a)} and '
                     f'{len(features_b)}.')
  rng = np.random.default_rng(seed)
  def subset(features):
    return features[rng.choice(len(features), subset_size, replace=False)]

  values = [polynomial_mmd2(subset(features_a), subset(features_b)) for _ in range(num_subsets)]
  return float(np.mean(values)), float(np.std(values))
