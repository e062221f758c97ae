"""The semantic classes: names, indices, groups and colours are those faceshop_jax always used."""
import hashlib

import numpy as np

from faceshop_jax import classes

# CelebAMask-HQ's order (the BiSeNet parser's logits and every stored parsing map depend on it).
INDICES = {'BACKGROUND': 0, 'SKIN': 1, 'L_BROW': 2, 'R_BROW': 3, 'L_EYE': 4, 'R_EYE': 5,
           'EYE_G': 6, 'L_EAR': 7, 'R_EAR': 8, 'EAR_R': 9, 'NOSE': 10, 'MOUTH': 11, 'U_LIP': 12,
           'L_LIP': 13, 'NECK': 14, 'NECK_L': 15, 'CLOTH': 16, 'HAIR': 17, 'HAT': 18}
# sha256 of the palette's bytes as it was before it moved here from faceshop_jax.visualize.
PALETTE_SHA256 = 'e0deb01efa79efc25ee438cc872392378821c1cd670387f74374c83a5548ef57'


def test_names_and_indices_are_unchanged():
  assert classes.NUM_CLASSES == len(classes.NAMES) == len(INDICES) == 19
  for constant, index in INDICES.items():
    assert getattr(classes, constant) == index, constant
    assert classes.NAMES[index] == constant.lower(), constant


def test_groups():
  assert classes.FACE == (1, 2, 3, 4, 5, 10, 11, 12, 13)
  assert classes.LIPS == (12, 13)
  assert classes.HAIR_GROUP == (classes.HAIR, classes.HAT)
  assert classes.CLOTH_GROUP == (classes.CLOTH, classes.NECK_L)
  groups = (classes.FACE, classes.HAIR_GROUP, classes.CLOTH_GROUP)
  assert sum(map(len, groups)) == len(set().union(*groups))  # disjoint
  assert set(classes.LIPS) <= set(classes.FACE)


def test_palette_is_unchanged_and_colorize_reads_it():
  assert classes.PALETTE.shape == (classes.NUM_CLASSES, 3)
  assert classes.PALETTE.dtype == np.uint8
  assert hashlib.sha256(classes.PALETTE.tobytes()).hexdigest() == PALETTE_SHA256
  assert len({tuple(c) for c in classes.PALETTE}) == classes.NUM_CLASSES  # one colour per class
  np.testing.assert_array_equal(classes.PALETTE[classes.BACKGROUND], 0)
  labels = np.arange(classes.NUM_CLASSES).reshape(1, 1, -1).repeat(2, axis=0)  # [2, 1, 19]
  colours = classes.colorize(labels)
  assert colours.shape == (2, 1, classes.NUM_CLASSES, 3) and colours.dtype == np.uint8
  np.testing.assert_array_equal(colours[1, 0], classes.PALETTE)
