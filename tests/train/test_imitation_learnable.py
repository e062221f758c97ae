"""Imitation can be learnt: with the discriminator off, a tiny generator fits L_tex on a fixed batch.

The batch is one person (same κ and ε) under four expressions and lights, seen frontally: only β and
γ tell the four targets apart. With per-factor scaling of the control vector the generator fits
them; with the raw coefficients (where β and γ are < 1% of the mapping's input) it cannot tell
them apart and fits their average, well below the same PSNR.
"""
import functools

import jax
import jax.numpy as jnp
import optax

from configs import gan as gan_config
from faceshop_jax import face_model
from faceshop_jax import geometry
from faceshop_jax import edit
from faceshop_jax import models
from faceshop_jax.face_model import prior as prior_lib
from faceshop_jax.losses import imitative

STEPS = 150
SIZE = 32
# dB over the face region, on [0, 1] pixels. Measured: per-factor 21.6, raw 19.2, and one image
# for all four (their mean) 17.9; at 300 steps raw overfits its tiny differences up to 20.8
# (per-factor 22.3): the gap is in how fast the four are told apart.
TARGET_PSNR = 21.0


def _config(scaling: str):
  config = gan_config.get_config('test')
  config.model.control_scaling = scaling
  return config


# Four (expression, light) pairs: light from the subject's right, left, above, and dim in front.
VARIATIONS = (({'jawOpen': 1.0}, (-1.2, 0.0, 0.9)), ({'mouthSmileLeft': 1.0, 'mouthSmileRight': 1.0},
                                                    (1.2, 0.0, 0.9)),
              ({}, (0.0, 1.0, 0.9)), ({'browInnerUp': 1.0, 'eyeWideLeft': 1.0,
                                       'eyeWideRight': 1.0}, (0.0, 0.0, 0.2)))


@functools.lru_cache(maxsize=1)
def _batch():
  """Coefficients [4, D] of one person under four (β, γ), their frontal R and face masks B."""
  model = face_model.load_embedded()
  person, _ = prior_lib.sample_controls(jax.random.PRNGKey(3), model, 1)
  parts = model.split_coeffs(jnp.repeat(person, 4, axis=0))
  coeffs = model.merge_coeffs(parts._replace(
      expression=jnp.stack([edit.expression_vector(model, e) for e, _ in VARIATIONS]),
      gamma=jnp.stack([edit.light_gamma(*light) for _, light in VARIATIONS])))
  camera = geometry.camera_from_yaw_pitch(jnp.zeros(4), jnp.zeros(4))
  render = face_model.render_face(model, coeffs, camera, SIZE)
  return coeffs, camera, render.image * 2.0 - 1.0, render.face_mask


def _masked_psnr(image, rendered, mask) -> float:
  squared = jnp.sum(jnp.square((image - rendered) / 2.0), axis=-1) / 3.0
  mse = jnp.sum(squared * mask) / jnp.sum(mask)
  return float(10.0 * jnp.log10(1.0 / mse))


def _fit(scaling: str) -> float:
  """Masked PSNR of the generator after STEPS Adam steps on L_tex alone."""
  config = _config(scaling)
  coeffs, camera, rendered, mask = _batch()
  noise = jnp.broadcast_to(jax.random.normal(jax.random.PRNGKey(0), (1, config.model.noise_dim)),
                           (4, config.model.noise_dim))
  z = models.control_vector(config, coeffs, noise)
  generator = models.make_generator(config)
  variables = generator.init({'params': jax.random.PRNGKey(1)}, z, camera, camera,
                             noise_mode='const')
  params, state = variables['params'], {k: v for k, v in variables.items() if k != 'params'}
  optimizer = optax.adam(3e-3, b1=0.0, b2=0.99)

  def image_of(p):
    return generator.apply({'params': p, **state}, z, camera, camera, noise_mode='const')['image']

  def loss_fn(p):
    image = image_of(p)
    return imitative.texture_loss(image, imitative.guidance_target(rendered, mask, image), mask)

  @jax.jit
  def step(p, opt_state):
    grads = jax.grad(loss_fn)(p)
    updates, opt_state = optimizer.update(grads, opt_state, p)
    return optax.apply_updates(p, updates), opt_state

  opt_state = optimizer.init(params)
  for _ in range(STEPS):
    params, opt_state = step(params, opt_state)
  return _masked_psnr(jax.jit(image_of)(params), rendered, mask)


def test_the_four_targets_differ():
  _, _, rendered, mask = _batch()
  mean = jnp.sum(rendered * mask[..., None], 0) / jnp.maximum(jnp.sum(mask, 0)[..., None], 1.0)
  assert _masked_psnr(jnp.broadcast_to(mean, rendered.shape), rendered, mask) < TARGET_PSNR - 2.0


def test_per_factor_conditioning_fits_four_lights_and_expressions():
  assert _fit('per_factor') > TARGET_PSNR


def test_raw_conditioning_cannot_tell_them_apart():
  assert _fit('raw') < TARGET_PSNR - 1.0
