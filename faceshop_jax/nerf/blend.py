"""Volume blending (paper §4.4, Eq. 24): an edited field inside the face, the original outside.

Per sample, c̃ = w·c' + (1 − w)·c and σ̃ = w·σ' + (1 − w)·σ, where the primed field is the edited
one and w is the probability of the face classes (classes.FACE: skin, brows, eyes, nose,
mouth, lips) in a semantic field. The semantic distributions are mixed the same way and returned as
log-probabilities, which are valid logits for the renderer's softmax.
"""
import jax
import jax.numpy as jnp

from faceshop_jax import classes
from faceshop_jax.nerf import volume

WEIGHT_SOURCES = ('edited', 'original', 'union')


def face_probability(semantic_logits: jnp.ndarray,
                     face_classes=classes.FACE) -> jnp.ndarray:
  """[..., K] logits -> [...] total probability of the face classes."""
  return jax.nn.softmax(semantic_logits, axis=-1)[..., jnp.asarray(face_classes)].sum(axis=-1)


def blend_fields(edited, original, face_weight: jnp.ndarray):
  """Blends two field samples (density [...], features [..., C], semantic_logits [..., K]).

  Args:
    edited: the primed field's outputs, used where face_weight is 1.
    original: the unprimed field's outputs, used where face_weight is 0.
    face_weight: [...] w in [0, 1].

  Returns:
    (density, features, semantic_logits) of the blend; the logits are the log of the mixed
    probabilities.
  """
  w = face_weight
  density = w * edited[0] + (1 - w) * original[0]
  features = w[..., None] * edited[1] + (1 - w[..., None]) * original[1]
  probs = (w[..., None] * jax.nn.softmax(edited[2], axis=-1) +
           (1 - w[..., None]) * jax.nn.softmax(original[2], axis=-1))
  return density, features, jnp.log(jnp.maximum(probs, 1e-30))


def blended_field(edited_fn: volume.FieldFn, original_fn: volume.FieldFn,
                  weight_source: str = 'union', face_classes=classes.FACE):
  """The FieldFn of the blend of two fields.

  Args:
    edited_fn, original_fn: FieldFns over the same points.
    weight_source: whose face probability is w: 'edited', 'original' or 'union' (the larger of
      the two, so the edited field is used wherever either field has face, e.g. both where a mouth
      closes and where it opens).
    face_classes: the classes that count as face.
  """
  if weight_source not in WEIGHT_SOURCES:
    raise ValueError(f'weight_source is one of {WEIGHT_SOURCES}; got {weight_source!r}.')

  def field_fn(points, directions):
    edited, original = edited_fn(points, directions), original_fn(points, directions)
    w_edited = face_probability(edited[2], face_classes)
    w_original = face_probability(original[2], face_classes)
    w = {'edited': w_edited, 'original': w_original,
         'union': jnp.maximum(w_edited, w_original)}[weight_source]
    return blend_fields(edited, original, w)

  return field_fn
