r"""Parameter counts and the compiled memory of one training step of a stage (and, asked, its time).

  python benchmarks/step_memory.py --config=configs/gan.py --per_device_batch=4
  python benchmarks/step_memory.py --config=configs/gan.py:cpu --per_device_batch=8 --time_steps=5
  JAX_NUM_CPU_DEVICES=2 python benchmarks/step_memory.py --config=configs/gan.py:cpu \
      --per_device_batch=4 --devices=2 --time_steps=5
  python benchmarks/step_memory.py --config=configs/gan.py --model_sizes=1,2,4,8
  python benchmarks/step_memory.py --config=configs/gan.py --plain_only \
      --config.model.compute_dtype=bfloat16

Builds the state abstractly (jax.eval_shape), lowers and compiles the stage's jitted step for one
device at `per_device_batch`, for every step variant (plain, R1, density, both), and prints one JSON
line per variant with XLA's memory analysis: arguments (state + batch), outputs, temporaries, and
their sum — the peak one device needs. --devices=N runs the step data-parallel over N devices
(per_device_batch each; JAX_NUM_CPU_DEVICES=N splits a CPU into N). Nothing is executed, so the
paper's sizes can be measured on this CPU (compiling takes minutes there). With --time_steps=N the state is also built for real
and each variant runs N + 1 times on random images; its line adds the median seconds of the last N.

With --model_sizes the step is not compiled: one line per size of the mesh's 'model' axis gives the
bytes of the train state that each device holds when the large parameters (with their Adam moments
and EMA copies) are split over that axis by the harness's rule (train/mesh.py), what sharding the
generator saves.
"""
import json
import statistics
import time

from absl import app
from absl import flags
import jax
import jax.numpy as jnp
import numpy as np
from ml_collections import config_flags

from faceshop_jax import geometry
from faceshop_jax.train import loop
from faceshop_jax.train import mesh as mesh_lib
from faceshop_jax.train import stage as stage_lib

_CONFIG = config_flags.DEFINE_config_file('config', 'configs/gan.py', 'Stage config (preset ok).')
_PER_DEVICE_BATCH = flags.DEFINE_integer('per_device_batch', 4, 'Batch on each device measured.')
_DEVICES = flags.DEFINE_integer('devices', 1, "The step's devices (the mesh's 'data' axis).")
_MODEL_SIZES = flags.DEFINE_list('model_sizes', [], "Only print the state's bytes per device for "
                                  "these sizes of the 'model' mesh axis (no compilation).")
_PLAIN_ONLY = flags.DEFINE_bool('plain_only', False, 'Measure only the plain step variant (no lazy '
                                'regulariser).')
_TIME_STEPS = flags.DEFINE_integer('time_steps', 0, 'Also run each variant this many times (+1 '
                                   'warm-up) and report the median seconds; 0: compile only.')


def parameter_counts(params) -> dict[str, int]:
  return {name: int(sum(np.prod(x.shape) for x in jax.tree.leaves(tree)))
          for name, tree in params.items()}


def abstract_train_state(config, stage):
  """The stage's train state as ShapeDtypeStructs (nothing allocated)."""
  constants = stage.init_constants(config)
  return jax.eval_shape(lambda rng: stage.init_state(config, rng, constants),
                        jax.random.PRNGKey(0))


def state_bytes_per_device(abstract_state, model_size: int, min_shard_size: int) -> dict:
  """MiB of each part of the train state on one device with parameters split over model_size."""

  def device_bytes(x) -> int:
    spec = mesh_lib.leaf_spec(tuple(x.shape), model_size, min_shard_size)
    split = model_size if mesh_lib.MODEL in tuple(spec) else 1
    return int(np.prod(x.shape, dtype=np.int64)) * x.dtype.itemsize // split

  parts = {name: getattr(abstract_state, name) for name in ('params', 'opt_state', 'ema_params')}
  mib = {name: sum(device_bytes(x) for x in jax.tree.leaves(tree)) / 2**20
         for name, tree in parts.items()}
  return {'model': model_size, **{f'{k}_mib': round(v, 1) for k, v in mib.items()},
          'total_mib': round(sum(mib.values()), 1)}


