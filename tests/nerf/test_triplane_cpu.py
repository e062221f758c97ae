"""The tri-plane CPU kernels: parity with the pure-JAX lookup and transpose, gradients, the
sharded call, and the fallbacks (bfloat16, no compiler, switched off)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from faceshop_jax.nerf import triplane
from faceshop_jax.nerf import triplane_cpu

BOX = 0.2


def _inputs(batch=2, height=9, width=13, channels=5, num_points=301, seed=0):
  """Planes, points (some outside the box, some on texel edges and corners) and cotangents."""
  keys = jax.random.split(jax.random.PRNGKey(seed), 4)
  planes = jax.random.normal(keys[0], (batch, 3, height, width, channels))
  points = jax.random.uniform(keys[1], (batch, num_points, 3), minval=-1.2 * BOX, maxval=1.2 * BOX)
  edges = jnp.asarray([[-BOX, 0.0, BOX], [BOX, BOX, -BOX], [0.0, 0.0, 0.0]])  # box faces, centre
  points = points.at[:, :3].set(edges)
  features_cotangent = jax.random.normal(keys[2], (batch, num_points, channels))
  planes_cotangent = jax.random.normal(keys[3], planes.shape)
  return planes, points, features_cotangent, planes_cotangent


def _reference_lookup(planes, points, aggregation):
  return triplane.aggregate(triplane.sample_triplanes(planes, points, BOX), aggregation)


def _custom_calls(fn, *args):
  text = jax.jit(fn).lower(*args).as_text()
  return {target for target in (triplane_cpu.LOOKUP_TARGET, triplane_cpu.TRANSPOSE_TARGET)
          if target in text}


@pytest.fixture(scope='module', autouse=True)
def _kernels():
  if not triplane_cpu.kernels_available():
    pytest.fail('The tri-plane CPU kernels did not build (the tests need a C++ compiler).')


@pytest.mark.parametrize('aggregation', triplane.AGGREGATIONS)
def test_lookup_kernel_equals_pure_jax(aggregation):
  planes, points, _, _ = _inputs()
  lookup = lambda p, x: triplane_cpu.lookup(p, x, BOX, aggregation)  # noqa: E731
  assert _custom_calls(lookup, planes, points) == {triplane_cpu.LOOKUP_TARGET}
  np.testing.assert_allclose(jax.jit(lookup)(planes, points),
                             _reference_lookup(planes, points, aggregation), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('aggregation', triplane.AGGREGATIONS)
def test_transpose_kernel_adds_the_transpose_of_the_lookup(aggregation):
  planes, points, features_cotangent, planes_cotangent = _inputs()
  _, vjp = jax.vjp(lambda p: _reference_lookup(p, points, aggregation), planes)
  def transpose(planes_cotangent, points, features_cotangent):
    return triplane_cpu.add_lookup_transpose(planes_cotangent, points, features_cotangent, BOX,
                                             aggregation)

  assert _custom_calls(transpose, planes_cotangent, points, features_cotangent) == {
      triplane_cpu.TRANSPOSE_TARGET}
  np.testing.assert_allclose(jax.jit(transpose)(planes_cotangent, points, features_cotangent),
                             planes_cotangent + vjp(features_cotangent)[0], rtol=1e-5, atol=1e-5)


def test_gradients_through_the_kernel_lookup_equal_pure_jax():
  planes, points, features_cotangent, _ = _inputs(seed=1)
  points = points[:, 3:]  # off texel edges, where the points' gradient jumps

  def loss(lookup_fn):
    return lambda p, x: jnp.sum(lookup_fn(p, x) * features_cotangent[:, 3:])

  kernel = jax.jit(jax.grad(loss(lambda p, x: triplane_cpu.lookup(p, x, BOX, 'mean')), (0, 1)))
  pure = jax.grad(loss(lambda p, x: _reference_lookup(p, x, 'mean')), (0, 1))
  for got, want in zip(kernel(planes, points), pure(planes, points)):
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_the_kernel_runs_per_shard_under_a_data_parallel_mesh():
  planes, points, features_cotangent, planes_cotangent = _inputs(batch=4)
  _, vjp = jax.vjp(lambda p: _reference_lookup(p, points, 'sum'), planes)
  mesh = Mesh(np.asarray(jax.devices()[:4]).reshape(2, 2), ('data', 'model'))
  split = lambda x: jax.device_put(x, NamedSharding(mesh, P('data')))  # noqa: E731
  transpose = lambda c, x, g: triplane_cpu.add_lookup_transpose(c, x, g, BOX)  # noqa: E731
  lookup = lambda p, x: triplane_cpu.lookup(p, x, BOX)  # noqa: E731
  with jax.set_mesh(mesh):
    assert 'shard_map' in str(jax.make_jaxpr(lookup)(planes, points))
    looked = jax.jit(lookup)(split(planes), split(points))
    added = jax.jit(transpose)(split(planes_cotangent), split(points), split(features_cotangent))
  assert looked.sharding.spec == added.sharding.spec == P('data')
  np.testing.assert_allclose(looked, _reference_lookup(planes, points, 'sum'), rtol=1e-5,
                             atol=1e-5)
  np.testing.assert_allclose(added, planes_cotangent + vjp(features_cotangent)[0], rtol=1e-5,
                             atol=1e-5)


def test_a_batch_the_data_axis_does_not_divide_falls_back_to_pure_jax():
  planes, points, _, _ = _inputs(batch=3)
  mesh = Mesh(np.asarray(jax.devices()[:2]), ('data',))
  lookup = lambda p, x: triplane_cpu.lookup(p, x, BOX)  # noqa: E731
  with jax.set_mesh(mesh):
    assert not _custom_calls(lookup, planes, points)
    got = jax.jit(lookup)(planes, points)
  np.testing.assert_allclose(got, _reference_lookup(planes, points, 'sum'), rtol=1e-5, atol=1e-5)


def test_bfloat16_planes_use_pure_jax():
  planes, points, _, _ = _inputs()
  lookup = lambda p, x: triplane_cpu.lookup(p, x, BOX)  # noqa: E731
  assert not _custom_calls(lookup, planes.astype(jnp.bfloat16), points)


def test_switched_off_or_without_a_compiler_the_lookup_is_pure_jax(monkeypatch, tmp_path):
  planes, points, _, _ = _inputs()
  lookup = lambda p, x: triplane_cpu.lookup(p, x, BOX)  # noqa: E731
  try:
    for variable, value in (('FACESHOP_TRIPLANE_KERNEL', '0'), ('CXX', 'no-such-compiler++')):
      with monkeypatch.context() as patch:
        patch.setenv(variable, value)
        patch.setenv('FACESHOP_KERNEL_CACHE', str(tmp_path))
        triplane_cpu.kernels_available.cache_clear()
        assert not _custom_calls(lookup, planes, points)
  finally:
    triplane_cpu.kernels_available.cache_clear()
  with pytest.raises(RuntimeError, match='no-such-compiler'):
    triplane_cpu.build('no-such-compiler++')


def test_the_kernels_build_from_the_package_source(monkeypatch, tmp_path):
  monkeypatch.setenv('FACESHOP_KERNEL_CACHE', str(tmp_path))
  library = triplane_cpu.build()
  assert library.parent == tmp_path and library.suffix == '.so'
  assert [p.name for p in tmp_path.iterdir()] == [library.name]  # no scratch files left
  assert triplane_cpu.build() == library  # cached


def test_a_different_host_cpu_builds_its_own_library(monkeypatch, tmp_path):
  monkeypatch.setenv('FACESHOP_KERNEL_CACHE', str(tmp_path))
  assert triplane_cpu.host_cpu()  # this machine names its CPU
  library = triplane_cpu.build()
  monkeypatch.setattr(triplane_cpu, 'host_cpu', lambda: 'another CPU with other flags')
  assert triplane_cpu.build() != library  # -march=native code is never shared across CPUs
