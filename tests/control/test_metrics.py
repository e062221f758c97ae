"""Sample-set distances: MMD², Fréchet distance, and the regress-to-the-mean statistics."""
import jax
import jax.numpy as jnp
import numpy as np

from faceshop_jax import control


def _normal(seed, n, d, shift=0.0):
  return jax.random.normal(jax.random.PRNGKey(seed), (n, d)) + shift


def test_mmd2_separates_shifted_and_narrowed_distributions():
  mmd2 = jax.jit(control.mmd2)
  x = _normal(0, 400, 5)
  same = mmd2(x, _normal(1, 400, 5))
  shifted = mmd2(x, _normal(1, 400, 5, shift=jnp.asarray([1.0, 0, 0, 0, 0])))
  narrowed = mmd2(x, 0.6 * _normal(1, 400, 5))  # a sampler regressing to the mean
  assert abs(same) < 0.015  # the null's spread at n = 400 is about 0.005
  assert shifted > 0.05 and narrowed > 0.05
  y = _normal(2, 400, 5)
  np.testing.assert_allclose(mmd2(x, y, bandwidths=[1.0, 2.0]), mmd2(y, x, bandwidths=[1.0, 2.0]),
                             atol=1e-6)


def test_frechet_distance_closed_form():
  # Two Gaussians with a shared (random) eigenbasis: FD = |Δμ|² + Σ(√λa − √λb)².
  q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(3, 3)))
  la, lb = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
  mean_a, mean_b = np.array([1.0, 0.0, -1.0]), np.array([0.0, 2.0, -1.0])
  cov_a, cov_b = (q * la) @ q.T, (q * lb) @ q.T
  expected = np.sum((mean_a - mean_b) ** 2) + np.sum((np.sqrt(la) - np.sqrt(lb)) ** 2)
  np.testing.assert_allclose(
      control.frechet_distance_from_moments(*map(jnp.asarray, (mean_a, cov_a, mean_b, cov_b))),
      expected, rtol=1e-4)
  rng = np.random.default_rng(1)
  x = rng.multivariate_normal(mean_a, cov_a, 20_000)
  y = rng.multivariate_normal(mean_b, cov_b, 20_000)
  np.testing.assert_allclose(control.frechet_distance(jnp.asarray(x), jnp.asarray(y)), expected,
                             rtol=0.05)
  assert abs(control.frechet_distance(jnp.asarray(x), jnp.asarray(x))) < 1e-3


def test_mean_collapse_statistics():
  data = _normal(0, 2000, 8, shift=1.0)
  np.testing.assert_allclose(control.spread_ratio(_normal(1, 2000, 8, shift=1.0), data), 1.0,
                             atol=0.03)
  collapsed = 1.0 + 0.5 * _normal(1, 2000, 8)  # a VAE that regresses halfway to the mean
  np.testing.assert_allclose(control.spread_ratio(collapsed, data), 0.5, atol=0.03)
  expressions = jnp.asarray([[0.0, 0.1], [0.9, 0.0], [0.2, -0.5], [0.05, 0.0]])
  np.testing.assert_allclose(control.near_neutral_fraction(expressions, 0.3), 0.5)
