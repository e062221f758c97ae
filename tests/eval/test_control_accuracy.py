"""AED/APD/AID: an oracle reconstructor scores 0, a wrong one scores what it is off by."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from faceshop_jax import face_model
from faceshop_jax.analysis import reconstructor
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


def test_oracle_scores_zero_and_offsets_are_measured(model):
  """A 'generator' that hides the controls in its image and a reconstructor that reads them."""
  def generate(coeffs, camera, key):
    del key
    return jnp.concatenate([coeffs, camera], axis=-1)[:, None, None, :]  # [n, 1, 1, D + 25]

  def oracle(images, gamma_offset=0.0):
    flat = images[:, 0, 0]
    coeffs, camera = flat[:, :model.n_coeffs], flat[:, model.n_coeffs:]
    parts = model.split_coeffs(coeffs)
    coeffs = model.merge_coeffs(parts._replace(gamma=parts.gamma + gamma_offset))
    return reconstructor.Reconstruction(coeffs=coeffs, camera=camera,
                                        landmarks=jnp.zeros((len(flat), 68, 2)))

  exact = control_accuracy.control_accuracy(generate, oracle, model, jax.random.PRNGKey(0),
                                            identities=3, variations=2, batch_size=4)
  assert exact == {'AED': 0.0, 'APD': pytest.approx(0.0, abs=1e-5), 'AID': 0.0, 'images': 6}
  off = control_accuracy.control_accuracy(
      generate, lambda im: oracle(im, gamma_offset=0.1), model, jax.random.PRNGKey(0),
      identities=3, variations=2, batch_size=4)
  np.testing.assert_allclose(off['AID'], 0.1 * np.sqrt(27), rtol=1e-5)
  assert off['AED'] == 0.0
