"""The training loop every stage runs under: mesh, sharded state, one jitted step, checkpoints.

  state = train_and_evaluate(config, workdir)

resumes from the newest checkpoint in WORKDIR/checkpoints (state, data-iterator position and
RNG), writes TensorBoard summaries to WORKDIR, and stops with NonFiniteLossError, naming the
step and the loss term, if any metric becomes NaN or infinite; the last good checkpoint is kept
(a state with a non-finite loss is never saved). SIGTERM (preemption) stops it after the current
step with that step checkpointed, so the same command resumes there.
"""
import functools
import math
import os

from absl import logging
from clu import parameter_overview
import jax
from jax.experimental import multihost_utils
import numpy as np
import orbax.checkpoint as ocp

from faceshop_jax import saved
from faceshop_jax.train import checkpoints as checkpoints_lib
from faceshop_jax.train import mesh as mesh_lib
from faceshop_jax.train import preemption
from faceshop_jax.train import stage as stage_lib
from faceshop_jax.train.writers import metric_writers
from faceshop_jax.train.writers import periodic_actions


# How long processes wait at a barrier for the others (compiling, or the primary evaluating).
_BARRIER_TIMEOUT_S = 24 * 3600


class NonFiniteLossError(FloatingPointError):
  """A loss term became NaN or infinite; training stopped before saving that state."""


def _check_finite(step: int, metrics: dict[str, float], last_good: int | None, directory: str):
  bad = {k: v for k, v in metrics.items() if not math.isfinite(v)}
  if bad:
    kept = (f'the last good checkpoint, step {last_good}, is kept in {directory}'
            if last_good is not None else 'no checkpoint had been written yet')
    raise NonFiniteLossError(
        f'Step {step}: loss term(s) {", ".join(f"{k} = {v}" for k, v in sorted(bad.items()))} '
        f'became non-finite; training stopped and {kept}. Lower the learning rate or check the '
        'inputs of that term.')


def _global_batch(batch: dict[str, np.ndarray], sharding) -> dict[str, jax.Array]:
  """Host-local numpy batch -> global jax.Arrays sharded over 'data' (multi-host safe)."""
  return {k: jax.make_array_from_process_local_data(sharding, np.asarray(v))
          for k, v in batch.items()}


def init_from_run(config, state, shardings):
  """state with the networks of the run config.init_from (its step config.init_from_step, or its
  newest): the params and EMA params of every network both stages have (e.g. generator and
  discriminator) and each such network's other collections, constants[f'{name}_state'] (the
  generator's w_avg and constant noise). Optimiser states, the step and everything else stay fresh.

  Raises:
    FileNotFoundError: no such run or step.
    ValueError: naming both runs, when the face models differ, no network is shared, or a shared
      network's shapes differ.
  """
  source = os.path.abspath(config.init_from)

  def target_fn(source_config, saved_state):
    ours = config.get('data', {}).get('face_model')
    theirs = source_config.get('data', {}).get('face_model')
    if ours != theirs:
      raise ValueError(f'was trained with face model {theirs!r}, but this run uses {ours!r}: its '
                       'controls would mean different things. Start from a run of the same face '
                       'model, or set config.data.face_model to match.')
    shared = [n for n in state.params if n in saved_state.get('params', {})]
    if not shared:
      raise ValueError(f"(stage {source_config.get('stage')!r}) holds none of this stage's "
                       f'networks {sorted(state.params)}; start from a run that trains them.')
    target = {'params': {n: saved.abstract(state.params[n], shardings.params[n])
                         for n in shared},
              'ema_params': {n: saved.abstract(state.ema_params[n], shardings.ema_params[n])
                             for n in shared if n in state.ema_params},
              'constants': {f'{n}_state': saved.abstract(
                  state.constants[f'{n}_state'], shardings.constants[f'{n}_state'])
                            for n in shared if f'{n}_state' in state.constants}}
    return {collection: part for collection, part in target.items() if part}

  try:
    step, _, restored = checkpoints_lib.read_run(source, target_fn,
                                                 config.init_from_step or None)
  except ValueError as e:
    raise ValueError(f'config.init_from = {source}: {e} This run (stage {config.stage!r}, '
                     f"face model {config.get('data', {}).get('face_model')!r}) cannot start from it.") from e
  logging.info('Initialised %s from step %d of %s.', ', '.join(sorted(restored['params'])), step,
               source)
  return state.replace(**{collection: {**getattr(state, collection), **part}
                          for collection, part in restored.items()})


