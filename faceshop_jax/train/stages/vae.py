"""The `vae` stage: one VAE-GAN per control factor (paper §4.1), trained jointly in one step.

Data: full coefficient vectors from a `coefficient_sets` dataset or, for the embedded world, drawn
from its prior on the fly. Each factor is standardised by statistics of its training data; per step
every critic and every VAE takes one Adam step from the same parameters. At the end the trained
decoders are exported (WORKDIR/control_space, `control.load_control_space`) and evaluated on held-out
data: reconstruction error, and the MMD² and Fréchet distance between decoded prior samples and the
data, per factor, beside chance and a second held-out set (WORKDIR/eval.json).
"""
import dataclasses
import functools
import json
import os

from absl import logging
import jax
import jax.numpy as jnp
import numpy as np
import optax

from faceshop_jax import control
from faceshop_jax import data as data_lib
from faceshop_jax import face_model
from faceshop_jax.face_model import prior as prior_lib
from faceshop_jax.train import stage as stage_lib
from faceshop_jax.train import state as state_lib

SOURCES = ('prior', 'coefficient_sets')


def factor_specs(config) -> tuple[control.FactorSpec, ...]:
  scale = config.vae.width_scale
  return tuple(dataclasses.replace(s, width=max(8, int(s.width * scale)), depth=config.vae.depth)
               for s in control.factor_specs(face_model.load(config.data.face_model)))


def check_config(config) -> None:
  if config.data.source not in SOURCES:
    raise ValueError(f'config.data.source = {config.data.source!r}; choose one of {SOURCES}.')
  if config.data.source == 'coefficient_sets':
    try:
      data_lib.open_split(config.data.name, 'train', config.data.data_dir or None)
    except Exception as e:  # tfds raises several types for a missing dataset
      raise ValueError(
          f'The coefficient dataset {config.data.name!r} was not found in '
          f'{config.data.data_dir or "the default tfds data_dir"} ({type(e).__name__}). Build it with '
          'data_pipelines.builders.CoefficientSets from your 3DMM extractions and set '
          '--config.data.name/--config.data.data_dir, or train on the embedded prior with '
          "--config.data.source=prior.") from e
  if config.data.face_model != 'embedded' and not os.path.exists(config.data.face_model):
    raise ValueError(f'config.data.face_model: no file {config.data.face_model!r}.')


@functools.lru_cache(maxsize=8)
def _prior_sampler(face_model_spec: str, n: int):
  model = face_model.load(face_model_spec)
  return jax.jit(lambda key: prior_lib.sample_controls(key, model, n)[0])


def _prior_coefficients(config, n: int, stream: int) -> np.ndarray:
  """n prior draws from an independent stream (0 = training batches, 1 = statistics, 2 = held out,
  3 = the second held-out set)."""
  key = jax.random.fold_in(jax.random.PRNGKey(config.seed), stream)
  return np.asarray(_prior_sampler(config.data.face_model, n)(key))


def prior_batches(config, process_index: int | None = None, process_count: int | None = None):
  """Endless training batches {'coeffs': [B / hosts, D]} of fresh prior draws, this host's share.

  Sample j of global batch k is drawn from its own key (fold_in(stream 0, k·B + j)), and host h
  draws samples h·B/hosts … (h+1)·B/hosts − 1: a run's global batches do not depend on its host
  count.
  """
  count = jax.process_count() if process_count is None else process_count
  local = config.batch_size // count
  model = face_model.load(config.data.face_model)
  base = jax.random.fold_in(jax.random.PRNGKey(config.seed), 0)
  sample = jax.jit(jax.vmap(lambda j: prior_lib.sample_controls(
      jax.random.fold_in(base, j), model, 1)[0][0]))
  # generated_batches asks host h of `count` for batch i = k·count + h: its samples start at
  # k·B + h·local = i·local.
  return data_lib.generated_batches(
      lambda i: {'coeffs': np.asarray(sample(
          (np.arange(i * local, (i + 1) * local) % 2**32).astype(np.uint32)))},
      process_index, count)


