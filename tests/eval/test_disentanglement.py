"""DS, IS and the non-face error: closed forms, a disjoint generator at the ceiling, a leaky one."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from faceshop_jax import face_model
from faceshop_jax import geometry
from faceshop_jax.analysis import reconstructor
from faceshop_jax.eval import control_accuracy
from faceshop_jax.eval import disentanglement


@pytest.fixture(scope='module')
def model():
  return face_model.load_embedded()


def test_each_edit_redraws_only_its_factor(model):
  controls = disentanglement.edit_controls(jax.random.PRNGKey(0), model, 3, 2)
  source_coeffs, source_camera = controls['source']
  source = model.split_coeffs(source_coeffs[:, None])
  moved = {'expression': {'expression'}, 'illumination': {'gamma'}, 'pose': {'camera'},
           'everything': {'identity', 'texture', 'expression', 'gamma', 'camera'}}
  for edit, fields in moved.items():
    coeffs, camera = controls[edit]
    assert coeffs.shape == (3, 2, model.n_coeffs) and camera.shape == (3, 2, 25)
    parts = model.split_coeffs(coeffs)._asdict()
    parts['camera'] = camera
    for field, value in parts.items():
      kept = source_camera[:, None] if field == 'camera' else getattr(source, field)
      same = np.allclose(value, jnp.broadcast_to(kept, value.shape))
      if field in fields:
        assert not same and not np.allclose(value[:, 0], value[:, 1]), (edit, field)
      else:
        assert same, (edit, field)


def test_spread_and_score_closed_form():
  # One attribute of two dims over 2 sources × 2 edits: variances (ddof 1) [2, 0] and [8, 2].
  readings = {factor: np.zeros((2, 2, 1)) for factor in disentanglement.FACTORS}
  readings['expression'] = np.array([[[1.0, 0.0], [3.0, 4.0]], [[5.0, 1.0], [5.0, 1.0]]])
  variance = {factor: np.ones(1) for factor in disentanglement.FACTORS}
  variance['expression'] = np.array([4.0, 2.0])
  spread = disentanglement.attribute_spread(readings, variance)
  # Per dim: mean over sources [1, 4] / prior [4, 2] = [0.25, 2]; mean over dims 1.125.
  assert spread == {'expression': pytest.approx(1.125), 'pose': 0.0, 'illumination': 0.0}

  spread = {'expression': 0.5, 'pose': 0.1, 'illumination': 0.2}
  scores = {factor: disentanglement.disentanglement_score(spread, factor)
            for factor in disentanglement.FACTORS}
  assert scores == {'expression': pytest.approx(0.5 / 0.1 * 0.5 / 0.2),
                    'pose': pytest.approx(0.1 / 0.5 * 0.1 / 0.2),
                    'illumination': pytest.approx(0.2 / 0.5 * 0.2 / 0.1)}
  # One set of spreads (the chance row): the three scores multiply to 1.
  assert np.prod(list(scores.values())) == pytest.approx(1.0)


def test_identity_similarity_is_one_for_the_same_person_and_minus_one_for_the_mirror():
  rng = np.random.default_rng(0)
  mean, std = rng.normal(size=6), rng.uniform(0.5, 2.0, size=6)
  statistics = disentanglement.PriorStatistics({}, mean, std)
  source = rng.normal(size=(4, 6))
  same = np.repeat(source[:, None], 3, axis=1)
  assert disentanglement.identity_similarity(source, same, statistics) == pytest.approx(1.0)
  mirror = 2 * mean - same  # the other side of the mean: the opposite standardised κ
  assert disentanglement.identity_similarity(source, mirror, statistics) == pytest.approx(-1.0)


def _encoding_generator(model, leak=0.0):
  """A 'generator' that writes its controls into a 1×1 image; with leak, its illumination also
  moves with the expression (γ + leak · mean β)."""
  def generate(coeffs, camera, key):
    del key
    parts = model.split_coeffs(coeffs)
    parts = parts._replace(gamma=parts.gamma + leak * parts.expression.mean(-1, keepdims=True))
    return jnp.concatenate([model.merge_coeffs(parts), camera], axis=-1)[:, None, None, :]
  return generate


def _judge(model, noise=1e-3):
  """Reads those images back with a small reading error that changes with every image."""
  size = model.n_coeffs
  projection = jax.random.normal(jax.random.PRNGKey(7), (size + 25, size + 2))

  def reconstruct(images):
    flat = images[:, 0, 0]
    error = noise * jnp.sin(1e3 * flat @ projection)
    yaw, pitch = geometry.yaw_pitch_from_camera(flat[:, size:])
    return reconstructor.Reconstruction(
        coeffs=flat[:, :size] + error[:, :size],
        camera=geometry.camera_from_yaw_pitch(yaw + error[:, -2], pitch + error[:, -1]),
        landmarks=jnp.zeros((len(flat), 68, 2)))
  return reconstruct


def _report(model, generate):
  return disentanglement.disentanglement_report(
      generate, _encoding_generator(model), _judge(model), model, jax.random.PRNGKey(0), bases=8,
      variations=3, batch_size=5, prior_samples=2000)


@pytest.fixture(scope='module')
def disjoint(model):
  return _report(model, _encoding_generator(model))


def test_a_disjoint_generator_scores_the_ceiling_far_above_chance(disjoint):
  assert set(disjoint) == set(disentanglement.ROWS) | {'images'}
  assert disjoint['images'] == 8 * (1 + 3 * 3)
  assert disjoint['generated'] == disjoint['ceiling']
  for metric in disentanglement.METRICS:
    assert disjoint['normalised'][metric] == pytest.approx(1.0), metric
  chance = [disjoint['chance'][f'DS_{f}'] for f in disentanglement.FACTORS]
  assert np.prod(chance) == pytest.approx(1.0, rel=1e-4)
  for factor in disentanglement.FACTORS:
    # Untouched attributes move by the reading error alone: σ ~ 1e-6 against ~1.
    assert disjoint['ceiling'][f'DS_{factor}'] > 1e6, factor
    assert 0.1 < disjoint['chance'][f'DS_{factor}'] < 10, factor
  assert disjoint['ceiling']['IS'] == pytest.approx(1.0, abs=1e-3)
  assert abs(disjoint['chance']['IS']) < 0.3  # unrelated people


def test_a_leaky_generator_loses_only_the_leaking_factor(model, disjoint):
  leaky = _report(model, _encoding_generator(model, leak=10.0))
  assert leaky['ceiling'] == disjoint['ceiling'] and leaky['chance'] == disjoint['chance']
  # Expression edits now move the illumination read back: σ_β/σ_γ, one of DS_expression's two
  # factors, falls to about chance, so log DS_expression keeps about half of the ceiling's.
  assert leaky['generated']['DS_expression'] < 1e-4 * disjoint['generated']['DS_expression']
  assert leaky['normalised']['DS_expression'] < 0.5
  for metric in ('DS_pose', 'DS_illumination', 'IS'):
    assert leaky['normalised'][metric] == pytest.approx(1.0, abs=0.05), metric


def test_format_report_lists_every_row_and_metric(disjoint):
  lines = disentanglement.format_report(disjoint).splitlines()
  assert lines[0].split() == list(disentanglement.METRICS)
  assert [line.split()[0] for line in lines[1:]] == list(disentanglement.ROWS)


def test_one_variation_is_refused(model):
  with pytest.raises(ValueError, match='at least 2 variations'):
    disentanglement.disentanglement_report(
        _encoding_generator(model), _encoding_generator(model), _judge(model), model,
        jax.random.PRNGKey(0), bases=2, variations=1)


def test_nonface_error_sees_only_what_changes_outside_the_face():
  source = jnp.zeros((1, 1, 2, 3))
  face_only = source.at[0, 0, 0].set(2.0)  # the full range, in the face pixel
  face = jnp.array([[[1.0, 0.0]]])
  assert disentanglement.nonface_error(source, face_only, face) == 0.0
  both = face_only.at[0, 0, 1].set(jnp.array([0.5, 0.5, -0.5]))  # 0.25 of the range outside
  assert disentanglement.nonface_error(source, both, face) == pytest.approx(0.25)
  # A soft map weighs each pixel by its probability of not being face: (0.5·1 + 1·0.25) / 1.5.
  soft = jnp.array([[[0.5, 0.0]]])
  assert disentanglement.nonface_error(source, both, soft) == pytest.approx(0.5)


def test_error_map_is_the_batch_mean_per_pixel():
  source = jnp.zeros((2, 4, 5, 3))
  edited = source.at[0, 1, 2].set(1.0).at[1, 1, 2].set(-2.0)
  error = disentanglement.error_map(source, edited)
  assert error.shape == (4, 5)
  expected = np.zeros((4, 5))
  expected[1, 2] = (0.5 + 1.0) / 2
  np.testing.assert_allclose(error, expected)


def test_the_judge_finds_the_worlds_edits_disentangled_and_its_people_kept(model):
  """The world's exact renders at 64², read by a packaged reconstructor: each single-factor edit
  scores far above the entangled chance row, and a source's edits keep its identity."""
  exact = control_accuracy.world_renderer('embedded', 64)
  report = disentanglement.disentanglement_report(
      exact, exact, control_accuracy.judge_reconstructor('synthetic64', model), model,
      jax.random.PRNGKey(1), bases=6, variations=2, batch_size=6, prior_samples=2000)
  for factor in disentanglement.FACTORS:
    metric = f'DS_{factor}'
    assert report['ceiling'][metric] > 10 * report['chance'][metric], (metric, report)
    assert report['normalised'][metric] == pytest.approx(1.0), metric
  assert report['ceiling']['IS'] > 0.6 and abs(report['chance']['IS']) < 0.3, report
