"""The volume renderer against closed forms: slabs, spheres, inverse-CDF sampling, Eq. 13."""
import jax
import jax.numpy as jnp
import numpy as np

from faceshop_jax import geometry
from faceshop_jax import nerf

NEAR, FAR = 0.88, 1.12
NUM_CLASSES = 4
# One compilation per test instead of op-by-op dispatch.
_render_rays = jax.jit(nerf.render_rays, static_argnums=(0, 5, 6))


def _analytic_field(density_fn, colour=(0.2, 0.5, 0.9)):
  """FieldFn with density_fn(points) and constant features; logits vary with position."""
  def field_fn(points, directions):
    del directions
    features = jnp.broadcast_to(jnp.asarray(colour), points.shape[:-1] + (len(colour),))
    logits = jnp.concatenate([points, points[..., :1] ** 2], axis=-1) * 30.0
    return density_fn(points), features, logits
  return field_fn


def _slab(sigma, z_lo, z_hi):
  return _analytic_field(lambda p: jnp.where((p[..., 2] >= z_lo) & (p[..., 2] <= z_hi), sigma, 0.0))


def _frontal_rays(n):
  """n rays along −z from z = 1, spread over x, y ∈ [−0.05, 0.05]: depth t ↔ z = 1 − t."""
  xy = jnp.linspace(-0.05, 0.05, n)
  origins = jnp.stack([xy, xy[::-1], jnp.ones(n)], axis=-1)
  return origins, jnp.broadcast_to(jnp.array([0.0, 0.0, -1.0]), (n, 3))


def test_slab_alpha_is_closed_form_with_boundaries_on_bin_edges():
  # 24 bins of 1 cm over [0.88, 1.12]; the slab z ∈ [−0.05, 0.05] is t ∈ [0.95, 1.05], bin edges 7
  # and 17, so exactly 10 midpoint samples lie inside and the midpoint rule gives σ·10 cm exactly.
  sigma, thickness = 20.0, 0.1
  origins, directions = _frontal_rays(5)
  out = _render_rays(_slab(sigma, -0.05, 0.05), origins, directions, NEAR, FAR, 24, 0)
  expected = 1.0 - np.exp(-sigma * thickness)
  np.testing.assert_allclose(out['alpha'], expected, rtol=1e-5)
  np.testing.assert_allclose(out['weights'].sum(-1), out['alpha'], rtol=1e-6)
  # Constant features composite to alpha · colour (over a zero background).
  np.testing.assert_allclose(out['features'], np.tile(expected * np.array([0.2, 0.5, 0.9]), (5, 1)),
                             rtol=1e-5)


def test_slab_alpha_with_jitter_and_importance_samples_is_within_the_spacing_bound():
  # Each slab boundary falls in one interval (at most two bins long) that is counted at half
  # density, so the optical depth is σ·(thickness ± 2·bin).
  sigma, thickness, bin_width = 20.0, 0.1, (FAR - NEAR) / 24
  origins, directions = _frontal_rays(64)
  out = _render_rays(_slab(sigma, -0.053, 0.047), origins, directions, NEAR, FAR, 24, 16,
                         key=jax.random.PRNGKey(3))
  low, high = (1.0 - np.exp(-sigma * (thickness + s * 2 * bin_width)) for s in (-1, 1))
  assert np.all(out['alpha'] >= low) and np.all(out['alpha'] <= high)
  assert out['sample_depths'].shape == (64, 40)
  assert np.all(np.diff(out['sample_depths'], axis=-1) >= 0)


