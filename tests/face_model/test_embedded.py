"""The embedded head model (CC0 MakeHuman data): sizes, semantics, landmarks and renders."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from faceshop_jax import classes
from faceshop_jax import face_model
from faceshop_jax import geometry
from faceshop_jax.world import portraits

SIZE = 128


@pytest.fixture(scope='module')
def head():
  return face_model.load_embedded()


@pytest.fixture(scope='module')
def frontal(head):
  return jax.jit(face_model.render_face, static_argnums=3)(
      head, head.zero_coeffs((1,)), geometry.camera_from_yaw_pitch(0.0, 0.0), SIZE)


def test_sizes_and_names(head):
  assert head.n_id >= 60
  assert head.n_exp == 52 and 'jawOpen' in head.expression_names
  assert head.n_tex >= 10
  assert head.triangles.shape[0] >= 8000
  assert np.all(np.isfinite(np.asarray(head.mean_shape)))
  present = set(np.unique(np.asarray(head.vertex_labels)).tolist())
  names = {classes.NAMES[c] for c in present}
  assert {'skin', 'l_brow', 'r_brow', 'l_eye', 'r_eye', 'nose', 'u_lip', 'l_lip', 'l_ear', 'r_ear',
          'neck'} <= names, names


def test_metric_scale_and_placement(head):
  v = np.asarray(head.mean_shape)
  lmk = v[np.asarray(head.landmarks68)]
  eye_distance = np.linalg.norm(lmk[36:42].mean(0) - lmk[42:48].mean(0))
  assert 0.05 < eye_distance < 0.075, eye_distance  # human interpupillary distance, metres
  assert np.all(np.abs(v) < geometry.BOX_HALF_SIZE + 0.1)
  assert lmk[30, 2] > 0.05  # the nose tip points to +z, toward the frontal camera


def test_jaw_open_lowers_the_chin(head):
  chin = lambda e: face_model.landmarks(head, face_model.shape(  # noqa: E731
      head, jnp.zeros(head.n_id), e))[8]
  drop = chin(jnp.zeros(head.n_exp))[1] - chin(head.expression_coefficients({'jawOpen': 0.8}))[1]
  assert drop > 0.005, drop


def test_identity_changes_the_shape(head):
  neutral = jnp.zeros(head.n_exp)
  for k in (0, head.n_id // 2, head.n_id - 1):
    moved = face_model.shape(head, 2.0 * jnp.eye(head.n_id)[k], neutral) - head.mean_shape
    assert float(jnp.abs(moved).max()) > 1e-4, k


def test_frontal_mean_face_landmarks_are_symmetric(frontal):
  xy = np.asarray(frontal.landmarks[0])
  mirrored = xy[list(face_model.LANDMARK_MIRROR)]
  np.testing.assert_allclose(xy[:, 0] + mirrored[:, 0], SIZE, atol=0.05)
  np.testing.assert_allclose(xy[:, 1], mirrored[:, 1], atol=0.05)
  # The subject's right eye (36–41) is on the image left; eyes above the nose tip above the mouth.
  assert xy[36:42, 0].mean() < SIZE / 2 < xy[42:48, 0].mean()
  assert xy[36:48, 1].mean() < xy[30, 1] < xy[48:68, 1].mean() < xy[8, 1]


def test_frontal_render_sees_the_face(frontal):
  labels = np.asarray(frontal.labels[0])
  xy = np.round(np.asarray(frontal.landmarks[0]) - 0.5).astype(int)
  assert np.all((xy >= 0) & (xy < SIZE))
  assert frontal.mask[0].mean() > 0.5  # the face fills the portrait frame
  # Landmarks on the visible face land on face classes (not background, neck or ears).
  inner = labels[xy[17:68, 1], xy[17:68, 0]]
  assert np.all(np.isin(inner, classes.FACE)), inner
  eye_centre = np.round(np.asarray(frontal.landmarks[0, 36:42]).mean(0) - 0.5).astype(int)
  assert labels[eye_centre[1], eye_centre[0]] == classes.R_EYE


def test_a_model_loaded_while_tracing_holds_concrete_arrays(tmp_path):
  # The stages cache loaded models; the first load may happen inside a jitted init (build_state).
  path = tmp_path / 'head.npz'
  face_model.save_npz(face_model.load_embedded(), path)
  loaded = []

  @jax.jit
  def init(x):
    loaded.append(face_model.load_npz(path))
    return x + 1

  init(jnp.zeros(()))
  model = loaded[0]
  assert not any(isinstance(getattr(model, k), jax.core.Tracer)
                 for k in ('mean_shape', 'id_basis', 'triangles'))
  np.testing.assert_array_equal(model.triangles, face_model.load_embedded().triangles)


def test_face_mask_is_the_face_proper():
  """B of imitative learning: face classes only, and in the synthetic world's portraits of the same
  controls and camera (hair, clothes, background on) it lands on face classes, not hair or neck."""
  model = face_model.load_embedded()
  scene = portraits.build_scene(model)
  keys = jax.random.split(jax.random.PRNGKey(4), 8)
  worlds = jax.jit(jax.vmap(lambda k: portraits.render_portrait(k, model, scene, SIZE)))(keys)
  render = jax.jit(face_model.render_face, static_argnums=3)(model, worlds['coeffs'],
                                                              worlds['camera'], SIZE)
  face = np.asarray(render.face_mask) > 0.5
  labels, parsing = np.asarray(render.labels), np.asarray(worlds['parsing'])
  assert np.all(np.isin(labels[face], classes.FACE))
  assert not np.any(face & (np.asarray(render.mask) == 0))
  # The head's skin also covers scalp and under the chin, which B leaves out.
  assert face.sum() < 0.95 * np.isin(labels, classes.FACE).sum()
  in_world = np.isin(parsing[face], classes.FACE).mean()
  assert in_world > 0.95, in_world
  assert np.isin(parsing[face], (classes.NECK, classes.HAIR)).mean() < 0.03