def median_step_seconds(step, state, batch, runs: int):
  """Median seconds of `runs` steps after a warm-up step; returns it and the final state."""
  times = []
  for _ in range(runs + 1):
    start = time.perf_counter()
    state, metrics = step(state, batch)
    jax.block_until_ready(metrics)
    times.append(time.perf_counter() - start)
  return statistics.median(times[1:]), state


def random_batch(config, rng) -> dict:
  """Random uint8 images and portrait cameras (yaw, pitch within ±20°) for a timed step."""
  image_key, yaw_key, pitch_key = jax.random.split(rng, 3)
  n, r = config.batch_size, config.model.sr_resolution
  angle = lambda key: jax.random.uniform(key, (n,), minval=-0.35, maxval=0.35)  # noqa: E731
  return {'image': jax.random.randint(image_key, (n, r, r, 3), 0, 256).astype(jnp.uint8),
          'camera': geometry.camera_from_yaw_pitch(angle(yaw_key), angle(pitch_key))}


def main(argv):
  del argv
  config = _CONFIG.value
  if _DEVICES.value > jax.device_count():
    raise SystemExit(f'--devices={_DEVICES.value} but JAX sees {jax.device_count()} device(s); on '
                     f'a CPU, set JAX_NUM_CPU_DEVICES={_DEVICES.value}.')
  config.batch_size = _PER_DEVICE_BATCH.value * _DEVICES.value
  stage = stage_lib.get_stage(config.stage)
  mesh = mesh_lib.make_mesh(config.mesh.model, devices=jax.devices()[:_DEVICES.value])
  state = None
  if _MODEL_SIZES.value:
    abstract_state = abstract_train_state(config, stage)
    print(json.dumps({'parameters': parameter_counts(abstract_state.params)}))
    for size in _MODEL_SIZES.value:
      print(json.dumps(state_bytes_per_device(abstract_state, int(size),
                                              config.mesh.min_shard_size)))
    return
  if _TIME_STEPS.value:  # a real state, to be run (the lowering must see its very tree)
    state, shardings = loop.build_state(config, stage, mesh)
    abstract_state = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), state)
    timed_batch = random_batch(config, jax.random.PRNGKey(1))
  else:
    abstract_state = abstract_train_state(config, stage)
    shardings = mesh_lib.tree_shardings(mesh, abstract_state, config.mesh.min_shard_size)
  print(json.dumps({'parameters': parameter_counts(abstract_state.params)}))
  step = loop.make_train_step(config, stage, shardings, mesh)
  r = config.model.sr_resolution
  batch = {'image': jax.ShapeDtypeStruct((config.batch_size, r, r, 3), jnp.uint8),
           'camera': jax.ShapeDtypeStruct((config.batch_size, 25), jnp.float32)}
  variants = ([None] if stage.step_variant is None else
              sorted({stage.step_variant(config, s) for s in range(64)}))
  if _PLAIN_ONLY.value:
    variants = variants[:1]
  for variant in variants:
    start = time.perf_counter()
    compiled = step.jitted(variant).lower(abstract_state, batch).compile()
    memory = compiled.memory_analysis()
    sizes = {name: getattr(memory, f'{name}_size_in_bytes') / 2**30
             for name in ('argument', 'output', 'temp', 'alias')}
    line = {
        'config': config.stage, 'variant': str(variant), 'devices': _DEVICES.value,
        'per_device_batch': _PER_DEVICE_BATCH.value,
        'compute_dtype': config.model.get('compute_dtype', 'float32'),
        **{f'{k}_gib': round(v, 3) for k, v in sizes.items()},
        'peak_gib': round(sizes['argument'] + sizes['output'] + sizes['temp'] - sizes['alias'], 3),
        'compile_s': round(time.perf_counter() - start, 1)}
    if state is not None:
      seconds, state = median_step_seconds(compiled, state, timed_batch, _TIME_STEPS.value)
      line['step_seconds'] = round(seconds, 3)
    print(json.dumps(line), flush=True)


if __name__ == '__main__':
  app.run(main)
