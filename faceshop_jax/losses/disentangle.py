"""Disentanglement losses (paper §4.3.2): image pairs that differ in one control agree elsewhere.

  L^κ_dis  ‖I^κ ⊙ S̃^κ_bg − I ⊙ S̃_bg‖₂           (Eq. 18; non-face consistency under an identity
                                                   edit, the per-pixel ℓ2 averaged over the image)
  L^γ_dis  L_id(I^γ, I) + L_lmk(I^γ, I)            (Eq. 19; an illumination edit keeps identity and
                                                   landmarks; imitative.py's norms)
  L^β_tex  ‖I^β − W(I)‖₂                           (Eq. 20; W warps I along the 2-D flow between
                                                   the 3DMM renders R^β and R, zeroed off the face)
  L_lip    Σ_{i=1,2} ‖μ(φ_i(I^β), S^β_lip) − μ(φ_i(I), S_lip)‖₂     (Eq. 21; μ, ν the mean and
                   + ‖ν(φ_i(I^β), S^β_lip) − ν(φ_i(I), S_lip)‖₂     variance of VGG16's relu1_2,
                                                                   relu2_2 over the lip mask)
Eq. 22 weights L_id, L^β_tex and L_lip; the stage does that. Each loss is a batch mean; images are
on [-1, 1].

The masks come from the rendered semantic field (out['semantics'], per-pixel class masses summing
to the pixel's alpha) through `class_probability`, which also brings them from the rendering's
resolution to the image's. They stay soft where the paper binarises S̃_bg: a threshold would carry
no gradient and flicker at class borders. Whether gradients flow into them is the caller's choice.
"""
from collections.abc import Sequence
from typing import Any

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from faceshop_jax import classes
from faceshop_jax import raster
from faceshop_jax.analysis import vgg
from faceshop_jax.face_model import render as render_lib
from faceshop_jax.losses import imitative

# Eq. 21's "layers 1-2": the VGG16 taps relu1_2 and relu2_2.
LIP_STYLE_TAPS = vgg.TAP_NAMES[:2]
LIP_STYLE_VGG = vgg.VGG16Features(stages=len(LIP_STYLE_TAPS))


def resize_mask(mask: jnp.ndarray, size: tuple[int, int]) -> jnp.ndarray:
  """float32[B, h, w] -> [B, H, W], bilinear (anti-aliased when shrinking, half-pixel centres).

  Used both ways: semantic maps at the rendering resolution up to the super-resolved image's, and
  masks down to coarser VGG taps. Unchanged when the size already matches.
  """
  chex.assert_rank(mask, 3)
  if mask.shape[1:] == tuple(size):
    return mask
  return jax.image.resize(mask, (mask.shape[0], *size), 'linear', antialias=True)


def class_probability(semantics: jnp.ndarray, class_ids: Sequence[int],
                      size: tuple[int, int] | None = None) -> jnp.ndarray:
  """The rendered mass of some semantic classes, e.g. the lip mask S_lip of Eq. 21.

  Args:
    semantics: float32[B, h, w, K] rendered class masses (they sum to the pixel's alpha).
    class_ids: indices into classes.NAMES (classes.FACE, classes.LIPS, ...).
    size: (H, W) to resize to (the image's, when it is super-resolved); None keeps (h, w).

  Returns:
    float32[B, H, W] in [0, 1].
  """
  chex.assert_rank(semantics, 4)
  mass = semantics[..., jnp.asarray(class_ids)].sum(axis=-1)
  return mass if size is None else resize_mask(mass, size)


def nonface_probability(semantics: jnp.ndarray,
                        size: tuple[int, int] | None = None) -> jnp.ndarray:
  """S̃_bg of Eq. 18: 1 − the face classes' mass, float32[B, H, W] (as `class_probability`).

  Taken as the complement of the face rather than the mass of the non-face classes so that
  transparent pixels (alpha < 1, whose classes sum to less than 1) count as background.
  """
  return 1.0 - class_probability(semantics, classes.FACE, size)


def nonface_consistency_loss(image_edit: jnp.ndarray, image: jnp.ndarray, nonface_edit: jnp.ndarray,
                             nonface: jnp.ndarray) -> jnp.ndarray:
  """L^κ_dis (Eq. 18): per-pixel ℓ2 of I^κ ⊙ S̃^κ_bg − I ⊙ S̃_bg, averaged over pixels and batch.

  Args:
    image_edit: float32[B, H, W, 3] I^κ, the identity-edited image.
    image: float32[B, H, W, 3] I.
    nonface_edit: float32[B, H, W] S̃^κ_bg, at the images' resolution.
    nonface: float32[B, H, W] S̃_bg.
  """
  chex.assert_equal_shape([image_edit, image])
  chex.assert_equal_shape([nonface_edit, nonface])
  chex.assert_shape(nonface, image.shape[:3])
  return imitative.texture_loss(image_edit * nonface_edit[..., None], image * nonface[..., None],
                                jnp.ones_like(nonface))


def illumination_consistency_loss(embedding_edit: jnp.ndarray, embedding: jnp.ndarray,
                                  landmarks_edit: jnp.ndarray, landmarks: jnp.ndarray,
                                  image_size: int,
                                  weights: np.ndarray = imitative.LANDMARK_WEIGHTS) -> jnp.ndarray:
  """L^γ_dis (Eq. 19): imitative.identity_loss + imitative.landmark_loss of I^γ against I.

  The caller runs the analysis nets on both images and stops the gradient on I's side, so that I^γ
  is pulled to I and not both to each other.

  Args:
    embedding_edit: float32[B, F] unit identity embedding of I^γ.
    embedding: float32[B, F] that of I.
    landmarks_edit: float32[B, 68, 2] landmarks of I^γ in pixels.
    landmarks: float32[B, 68, 2] those of I.
    image_size: the side of the images the landmarks were found in.
    weights: [68] per-landmark weights (Eq. 15's by default).
  """
  return (imitative.identity_loss(embedding_edit, embedding) +
          imitative.landmark_loss(landmarks_edit, landmarks, image_size, weights))


