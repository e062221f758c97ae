"""Per-vertex semantic labels drawn from the 68 landmarks, for models that ship none (BFM09).

The frontal (x, y) projection of the mean shape is cut into the regions the landmarks outline:
eyes (36–41, 42–47), brows (a band around 17–21, 22–26), nose (bridge 27 to nostrils 31–35),
lips (outer 48–59 less inner 60–67, split at the mouth corners) and the mouth interior (60–67).
Everything else is skin. Classes are those of faceshop_jax.classes.

`face_region` marks the face proper (paper §4.3.1's B, Eq. 24's face part): face-class vertices
inside the outline of the jaw (0–16) closed by a forehead arc at the hairline, in front of the
ears. A head model's skin also covers the scalp, the back of the head and under the chin, where a
portrait shows hair or neck.
"""
import jax.numpy as jnp
import numpy as np

from faceshop_jax import classes

_UPPER_LIP = (48, 49, 50, 51, 52, 53, 54, 64, 63, 62, 61, 60)
_LOWER_LIP = (54, 55, 56, 57, 58, 59, 48, 60, 67, 66, 65, 64)
_INNER_MOUTH = tuple(range(60, 68))


# The top of B above the brows, as a fraction of the brow-to-chin height: a low hairline (a full
# forehead is ~0.4), so that fringes rarely cover B (in the synthetic world ~2% of B is hair).
_FOREHEAD_FRACTION = 0.25


def points_in_polygon(points, polygon):
  """Even-odd rule: [P] bool for points [P, 2] inside a closed polygon [K, 2] (numpy or traced)."""
  x, y = points[:, 0:1], points[:, 1:2]
  x0, y0 = polygon[:, 0], polygon[:, 1]
  x1, y1 = jnp.roll(x0, -1), jnp.roll(y0, -1)
  crosses = (y0 > y) != (y1 > y)
  x_at_y = x0 + (y - y0) * (x1 - x0) / jnp.where(y1 == y0, 1.0, y1 - y0)
  return jnp.sum(crosses & (x < x_at_y), axis=1) % 2 == 1


def face_region(vertices, landmarks68, vertex_labels):
  """[N] bool: the face proper among vertices [N, 3] of a neutral, canonically placed head.

  Face-class vertices inside the frontal (x, y) outline of the jaw (landmarks 0–16) closed over
  the forehead at the hairline (_FOREHEAD_FRACTION of the brow-to-chin height above the brows),
  and in front of the jaw's ends (which sit by the ears): no scalp, back of the head, ears or neck.
  Works on numpy and traced arrays alike.
  """
  lmk = vertices[landmarks68]
  jaw = lmk[:17, :2]
  brow_y = jnp.max(lmk[17:27, 1])
  hairline = brow_y + _FOREHEAD_FRACTION * (brow_y - lmk[8, 1])
  right, left = jaw[0], jaw[16]
  temple = brow_y + 0.5 * (hairline - brow_y)
  forehead = jnp.stack([  # from the subject's left temple over the forehead to the right one
      jnp.stack([left[0], temple]), jnp.stack([0.6 * left[0], hairline]),
      jnp.stack([0.6 * right[0], hairline]), jnp.stack([right[0], temple])])
  outline = jnp.concatenate([jaw, forehead])
  front = vertices[:, 2] > jnp.minimum(lmk[0, 2], lmk[16, 2])
  inside = points_in_polygon(vertices[:, :2], outline)
  return inside & front & jnp.isin(vertex_labels, jnp.asarray(classes.FACE))


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
      (classes.NOSE, nose),
      (classes.R_BROW, _band(lmk[17:22], 0.15 * eye_width)),
      (classes.L_BROW, _band(lmk[22:27], 0.15 * eye_width)),
      (classes.R_EYE, lmk[36:42]),
      (classes.L_EYE, lmk[42:48]),
      (classes.U_LIP, lmk[list(_UPPER_LIP)]),
      (classes.L_LIP, lmk[list(_LOWER_LIP)]),
      (classes.MOUTH, lmk[list(_INNER_MOUTH)]),
  ]
  labels = np.full(len(vertices), classes.SKIN, np.uint8)
  # Only the front of the face: ignore vertices well behind the eyes (the cheeks' far sides).
  front = vertices[:, 2] > vertices[landmarks68[[36, 45]], 2].min() - 2 * eye_width
  for label, polygon in regions:
    labels[np.asarray(points_in_polygon(xy, polygon)) & front] = label
  return labels
