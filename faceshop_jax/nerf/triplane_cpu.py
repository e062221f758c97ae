"""The tri-plane lookup and its transpose, as C++ kernels on XLA:CPU and pure JAX elsewhere.

XLA:CPU runs the pure-JAX lookup (triplane.sample_triplanes: four gathers per plane) and its
scatter-add transpose one element at a time on one thread; the renderer's chunk loop spends much of
a training step there. `triplane_cpu.cc` does both as loops over points that read (or write) a
texel's C channels contiguously, on XLA's intra-op thread pool. It is compiled from the package's
own source the first time it is needed (g++, or $CXX; ≈ 5 s) into
~/.cache/faceshop_jax/kernels (or $FACESHOP_KERNEL_CACHE), keyed by the source, jaxlib's version,
the flags, the compiler and the host CPU, and registered with jax.ffi.

`lookup` and `add_lookup_transpose` pick per call, at trace time: the kernel for float32 arrays
lowered for the CPU, the pure-JAX functions otherwise (GPUs, TPUs, bfloat16, no C++ compiler, or
FACESHOP_TRIPLANE_KERNEL=0, the ablation). Both paths compute the same function; the tests compare
them. Under a mesh set with `jax.set_mesh` (the stages and benchmarks do), the kernel runs inside a
`shard_map` over the batch's 'data' axis, as XLA cannot partition a custom call itself.
"""
import ctypes
import functools
import hashlib
import logging
import os
import pathlib
import platform
import shutil
import subprocess
import tempfile

import chex
import jax
import jax.numpy as jnp
import jaxlib
import numpy as np
from jax.sharding import PartitionSpec as P

from faceshop_jax.nerf import triplane

SOURCE = pathlib.Path(__file__).with_name('triplane_cpu.cc')
FLAGS = ('-O3', '-march=native', '-std=c++17', '-shared', '-fPIC')
LOOKUP_TARGET = 'faceshop_triplane_lookup'
TRANSPOSE_TARGET = 'faceshop_triplane_transpose'
DATA_AXIS = 'data'  # train/mesh.DATA (not imported: nerf does not depend on train)


def _cache_dir() -> pathlib.Path:
  default = pathlib.Path.home() / '.cache' / 'faceshop_jax' / 'kernels'
  return pathlib.Path(os.environ.get('FACESHOP_KERNEL_CACHE', default))


def host_cpu() -> str:
  """The CPU that `-march=native` compiles for: /proc/cpuinfo's model name and feature flags where
  there is one (Linux), else platform's processor name. Part of the kernel cache's key, so that a
  home directory shared by machines with different CPUs never loads a library built for another."""
  try:
    with open('/proc/cpuinfo', encoding='utf-8') as f:
      first = f.read().split('\n\n', 1)[0]
  except OSError:
    first = ''
  fields = {key.strip(): value.strip() for key, value in
            (line.split(':', 1) for line in first.splitlines() if ':' in line)}
  named = ' '.join(fields.get(name, '') for name in ('model name', 'flags', 'Features')).strip()
  return named or platform.processor() or platform.machine()


def build(compiler: str | None = None) -> pathlib.Path:
  """Compiles triplane_cpu.cc into the kernel cache (once per source, jaxlib, flags, compiler and
  host CPU); returns the shared library's path. Raises RuntimeError naming the problem if it
  cannot."""
  compiler = compiler or os.environ.get('CXX', 'g++')
  if shutil.which(compiler) is None:
    raise RuntimeError(f'No C++ compiler {compiler!r} on PATH (install g++, or set $CXX).')
  key = hashlib.sha256(b'\0'.join([SOURCE.read_bytes(), jaxlib.__version__.encode(),
                                   ' '.join(FLAGS).encode(), compiler.encode(),
                                   host_cpu().encode()])).hexdigest()[:16]
  library = _cache_dir() / f'triplane_cpu-{key}.so'
  if library.exists():
    return library
  library.parent.mkdir(parents=True, exist_ok=True)
  with tempfile.TemporaryDirectory(dir=library.parent) as scratch:
    partial = pathlib.Path(scratch) / library.name
    result = subprocess.run([compiler, *FLAGS, f'-I{jax.ffi.include_dir()}', str(SOURCE), '-o',
                             str(partial)], capture_output=True, text=True, check=False)
    if result.returncode:
      raise RuntimeError(f'Building {SOURCE.name} failed:\n{result.stderr[-4000:]}')
    os.replace(partial, library)  # atomic: a concurrent build writes the same bytes
  return library


@functools.cache
def kernels_available() -> bool:
  """Whether the CPU kernels are built and registered (False, with one log line, if they cannot
  be, or FACESHOP_TRIPLANE_KERNEL=0); the first call builds them."""
  if os.environ.get('FACESHOP_TRIPLANE_KERNEL', '1') == '0':
    return False
  try:
    library = ctypes.cdll.LoadLibrary(str(build()))
  except (RuntimeError, OSError) as e:
    logging.warning('Tri-plane CPU kernels unavailable, using pure JAX: %s', e)
    return False
  for target, symbol in ((LOOKUP_TARGET, library.FaceshopTriplaneLookup),
                         (TRANSPOSE_TARGET, library.FaceshopTriplaneTranspose)):
    jax.ffi.register_ffi_target(target, jax.ffi.pycapsule(symbol), platform='cpu')
  return True


