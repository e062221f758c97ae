"""The `gan` stage: adversarial training of the tri-plane generator (CoPo's warm-up; paper §4.2.2).

Per step, with real portraits (images + cameras) from a prepared dataset and control vectors
z = (ε, κ, β, γ) drawn from the control prior:
  D: hinge (or logistic) loss on real vs generated pairs [raw, super-resolved] conditioned on the
     camera, plus lazy R1 every `r1_interval` steps;
  G: the non-saturating side of the same loss through the rendering camera, with the conditioning
     camera swapped within the batch at `gpc_prob`, plus EG3D's density regulariser every
     `density_reg_interval` steps; an EMA of G is kept for summaries and export.
Both see images blurred by a σ that fades to 0 (EG3D's blur fade). With
config.loss.freeze_d_blocks = K > 0, D's first K blocks from the input resolution are frozen
(Freeze-D, Mo et al. 2020: fine-tuning on a new domain keeps D's low-level features).
"""
import re
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from faceshop_jax import classes
from faceshop_jax import data as data_lib
from faceshop_jax import geometry
from faceshop_jax import losses
from faceshop_jax import models
from faceshop_jax import visualize
from faceshop_jax.train import stage as stage_lib
from faceshop_jax.train import state as state_lib

SAMPLE_COUNT = 8  # images in the summary grid
SAMPLES_SEED = 1  # the summary grid's controls: sample_controls with PRNGKey(SAMPLES_SEED)


def check_config(config) -> None:
  models.check_control_space(config)
  try:
    source = data_lib.open_split(config.data.name, 'train', config.data.data_dir or None)
  except Exception as e:  # tfds raises several types for a missing dataset
    raise ValueError(
        f'The portrait dataset {config.data.name!r} was not found in '
        f'{config.data.data_dir or "the default tfds data_dir"} ({type(e).__name__}). Set '
        '--config.data.build_synthetic=True to render a synthetic_portraits dataset of that name on '
        'first use, or prepare real photos (python -m data_pipelines.prepare) and build a '
        'portrait_folder dataset.') from e
  size = source[0]['image'].shape[0]
  if size != config.model.sr_resolution:
    raise ValueError(f'{config.data.name} holds {size}² images but config.model.sr_resolution = '
                     f'{config.model.sr_resolution}; they must match.')


def make_data(config):
  source = data_lib.open_split(config.data.name, 'train', config.data.data_dir or None)
  return data_lib.make_train_iterator(source, global_batch_size=config.batch_size,
                                      seed=config.seed, keys=['image', 'camera'])


def init_constants(config) -> dict:
  del config
  return {}


def _rngs(key) -> dict[str, jax.Array]:
  return dict(zip(models.RNG_STREAMS, jax.random.split(key, len(models.RNG_STREAMS))))


def discriminator_blocks(d_params) -> list[str]:
  """Names of the dual discriminator's residual blocks, input resolution first (['b64', 'b32',
  'b16', 'b8'] at 64²; the 4×4 epilogue and the camera mapping are not blocks)."""
  return sorted((name for name in d_params if re.fullmatch(r'b\d+', name)),
                key=lambda name: -int(name[1:]))


def freeze_d(tx: optax.GradientTransformation, d_params,
             frozen_blocks: int) -> optax.GradientTransformation:
  """D's optimiser with its first `frozen_blocks` blocks frozen (Freeze-D).

  The frozen blocks' updates are zero (optax.set_to_zero) and they keep no optimiser state, so
  their parameters never change; `tx` updates everything else. frozen_blocks = 0 returns tx itself
  (the optimiser state of a run without Freeze-D is unchanged).

  Raises:
    ValueError: if frozen_blocks is negative or more than D has blocks.
  """
  blocks = discriminator_blocks(d_params)
  if not 0 <= frozen_blocks <= len(blocks):
    raise ValueError(f'config.loss.freeze_d_blocks = {frozen_blocks}, but the discriminator has '
                     f'{len(blocks)} blocks ({", ".join(blocks)}, input resolution first): freeze '
                     f'0 to {len(blocks)} of them.')
  if not frozen_blocks:
    return tx
  frozen = set(blocks[:frozen_blocks])
  labels = jax.tree_util.tree_map_with_path(
      lambda path, _: 'frozen' if path[0].key in frozen else 'trained', d_params)
  return optax.multi_transform({'trained': tx, 'frozen': optax.set_to_zero()}, labels)