def build_state(config, stage: stage_lib.Stage, mesh):
  """The initial state, created directly in its shardings; returns (state, shardings)."""
  constants = stage.init_constants(config)
  init = functools.partial(stage.init_state, config)
  rng = jax.random.PRNGKey(config.seed)
  abstract = jax.eval_shape(init, rng, constants)
  shardings = mesh_lib.tree_shardings(mesh, abstract, config.mesh.min_shard_size)
  state = jax.jit(init, out_shardings=shardings)(rng, constants)
  return state, shardings


class TrainStep:
  """The stage's step, jitted with donated state and the harness's shardings.

  step(state, batch, variant=None) -> (state, metrics); one compiled program per variant
  (stage.step_variant), compiled on first use. step.jitted(variant) is that program (for .lower()).

  In a multi-process job every process compiles a variant before any runs it: the first
  cross-process collective (gloo's set-up on CPU) gives up after 30 s, less than compilation times
  can differ between processes.
  """

  def __init__(self, config, stage: stage_lib.Stage, shardings, mesh):
    self._config, self._stage, self._shardings, self._mesh = config, stage, shardings, mesh
    self._programs, self._compiled = {}, {}

  def jitted(self, variant=None):
    if variant not in self._programs:
      config, stage = self._config, self._stage
      kwargs = {} if stage.step_variant is None else {'variant': variant}

      def step(state, batch):
        new_state, metrics = stage.train_step(config, state, batch, state.step_key(), **kwargs)
        return new_state.replace(step=state.step + 1), metrics

      self._programs[variant] = jax.jit(
          step, in_shardings=(self._shardings, mesh_lib.batch_sharding(self._mesh)),
          out_shardings=(self._shardings, mesh_lib.replicated(self._mesh)), donate_argnums=0)
    return self._programs[variant]

  def __call__(self, state, batch, variant=None):
    with jax.set_mesh(self._mesh):  # lets the tri-plane CPU kernel shard_map over 'data'
      if jax.process_count() == 1:
        return self.jitted(variant)(state, batch)
      if variant not in self._compiled:
        self._compiled[variant] = self.jitted(variant).lower(state, batch).compile()
        _wait_for_every_process(f'step variant {variant} compiled')
      return self._compiled[variant](state, batch)


def make_train_step(config, stage: stage_lib.Stage, shardings, mesh) -> TrainStep:
  """The stage's jitted step (see TrainStep)."""
  return TrainStep(config, stage, shardings, mesh)


