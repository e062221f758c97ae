"""Similarity alignment: Umeyama's least-squares fit of points onto points, and the image warp.

A transform is a [2, 3] matrix M = [s·R | t] acting on pixel coordinates (x right, y down, pixel
centres at half-integers): p' = M[:, :2] p + M[:, 2]. It maps source (photo) points to target
(aligned image) points.
"""
import numpy as np
from PIL import Image


def umeyama(source: np.ndarray, target: np.ndarray) -> np.ndarray:
  """The similarity [2, 3] (scale, rotation, translation; no reflection) minimising Σ‖M·s − t‖².

  Umeyama (1991): the rotation from the SVD of the cross-covariance, with the sign of its smallest
  singular direction flipped when the best orthogonal map would be a reflection.

  Args:
    source: [N, 2] points, N >= 2 and not all equal.
    target: [N, 2] points.
  """
  source, target = np.asarray(source, np.float64), np.asarray(target, np.float64)
  mu_s, mu_t = source.mean(0), target.mean(0)
  xs, xt = source - mu_s, target - mu_t
  u, sigma, vt = np.linalg.svd(xt.T @ xs / len(source))
  d = np.diag([1.0, np.sign(np.linalg.det(u) * np.linalg.det(vt)) or 1.0])
  rotation = u @ d @ vt
  scale = np.trace(np.diag(sigma) @ d) / np.mean(np.sum(xs**2, axis=1))
  translation = mu_t - scale * rotation @ mu_s
  return np.concatenate([scale * rotation, translation[:, None]], axis=1)


def transform_points(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
  """Applies a [2, 3] transform to points [..., 2]."""
  return points @ matrix[:, :2].T + matrix[:, 2]


def invert(matrix: np.ndarray) -> np.ndarray:
  """The inverse of a [2, 3] affine transform."""
  linear = np.linalg.inv(matrix[:, :2])
  return np.concatenate([linear, -linear @ matrix[:, 2:]], axis=1)


def warp(image: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
  """Resamples image [H, W, C] uint8 into [size, size, C] so that photo point p lands at M·p.

  Bilinear; outside the photo is black. PIL's affine transform maps each output pixel centre to an
  input position with the same half-integer centre convention as ours, so passing M⁻¹ is exact.
  When the warp shrinks the photo by more than 2x, the photo is first box-filtered by the integer
  factor (then the warp shrinks by < 2x), so the bilinear taps do not alias.
  """
  scale = np.sqrt(abs(np.linalg.det(matrix[:, :2])))
  factor = max(1, int(1.0 / scale))
  if factor > 1:
    pil = Image.fromarray(image).reduce(factor)
    # reduce() maps pixel p to p / factor (both with half-integer centres): compose with it.
    matrix = matrix @ np.diag([factor, factor, 1.0])
  else:
    pil = Image.fromarray(image)
  inverse = invert(matrix)
  out = pil.transform((size, size), Image.AFFINE, data=tuple(inverse.reshape(-1)),
                      resample=Image.BILINEAR)
  return np.asarray(out)
