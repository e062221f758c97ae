"""Adversarial losses and the GAN stabilisers of the tri-plane generator (DESIGN §4; EG3D, StyleGAN2).

Pure functions of logits, arrays or apply functions; no model classes. One function per idea:
- `discriminator_loss`, `generator_loss`: hinge (paper Eq. 12) or non-saturating logistic (CoPo, EG3D).
- `r1_penalty`: mean over the batch of ‖∇_x D(x)‖² at real inputs (every input of the dual D).
- `density_regularization`: EG3D's 'l1' density smoothness term.
- `blur_sigma`: EG3D's blur fade of the images D sees early in training (the discriminator blurs
  its own inputs: stylegan.blur).
- `swap_probability`, `swap_conditioning`: EG3D's generator pose-conditioning swap (gpc_reg_prob).
- `ema_update`, `ema_decay_from_half_life`: StyleGAN2's EMA of G.

Lazy regularisation (StyleGAN2 App. C), as the stages apply it: a regulariser of weight λ runs only
on steps with `step % interval == 0`, as its own optimiser update (EG3D's 'Dreg'/'Greg' phases), with
weight `lazy_weight(λ, interval)` = λ·interval so that its average per-step strength stays λ. The
network so regularised trains with `lazy_adam_hyperparameters(...)`: lr·c and β^c with
c = interval / (interval + 1), which keeps Adam's effective time constants despite the extra updates.
- R1: λ = γ/2 = 5 (γ = R1_GAMMA), interval R1_INTERVAL = 16: loss = 80 · r1_penalty every 16 D steps.
- Density: λ = 0.25, interval 4: loss = 1 · density_regularization every 4 G steps.
"""
from typing import Any, Callable, Optional, Union

import chex
import jax
import jax.numpy as jnp
import optax

from faceshop_jax.geometry import camera as camera_lib

ADVERSARIAL_KINDS = ('hinge', 'logistic')
R1_GAMMA = 10.0
R1_INTERVAL = 16
DENSITY_REG_WEIGHT = 0.25
DENSITY_REG_INTERVAL = 4
# EG3D perturbs by 0.004 in units where the tri-plane box is 1 wide; ours is 2·BOX_HALF_SIZE metres.
DENSITY_REG_PERTURBATION = 0.004 * 2 * camera_lib.BOX_HALF_SIZE
BLUR_INITIAL_SIGMA = 10.0

Scalar = Union[float, jnp.ndarray]

# Per-logit terms: D minimises real + fake terms, G minimises the generator term.
_REAL_TERM = {'hinge': lambda l: jax.nn.relu(1.0 - l), 'logistic': lambda l: jax.nn.softplus(-l)}
_FAKE_TERM = {'hinge': lambda l: jax.nn.relu(1.0 + l), 'logistic': jax.nn.softplus}
_GENERATOR_TERM = {'hinge': lambda l: -l, 'logistic': lambda l: jax.nn.softplus(-l)}


def _check_kind(kind: str):
  if kind not in ADVERSARIAL_KINDS:
    raise ValueError(f'Adversarial loss kind must be one of {ADVERSARIAL_KINDS}; got {kind!r}.')


def discriminator_loss(real_logits: jnp.ndarray, fake_logits: jnp.ndarray,
                       kind: str = 'hinge') -> jnp.ndarray:
  """D's adversarial loss: mean real term + mean fake term.

  hinge (paper Eq. 12): relu(1 − D(real)) + relu(1 + D(fake)).
  logistic: softplus(−D(real)) + softplus(D(fake)).

  Args:
    real_logits: [B] or [B, 1] logits of real images.
    fake_logits: [B'] or [B', 1] logits of generated images (stop-gradient them for a D step).
    kind: 'hinge' or 'logistic'.

  Returns:
    scalar loss.
  """
  _check_kind(kind)
  return jnp.mean(_REAL_TERM[kind](real_logits)) + jnp.mean(_FAKE_TERM[kind](fake_logits))


def generator_loss(fake_logits: jnp.ndarray, kind: str = 'hinge') -> jnp.ndarray:
  """G's adversarial loss: hinge −D(fake) (paper Eq. 12) or logistic softplus(−D(fake)).

  Args:
    fake_logits: [B] or [B, 1] logits of generated images.
    kind: 'hinge' or 'logistic'.

  Returns:
    scalar loss.
  """
  _check_kind(kind)
  return jnp.mean(_GENERATOR_TERM[kind](fake_logits))


