"""The 19 semantic classes of CelebAMask-HQ / BiSeNet face parsing: names, indices, groups, colours.

One vocabulary for every semantic map in faceshop_jax: the 3DMM's vertex labels, the synthetic
world's parsing maps, the generator's semantic channels and the BiSeNet parser's logits. "l_" is
the subject's left (+x). Numpy only, so that the data pipelines can import it without JAX.

Groups (tuples of indices):
  FACE        the face region of volume blending (paper Eq. 24) and of L_dis's masks: skin, brows,
              eyes, nose, mouth, lips. Glasses, ears, earrings and neck are not face.
  LIPS        the lips of L^β_dis's lip style (Eq. 21): upper and lower lip.
  HAIR_GROUP  what covers the head above the face: hair and hat.
  CLOTH_GROUP what is worn below the neck: cloth and necklace.
A group takes the _GROUP suffix only where a class has the bare name (HAIR, CLOTH).
"""
import numpy as np

NAMES = ('background', 'skin', 'l_brow', 'r_brow', 'l_eye', 'r_eye', 'eye_g', 'l_ear', 'r_ear',
         'ear_r', 'nose', 'mouth', 'u_lip', 'l_lip', 'neck', 'neck_l', 'cloth', 'hair', 'hat')
NUM_CLASSES = len(NAMES)
# eye_g: eyeglasses, ear_r: earring, neck_l: necklace.
(BACKGROUND, SKIN, L_BROW, R_BROW, L_EYE, R_EYE, EYE_G, L_EAR, R_EAR, EAR_R, NOSE, MOUTH, U_LIP,
 L_LIP, NECK, NECK_L, CLOTH, HAIR, HAT) = range(NUM_CLASSES)

FACE = (SKIN, L_BROW, R_BROW, L_EYE, R_EYE, NOSE, MOUTH, U_LIP, L_LIP)
LIPS = (U_LIP, L_LIP)
HAIR_GROUP = (HAIR, HAT)
CLOTH_GROUP = (CLOTH, NECK_L)

# One colour per class (index = class), background black.
PALETTE = np.array([
    [0, 0, 0], [204, 153, 128], [102, 51, 0], [153, 76, 0], [0, 102, 204], [51, 153, 255],
    [255, 255, 0], [255, 102, 102], [204, 0, 102], [255, 204, 0], [255, 153, 51], [102, 0, 51],
    [255, 0, 0], [178, 0, 76], [0, 153, 76], [0, 255, 255], [76, 76, 204], [102, 0, 153],
    [0, 204, 0]], np.uint8)


def colorize(labels: np.ndarray) -> np.ndarray:
  """[..., H, W] integer classes to [..., H, W, 3] uint8 colours (PALETTE)."""
  return PALETTE[np.asarray(labels)]
