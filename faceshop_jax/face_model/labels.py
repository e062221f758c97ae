"""Per-vertex semantic labels drawn from the 68 landmarks, for models that ship none (BFM09).

The frontal (x, y) projection of the mean shape is cut into the regions the landmarks outline:
eyes (36–41, 42–47), brows (a band around 17–21, 22–26), nose (bridge 27 to nostrils 31–35),
lips (outer 48–59 less inner 60–67, split at the mouth corners) and the mouth interior (60–67).
Everything else is skin. Classes are those of model.CLASS_NAMES.
"""
import numpy as np

SKIN, L_BROW, R_BROW, L_EYE, R_EYE, NOSE, MOUTH, U_LIP, L_LIP = 1, 2, 3, 4, 5, 10, 11, 12, 13

_UPPER_LIP = (48, 49, 50, 51, 52, 53, 54, 64, 63, 62, 61, 60)
_LOWER_LIP = (54, 55, 56, 57, 58, 59, 48, 60, 67, 66, 65, 64)
_INNER_MOUTH = tuple(range(60, 68))


def points_in_polygon(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
  """Even-odd rule: [P] bool for points [P, 2] inside a closed polygon [K, 2]."""
  x, y = points[:, 0:1], points[:, 1:2]
  x0, y0 = polygon[:, 0], polygon[:, 1]
  x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
  crosses = (y0 > y) != (y1 > y)
  with np.errstate(divide='ignore', invalid='ignore'):
    x_at_y = x0 + (y - y0) * (x1 - x0) / (y1 - y0)
  return np.sum(crosses & (x < x_at_y), axis=1) % 2 == 1


def _band(polyline: np.ndarray, half_width: float) -> np.ndarray:
  """A closed polygon [2K, 2] around a polyline [K, 2], thickened vertically by ±half_width."""
  offset = np.array([0.0, half_width])
  return np.concatenate([polyline + offset, (polyline - offset)[::-1]])


def labels_from_landmarks(vertices: np.ndarray, landmarks68: np.ndarray) -> np.ndarray:
  """Semantic class [N] (uint8) of each vertex [N, 3] of a frontal face, given its 68 landmark indices."""
  xy = vertices[:, :2]
  lmk = xy[landmarks68]
  eye_width = np.linalg.norm(lmk[39] - lmk[36])
  nostril_width = np.linalg.norm(lmk[35] - lmk[31])
  left = np.array([-1.0, 0.0])  # -x: the subject's right

  nose = np.concatenate([
      [lmk[27] + 0.25 * nostril_width * left],
      [lmk[31] + 0.3 * nostril_width * left], lmk[32:35],
      [lmk[35] - 0.3 * nostril_width * left],
      [lmk[27] - 0.25 * nostril_width * left]])
  regions = [  # later regions overwrite earlier ones
      (NOSE, nose),
      (R_BROW, _band(lmk[17:22], 0.15 * eye_width)),
      (L_BROW, _band(lmk[22:27], 0.15 * eye_width)),
      (R_EYE, lmk[36:42]),
      (L_EYE, lmk[42:48]),
      (U_LIP, lmk[list(_UPPER_LIP)]),
      (L_LIP, lmk[list(_LOWER_LIP)]),
      (MOUTH, lmk[list(_INNER_MOUTH)]),
  ]
  labels = np.full(len(vertices), SKIN, np.uint8)
  # Only the front of the face: ignore vertices well behind the eyes (the cheeks' far sides).
  front = vertices[:, 2] > vertices[landmarks68[[36, 45]], 2].min() - 2 * eye_width
  for label, polygon in regions:
    labels[points_in_polygon(xy, polygon) & front] = label
  return labels
