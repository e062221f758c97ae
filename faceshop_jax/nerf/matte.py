"""Portrait matting in 3D (paper §6.1): the background volume made transparent.

Per sample, σ̃ = (1 − p_bg)·σ, where p_bg is the semantic field's probability of the background
class. Rendered, the accumulated alpha is then the portrait's matte and the colour is the portrait
premultiplied by it (over black), ready to composite over any background image.
"""
import jax
import jax.numpy as jnp

from faceshop_jax import classes
from faceshop_jax.nerf import volume


def transparent_background(field_fn: volume.FieldFn,
                           background_classes=(classes.BACKGROUND,)) -> volume.FieldFn:
  """field_fn with its density scaled by the probability of not being background."""

  def field(points, directions):
    density, features, logits = field_fn(points, directions)
    background = jax.nn.softmax(logits, axis=-1)[..., jnp.asarray(background_classes)].sum(-1)
    return density * (1.0 - background), features, logits

  return field