def expression_flow(render_edit: render_lib.FaceRender, render: render_lib.FaceRender,
                    triangles: jnp.ndarray, face_weight: jnp.ndarray) -> jnp.ndarray:
  """The flow W of Eq. 20: from each pixel of I^β to the pixel of I that shows its surface point.

  The surface point is the one the edited 3DMM render R^β sees; its position in I is its projection
  in R (exact, with R's vertex depths). The flow is zero where R^β is empty and is scaled by
  face_weight, which zeroes it off the face where hair or wearings may hide the 3DMM surface.
  `raster.warp(image, flow)` then brings I to I^β's pixels.

  Args:
    render_edit: R^β, `render_face` of the edited coefficients at the images' resolution.
    render: R, the same camera and size, the original coefficients.
    triangles: int32[T, 3] the face model's topology (model.triangles).
    face_weight: float32[B, H, W] in I^β's frame: the face mass of I^β's rendered semantics,
      `class_probability(semantics_edit, classes.FACE, (H, W))`.

  Returns:
    float32[B, H, W, 2] (dx, dy) in pixels.
  """
  chex.assert_shape(face_weight, render_edit.mask.shape)
  chex.assert_equal_shape([render_edit.mask, render.mask])
  flow, _ = raster.image_flow(render_edit.screen_xy, render_edit.vertex_depth, render.screen_xy,
                              triangles, render_edit.fragments, depth_b=render.vertex_depth)
  return flow * face_weight[..., None]


def flow_texture_loss(image_edit: jnp.ndarray, warped: jnp.ndarray,
                      mask: jnp.ndarray | None = None) -> jnp.ndarray:
  """L^β_tex (Eq. 20): per-pixel ℓ2 of I^β − W(I), averaged over the mask's pixels and the batch.

  Args:
    image_edit: float32[B, H, W, 3] I^β.
    warped: float32[B, H, W, 3] W(I) = raster.warp(I, expression_flow(...)).
    mask: float32[B, H, W] pixels to compare; None compares the whole image (off the face the flow
      is zero, so there the loss holds I^β to I).
  """
  if mask is None:
    mask = jnp.ones(image_edit.shape[:3], image_edit.dtype)
  return imitative.texture_loss(image_edit, warped, mask)


def masked_mean_variance(features: jnp.ndarray,
                         mask: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
  """μ and ν of Eq. 21: per-channel mean and variance of features, weighted by a soft mask.

  The mask's total weight is floored at one pixel, so an empty mask gives zero statistics and a
  nearly empty one bounded gradients.

  Args:
    features: float32[B, H, W, C].
    mask: float32[B, H, W] weights in [0, 1].

  Returns:
    (mean, variance), each float32[B, C].
  """
  chex.assert_shape(mask, features.shape[:3])
  weights = mask[..., None]
  total = jnp.maximum(jnp.sum(weights, axis=(1, 2)), 1.0)
  mean = jnp.sum(features * weights, axis=(1, 2)) / total
  variance = jnp.sum(jnp.square(features - mean[:, None, None]) * weights, axis=(1, 2)) / total
  return mean, variance


def lip_style_loss(vgg_module: nn.Module, vgg_variables: Any, image_edit: jnp.ndarray,
                   lip_edit: jnp.ndarray, image: jnp.ndarray, lip: jnp.ndarray,
                   size: int | None = None) -> jnp.ndarray:
  """L_lip (Eq. 21): the lip-region style (feature mean and variance) of I^β against I's.

  For each tap relu1_2, relu2_2: ‖μ' − μ‖₂ + ‖ν' − ν‖₂ over channels, batch mean; summed over the
  two taps. The lip masks are resized to each tap's resolution. Only the first two taps are used:
  pass VGG16Features(stages=2) and vgg.first_stages(variables, 2) to run (and carry) no more, or
  the whole net, whose deeper stages XLA prunes under jit (tested).

  Args:
    vgg_module: `vgg.VGG16Features`, e.g. LIP_STYLE_VGG.
    vgg_variables: its {'params'}, e.g. vgg.first_stages(lpips.load_vgg16(), 2).
    image_edit: float32[B, H, W, 3] I^β on [-1, 1].
    lip_edit: float32[B, h, w] S^β_lip, any resolution.
    image: float32[B, H, W, 3] I.
    lip: float32[B, h, w] S_lip.
    size: the square side the images are resized to before VGG16; None keeps H, W (at least 16).
  """
  chex.assert_equal_shape([image_edit, image])
  chex.assert_equal_shape([lip_edit, lip])
  chex.assert_equal(lip.shape[0], image.shape[0])
  batch = image.shape[0]
  taps = vgg.vgg_features(vgg_module, vgg_variables, jnp.concatenate([image_edit, image]), size)
  loss = 0.0
  for features in taps[:len(LIP_STYLE_TAPS)]:
    masks = resize_mask(jnp.concatenate([lip_edit, lip]), features.shape[1:3])
    mean, variance = masked_mean_variance(features, masks)
    loss += jnp.mean(optax.safe_norm(mean[:batch] - mean[batch:], 0.0, axis=-1) +
                     optax.safe_norm(variance[:batch] - variance[batch:], 0.0, axis=-1))
  return loss