def r1_penalty(d_apply: Callable[..., jnp.ndarray], d_params: Any, real_images: Any,
               camera: jnp.ndarray) -> jnp.ndarray:
  """R1 (Mescheder et al. 2018): mean over the batch of ‖∇_x D(x, c)‖² at the real inputs.

  The squared norm sums over every array of `real_images`, so EG3D's dual D, which reads
  {'image': SR-size, 'image_raw': raw-size}, is penalised w.r.t. both. The result is unweighted:
  the caller multiplies by γ/2 (R1_GAMMA / 2), times the interval when lazy (module docstring).
  The gradient of the summed logits is each sample's own gradient only if D mixes no samples;
  StyleGAN2's minibatch-stddev layer does, slightly, and EG3D accepts the same approximation.

  Args:
    d_apply: (d_params, images, camera) -> logits [B] or [B, 1].
    d_params: D's variables; the penalty is differentiable w.r.t. them (double backprop).
    real_images: [B, H, W, C] array or a pytree (dict) of such arrays with the same B.
    camera: [B, 25] conditioning cameras.

  Returns:
    scalar penalty.
  """
  leaves = jax.tree.leaves(real_images)
  chex.assert_equal_shape_prefix(leaves + [camera], 1)
  total_logit = lambda images: jnp.sum(d_apply(d_params, images, camera))  # noqa: E731
  grads = jax.grad(total_logit)(real_images)
  per_sample = sum(jnp.sum(jnp.square(g).reshape(g.shape[0], -1), axis=1)
                   for g in jax.tree.leaves(grads))
  return jnp.mean(per_sample)


def lazy_weight(weight: float, interval: int) -> float:
  """The weight of a regulariser evaluated every `interval` steps: weight · interval (StyleGAN2)."""
  return weight * interval


def lazy_adam_hyperparameters(learning_rate: float, b1: float, b2: float,
                              interval: int) -> tuple[float, float, float]:
  """StyleGAN2's Adam correction for a network with lazy regularisation every `interval` steps.

  Args:
    learning_rate: the paper's learning rate (G 0.002, D 0.0025).
    b1: Adam β1 (0).
    b2: Adam β2 (0.99).
    interval: regularisation interval (D 16, G 4).

  Returns:
    (learning_rate · c, b1^c, b2^c) with c = interval / (interval + 1).
  """
  ratio = interval / (interval + 1)
  return learning_rate * ratio, b1 ** ratio, b2 ** ratio


def density_regularization(density_fn: Callable[[jnp.ndarray], jnp.ndarray], points: jnp.ndarray,
                           key: jax.Array,
                           perturbation: float = DENSITY_REG_PERTURBATION) -> jnp.ndarray:
  """EG3D's 'l1' density regulariser: mean |σ(p) − σ(p + δ)|, δ ~ N(0, perturbation² I).

  A TV-like smoothness prior on the density field that suppresses floaters. EG3D samples 1000 points
  per sample uniformly in a cube twice the tri-plane box (padding outside it); weight 0.25 applied
  every 4 G steps as lazy_weight(DENSITY_REG_WEIGHT, DENSITY_REG_INTERVAL) (module docstring).

  Args:
    density_fn: points [B, M, 3] -> densities [B, M] or [B, M, 1] (closing over G's tri-planes).
    points: [B, N, 3] world points (metres).
    key: PRNG key of the offsets.
    perturbation: standard deviation of the offsets (metres).

  Returns:
    scalar loss.
  """
  chex.assert_rank(points, 3)
  chex.assert_axis_dimension(points, 2, 3)
  offsets = perturbation * jax.random.normal(key, points.shape, points.dtype)
  # One call on both point sets: the tri-plane lookup runs once.
  densities = density_fn(jnp.concatenate([points, points + offsets], axis=1))
  chex.assert_axis_dimension(densities, 1, 2 * points.shape[1])
  initial, perturbed = jnp.split(densities, 2, axis=1)
  return jnp.mean(jnp.abs(initial - perturbed))


def _fade_in(step: Scalar, fade_steps: int) -> jnp.ndarray:
  """min(step / fade_steps, 1), clipped at 0; 1 when fade_steps <= 0 (EG3D's schedules)."""
  if fade_steps <= 0:
    return jnp.ones(())
  return jnp.clip(jnp.asarray(step, jnp.float32) / fade_steps, 0.0, 1.0)


