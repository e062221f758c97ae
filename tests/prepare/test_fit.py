"""3DMM fitting: a synthetic portrait of the embedded head is fitted back."""
import jax.numpy as jnp
import numpy as np
import pytest

from data_pipelines.prepare import fit as fit_lib
from faceshop_jax import face_model
from faceshop_jax import geometry
from tests.prepare.conftest import FIT_CONFIG
from tests.prepare.conftest import FIT_SIZE


@pytest.fixture(scope='module')
def model():
  return face_model.load_embedded()


def _rotation_error_degrees(camera_a, camera_b):
  rotation_a = geometry.split_camera(camera_a)[0][:3, :3]
  rotation_b = geometry.split_camera(camera_b)[0][:3, :3]
  cosine = (jnp.trace(rotation_a.T @ rotation_b) - 1) / 2
  return float(jnp.degrees(jnp.arccos(jnp.clip(cosine, -1.0, 1.0))))


def test_fit_recovers_pose_and_landmarks_of_a_synthetic_portrait(model):
  rng = np.random.default_rng(0)
  parts = model.split_coeffs(model.zero_coeffs())
  truth = model.merge_coeffs(parts._replace(
      identity=jnp.asarray(rng.normal(scale=0.7, size=model.n_id), jnp.float32),
      expression=model.expression_coefficients({'jawOpen': 0.3, 'mouthSmileLeft': 0.4}),
      texture=jnp.asarray(rng.normal(scale=0.5, size=model.n_tex), jnp.float32),
      gamma=jnp.asarray(rng.normal(scale=0.1, size=27), jnp.float32)))
  # The canonical head seen by a yawed, pitched camera, composited on a textured background.
  camera = geometry.camera_from_yaw_pitch(np.radians(25.0), np.radians(-8.0))
  render = face_model.render_face(model, truth[None], camera, FIT_SIZE)
  background = rng.uniform(0.2, 0.8, size=(1, FIT_SIZE, FIT_SIZE, 3)).astype(np.float32)
  mask = render.mask[..., None]
  image = jnp.clip(render.image, 0, 1) * mask + background * (1 - mask)

  result = fit_lib.fit(model, image, render.landmarks, FIT_CONFIG)

  fitted = model.split_coeffs(result.coeffs[0])
  fitted_camera = geometry.camera_from_head_pose(fitted.angle, fitted.translation)
  assert _rotation_error_degrees(fitted_camera, camera) < 2.0
  assert float(jnp.abs(result.landmarks - render.landmarks).mean()) < 0.5  # pixels of 128
  assert float(result.landmark_error[0]) < 0.02
  low, high = fit_lib.expression_bounds(model)
  assert float(fitted.expression.min()) >= low and float(fitted.expression.max()) <= high
  # Appearance: the mean albedo under ambient light is ~0.2 off inside the mask; the fit halves it.
  assert float(result.photo_error[0]) < 0.1
