"""Imitative-learning losses (paper §4.3.1, Eq. 14-17): the generated portrait I imitates the 3DMM
face R rendered with the same controls and camera.

  L_tex  ‖I − R'‖² with R' = R + I ⊙ (1 − B)   (only the face region B is compared; Eq. 14)
  L_id   1 − cos(f_id(I), f_id(R'))             (identity embeddings)
  L_lmk  Σ_k w_k ‖q_k − q̂_k‖²                   (68 landmarks of R vs those reconstructed from I;
                                                  w = 1, 100 on brows and mouth; Eq. 15)
  L_ill  ‖γ − γ̂‖²                               (SH lighting reconstructed from I; Eq. 16)
  L_ce   cross-entropy of the volume-rendered semantics against the parser's labels of I (Eq. 17)
Images are on [-1, 1]; landmarks in pixels, compared as fractions of the image side.
"""
import chex
import jax
import jax.numpy as jnp
import numpy as np

# iBUG-68 brows (17-26) and mouth (48-67) weigh 100 (DESIGN.md §6, after CoPo); the rest 1.
LANDMARK_WEIGHTS = np.ones(68, np.float32)
LANDMARK_WEIGHTS[17:27] = 100.0
LANDMARK_WEIGHTS[48:68] = 100.0


def guidance_target(rendered: jnp.ndarray, mask: jnp.ndarray, generated: jnp.ndarray) -> jnp.ndarray:
  """R' = R + I ⊙ (1 − B): the 3DMM face pasted onto the generated portrait.

  Args:
    rendered: float32[B, H, W, 3] the 3DMM render R on [-1, 1] (its value off the mask is unused).
    mask: float32[B, H, W] B, 1 on the face.
    generated: float32[B, H, W, 3] I.
  """
  chex.assert_equal_shape([rendered, generated])
  b = mask[..., None]
  return rendered * b + generated * (1.0 - b)


def texture_loss(generated: jnp.ndarray, target: jnp.ndarray) -> jnp.ndarray:
  """Mean squared error ‖I − R'‖² over pixels and channels."""
  chex.assert_equal_shape([generated, target])
  return jnp.mean(jnp.square(generated - target))


def identity_loss(embedding: jnp.ndarray, target_embedding: jnp.ndarray) -> jnp.ndarray:
  """Mean 1 − cos of unit embeddings float32[B, F]."""
  chex.assert_equal_shape([embedding, target_embedding])
  return jnp.mean(1.0 - jnp.sum(embedding * target_embedding, axis=-1))


def landmark_loss(landmarks: jnp.ndarray, target: jnp.ndarray, image_size: int,
                  weights: np.ndarray = LANDMARK_WEIGHTS) -> jnp.ndarray:
  """Weighted mean squared landmark distance, float32[B, 68, 2] pixels, in image-side units."""
  chex.assert_equal_shape([landmarks, target])
  squared = jnp.sum(jnp.square((landmarks - target) / image_size), axis=-1)  # [B, 68]
  return jnp.mean(jnp.sum(squared * weights, axis=-1) / jnp.sum(weights))


def illumination_loss(gamma: jnp.ndarray, target_gamma: jnp.ndarray) -> jnp.ndarray:
  """Mean over the batch of ‖γ − γ̂‖², float32[B, 27]."""
  chex.assert_equal_shape([gamma, target_gamma])
  return jnp.mean(jnp.sum(jnp.square(gamma - target_gamma), axis=-1))


def semantic_loss(semantics: jnp.ndarray, labels: jnp.ndarray, eps: float = 1e-6) -> jnp.ndarray:
  """Cross-entropy of volume-rendered class probabilities against integer labels.

  Args:
    semantics: float32[B, H, W, K] rendered semantics (sum to alpha; renormalised here, so
      transparent pixels count as their class mixture).
    labels: int32[B, H', W'] target classes, resized by nearest neighbour to H, W if needed.
  """
  height, width = semantics.shape[1:3]
  if labels.shape[1:] != (height, width):
    rows = (jnp.arange(height) * labels.shape[1]) // height
    cols = (jnp.arange(width) * labels.shape[2]) // width
    labels = labels[:, rows][:, :, cols]
  probabilities = semantics / jnp.maximum(jnp.sum(semantics, axis=-1, keepdims=True), eps)
  picked = jnp.take_along_axis(probabilities, labels[..., None], axis=-1)[..., 0]
  return -jnp.mean(jnp.log(picked + eps))


def phase_weight(step: jax.Array, start: int) -> jax.Array:
  """1.0 from `start` on, else 0.0 (CoPo's schedule: adversarial warm-up, then imitation)."""
  return (step >= start).astype(jnp.float32)
