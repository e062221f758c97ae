"""Test-wide JAX set-up: 8 fake CPU devices and a persistent compilation cache.

Both must be set before JAX initialises its backends, hence at conftest import time.
"""
import gc
import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
_flags = os.environ.get("XLA_FLAGS", "")
if "xla_force_host_platform_device_count" not in _flags:
  # The 8 fake devices share 2 cores: a large sharded step (the disentangle stage's with R1) keeps
  # some device threads from a collective for longer than XLA:CPU's 40 s default, after which it
  # aborts the process; the timeouts are raised so that slow is not mistaken for stuck.
  os.environ["XLA_FLAGS"] = (_flags + " --xla_force_host_platform_device_count=8"
                             " --xla_cpu_collective_call_terminate_timeout_seconds=900"
                             " --xla_cpu_collective_timeout_seconds=900").strip()
os.environ.setdefault(
    "JAX_COMPILATION_CACHE_DIR",
    os.path.join(os.path.expanduser("~"), ".cache", "faceshop_jax", "jax_cache"))
# Every compiled program is cached, however quick to compile: the command-line tests' subprocesses
# (and the multi-process jobs) otherwise recompile hundreds of small programs each (eager ops,
# orbax's host transfers): a 2-step gan:test run took 87 s, 55 s of it compiling, and takes 23 s
# with them cached.
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")

import jax  # noqa: E402  (must come after the environment above)

jax.config.update("jax_compilation_cache_dir", os.environ["JAX_COMPILATION_CACHE_DIR"])

import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True, scope='module')
def _release_compiled_programs():
  """Drops every compiled program after each test module.

  XLA:CPU maps about three memory regions per loaded executable and keeps them while any jit cache
  holds it; over the whole suite (tens of thousands of programs in one process) that passes Linux's
  default limit of 65530 mappings per process (vm.max_map_count) and the next compilation or cache
  load segfaults. Session fixtures' steps recompile (or load from the persistent cache) on next use.
  """
  yield
  jax.clear_caches()
  gc.collect()


def uv_sphere(n_lat: int, n_lon: int, radius: float = 0.1):
  """A closed UV sphere: vertices [N, 3] and outward-wound triangles [T, 3] (test stand-in only)."""
  lat = np.linspace(0, np.pi, n_lat + 1)[1:-1]
  lon = np.linspace(0, 2 * np.pi, n_lon, endpoint=False)
  ring = np.stack([np.sin(lat)[:, None] * np.sin(lon), np.cos(lat)[:, None] * np.ones_like(lon),
                   np.sin(lat)[:, None] * np.cos(lon)], axis=-1).reshape(-1, 3)
  vertices = radius * np.concatenate([[[0, 1, 0]], ring, [[0, -1, 0]]]).astype(np.float32)
  top, bottom = 0, len(vertices) - 1
  idx = lambda i, j: 1 + i * n_lon + (j % n_lon)  # noqa: E731
  tris = []
  for j in range(n_lon):
    tris.append((top, idx(0, j), idx(0, j + 1)))
    tris.append((bottom, idx(n_lat - 2, j + 1), idx(n_lat - 2, j)))
    for i in range(n_lat - 2):
      tris.append((idx(i, j), idx(i + 1, j), idx(i + 1, j + 1)))
      tris.append((idx(i, j), idx(i + 1, j + 1), idx(i, j + 1)))
  return vertices, np.asarray(tris, np.int32)


@pytest.fixture(scope='session')
def tiny_face_model():
  """A procedural FaceModel on a sphere (for unit tests only; the real default is load_embedded())."""
  from faceshop_jax import face_model  # pylint: disable=g-import-not-at-top
  vertices, triangles = uv_sphere(12, 16)
  n = len(vertices)
  rng = np.random.default_rng(0)
  arrays = {
      'mean_shape': vertices,
      'id_basis': rng.normal(scale=0.002, size=(n, 3, 6)),
      'exp_basis': rng.normal(scale=0.002, size=(n, 3, 4)),
      'mean_albedo': np.full((n, 3), 0.6),
      'tex_basis': rng.normal(scale=0.02, size=(n, 3, 5)),
      'triangles': triangles,
      'landmarks68': np.arange(68) + 1,
      'vertex_labels': np.ones(n, np.int32),
  }
  return face_model.from_arrays(arrays, expression_names=('jawOpen', 'smile', 'blink', 'pout'),
                                name='tiny sphere')


@pytest.fixture(scope='session')
def gan_workdir(tmp_path_factory):
  """A gan run trained for one step at the 'test' preset (tests/cli.py), shared by the session."""
  from tests import cli  # pylint: disable=g-import-not-at-top
  return cli.train_tiny_gan(str(tmp_path_factory.mktemp('gan')))