def test_sphere_depth_and_silhouette():
  radius, size, fov = 0.1, 21, 20.0
  camera = geometry.camera_from_yaw_pitch(0.0, 0.0, fov_degrees=fov)[None]
  field = _analytic_field(lambda p: jnp.where(jnp.linalg.norm(p, axis=-1) < radius, 1e4, 0.0))
  out = jax.jit(lambda: nerf.render_image(field, camera, size, size, NEAR, FAR, 24, 24, 128))()
  # The centre pixel's ray is the optical axis; the surface is at distance 1 − r.
  assert abs(float(out['depth'][0, size // 2, size // 2]) - (1.0 - radius)) < (FAR - NEAR) / 24
  origins, directions = geometry.camera_rays(camera, size, size)
  miss = jnp.linalg.norm(jnp.cross(directions, -origins), axis=-1)[0]  # ray-to-centre distance
  alpha = np.asarray(out['alpha'][0])
  inside, outside = miss < radius - 0.01, miss > radius + 0.005
  assert inside.sum() > 50 and outside.sum() > 50
  assert np.all(alpha[inside] > 0.999)
  assert np.all(alpha[outside] < 1e-6)
  np.testing.assert_allclose(out['depth'][0][outside], FAR, rtol=1e-6)


def test_importance_samples_follow_the_blurred_weights():
  # One-hot weight on interval 4 of 10; the max-blur spreads it 1/4, 1/2, 1/4 over intervals 3..5.
  depths = jnp.linspace(0.0, 1.0, 11)
  weights = jnp.zeros(10).at[4].set(0.7)
  samples = nerf.importance_depths(depths, weights, jnp.full((40,), 0.5), padding=0.0)
  counts = np.histogram(np.asarray(samples), bins=np.asarray(depths))[0]
  np.testing.assert_array_equal(counts, [0, 0, 0, 10, 20, 10, 0, 0, 0, 0])
  # Deterministic samples are the quantile-stratum midpoints: evenly spread within an interval.
  np.testing.assert_allclose(np.diff(samples[10:30]), 0.1 / 20, rtol=1e-4)
  grad = jax.grad(lambda w: nerf.importance_depths(depths, w, jnp.full((40,), 0.5)).sum())(weights)
  np.testing.assert_array_equal(grad, 0.0)


def test_importance_samples_concentrate_at_a_surface():
  # An opaque solid behind z = 0.005 (t = 0.995): with the default padding, most fine samples land
  # in the blurred peak, the three coarse intervals (each at most two bins long) around the surface.
  origins, directions = _frontal_rays(16)
  field = _analytic_field(lambda p: jnp.where(p[..., 2] <= 0.005, 300.0, 0.0))
  coarse = nerf.stratified_depths(NEAR, FAR, jax.random.uniform(jax.random.PRNGKey(0), (16, 24)))
  density = field(origins[:, None] + coarse[..., None] * directions[:, None], directions)[0]
  fine = nerf.importance_depths(coarse, nerf.march(coarse, density),
                                jax.random.uniform(jax.random.PRNGKey(1), (16, 24)))
  bin_width = (FAR - NEAR) / 24
  near_surface = jnp.abs(fine - 0.995) < 2 * bin_width
  assert near_surface.mean() > 0.8


def test_semantics_sum_to_alpha():
  origins, directions = _frontal_rays(32)
  wavy = lambda p: 40.0 * jnp.sin(30.0 * p[..., 2] + 50 * p[..., 0]) ** 2  # noqa: E731
  out = _render_rays(_analytic_field(wavy), origins, directions, NEAR, FAR, 16, 16,
                         key=jax.random.PRNGKey(0))
  assert out['semantics'].shape == (32, NUM_CLASSES)
  np.testing.assert_allclose(out['semantics'].sum(-1), out['alpha'], rtol=1e-5)
  assert np.all((out['alpha'] > 0.05) & (out['alpha'] <= 1.0))
  assert np.all((out['depth'] >= NEAR) & (out['depth'] <= FAR))


def test_merge_order_is_the_stable_argsort_of_two_sorted_lists():
  rng = np.random.default_rng(0)
  for n1, n2 in ((24, 24), (48, 48), (5, 3), (3, 9), (7, 0), (1, 1)):
    # Few distinct values, so ties within and across the lists are common.
    first = np.sort(rng.integers(0, 6, (40, n1)), -1).astype(np.float32)
    second = np.sort(rng.integers(0, 6, (40, n2)), -1).astype(np.float32)
    got = jax.jit(nerf.merge_order)(first, second)
    want = np.argsort(np.concatenate([first, second], -1), -1, kind='stable')
    np.testing.assert_array_equal(got, want, err_msg=f'{n1} + {n2} samples')

