r"""Parameter counts and the compiled memory of one training step of a stage (and, asked, its time).

  python benchmarks/step_memory.py --config=configs/gan.py --per_device_batch=4
  python benchmarks/step_memory.py --config=configs/gan.py:cpu --per_device_batch=8 --time_steps=5

Builds the state abstractly (jax.eval_shape), lowers and compiles the stage's jitted step for one
device at `per_device_batch`, for every step variant (plain, R1, density, both), and prints one JSON
line per variant with XLA's memory analysis: arguments (state + batch), outputs, temporaries, and
their sum — the peak one device needs. Nothing is executed, so the paper's sizes can be measured on
this CPU (compiling takes minutes there). With --time_steps=N the state is also built for real
and each variant runs N + 1 times on random images; its line adds the median seconds of the last N.
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
_PER_DEVICE_BATCH = flags.DEFINE_integer('per_device_batch', 4, 'Batch on the one device measured.')
_TIME_STEPS = flags.DEFINE_integer('time_steps', 0, 'Also run each variant this many times (+1 '
                                   'warm-up) and report the median seconds; 0: compile only.')


def parameter_counts(params) -> dict[str, int]:
  return {name: int(sum(np.prod(x.shape) for x in jax.tree.leaves(tree)))
          for name, tree in params.items()}


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
  config.batch_size = _PER_DEVICE_BATCH.value
  stage = stage_lib.get_stage(config.stage)
  mesh = mesh_lib.make_mesh(config.mesh.model, devices=jax.devices()[:1])
  state = None
  if _TIME_STEPS.value:  # a real state, to be run (the lowering must see its very tree)
    state, shardings = loop.build_state(config, stage, mesh)
    abstract_state = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), state)
    timed_batch = random_batch(config, jax.random.PRNGKey(1))
  else:
    constants = stage.init_constants(config)
    abstract_state = jax.eval_shape(lambda rng: stage.init_state(config, rng, constants),
                                    jax.random.PRNGKey(0))
    shardings = mesh_lib.tree_shardings(mesh, abstract_state, config.mesh.min_shard_size)
  print(json.dumps({'parameters': parameter_counts(abstract_state.params)}))
  step = loop.make_train_step(config, stage, shardings, mesh)
  r = config.model.sr_resolution
  batch = {'image': jax.ShapeDtypeStruct((config.batch_size, r, r, 3), jnp.uint8),
           'camera': jax.ShapeDtypeStruct((config.batch_size, 25), jnp.float32)}
  variants = ([None] if stage.step_variant is None else
              sorted({stage.step_variant(config, s) for s in range(64)}))
  for variant in variants:
    start = time.perf_counter()
    compiled = step.jitted(variant).lower(abstract_state, batch).compile()
    memory = compiled.memory_analysis()
    sizes = {name: getattr(memory, f'{name}_size_in_bytes') / 2**30
             for name in ('argument', 'output', 'temp', 'alias')}
    line = {
        'config': config.stage, 'variant': str(variant), 'per_device_batch': config.batch_size,
        **{f'{k}_gib': round(v, 3) for k, v in sizes.items()},
        'peak_gib': round(sizes['argument'] + sizes['output'] + sizes['temp'] - sizes['alias'], 3),
        'compile_s': round(time.perf_counter() - start, 1)}
    if state is not None:
      seconds, state = median_step_seconds(compiled, state, timed_batch, _TIME_STEPS.value)
      line['step_seconds'] = round(seconds, 3)
    print(json.dumps(line), flush=True)


if __name__ == '__main__':
  app.run(main)
