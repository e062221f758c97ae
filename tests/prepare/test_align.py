"""Umeyama similarity and the image warp."""
import numpy as np

from data_pipelines.prepare import align


def _similarity(scale, angle, shift):
  c, s = np.cos(angle), np.sin(angle)
  return np.array([[scale * c, -scale * s, shift[0]], [scale * s, scale * c, shift[1]]])


def test_umeyama_recovers_a_similarity_exactly():
  rng = np.random.default_rng(0)
  source = rng.uniform(0, 500, size=(5, 2))
  truth = _similarity(0.37, 2.5, (40.0, -13.0))
  np.testing.assert_allclose(align.umeyama(source, align.transform_points(truth, source)), truth,
                             atol=1e-9)


def test_umeyama_never_reflects():
  source = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0], [3.0, 1.0]])
  mirrored = source * [-1.0, 1.0]
  matrix = align.umeyama(source, mirrored)
  assert np.linalg.det(matrix[:, :2]) > 0


def test_invert_round_trips():
  matrix = _similarity(2.0, 0.3, (5.0, 7.0))
  points = np.array([[1.0, 2.0], [30.0, -4.0]])
  np.testing.assert_allclose(
      align.transform_points(align.invert(matrix), align.transform_points(matrix, points)), points)


def test_warp_moves_a_point_where_the_transform_sends_it():
  # A blurred dot at a sub-pixel position lands, after the warp, at M·p (its intensity centroid),
  # for enlarging and for strongly shrinking (pre-reduced) warps alike.
  ys, xs = np.mgrid[0:300, 0:300] + 0.5
  centre = np.array([123.3, 211.7])
  dot = 255 * np.exp(-((xs - centre[0])**2 + (ys - centre[1])**2) / (2 * 6.0**2))
  image = np.repeat(dot[..., None], 3, axis=-1).astype(np.uint8)
  oy, ox = np.mgrid[0:96, 0:96] + 0.5
  for scale in (1.3, 0.15):
    matrix = _similarity(scale, 0.4, (0.0, 0.0))
    matrix[:, 2] = [48.2, 45.9] - align.transform_points(matrix, centre)
    out = align.warp(image, matrix, 96)[..., 0].astype(np.float64)
    assert out.shape == (96, 96)
    centroid = np.array([(out * ox).sum(), (out * oy).sum()]) / out.sum()
    np.testing.assert_allclose(centroid, [48.2, 45.9], atol=0.05)