def _pure_lookup(planes, points, box_half_size, scale):
  return triplane.sample_triplanes(planes, points, box_half_size).sum(axis=-2) * scale


def _pure_transpose(planes_cotangent, points, features_cotangent, box_half_size, scale):
  per_plane = jnp.broadcast_to((features_cotangent * scale)[..., None, :], points.shape[:2] + (
      triplane.NUM_PLANES, features_cotangent.shape[-1]))
  return triplane.scatter_triplanes_add(planes_cotangent, points, per_plane, box_half_size)


def _attributes(box_half_size, scale):
  return dict(box_half_size=np.float32(box_half_size), scale=np.float32(scale))


def _kernel_transpose(planes_cotangent, points, features_cotangent, box_half_size, scale):
  call = jax.ffi.ffi_call(TRANSPOSE_TARGET, jax.ShapeDtypeStruct(planes_cotangent.shape,
                                                                 jnp.float32),
                          input_output_aliases={0: 0}, vmap_method='sequential')
  return call(planes_cotangent, points, features_cotangent, **_attributes(box_half_size, scale))


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _kernel_lookup(planes, points, box_half_size, scale):
  call = jax.ffi.ffi_call(LOOKUP_TARGET, jax.ShapeDtypeStruct(
      points.shape[:2] + planes.shape[-1:], jnp.float32), vmap_method='sequential')
  return call(planes, points, **_attributes(box_half_size, scale))


def _kernel_lookup_forward(planes, points, box_half_size, scale):
  return _kernel_lookup(planes, points, box_half_size, scale), (planes, points)


def _kernel_lookup_backward(box_half_size, scale, residuals, features_cotangent):
  """The planes' cotangent by the transpose kernel; the points' by pure JAX (rarely needed; jit
  drops it when nothing uses it)."""
  planes, points = residuals
  _, points_vjp = jax.vjp(lambda p: _pure_lookup(planes, p, box_half_size, scale), points)
  return (_kernel_transpose(jnp.zeros_like(planes), points, features_cotangent, box_half_size,
                            scale),
          points_vjp(features_cotangent)[0])


_kernel_lookup.defvjp(_kernel_lookup_forward, _kernel_lookup_backward)


def _dispatch(kernel, pure, arrays, batch: int):
  """kernel(*arrays) where it runs (float32, lowered for the CPU, kernels built, a context mesh
  that splits the batch over 'data' or none), else pure(*arrays)."""
  if jax.default_backend() != 'cpu' or not all(x.dtype == jnp.float32 for x in arrays):
    return pure(*arrays)
  mesh = jax.sharding.get_abstract_mesh()
  if not mesh.empty and mesh.size > 1:
    if DATA_AXIS not in mesh.axis_names or batch % mesh.shape[DATA_AXIS]:
      return pure(*arrays)
    kernel = jax.shard_map(kernel, mesh=mesh, in_specs=P(DATA_AXIS), out_specs=P(DATA_AXIS),
                           check_vma=False)
  if not kernels_available():
    return pure(*arrays)
  return jax.lax.platform_dependent(*arrays, cpu=kernel, default=pure)


def scale_of(aggregation: str) -> float:
  """The factor on the planes' sum: 1 for 'sum', 1/3 for 'mean' (triplane.aggregate)."""
  if aggregation not in triplane.AGGREGATIONS:
    raise ValueError(f'Tri-plane aggregation is one of {triplane.AGGREGATIONS}; '
                     f'got {aggregation!r}.')
  return 1.0 if aggregation == 'sum' else 1.0 / triplane.NUM_PLANES


def lookup(planes: jnp.ndarray, points: jnp.ndarray, box_half_size: float,
           aggregation: str = 'sum') -> jnp.ndarray:
  """aggregate(sample_triplanes(planes, points)): [B, 3, H, W, C], [B, N, 3] -> [B, N, C].

  Differentiable in both arguments (the kernel's planes gradient is the transpose kernel).
  """
  chex.assert_rank(planes, 5)
  chex.assert_axis_dimension(planes, 1, triplane.NUM_PLANES)
  chex.assert_shape(points, (planes.shape[0], None, 3))
  scale = scale_of(aggregation)
  return _dispatch(lambda *a: _kernel_lookup(*a, box_half_size, scale),
                   lambda *a: _pure_lookup(*a, box_half_size, scale), (planes, points),
                   planes.shape[0])


def add_lookup_transpose(planes_cotangent: jnp.ndarray, points: jnp.ndarray,
                         features_cotangent: jnp.ndarray, box_half_size: float,
                         aggregation: str = 'sum') -> jnp.ndarray:
  """planes_cotangent + the transpose of lookup(·, points) at features_cotangent [B, N, C]."""
  chex.assert_rank(planes_cotangent, 5)
  chex.assert_shape(features_cotangent, points.shape[:2] + planes_cotangent.shape[-1:])
  scale = scale_of(aggregation)
  return _dispatch(lambda *a: _kernel_transpose(*a, box_half_size, scale),
                   lambda *a: _pure_transpose(*a, box_half_size, scale),
                   (planes_cotangent, points, features_cotangent), planes_cotangent.shape[0])