def init_state(config, rng, constants) -> state_lib.TrainState:
  generator, discriminator = models.make_generator(config), models.make_discriminator(config)
  key_g, key_d, key_z, key_state = jax.random.split(rng, 4)
  z = jnp.zeros((1, models.control_dim(config)))
  camera = geometry.camera_from_yaw_pitch(jnp.zeros(1), jnp.zeros(1))
  g_vars = generator.init({'params': key_g, **_rngs(key_z)}, z, camera, camera)
  r, raw = config.model.sr_resolution, config.model.rendering_resolution
  d_vars = discriminator.init(key_d, jnp.zeros((1, r, r, 3)), jnp.zeros((1, raw, raw, 3)), camera)
  samples = models.sample_controls(config, jax.random.PRNGKey(SAMPLES_SEED), SAMPLE_COUNT)
  opt = config.optimizer
  with jax.ensure_compile_time_eval():  # static hyperparameters, even while init is traced
    # Lazy R1 makes D's effective step count larger: StyleGAN2's Adam correction.
    d_lr, d_b1, d_b2 = map(float, losses.lazy_adam_hyperparameters(
        opt.d_learning_rate, opt.b1, opt.b2, config.loss.r1_interval))
    ema_decay = float(losses.ema_decay_from_half_life(config.batch_size,
                                                      config.loss.ema_half_life_images))
  return state_lib.TrainState.create(
      params={'generator': g_vars['params'], 'discriminator': d_vars['params']},
      tx={'generator': optax.adam(opt.g_learning_rate, b1=opt.b1, b2=opt.b2),
          'discriminator': freeze_d(optax.adam(d_lr, b1=d_b1, b2=d_b2), d_vars['params'],
                                    config.loss.freeze_d_blocks)},
      rng=key_state,
      constants={**constants,
                 'generator_state': {k: v for k, v in g_vars.items() if k != 'params'},
                 'samples_z': samples.z, 'samples_coeffs': samples.coeffs,
                 'samples_camera': geometry.camera_from_yaw_pitch(
                     jnp.linspace(-0.5, 0.5, SAMPLE_COUNT), jnp.zeros(SAMPLE_COUNT))},
      ema_names=('generator',), ema_decay=ema_decay)


def _real_images(config, batch):
  """Real images on [-1, 1] at the SR and the rendering resolution (antialiased resize)."""
  image = batch['image'].astype(jnp.float32) / 127.5 - 1.0
  raw = config.model.rendering_resolution
  image_raw = jax.image.resize(image, image.shape[:1] + (raw, raw, 3), 'linear', antialias=True)
  return image, image_raw


class Regularizers(NamedTuple):
  """Which lazy regularisers a step applies (the gan stage's step variant)."""
  r1: bool
  density: bool


def step_variant(config, step: int) -> Regularizers:
  """R1 every r1_interval D steps, density every density_reg_interval G steps (lazy, StyleGAN2);
  a zero weight never applies."""
  loss = config.loss
  return Regularizers(r1=bool(loss.r1_gamma) and step % loss.r1_interval == 0,
                      density=bool(loss.density_reg) and step % loss.density_reg_interval == 0)


