"""The reconstructor role: head layouts decode to coefficients, a camera and the 68 landmarks."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from faceshop_jax.world import portraits
from faceshop_jax import face_model
from faceshop_jax import geometry
from faceshop_jax.analysis import deep3d
from faceshop_jax.analysis import reconstructor
from faceshop_jax.analysis import weights
from faceshop_jax.train.stages import analysis


@pytest.fixture(scope='module')
def model():
  return face_model.load_embedded()


@pytest.fixture(scope='module')
def group():
  return jax.device_get(portraits.identity_group_renderer(64, 2)(np.arange(2, dtype=np.uint32)))


def test_true_yaw_pitch_heads_give_the_rendered_landmarks(model, group):
  """The synthetic world's exact controls, decoded, land on its rendered landmarks."""
  targets = analysis.reconstructor_targets(group['coeffs'], group['camera'])
  out = reconstructor.decode_heads(targets, model, 'yaw_pitch', 64, 64)
  np.testing.assert_allclose(out.landmarks, group['landmarks'], atol=0.05)
  np.testing.assert_allclose(out.coeffs, group['coeffs'], atol=1e-5)
  np.testing.assert_allclose(out.camera, group['camera'], atol=1e-5)


def test_deep3d_heads_pose_the_head_in_front_of_the_frontal_camera(model):
  """Deep3D's (angle, t) posing a head before the fixed camera == our camera around the head."""
  rng = np.random.default_rng(0)
  identity = rng.normal(size=(2, model.n_id)).astype(np.float32)
  expression = rng.uniform(0, 0.5, size=(2, model.n_exp)).astype(np.float32)
  angle = np.asarray([[0.1, -0.3, 0.05], [-0.05, 0.2, 0.0]], np.float32)
  t_decimetres = np.asarray([[0.1, -0.05, 0.3], [0.0, 0.1, -0.2]], np.float32)
  heads = np.concatenate([identity, expression, np.zeros((2, model.n_tex)), angle,
                          np.zeros((2, 27)), t_decimetres], -1).astype(np.float32)
  out = reconstructor.decode_heads(jnp.asarray(heads), model, 'deep3d', 224, 224)
  posed = face_model.pose(face_model.landmarks(model, face_model.shape(model, identity, expression)),
                          angle, t_decimetres * reconstructor.DEEP3D_TRANSLATION_SCALE)
  frontal = geometry.camera_from_yaw_pitch(0.0, 0.0)
  expected, _ = geometry.project_points(posed, frontal, 224, 224)
  np.testing.assert_allclose(out.landmarks, expected, atol=1e-2)
  parts = model.split_coeffs(out.coeffs)
  np.testing.assert_array_equal(parts.angle, 0.0)  # the pose is in the camera


def test_heads_must_match_the_face_model(model, tmp_path):
  config = {'backbone': {'block': 'basic', 'stage_sizes': [1, 1, 1, 1], 'width': 8},
            'out_sizes': [80, 64, 80, 3, 27, 2, 1], 'input_size': 32}  # BFM's 64 expressions
  module = deep3d.build(config)
  variables = jax.eval_shape(module.init, jax.random.PRNGKey(0), jnp.zeros((1, 32, 32, 3)))
  net = weights.AnalysisNet('deep3d', config, module, variables)
  with pytest.raises(ValueError, match='Pair it with the face model'):
    reconstructor.reconstruct_faces(net, model, jnp.zeros((1, 32, 32, 3)))


def test_packaged_in_domain_reconstructor_beats_predicting_the_mean(model):
  """synthetic64 on held-out identities: lighting, pose and landmarks better than the batch mean."""
  net = weights.load_role_net('synthetic64', 'reconstructor')
  seeds = np.arange(8, dtype=np.uint32) + np.uint32(analysis._HELDOUT_SEED_OFFSET + 10_000)  # pylint: disable=protected-access
  batch = jax.device_get(portraits.identity_group_renderer(64, 2)(seeds))
  images = jnp.asarray(batch['image']) * 2.0 - 1.0
  out = jax.jit(lambda x: reconstructor.reconstruct_faces(net, model, x))(images)
  gamma, true_gamma = model.split_coeffs(out.coeffs).gamma, model.split_coeffs(batch['coeffs']).gamma
  assert np.abs(gamma - true_gamma).mean() < np.abs(true_gamma - true_gamma.mean(0)).mean()
  pose = np.stack(geometry.yaw_pitch_from_camera(out.camera), -1)
  true_pose = np.stack(geometry.yaw_pitch_from_camera(batch['camera']), -1)
  assert np.abs(pose - true_pose).mean() < 0.5 * np.abs(true_pose - true_pose.mean(0)).mean()
  landmarks = batch['landmarks']
  error = np.linalg.norm(out.landmarks - landmarks, axis=-1).mean()
  assert error < 0.5 * np.linalg.norm(landmarks - landmarks.mean(0), axis=-1).mean()


def test_packaged_judge_reads_expression_better_than_the_mean(model):
  """judge64 on 64 held-out portraits: β, lighting and pose better than a constant answer."""
  net = weights.load_role_net('judge64', 'reconstructor')
  seeds = np.arange(32, dtype=np.uint32) + np.uint32(analysis._HELDOUT_SEED_OFFSET + 20_000)  # pylint: disable=protected-access
  batch = jax.device_get(portraits.identity_group_renderer(64, 2)(seeds))
  out = jax.jit(lambda x: reconstructor.reconstruct_faces(net, model, x))(
      jnp.asarray(batch['image']) * 2.0 - 1.0)
  pred, true = model.split_coeffs(out.coeffs), model.split_coeffs(batch['coeffs'])
  for factor in ('expression', 'gamma'):
    p, t = np.asarray(getattr(pred, factor)), np.asarray(getattr(true, factor))
    assert np.abs(p - t).mean() < 0.95 * np.abs(t - t.mean(0)).mean(), factor
  pose = np.stack(geometry.yaw_pitch_from_camera(out.camera), -1)
  true_pose = np.stack(geometry.yaw_pitch_from_camera(batch['camera']), -1)
  assert np.degrees(np.abs(pose - true_pose).mean()) < 1.5
