"""Imitative-learning losses (paper §4.3.1): the generated portrait I imitates the 3DMM face R
rendered with the same controls and camera, in the paper's norms.

  L_tex  ‖I − R'‖₂ with R' = R + I ⊙ (1 − B), B the face region (no scalp, ears or neck): the
         per-pixel ℓ2 colour distance averaged over the face pixels, as Deep3DFaceRecon's and
         DiscoFaceGAN's photometric loss (the paper writes the norm, not its averaging)
  L_id   1 − ⟨F(I), F(R')⟩                      (cosine of identity embeddings)
  L_lmk  Σ_i w_i ‖l_i^I − l_i^R‖₂               (Eq. 15; 68 landmarks, w = 1, 100 on brows and
                                                  mouth; projected points in image-side units)
  L_ill  ‖γ − γ̂‖₂                               (Eq. 16; SH lighting reconstructed from I)
  L_ce   −1/(HW) Σ_i Σ_k P(I)_ik log S_ik        (Eq. 14; the volume-rendered semantics S against
                                                  the parser's class probabilities P(I))
  L_imi  λ_tex L_tex + λ_id L_id + λ_lmk L_lmk + λ_ill L_ill + λ_ce L_ce   (Eq. 17)
Each is averaged over the batch. Images are on [-1, 1].
"""
import chex
import jax
import jax.numpy as jnp
import numpy as np

# iBUG-68 brows (17-26) and mouth (48-67) weigh 100 (paper, after Eq. 15); the rest 1.
LANDMARK_WEIGHTS = np.ones(68, np.float32)
LANDMARK_WEIGHTS[17:27] = 100.0
LANDMARK_WEIGHTS[48:68] = 100.0
_EPS = 1e-12  # inside square roots: the ℓ2 norm's gradient at 0 is otherwise NaN


def _norm(x: jnp.ndarray, axis: int = -1) -> jnp.ndarray:
  return jnp.sqrt(jnp.sum(jnp.square(x), axis=axis) + _EPS)


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


def texture_loss(generated: jnp.ndarray, target: jnp.ndarray, mask: jnp.ndarray) -> jnp.ndarray:
  """L_tex: per-pixel ℓ2 distance ‖I_p − R'_p‖₂ averaged over the face pixels of B, batch mean.

  Args:
    generated: float32[B, H, W, 3] I.
    target: float32[B, H, W, 3] R'.
    mask: float32[B, H, W] the face region B (an image with no face pixel contributes 0).
  """
  chex.assert_equal_shape([generated, target])
  chex.assert_shape(mask, generated.shape[:3])
  distance = _norm(generated - target) - jnp.sqrt(_EPS)  # exactly 0 where I = R'
  return jnp.mean(jnp.sum(distance * mask, axis=(1, 2)) / jnp.maximum(mask.sum(axis=(1, 2)), 1.0))


def identity_loss(embedding: jnp.ndarray, target_embedding: jnp.ndarray) -> jnp.ndarray:
  """L_id: mean 1 − cos of unit embeddings float32[B, F]."""
  chex.assert_equal_shape([embedding, target_embedding])
  return jnp.mean(1.0 - jnp.sum(embedding * target_embedding, axis=-1))


def landmark_loss(landmarks: jnp.ndarray, target: jnp.ndarray, image_size: int,
                  weights: np.ndarray = LANDMARK_WEIGHTS) -> jnp.ndarray:
  """L_lmk (Eq. 15): Σ_i w_i ‖l_i − l̂_i‖₂ of landmarks float32[B, 68, 2] in pixels, measured in
  image-side units (pixels / image_size, so it does not depend on the resolution); batch mean."""
  chex.assert_equal_shape([landmarks, target])
  distance = _norm((landmarks - target) / image_size) - jnp.sqrt(_EPS)  # [B, 68]
  return jnp.mean(jnp.sum(distance * weights, axis=-1))


def illumination_loss(gamma: jnp.ndarray, target_gamma: jnp.ndarray) -> jnp.ndarray:
  """L_ill (Eq. 16): batch mean of ‖γ − γ̂‖₂, float32[B, 27]."""
  chex.assert_equal_shape([gamma, target_gamma])
  return jnp.mean(_norm(gamma - target_gamma) - jnp.sqrt(_EPS))


def semantic_loss(semantics: jnp.ndarray, probabilities: jnp.ndarray,
                  eps: float = 1e-6) -> jnp.ndarray:
  """L_ce (Eq. 14): −1/(HW) Σ_i Σ_k P_ik log S_ik, batch mean.

  Args:
    semantics: float32[B, H, W, K] rendered semantics S (they sum to the pixel's alpha; normalised
      here, so a transparent pixel counts as its class mixture).
    probabilities: float32[B, f·H, f·W, K] the parser's class probabilities P(I) at an integer
      multiple f of the rendering's size (the image is super-resolved), averaged over f×f blocks.
  """
  batch, height, width, classes = semantics.shape
  chex.assert_shape(probabilities, (batch, None, None, classes))
  factor = probabilities.shape[1] // height
  if probabilities.shape[1:3] != (factor * height, factor * width):
    raise ValueError(f'Parser probabilities of {probabilities.shape[1:3]} pixels are not an integer '
                     f'multiple of the rendered semantics\' {(height, width)}.')
  probabilities = probabilities.reshape(batch, height, factor, width, factor, classes).mean((2, 4))
  normalised = semantics / jnp.maximum(jnp.sum(semantics, axis=-1, keepdims=True), eps)
  return -jnp.mean(jnp.sum(probabilities * jnp.log(normalised + eps), axis=-1))


def phase_weight(step: jax.Array, start: int) -> jax.Array:
  """1.0 from `start` on, else 0.0 (CoPo's schedule: adversarial warm-up, then imitation)."""
  return (step >= start).astype(jnp.float32)
