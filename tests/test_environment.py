"""The test environment conftest.py promises: 8 fake CPU devices and a persistent compile cache."""
import jax


def test_eight_fake_cpu_devices():
  assert jax.device_count() == 8
  assert {d.platform for d in jax.devices()} == {'cpu'}


def test_persistent_compilation_cache_is_on():
  assert jax.config.jax_compilation_cache_dir
