"""Real-portrait inversion and personalisation (paper §6.2, Eq. 26–27), then pivotal tuning.

  target = ...                                   # uint8 [R, R, 3], aligned as the generator's data
  portrait = inversion.initial_portrait(bundle, target, reconstructor, jax.random.PRNGKey(0))
  portrait, history = inversion.invert_latent(bundle, portrait, target, judges)
  tuned, history = inversion.pivotal_tuning(bundle, portrait, target, judges)
  personal = dataclasses.replace(tuned, portrait=inversion.portrait_record(portrait))
  inference.save_export(personal, '/tmp/me')    # edit.from_bundle(load_export('/tmp/me'))

1. κ, β, γ and the camera start from the reconstructor's reading of the image, ε from N(0, I).
2. The latent: per-layer offsets of the control vector (Z+, edit.Portrait.z_offset) minimise
   LPIPS + pixel ℓ2 + identity loss + λ_w·‖w − w̄‖² (Eq. 26–27), the generator frozen.
3. Pivotal tuning (Roich et al.; "we slightly alter the parameters of G"): the generator's
   parameters minimise LPIPS + ℓ2 on the image at the inverted latent, plus a locality term that
   keeps the tuned generator's renders of other, random portraits where they were, so the rest of
   the face space stays usable.
Edits of the inverted portrait change κ, β, γ in z and keep its per-layer offsets, so the real
person can be relit, re-posed and re-expressed with every editing command.
"""
import dataclasses
import functools
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax

from faceshop_jax import edit
from faceshop_jax import geometry
from faceshop_jax import inference
from faceshop_jax import models
from faceshop_jax.analysis import iresnet
from faceshop_jax.analysis import lpips
from faceshop_jax.analysis import reconstructor as reconstructor_lib
from faceshop_jax.analysis import weights


@dataclasses.dataclass(frozen=True)
class InversionConfig:
  """Steps, learning rates and loss weights of both phases (the step counts fit one 64² portrait
  in the issue's 5-minute budget on a 2-core CPU; PTI itself runs 350 + 350 at 1024²).

  Attributes:
    latent_steps, latent_learning_rate: Adam on the per-layer offsets.
    tuning_steps, tuning_learning_rate: Adam on the generator's parameters (PTI's 3e-4).
    lpips_weight, l2_weight, identity_weight: the reconstruction terms (identity: 1 − cos of the
      identity net's embeddings).
    w_weight: λ_w of ‖w − w̄‖² (mean over layers and channels), Eq. 27's regulariser.
    locality_weight: pivotal tuning's term on random portraits (LPIPS + ℓ2 to the frozen
      generator's renders).
    locality_portraits: how many random portraits it keeps in place (one per step, in turn).
  """
  latent_steps: int = 150
  latent_learning_rate: float = 0.03
  tuning_steps: int = 100
  tuning_learning_rate: float = 3e-4
  lpips_weight: float = 1.0
  l2_weight: float = 1.0
  identity_weight: float = 0.1
  w_weight: float = 0.01
  locality_weight: float = 0.1
  locality_portraits: int = 4


class LossWeights(NamedTuple):
  """The loss weights a compiled step depends on (InversionConfig's; hashable, so steps of equal
  weights share one compilation whatever the step counts)."""
  lpips: float
  l2: float
  identity: float
  w: float
  locality: float


def loss_weights(config: InversionConfig) -> LossWeights:
  return LossWeights(config.lpips_weight, config.l2_weight, config.identity_weight,
                     config.w_weight, config.locality_weight)


# One optimiser object per learning rate: jitted steps take it as a static argument.
_adam = functools.lru_cache(maxsize=8)(optax.adam)


class Judges(NamedTuple):
  """The networks the losses read: LPIPS variables and the identity net (module, variables)."""
  lpips: Any
  identity_module: Any
  identity_variables: Any


def load_judges(analysis_dir: str = 'synthetic64') -> Judges:
  """LPIPS (VGG16) and the identity net of analysis_dir (a packaged set or a directory)."""
  identity = weights.load_role_net(analysis_dir, 'identity')
  return Judges(lpips.load_lpips(), identity.module, identity.variables)


def to_unit(image: np.ndarray) -> jax.Array:
  """uint8 [..., H, W, 3] -> float32 on the generator's [-1, 1] scale."""
  return jnp.asarray(image, jnp.float32) / 127.5 - 1.0