def train_and_evaluate(config, workdir: str, stage: stage_lib.Stage | None = None):
  """Runs (or resumes) config's stage to config.num_train_steps; returns the final state.

  On SIGTERM (see preemption.py) it finishes the current step, saves its checkpoint, logs how to
  resume and returns that step's state early (state.step < config.num_train_steps; stage.finish
  is not run).
  """
  stage = stage or stage_lib.get_stage(config.stage)
  workdir = os.path.abspath(workdir)
  mesh = mesh_lib.make_mesh(config.mesh.model)
  mesh_lib.check_batch_size(config.batch_size, mesh)
  stage.check_config(config)
  os.makedirs(workdir, exist_ok=True)

  data = stage.make_data(config)
  state, shardings = build_state(config, stage, mesh)
  checkpoints = checkpoints_lib.Checkpoints(workdir, config.keep_checkpoints,
                                            config.async_checkpoints)
  start = checkpoints.latest_step()
  if start is not None:
    logging.info('Resuming from the checkpoint at step %d in %s.', start, checkpoints.directory)
    state = checkpoints.restore(start, saved.abstract(state, shardings), data)
  elif config.get('init_from'):
    state = init_from_run(config, state, shardings)
  start = start or 0

  is_primary = jax.process_index() == 0
  writer = metric_writers.create_default_writer(workdir, just_logging=not is_primary)
  if start == 0:
    writer.write_hparams(_flat_hparams(config.to_dict()))
    parameter_overview.log_parameter_overview(state.params)
  train_step = make_train_step(config, stage, shardings, mesh)
  batch_sharding = mesh_lib.batch_sharding(mesh)
  report = periodic_actions.ReportProgress(num_train_steps=config.num_train_steps, writer=writer,
                                           every_steps=config.log_every_steps)
  config_json = config.to_json_best_effort()
  last_good, sums, count, preempted = start or None, {}, 0, False
  with preemption.SigtermRequest() as sigterm:
    try:
      for step in range(start + 1, config.num_train_steps + 1):
        batch = next(data)
        variant = stage.step_variant(config, step - 1) if stage.step_variant else None
        with jax.profiler.StepTraceAnnotation('train', step_num=step):
          state, metrics = train_step(state, _global_batch(batch, batch_sharding), variant)
        metrics = {k: float(v) for k, v in jax.device_get(metrics).items()}
        _check_finite(step, metrics, last_good, checkpoints.directory)
        for k, v in metrics.items():
          sums[k] = sums.get(k, 0.0) + v
        count += 1
        report(step)
        if step % config.log_every_steps == 0 or step == config.num_train_steps:
          writer.write_scalars(step, {k: v / count for k, v in sums.items()})
          sums, count = {}, 0
        if (stage.summaries and config.summary_every_steps
            and step % config.summary_every_steps == 0):
          _write_summaries(writer, step, stage.summaries(config, state, batch))
        if step % config.checkpoint_every_steps == 0 or step == config.num_train_steps:
          checkpoints.save(step, state, data, config_json)
          last_good = step
        if step < config.num_train_steps and sigterm.requested():
          if last_good != step:
            checkpoints.save(step, state, data, config_json)
            last_good = step
          preempted = True
          break
    finally:
      checkpoints.wait()  # still under the SIGTERM handler: a second SIGTERM cannot cut it short
      writer.flush()
  if preempted:
    checkpoints.close()
    logging.warning('Preempted (SIGTERM) at step %d: checkpoint saved in %s; relaunch the same '
                    'command to resume.', last_good, checkpoints.directory)
    return state
  if stage.finish:
    stage.finish(config, workdir, _gathered_networks(state))
  _wait_for_every_process('stage finished')
  checkpoints.close()
  return state


def _gathered_networks(state):
  """state with its networks (params, EMA params, constants) whole in this process, for a stage's
  finish, which its primary process runs alone. Every process must call it (it is a collective
  when a network is sharded over several processes)."""
  if jax.process_count() == 1:
    return state

  def whole(x):  # replicated arrays are already whole in every process
    if isinstance(x, jax.Array) and not (x.is_fully_addressable or x.is_fully_replicated):
      return multihost_utils.process_allgather(x, tiled=True)
    return x

  return state.replace(**{c: jax.tree.map(whole, getattr(state, c))
                          for c in ('params', 'ema_params', 'constants')})


def _wait_for_every_process(name: str) -> None:
  """A barrier over the job's processes through JAX's coordination service (a device collective
  would time out), e.g. while the primary alone runs a stage's finish (minutes of evaluation at
  scale; a process that exited meanwhile would fail the job's shutdown barrier)."""
  if jax.process_count() > 1:
    ocp.multihost.sync_global_processes(name, timeout=_BARRIER_TIMEOUT_S,
                                        processes=set(range(jax.process_count())))


def _flat_hparams(tree: dict, prefix: str = '') -> dict:
  """Nested config dict -> {'a.b': scalar} (TensorBoard's hparams take scalars and strings)."""
  flat = {}
  for key, value in tree.items():
    if isinstance(value, dict):
      flat.update(_flat_hparams(value, f'{prefix}{key}.'))
    elif isinstance(value, (bool, int, float, str)):
      flat[prefix + key] = value
  return flat


def _write_summaries(writer, step: int, summaries: dict) -> None:
  if summaries.get('images'):
    writer.write_images(step, summaries['images'])
  if summaries.get('histograms'):
    writer.write_histograms(step, summaries['histograms'])
  if summaries.get('scalars'):
    writer.write_scalars(step, summaries['scalars'])
