"""The BFM09 loader on a small BFM_model_front.mat written by the test (the real one is licence-gated)."""
import numpy as np
import pytest
import scipy.io

from faceshop_jax import classes
from faceshop_jax import face_model


def template_68() -> np.ndarray:
  """A crude frontal iBUG-68 layout [68, 2] in metres (x = subject's left, y up)."""
  def arc(cx, cy, rx, ry, t0, t1, n):
    t = np.linspace(t0, t1, n)
    return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], -1)

  def eye(cx):  # 36..41 / 42..47: corner, two upper lid points, corner, two lower lid points
    t = np.deg2rad([180, 120, 60, 0, -60, -120])
    return np.stack([cx + 0.015 * np.cos(t), 0.03 + 0.006 * np.sin(t)], -1)

  jaw = arc(0, 0.01, 0.07, 0.09, np.pi, 2 * np.pi, 17)
  brows = np.concatenate([arc(-0.035, 0.045, 0.025, 0.008, np.pi, 0, 5),
                          arc(0.035, 0.045, 0.025, 0.008, np.pi, 0, 5)])
  bridge = np.stack([np.zeros(4), np.linspace(0.03, -0.005, 4)], -1)
  nostrils = np.stack([np.linspace(-0.015, 0.015, 5), np.full(5, -0.012)], -1)
  # iBUG goes from the right mouth corner over the upper lip first (y up here).
  outer = arc(0, -0.04, 0.025, 0.012, np.pi, -np.pi, 13)[:12]
  inner = arc(0, -0.04, 0.018, 0.005, np.pi, -np.pi, 9)[:8]
  return np.concatenate([jaw, brows, bridge, nostrils, eye(-0.035), eye(0.035), outer, inner])


def write_small_bfm(path, rng):
  """A 61×61 vertex 'face' grid with the template's landmarks, in decimetres, 1-based indices."""
  xs = np.linspace(-0.09, 0.09, 61)
  grid = np.stack(np.meshgrid(xs, xs), -1).reshape(-1, 2)
  lmk2d = template_68()
  nearest = np.argmin(np.linalg.norm(grid[:, None] - lmk2d[None], axis=-1), axis=0)
  grid[nearest] = lmk2d  # landmark vertices sit exactly on the template
  vertices_m = np.concatenate([grid, 0.02 * np.cos(grid[:, :1] * 10)], -1)
  n = len(vertices_m)
  quads = np.arange(61 * 61).reshape(61, 61)
  a, b, c, d = quads[:-1, :-1].ravel(), quads[:-1, 1:].ravel(), quads[1:, 1:].ravel(), quads[1:, :-1].ravel()
  tri = np.concatenate([np.stack([a, b, c], -1), np.stack([a, c, d], -1)])
  scipy.io.savemat(path, {
      'meanshape': (10 * vertices_m + np.array([0.3, 0.2, 0.1])).reshape(1, -1),  # off-centre
      'idBase': rng.normal(size=(3 * n, 80)),
      'exBase': rng.normal(size=(3 * n, 64)),
      'meantex': np.full((1, 3 * n), 170.0),
      'texBase': rng.normal(size=(3 * n, 80)),
      'tri': tri + 1,
      'point_buf': np.ones((n, 8)),
      'keypoints': (nearest + 1).reshape(1, -1).astype(np.float64),
  })
  return vertices_m, tri, nearest


def test_load_bfm_layout_units_and_indices(tmp_path):
  rng = np.random.default_rng(0)
  path = tmp_path / 'BFM_model_front.mat'
  vertices_m, tri, keypoints = write_small_bfm(path, rng)
  raw = scipy.io.loadmat(path)
  m = face_model.load_bfm(str(path))
  assert (m.n_id, m.n_exp, m.n_tex, m.n_coeffs) == (80, 64, 80, 257)
  np.testing.assert_array_equal(m.triangles, tri)
  np.testing.assert_array_equal(m.landmarks68, keypoints)
  # Decimetres to metres, re-centred, then the canonical placement.
  expected = vertices_m - vertices_m.mean(0) + np.array([0.0, -0.01, 0.0])
  np.testing.assert_allclose(m.mean_shape, expected, atol=1e-6)
  # Vertex-interleaved bases: row 3i + c of idBase is vertex i, coordinate c.
  np.testing.assert_allclose(m.id_basis[5, 1, 7], raw['idBase'][3 * 5 + 1, 7] / 10, rtol=1e-6)
  np.testing.assert_allclose(m.mean_albedo, 170 / 255, rtol=1e-6)
  np.testing.assert_allclose(m.tex_basis[2, 2, 3], raw['texBase'][8, 3] / 255, rtol=1e-6)


def test_bfm_labels_follow_the_landmarks(tmp_path):
  path = tmp_path / 'BFM_model_front.mat'
  write_small_bfm(path, np.random.default_rng(1))
  m = face_model.load_bfm(str(path))
  xy = np.asarray(m.mean_shape[:, :2])
  lmk = xy[np.asarray(m.landmarks68)]
  labels = np.asarray(m.vertex_labels)

  def label_near(point):
    return labels[np.argmin(np.linalg.norm(xy - point, axis=-1))]

  assert label_near(lmk[36:42].mean(0)) == classes.R_EYE
  assert label_near(lmk[42:48].mean(0)) == classes.L_EYE
  assert label_near(lmk[19]) == classes.R_BROW
  assert label_near(lmk[24]) == classes.L_BROW
  assert label_near(lmk[33] + [0, 0.004]) == classes.NOSE
  assert label_near((lmk[62] + lmk[66]) / 2) == classes.MOUTH
  assert label_near((lmk[51] + lmk[62]) / 2) == classes.U_LIP
  assert label_near((lmk[57] + lmk[66]) / 2) == classes.L_LIP
  assert label_near(lmk[8] + [0, 0.01]) == classes.SKIN
  assert label_near([0.0, 0.07]) == classes.SKIN  # forehead


def test_missing_and_malformed_bfm_files(tmp_path):
  with pytest.raises(FileNotFoundError, match='licence-gated'):
    face_model.load_bfm(str(tmp_path / 'nope.mat'))
  scipy.io.savemat(tmp_path / 'bad.mat', {'meanshape': np.zeros((1, 6))})
  with pytest.raises(ValueError, match="lacks.*'idBase'"):
    face_model.load_bfm(str(tmp_path / 'bad.mat'))