def train_step(config, state, batch, key, variant: Regularizers | None = None,
               generator_terms=None):
  """One D and one G step.

  `generator_terms(out, controls, camera, key, render) -> (loss, metrics)` adds a stage's own
  generator losses (imitation, disentanglement) on the generated batch `out` of `controls`
  (models.Controls) through `camera`; render(z) -> out generates other control vectors [B, control_dim]
  with the same parameters, cameras, noise and ray samples (contrastive pairs).
  """
  generator, discriminator = models.make_generator(config), models.make_discriminator(config)
  g_state = state.constants['generator_state']
  keys = jax.random.split(key, 7)
  real, real_raw = _real_images(config, batch)
  camera = batch['camera']
  batch_size = camera.shape[0]
  controls = models.sample_controls(config, keys[0], batch_size)
  c_cond = losses.swap_conditioning(keys[1], camera, config.loss.gpc_prob)
  sigma = losses.blur_sigma(state.step, config.loss.blur_fade_steps, config.loss.blur_init_sigma)

  def discriminate(d_params, image, image_raw):
    return discriminator.apply({'params': d_params}, image, image_raw, camera, sigma)

  def generate(g_params, update_w_avg: bool, z=controls.z):
    return generator.apply({'params': g_params, **g_state}, z, c_cond, camera,
                           update_w_avg=update_w_avg, mutable=['stats'], rngs=_rngs(keys[2]))

  # Discriminator.
  fake, _ = generate(state.params['generator'], False)
  fake = jax.lax.stop_gradient(fake)

  def d_loss_fn(d_params):
    real_logits = discriminate(d_params, real, real_raw)
    fake_logits = discriminate(d_params, fake['image'], fake['image_raw'])
    adversarial = losses.discriminator_loss(real_logits, fake_logits, config.loss.kind)
    r1 = jnp.zeros(())
    if variant and variant.r1:
      r1 = losses.r1_penalty(
          lambda p, images, c: discriminator.apply({'params': p}, images['image'],
                                                   images['image_raw'], c, sigma),
          d_params, {'image': real, 'image_raw': real_raw}, camera)
    r1_weight = losses.lazy_weight(config.loss.r1_gamma / 2, config.loss.r1_interval)
    return adversarial + r1_weight * r1, {'d_adversarial': adversarial, 'r1': r1,
                                          'real_logit': real_logits.mean(),
                                          'fake_logit': fake_logits.mean()}

  (d_total, d_terms), d_grads = jax.value_and_grad(d_loss_fn, has_aux=True)(
      state.params['discriminator'])

  # Generator.
  def g_loss_fn(g_params):
    out, new_state = generate(g_params, True)
    adversarial = losses.generator_loss(
        discriminate(state.params['discriminator'], out['image'], out['image_raw']),
        config.loss.kind)
    half = geometry.BOX_HALF_SIZE
    points = jax.random.uniform(keys[3], (batch_size, config.loss.density_reg_points, 3),
                                minval=-half, maxval=half)
    density_reg = jnp.zeros(())
    if variant and variant.density:
      density_reg = losses.density_regularization(
          lambda p: generator.apply({'params': g_params, **g_state}, out['ws'], p,
                                    method=generator.density, rngs=_rngs(keys[4])),
          points, keys[5])
    weight = losses.lazy_weight(config.loss.density_reg, config.loss.density_reg_interval)
    total, terms = adversarial + weight * density_reg, {'g_adversarial': adversarial,
                                                        'density_reg': density_reg}
    if generator_terms is not None:
      extra, extra_terms = generator_terms(out, controls, camera, keys[6],
                                           lambda z: generate(g_params, False, z)[0])
      total, terms = total + extra, {**terms, **extra_terms}
    return total, (terms, new_state)

  (g_total, (g_terms, new_g_state)), g_grads = jax.value_and_grad(g_loss_fn, has_aux=True)(
      state.params['generator'])
  state = state.apply_gradients({'discriminator': d_grads, 'generator': g_grads})
  state = state.replace(constants={**state.constants,
                                   'generator_state': {**g_state, **new_g_state}})
  return state, {'d_loss': d_total, 'g_loss': g_total, 'blur_sigma': sigma, **d_terms, **g_terms}


def ema_generator_variables(state) -> dict:
  """The EMA generator's variables (its EMA parameters and its state collections)."""
  return {'params': state.ema_params['generator'], **state.constants['generator_state']}


def summaries(config, state, batch) -> dict:
  """Image grid of the EMA generator on fixed controls: image | raw | semantics | depth."""
  del batch
  variables = ema_generator_variables(state)
  out = jax.device_get(models.sampler(config)(
      variables, state.constants['samples_z'], state.constants['samples_camera']))
  size = config.model.sr_resolution

  def upsample(x):
    return np.asarray(jax.image.resize(x, x.shape[:1] + (size, size) + x.shape[3:], 'nearest'))

  depth = out['depth']
  depth = (depth - depth.min()) / max(float(np.ptp(depth)), 1e-6)
  rows = [visualize.to_uint8(out['image'], -1, 1), visualize.to_uint8(upsample(out['image_raw']), -1, 1),
          upsample(classes.colorize(np.argmax(out['semantics'], axis=-1))),
          visualize.to_uint8(np.repeat(upsample(depth[..., None]), 3, axis=-1))]
  grid = visualize.image_grid(np.stack(rows))
  return {'images': {'samples': grid},
          'histograms': {'alpha': out['alpha'].reshape(-1)}}


# What the console's last line tells a person to run next.
NEXT_STEPS = ('python -m faceshop_jax.evaluate --workdir={workdir} --fd; python -m '
              'faceshop_jax.sweep --workdir={workdir} --out={workdir}/sweeps')


STAGE = stage_lib.Stage(name='gan', check_config=check_config, make_data=make_data,
                        init_constants=init_constants, init_state=init_state,
                        train_step=train_step, summaries=summaries, step_variant=step_variant,
                        next_steps=NEXT_STEPS)
