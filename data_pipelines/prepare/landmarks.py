"""68 iBUG landmarks by dlib's shape predictor (regression-tree ensemble, Kazemi & Sullivan 2014).

Why dlib: it installs from PyPI as a prebuilt wheel (`dlib-bin`) and its 68-point model ships in
the `face-recognition-models` sdist, so nothing downloads at run time; it is fast (~1 ms a face on
CPU) and its points are the iBUG-68 definition our face models index, so no mapping is needed
(mediapipe's 468-point mesh would need one). Licence: dlib is Boost-licensed, but the 68-point model
was trained on iBUG 300-W, whose licence excludes commercial use: datasets prepared with it inherit
that limit.

The predictor starts from its mean shape placed in a face box; it was trained on the boxes of dlib's
HOG detector, which are square and reach from the brows to the chin. RetinaFace boxes are taller
(forehead included), so predictor_box turns them into such a square.
"""
import functools

import numpy as np

# dlib's pixel coordinates are pixel indices (centre of pixel j at x = j); ours put it at j + 0.5.
_PIXEL_CENTRE = 0.5


@functools.lru_cache(maxsize=None)
def load_predictor():
  """dlib's 68-point shape predictor, from the face-recognition-models package."""
  import dlib  # pylint: disable=g-import-not-at-top  (an optional extra: data preparation only)
  import face_recognition_models  # pylint: disable=g-import-not-at-top
  return dlib.shape_predictor(face_recognition_models.pose_predictor_model_location())


def predictor_box(box: np.ndarray) -> np.ndarray:
  """A detector box [4] (x0, y0, x1, y1) -> the square, HOG-like box [4] the predictor expects.

  Measured on scikit-image's astronaut: HOG's box is as wide as RetinaFace's and centred on it.
  """
  centre = (box[:2] + box[2:]) / 2
  half = (box[2] - box[0]) / 2
  return np.concatenate([centre - half, centre + half])


def detect_landmarks(image: np.ndarray, box: np.ndarray) -> np.ndarray:
  """The 68 landmarks [68, 2] (pixels, x right, y down) of the face in box [4] of RGB [H, W, 3]."""
  import dlib  # pylint: disable=g-import-not-at-top

  x0, y0, x1, y1 = (int(round(v)) for v in predictor_box(np.asarray(box, np.float64)))
  shape = load_predictor()(np.ascontiguousarray(image), dlib.rectangle(x0, y0, x1, y1))
  return np.array([[p.x, p.y] for p in shape.parts()], np.float32) + _PIXEL_CENTRE
