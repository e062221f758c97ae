"""RetinaFace in JAX: boxes and five points on a real photo, and the post-processing pieces."""
import numpy as np

from data_pipelines.prepare import detect


def test_finds_the_astronaut_with_five_points_in_order(astronaut):
  faces = detect.detect_faces(astronaut)
  assert len(faces) == 1
  face = faces[0]
  assert face.score > 0.99
  x0, y0, x1, y1 = face.box
  assert 80 < face.size < 140  # her face is about 100 px wide in the 512 px photo
  right_eye, left_eye, nose, right_mouth, left_mouth = face.points
  assert np.all((face.points >= [x0, y0]) & (face.points <= [x1, y1]))
  assert right_eye[0] < nose[0] < left_eye[0] and right_mouth[0] < nose[0] < left_mouth[0]
  assert max(right_eye[1], left_eye[1]) < nose[1] < min(right_mouth[1], left_mouth[1])
  # Her eyes, measured by hand on the photo: about (203, 101) and (247, 103).
  np.testing.assert_allclose(face.points[:2], [[203, 101], [247, 103]], atol=4)


def test_anchor_layout():
  # Anchors tile the image in the network's output order: level by level, row-major, 2 sizes.
  anchors = detect.anchors(64, 96)
  assert anchors.shape == ((8 * 12 + 4 * 6 + 2 * 3) * 2, 4)
  np.testing.assert_allclose(anchors[:3], [[4, 4, 16, 16], [4, 4, 32, 32], [12, 4, 16, 16]])


def test_nms_keeps_the_best_of_overlapping_boxes():
  boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30]], np.float32)
  np.testing.assert_array_equal(detect.nms(boxes, np.array([0.8, 0.9, 0.7]), 0.4), [1, 2])