def make_data(config):
  if config.data.source == 'prior':
    return prior_batches(config)
  source = data_lib.open_split(config.data.name, 'train', config.data.data_dir or None)
  return data_lib.make_train_iterator(source, global_batch_size=config.batch_size,
                                      seed=config.seed, keys=['coeffs'])


def _dataset_coefficients(config, split: str, n: int) -> np.ndarray:
  source = data_lib.open_split(config.data.name, split, config.data.data_dir or None)
  return np.stack([source[i]['coeffs'] for i in range(min(n, len(source)))])


def init_constants(config) -> dict:
  """Per-factor normalisers fitted on config.data.statistics_samples training vectors."""
  n = config.data.statistics_samples
  coeffs = (_prior_coefficients(config, n, 1) if config.data.source == 'prior'
            else _dataset_coefficients(config, 'train', n))
  model = face_model.load(config.data.face_model)
  factors = control.factor_data(model, jnp.asarray(coeffs))
  return {'normalizers': {k: control.Normalizer.fit(v) for k, v in factors.items()}}


def init_state(config, rng, constants) -> state_lib.TrainState:
  params, tx = {}, {}
  keys = jax.random.split(rng, 3)
  opt = config.optimizer
  for spec, key in zip(factor_specs(config), keys):
    params[f'vae_{spec.name}'], params[f'critic_{spec.name}'] = control.init_factor(key, spec)
    tx[f'vae_{spec.name}'] = optax.adam(opt.learning_rate, b1=opt.b1, b2=opt.b2)
    tx[f'critic_{spec.name}'] = optax.adam(opt.critic_learning_rate, b1=opt.b1, b2=opt.b2)
  return state_lib.TrainState.create(params, tx, jax.random.fold_in(rng, 7), constants)


def train_step(config, state, batch, key):
  model = face_model.load(config.data.face_model)
  factors = control.factor_data(model, batch['coeffs'])
  grads, metrics = {}, {}
  for spec, factor_key in zip(factor_specs(config), jax.random.split(key, 3)):
    vae, critic = spec.networks()
    x = state.constants['normalizers'][spec.name].normalize(factors[spec.name])
    vae_name, critic_name = f'vae_{spec.name}', f'critic_{spec.name}'
    kwargs = dict(vae=vae, critic=critic, fake_source=config.vae.fake_source,
                  loss_type=config.vae.loss_type)
    (critic_value, logits), grads[critic_name] = jax.value_and_grad(
        control.critic_loss, has_aux=True)(state.params[critic_name], state.params[vae_name], x,
                                           factor_key, **kwargs)
    (total, terms), grads[vae_name] = jax.value_and_grad(control.vae_generator_loss, has_aux=True)(
        state.params[vae_name], state.params[critic_name], x, factor_key,
        kl_weight=config.vae.kl_weight, adversarial_weight=config.vae.adversarial_weight, **kwargs)
    metrics.update({f'{spec.name}/total': total, f'{spec.name}/critic': critic_value,
                    **{f'{spec.name}/{k}': v for k, v in terms.items()},
                    **{f'{spec.name}/{k}': v for k, v in logits.items()}})
  return state.apply_gradients(grads), metrics


def control_space_of(config, state) -> control.ControlSpace:
  """The trained ControlSpace (decoders + normalisers) of a vae train state."""
  specs = factor_specs(config)
  return control.control_space(
      specs, {s.name: jax.device_get(state.params[f'vae_{s.name}']) for s in specs},
      jax.device_get(state.constants['normalizers']))


