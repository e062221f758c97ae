"""The synthetic portrait world: determinism, parsing consistent with geometry, landmarks on the face."""
import numpy as np
import pytest

from faceshop_jax.world import portraits
from faceshop_jax import classes
from faceshop_jax import geometry

RESOLUTION = 64
SEEDS = tuple(range(6))


@pytest.fixture(scope='module')
def records():
  return list(portraits.generate_records(SEEDS, RESOLUTION, batch_size=6))


def test_same_seed_same_bytes_whatever_the_batch(records):
  again = list(portraits.generate_records([SEEDS[3], SEEDS[0]], RESOLUTION, batch_size=6))
  for got, want in zip(again, [records[3], records[0]]):
    for key in ('image', 'parsing', 'landmarks', 'camera', 'coeffs'):
      assert got[key].tobytes() == want[key].tobytes(), key


def test_record_layout(records):
  r = records[0]
  assert r['image'].shape == (RESOLUTION, RESOLUTION, 3) and r['image'].dtype == np.uint8
  assert r['parsing'].shape == (RESOLUTION, RESOLUTION) and r['parsing'].dtype == np.uint8
  assert r['landmarks'].shape == (68, 2) and r['camera'].shape == (25,)
  assert r['parsing'].max() < classes.NUM_CLASSES
  # Different seeds, different portraits.
  assert not np.array_equal(records[0]['image'], records[1]['image'])


def test_inner_landmarks_land_on_face_classes_not_hair(records):
  for r in records:
    xy = np.floor(r['landmarks'][17:68]).astype(int)  # brows, nose, eyes, mouth
    inside = np.all((xy >= 0) & (xy < RESOLUTION), axis=1)
    assert inside.all()
    found = r['parsing'][xy[:, 1], xy[:, 0]]
    # Never hair, cloth or background on the inner face (a pixel's label may be a neighbour class).
    assert not np.isin(found, (classes.BACKGROUND, classes.HAIR, classes.CLOTH)).any(), found
    assert np.mean(np.isin(found, classes.FACE)) > 0.9


def test_camera_and_landmarks_agree(records):
  # The face looks the way the camera says: positive yaw shows the subject's left side, moving the
  # nose tip toward the image right... of the eye midpoint (camera toward +x sees the face turned).
  for r in records:
    yaw, _ = geometry.yaw_pitch_from_camera(r['camera'])
    eyes_mid = (r['landmarks'][36:48, 0].mean())
    nose = r['landmarks'][30, 0]
    if abs(float(yaw)) > 0.15:
      assert np.sign(eyes_mid - nose) == np.sign(float(yaw)), (yaw, eyes_mid, nose)


def test_cartoon_style_changes_the_look_alone(records):
  cartoon = list(portraits.generate_records(SEEDS, RESOLUTION, batch_size=6, art_style='cartoon'))
  for photo, toon in zip(records, cartoon):
    for key in ('parsing', 'landmarks', 'camera', 'coeffs', 'seed'):
      assert toon[key].tobytes() == photo[key].tobytes(), key
    face = np.isin(photo['parsing'], classes.FACE)
    change = np.abs(toon['image'].astype(int) - photo['image'].astype(int)).mean(axis=-1)
    assert change[face].mean() > 10, change[face].mean()  # of 255: painted albedo, cel shading
    # Ink along the class borders: they are much darker than in the photo.
    parsing = photo['parsing']
    border = np.zeros_like(face)
    border[1:] |= parsing[1:] != parsing[:-1]
    border[:, 1:] |= parsing[:, 1:] != parsing[:, :-1]
    assert toon['image'][border].mean() < 0.6 * photo['image'][border].mean()


def test_unknown_art_style_is_named():
  with pytest.raises(ValueError, match=r"Unknown art style 'sketch'.*'photo', 'cartoon'"):
    next(portraits.generate_records([0], 16, batch_size=1, art_style='sketch'))