def blur_sigma(step: Scalar, fade_steps: int,
               initial_sigma: float = BLUR_INITIAL_SIGMA) -> jnp.ndarray:
  """EG3D's blur fade: initial_sigma at step 0, linearly down to 0 at fade_steps (then 0).

  EG3D counts in images (blur_fade_kimg 200); pass fade_steps = images / batch size.

  Args:
    step: scalar training step (may be traced).
    fade_steps: steps over which sigma fades; <= 0 disables the blur.
    initial_sigma: sigma at step 0.

  Returns:
    scalar sigma (float32).
  """
  return initial_sigma * (1.0 - _fade_in(step, fade_steps))


def _blur_taps(sigma: Scalar, radius: int, dtype) -> jnp.ndarray:
  """EG3D's normalised 1-D kernel [2·radius + 1]: 2^(−(x/σ)²) for |x| ≤ ⌊3σ⌋, else 0."""
  sigma = jnp.asarray(sigma, dtype)
  taps = jnp.arange(-radius, radius + 1, dtype=dtype)
  support = jnp.floor(3.0 * sigma)
  # Below σ = 1/3 only the centre tap survives (the identity); a stand-in σ keeps x/σ finite there
  # so neither the value nor the gradient becomes NaN at σ = 0.
  safe_sigma = jnp.where(support > 0, sigma, 1.0)
  weights = jnp.where(jnp.abs(taps) <= support, jnp.exp2(-jnp.square(taps / safe_sigma)), 0.0)
  return weights / jnp.sum(weights)


def swap_probability(step: Scalar, fade_steps: int, final_probability: float) -> jnp.ndarray:
  """EG3D's schedule of the pose-conditioning swap: 1 at step 0, linearly to final at fade_steps.

  EG3D: gpc_reg_prob 0.5 over gpc_reg_fade_kimg 1000 (pass fade_steps = images / batch size).
  """
  return 1.0 - _fade_in(step, fade_steps) * (1.0 - final_probability)


def swap_conditioning(key: jax.Array, camera: jnp.ndarray, probability: Scalar) -> jnp.ndarray:
  """Generator pose-conditioning swap (EG3D gpc_reg_prob): decouples G's mapping from the view.

  Each row is replaced, with the given probability, by the previous row of the batch (a roll by
  one, so every replaced row gets another sample's camera when B > 1). Only the mapping's
  conditioning camera is swapped: the caller keeps rendering with the original `camera`.

  Args:
    key: PRNG key of the per-sample coin flips.
    camera: [B, 25] cameras.
    probability: scalar swap probability in [0, 1] (may be traced).

  Returns:
    [B, 25] conditioning cameras.
  """
  chex.assert_shape(camera, (None, camera_lib.CAMERA_SIZE))
  swap = jax.random.bernoulli(key, probability, (camera.shape[0], 1))
  return jnp.where(swap, jnp.roll(camera, 1, axis=0), camera)


def ema_update(ema_params: Any, params: Any, decay: Scalar) -> Any:
  """decay · ema + (1 − decay) · params, leaf by leaf (decay 0 copies params)."""
  return optax.incremental_update(params, ema_params, step_size=1.0 - decay)


def ema_decay_from_half_life(batch_size: int, half_life_images: float,
                             rampup_ratio: Optional[float] = None,
                             step: Optional[Scalar] = None) -> jnp.ndarray:
  """StyleGAN2's EMA decay: 0.5 ** (batch / half_life), the half-life counted in images.

  With a ramp-up (StyleGAN2's ema_rampup, 0.05 in EG3D) the half-life is capped at
  rampup_ratio · images seen so far (step · batch), so the EMA tracks G closely early on and
  copies it at step 0. EG3D's half-life: ema_kimg = batch · 10 / 32, i.e. batch · 312.5 images.

  Args:
    batch_size: images per step (global batch).
    half_life_images: images after which an old value's weight halves.
    rampup_ratio: optional ramp-up; needs step.
    step: training step (may be traced) before this update.

  Returns:
    scalar decay in [0, 1).
  """
  half_life = jnp.asarray(half_life_images, jnp.float32)
  if rampup_ratio is not None:
    if step is None:
      raise ValueError('ema_decay_from_half_life: rampup_ratio needs the step.')
    half_life = jnp.minimum(half_life, jnp.asarray(step, jnp.float32) * batch_size * rampup_ratio)
  return 0.5 ** (batch_size / jnp.maximum(half_life, 1e-8))