def evaluate(config, space: control.ControlSpace, heldout: np.ndarray,
             reference: np.ndarray) -> dict[str, float]:
  """The control space judged on held-out data, beside chance and the floor.

  Per factor: held-out reconstruction MSE (coefficient units), and the MMD², Fréchet distance and
  spread ratio against the held-out vectors heldout [n, D] of
    - the decoded prior samples ('{factor}/mmd2', ...);
    - chance: a constant answer, the training mean ('{factor}/chance_mean/mmd2', ...), and an
      independent Gaussian per coefficient with the training mean and std ('.../chance_gaussian/...');
    - the floor: reference [m, D], a second held-out draw of the data ('.../floor/...').
  For expressions, the near-neutral share of each (and of the held-out data).
  """
  model = face_model.load(config.data.face_model)
  data = control.factor_data(model, jnp.asarray(heldout))
  n = len(heldout)
  key_samples, key_gaussian = jax.random.split(jax.random.PRNGKey(config.seed + 1))
  answers = {'samples': control.sample_controls(space, key_samples, n),
             'floor': control.factor_data(model, jnp.asarray(reference)),
             'chance_mean': {}, 'chance_gaussian': {}}
  for spec, key in zip(space.specs, jax.random.split(key_gaussian, len(space.specs))):
    normalizer = space.normalizers[spec.name]
    answers['chance_mean'][spec.name] = jnp.broadcast_to(normalizer.mean, (n, spec.size))
    answers['chance_gaussian'][spec.name] = normalizer.denormalize(
        jax.random.normal(key, (n, spec.size)))
  results = {}
  for spec in space.specs:
    x = data[spec.name]
    mean, _ = control.encode(space, spec.name, x)
    results[f'{spec.name}/reconstruction_mse'] = float(
        jnp.mean(jnp.square(control.decode(space, spec.name, mean) - x)))
    normalize = space.normalizers[spec.name].normalize
    for answer, factors in answers.items():
      y, prefix = factors[spec.name], ('' if answer == 'samples' else f'{answer}/')
      results[f'{spec.name}/{prefix}mmd2'] = float(control.mmd2(normalize(y), normalize(x)))
      results[f'{spec.name}/{prefix}frechet'] = float(
          control.frechet_distance(normalize(y), normalize(x)))
      results[f'{spec.name}/{prefix}spread_ratio'] = float(control.spread_ratio(y, x))
  if model.expression_names:
    for answer, factors in answers.items():
      results[f'expression/near_neutral_{answer}'] = float(
          control.near_neutral_fraction(factors['expression']))
    results['expression/near_neutral_data'] = float(control.near_neutral_fraction(data['expression']))
  return results


def heldout_sets(config) -> tuple[np.ndarray, np.ndarray]:
  """Two disjoint held-out sets of config.data.heldout_samples coefficient vectors: the one the
  control space is judged against and a second, the floor (the same judges on real data)."""
  n = config.data.heldout_samples
  if config.data.source == 'prior':
    return _prior_coefficients(config, n, 2), _prior_coefficients(config, n, 3)
  coeffs = _dataset_coefficients(config, 'test', 2 * n)
  half = len(coeffs) // 2
  return coeffs[:half], coeffs[half:2 * half]


def summaries(config, state, batch) -> dict:
  del batch
  space = control_space_of(config, state)
  samples = control.sample_controls(space, jax.random.PRNGKey(0), 512)
  return {'histograms': {f'samples/{k}': np.asarray(v) for k, v in samples.items()}}


def finish(config, workdir: str, state) -> None:
  """Exports the decoders and writes the held-out evaluation (primary host only)."""
  if jax.process_index() != 0:
    return
  space = control_space_of(config, state)
  control.save_control_space(space, os.path.join(workdir, 'control_space'))
  results = evaluate(config, space, *heldout_sets(config))
  with open(os.path.join(workdir, 'eval.json'), 'w') as f:
    json.dump(results, f, indent=2, sort_keys=True)
  logging.info('Held-out evaluation: %s', results)


# What the console's last line tells a person to run next.
NEXT_STEPS = ('the control space is in {workdir}/control_space; train the generator with python -m '
              'faceshop_jax.main --config=configs/imitative.py:cpu --workdir=RUN '
              '--config.model.control_space={workdir}')


STAGE = stage_lib.Stage(name='vae', check_config=check_config, make_data=make_data,
                        init_constants=init_constants, init_state=init_state,
                        train_step=train_step, summaries=summaries, finish=finish,
                        next_steps=NEXT_STEPS)
