"""AED/APD/AID: an oracle reconstructor scores 0, a wrong one scores what it is off by."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from faceshop_jax import face_model
from faceshop_jax.analysis import reconstructor
from faceshop_jax.analysis import weights
from faceshop_jax.eval import control_accuracy


@pytest.fixture(scope='module')
def model():
  return face_model.load_embedded()


def test_each_identity_keeps_its_kappa_across_variations(model):
  coeffs, camera = control_accuracy.evaluation_controls(jax.random.PRNGKey(0), model, 3, 4)
  parts = model.split_coeffs(coeffs)
  identity = np.asarray(parts.identity).reshape(3, 4, -1)
  np.testing.assert_array_equal(identity, identity[:, :1].repeat(4, 1))
  assert not np.allclose(identity[0, 0], identity[1, 0])
  expression = np.asarray(parts.expression).reshape(3, 4, -1)
  assert not np.allclose(expression[0, 0], expression[0, 1])
  assert camera.shape == (12, 25)


def _hidden_controls_generator(coeffs, camera, key):
  """A 'generator' that hides the controls in its image, for an oracle reconstructor to read."""
  del key
  return jnp.concatenate([coeffs, camera], axis=-1)[:, None, None, :]  # [n, 1, 1, D + 25]


def _oracle(model, gamma_offset=0.0):
  def reconstruct(images):
    flat = images[:, 0, 0]
    coeffs, camera = flat[:, :model.n_coeffs], flat[:, model.n_coeffs:]
    parts = model.split_coeffs(coeffs)
    coeffs = model.merge_coeffs(parts._replace(gamma=parts.gamma + gamma_offset))
    return reconstructor.Reconstruction(coeffs=coeffs, camera=camera,
                                        landmarks=jnp.zeros((len(flat), 68, 2)))
  return reconstruct


def test_oracle_scores_the_floor_and_offsets_are_measured(model):
  report = control_accuracy.control_report(
      _hidden_controls_generator, _hidden_controls_generator, _oracle(model), model,
      jax.random.PRNGKey(0), identities=3, variations=2, batch_size=4)
  assert report['images'] == 6
  assert report['generated']['AED'] == 0.0 and report['generated']['AID'] == 0.0
  assert report['generated']['APD'] == pytest.approx(0.0, abs=1e-5)
  assert report['generated']['IDS'] == pytest.approx(1.0, abs=1e-5)
  for metric in control_accuracy.METRICS:
    assert report['normalised'][metric] == pytest.approx(1.0, abs=1e-4), metric
  off = control_accuracy.control_report(
      _hidden_controls_generator, _hidden_controls_generator, _oracle(model, gamma_offset=0.1),
      model, jax.random.PRNGKey(0), identities=3, variations=2, batch_size=4)
  np.testing.assert_allclose(off['generated']['AID'], 0.1 * np.sqrt(27), rtol=1e-5)
  assert off['generated']['AED'] == 0.0


def test_chance_is_a_constant_answer(model):
  coeffs, camera = control_accuracy.evaluation_controls(jax.random.PRNGKey(0), model, 5, 4)
  constant = control_accuracy.constant_reconstruction(model, coeffs, camera)
  np.testing.assert_array_equal(constant.coeffs, jnp.broadcast_to(constant.coeffs[0],
                                                                  constant.coeffs.shape))
  np.testing.assert_allclose(constant.camera, jnp.broadcast_to(constant.camera[0],
                                                               constant.camera.shape), atol=1e-6)
  report = control_accuracy.control_report(
      _hidden_controls_generator, _hidden_controls_generator, _oracle(model), model,
      jax.random.PRNGKey(0), identities=5, variations=4, batch_size=8)
  # The mean answer is a poor reading of every control: well above the oracle's 0 distance.
  assert report['chance']['AED'] > 0.3 and report['chance']['AID'] > 0.2
  assert report['chance']['APD'] > 0.1 and abs(report['chance']['IDS']) < 0.2


def test_normalised_score():
  assert control_accuracy.normalised_score(0.8, 0.2, 0.8) == 0.0
  assert control_accuracy.normalised_score(0.8, 0.2, 0.2) == 1.0
  assert control_accuracy.normalised_score(0.8, 0.2, 0.5) == pytest.approx(0.5)
  assert control_accuracy.normalised_score(0.0, 0.9, 0.45) == pytest.approx(0.5)  # IDS: higher
  assert np.isnan(control_accuracy.normalised_score(0.3, 0.3, 0.1))


@pytest.fixture(scope='module')
def judged():
  """The world's exact renders and a fixed image, read by a packaged reconstructor at 64²."""
  model = face_model.load_embedded()
  judge = weights.load_role_net('synthetic64', 'reconstructor')
  reconstruct = jax.jit(lambda images: reconstructor.reconstruct_faces(judge, model, images))
  exact = control_accuracy.world_renderer('embedded', 64)
  fixed = lambda coeffs, camera, key: jnp.zeros((coeffs.shape[0], 64, 64, 3))  # noqa: E731
  run = lambda generate: control_accuracy.control_report(  # noqa: E731
      generate, exact, reconstruct, model, jax.random.PRNGKey(1), identities=8, variations=2)
  return run(exact), run(fixed)


def test_the_exact_renders_score_one(judged):
  exact, _ = judged
  for metric in ('AED', 'APD', 'AID'):
    assert exact['normalised'][metric] == pytest.approx(1.0, abs=1e-6), metric


def test_a_fixed_image_scores_about_zero(judged):
  _, fixed = judged
  # A constant image gets a constant answer: no better than the best constant (the mean).
  for metric in ('APD', 'AID', 'IDS'):
    assert fixed['normalised'][metric] < 0.15, (metric, fixed['normalised'])