def initial_portrait(bundle: inference.GeneratorBundle, target: np.ndarray,
                     reconstructor: weights.AnalysisNet, key: jax.Array) -> edit.Portrait:
  """The starting point: κ, β, γ and the camera read from target uint8 [R, R, 3] by the
  reconstructor, ε ~ N(0, I) from key, zero per-layer offsets, conditioning frontal.

  Raises:
    ValueError: a target not of the generator's image size, or a camera outside the trained range
      (the portrait is too turned to invert; edit.check_view).
  """
  size = bundle.config.model.sr_resolution
  if target.shape != (size, size, 3) or target.dtype != np.uint8:
    raise ValueError(f'The target must be uint8 [{size}, {size}, 3] (the generator\'s image size, '
                     f'aligned as its data); got {target.dtype} {target.shape}.')
  model = bundle.face_model
  reading = reconstructor_lib.reconstruct_faces(reconstructor, model, to_unit(target)[None])
  parts = model.split_coeffs(reading.coeffs)
  coeffs = model.merge_coeffs(parts._replace(angle=jnp.zeros_like(parts.angle),
                                             translation=jnp.zeros_like(parts.translation)))
  yaw, pitch = (float(v[0]) for v in geometry.yaw_pitch_from_camera(reading.camera))
  noise = jax.random.normal(key, (1, bundle.config.model.noise_dim))
  portrait = edit.from_controls(coeffs, noise, yaw, pitch)
  layers = bundle.generator.apply(bundle.variables, method=lambda g: g.synthesis.num_ws)
  return portrait.replace(z_offset=jnp.zeros((1, layers, bundle.control_dim)))


def _reconstruction_loss(image, target, judges: Judges, weights_: LossWeights):
  """(weighted LPIPS + ℓ2 + identity, its terms) of images [B, R, R, 3] on [-1, 1]."""
  distance = lpips.LPIPS().apply(judges.lpips, image, target).mean()
  l2 = jnp.mean(jnp.square(image - target))
  total = weights_.lpips * distance + weights_.l2 * l2
  terms = {'lpips': distance, 'l2': l2}
  if weights_.identity:
    embed = functools.partial(iresnet.embed, judges.identity_module, judges.identity_variables)
    terms['identity'] = 1.0 - jnp.sum(embed(image) * embed(target), axis=-1).mean()
    total += weights_.identity * terms['identity']
  return total, terms


@functools.partial(jax.jit, static_argnames=('generator', 'identity_module', 'weights_',
                                             'optimizer'))
def _latent_step(generator, variables, identity_module, judges_arrays, weights_, optimizer,
                 z_offset, opt_state, z, conditioning_camera, camera, target, w_mean):
  judges = Judges(judges_arrays[0], identity_module, judges_arrays[1])

  def loss_fn(offset):
    out = edit.portrait_outputs(generator, variables, z, None, offset, conditioning_camera, camera)
    total, terms = _reconstruction_loss(out['image'], target, judges, weights_)
    w_term = jnp.mean(jnp.square(out['ws'] - w_mean))
    return total + weights_.w * w_term, {**terms, 'w': w_term}

  (loss, terms), grads = jax.value_and_grad(loss_fn, has_aux=True)(z_offset)
  updates, opt_state = optimizer.update(grads, opt_state, z_offset)
  return optax.apply_updates(z_offset, updates), opt_state, {'loss': loss, **terms}


def _progress(progress, values: dict) -> None:
  if progress is not None:
    progress.set_postfix({k: f'{float(v):.4f}' for k, v in values.items()}, refresh=False)
    progress.update(1)


def invert_latent(bundle: inference.GeneratorBundle, portrait: edit.Portrait, target: np.ndarray,
                  judges: Judges, config: InversionConfig = InversionConfig(),
                  progress=None) -> tuple[edit.Portrait, list[dict[str, float]]]:
  """The per-layer offsets of portrait (a batch of 1) that best render target uint8 [R, R, 3]
  (Eq. 26–27; the generator frozen). Returns the inverted portrait and each step's losses."""
  chex.assert_shape(portrait.z_offset, (1, None, bundle.control_dim))
  z = models.control_vector(bundle.config, portrait.coeffs, portrait.noise)
  w_mean = bundle.variables['stats']['mapping']['w_avg']
  optimizer = _adam(config.latent_learning_rate)
  offset, opt_state = portrait.z_offset, optimizer.init(portrait.z_offset)
  history = []
  for _ in range(config.latent_steps):
    offset, opt_state, values = _latent_step(
        bundle.generator, bundle.variables, judges.identity_module,
        (judges.lpips, judges.identity_variables), loss_weights(config), optimizer, offset,
        opt_state, z,
        portrait.conditioning_camera, portrait.camera, to_unit(target)[None], w_mean)
    history.append({k: float(v) for k, v in values.items()})
    _progress(progress, values)
  return portrait.replace(z_offset=offset), history


