"""Shared benchmark helpers: median wall time of a jitted call, compiled cost, CPU matmul peak."""
import statistics
import time

import jax
import jax.numpy as jnp


def median_seconds(fn, *args, runs: int = 5) -> float:
  """Median wall time of fn(*args) over `runs` calls, after one warm-up call (compilation)."""
  jax.block_until_ready(fn(*args))
  times = []
  for _ in range(runs):
    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - start)
  return statistics.median(times)


def compiled_cost(jitted, *args) -> dict:
  """FLOPs and memory of one call as XLA compiles it (numbers the backend reports, or None)."""
  compiled = jitted.lower(*args).compile()
  cost = compiled.cost_analysis() or {}
  if isinstance(cost, list):  # older jax returns one dict per computation
    cost = cost[0] if cost else {}
  memory = compiled.memory_analysis()
  peak = None
  if memory is not None:
    peak = (getattr(memory, 'temp_size_in_bytes', 0) + getattr(memory, 'argument_size_in_bytes', 0)
            + getattr(memory, 'output_size_in_bytes', 0))
  return {'flops': cost.get('flops'), 'peak_bytes': peak}


def matmul_peak_flops(size: int = 2048, runs: int = 5) -> float:
  """Achieved FLOP/s of a float32 [size, size] @ [size, size] matmul on the default device."""
  a = jnp.ones((size, size), jnp.float32)
  seconds = median_seconds(jax.jit(lambda x: x @ x), a, runs=runs)
  return 2.0 * size**3 / seconds