@functools.partial(jax.jit, static_argnames=('generator', 'identity_module', 'weights_',
                                             'optimizer'))
def _tuning_step(generator, variables, identity_module, judges_arrays, weights_, optimizer,
                 params, opt_state, inputs, target, locality_inputs, locality_target):
  judges = Judges(judges_arrays[0], identity_module, judges_arrays[1])
  no_identity = weights_._replace(identity=0.0)

  def loss_fn(p):
    tuned = {**variables, 'params': p}
    image = edit.portrait_outputs(generator, tuned, *inputs)['image']
    total, terms = _reconstruction_loss(image, target, judges, no_identity)
    nearby = edit.portrait_outputs(generator, tuned, *locality_inputs)['image']
    locality, _ = _reconstruction_loss(nearby, locality_target, judges, no_identity)
    return total + weights_.locality * locality, {**terms, 'locality': locality}

  (loss, terms), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
  updates, opt_state = optimizer.update(grads, opt_state, params)
  return optax.apply_updates(params, updates), opt_state, {'loss': loss, **terms}


def _inputs(bundle, portrait: edit.Portrait):
  """portrait_outputs' arguments after the variables (no blending)."""
  z = models.control_vector(bundle.config, portrait.coeffs, portrait.noise)
  return (z, None, portrait.z_offset, portrait.conditioning_camera, portrait.camera)


def pivotal_tuning(bundle: inference.GeneratorBundle, portrait: edit.Portrait, target: np.ndarray,
                   judges: Judges, config: InversionConfig = InversionConfig(),
                   key: jax.Array = jax.random.PRNGKey(0),
                   progress=None) -> tuple[inference.GeneratorBundle, list[dict[str, float]]]:
  """The bundle with its generator tuned to render target at the inverted portrait (a batch of
  1), with random portraits (seeded by key) held where the frozen generator drew them."""
  seeds = np.asarray(jax.random.randint(key, (config.locality_portraits,), 0, 2**31 - 1))
  others = edit.from_seeds(bundle, seeds)
  others = others.replace(z_offset=jnp.zeros((len(others),) + portrait.z_offset.shape[1:]))
  originals = edit.render(bundle, others).image
  optimizer = _adam(config.tuning_learning_rate)
  params = bundle.variables['params']
  opt_state = optimizer.init(params)
  history = []
  for step in range(config.tuning_steps):
    other = others[step % len(others)]
    params, opt_state, values = _tuning_step(
        bundle.generator, bundle.variables, judges.identity_module,
        (judges.lpips, judges.identity_variables), loss_weights(config), optimizer, params,
        opt_state,
        _inputs(bundle, portrait), to_unit(target)[None], _inputs(bundle, other),
        to_unit(originals[step % len(others)])[None])
    history.append({k: float(v) for k, v in values.items()})
    _progress(progress, values)
  return dataclasses.replace(bundle, variables={**bundle.variables, 'params': params}), history


class Scores(NamedTuple):
  """How close renders are to their targets, per image: PSNR (dB, on [0, 255]), LPIPS, and the
  identity similarity (cosine of the identity net's embeddings)."""
  psnr: np.ndarray
  lpips: np.ndarray
  identity: np.ndarray


def scores(images: np.ndarray, targets: np.ndarray, judges: Judges) -> Scores:
  """Scores of uint8 images [B, R, R, 3] against targets of the same shape."""
  chex.assert_equal_shape([images, targets])
  mse = np.mean(np.square(images.astype(np.float64) - targets), axis=(1, 2, 3))
  a, b = to_unit(images), to_unit(targets)
  embed = functools.partial(iresnet.embed, judges.identity_module, judges.identity_variables)
  return Scores(psnr=10 * np.log10(255.0**2 / np.maximum(mse, 1e-10)),
                lpips=np.asarray(lpips.lpips_distance(a, b, judges.lpips)),
                identity=np.asarray(jnp.sum(embed(a) * embed(b), axis=-1)))


def portrait_record(portrait: edit.Portrait) -> dict[str, np.ndarray]:
  """The arrays of an inverted portrait, as an export stores them (inference.save_export)."""
  return {field.name: np.asarray(getattr(portrait, field.name))
          for field in dataclasses.fields(portrait) if getattr(portrait, field.name) is not None}
