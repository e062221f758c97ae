"""The analysis stage: trains, exports nets loadable by role, evaluates; its losses and metrics."""
import json
import os

from tests import cli
import jax
import numpy as np
import pytest

from faceshop_jax.analysis import weights
from faceshop_jax.train.stages import analysis

@pytest.fixture(scope='module')
def workdir(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp('analysis'))
  cli.run_main('configs/analysis.py:test', workdir)
  return workdir


def test_cli_exports_every_role_and_evaluates(workdir):
  for role in weights.ROLE_KINDS:
    net = weights.load_role_net(os.path.join(workdir, 'analysis'), role)
    assert net.kind == weights.ROLE_KINDS[role]
  with open(os.path.join(workdir, 'eval.json')) as f:
    results = json.load(f)
  for key in ('reconstructor/identity_mae', 'reconstructor/landmark_nme',
              'reconstructor/yaw_error_degrees', 'parser/miou', 'identity/tar_at_far_1e-3'):
    chance = {'parser/miou': 'parser/miou_of_mode',
              'identity/tar_at_far_1e-3': 'identity/tar_at_far_1e-3_of_random'}.get(key,
                                                                                 key + '_of_mean')
    assert np.isfinite(results[key]) and np.isfinite(results[chance]), key
  assert os.listdir(os.path.join(workdir, 'checkpoints')) == ['2']


def test_chance_answers_score_their_closed_forms():
  rng = np.random.default_rng(0)
  labels = rng.integers(0, 3, (70, 4, 4))  # more than one 64-portrait chunk
  assert analysis._miou(*analysis._class_overlaps(labels, labels)) == 1.0
  intersection, union = analysis._class_overlaps(np.zeros((4, 4), int), labels)
  # A constant class-0 map: class 0's IoU is its share of the pixels; classes 1 and 2 score 0.
  assert intersection[0] == np.sum(labels == 0) and union[0] == labels.size
  assert analysis._miou(intersection, union) == pytest.approx(np.mean(labels == 0) / 3)
  landmarks = rng.normal(size=(5, 68, 2))
  np.testing.assert_array_equal(analysis._landmark_nme(landmarks, landmarks), 0.0)
  ocular = np.linalg.norm(landmarks[:, 36] - landmarks[:, 45], axis=-1)
  np.testing.assert_allclose(analysis._landmark_nme(landmarks + [3.0, 4.0], landmarks), 5 / ocular)
  identity = np.repeat(np.arange(300), 2)
  noise = rng.normal(size=(600, 16))
  tar = analysis.verification_tar(noise / np.linalg.norm(noise, axis=-1, keepdims=True), identity,
                                  1e-3)
  assert tar < 0.02  # random embeddings accept about the FAR


def test_wrong_role_is_named(workdir):
  with pytest.raises(ValueError, match="'bisenet' net, not the 'deep3d'"):
    weights.load_analysis_net(os.path.join(workdir, 'analysis', 'parser'), 'deep3d')
  with pytest.raises(ValueError, match='known roles'):
    weights.load_role_net(os.path.join(workdir, 'analysis'), 'segmenter')
  with pytest.raises(FileNotFoundError, match='analysis.json'):
    weights.load_role_net(os.path.join(workdir, 'nowhere'), 'parser')


def _clustered(groups: int, views: int, noise: float, seed: int = 0):
  rng = np.random.default_rng(seed)
  centres = rng.normal(size=(groups, 32))
  x = np.repeat(centres, views, axis=0) + noise * rng.normal(size=(groups * views, 32))
  x /= np.linalg.norm(x, axis=-1, keepdims=True)
  return x.astype(np.float32), np.repeat(np.arange(groups), views).astype(np.int32)


def test_identity_loss_rewards_clusters_and_ignores_group_order():
  tight, identity = _clustered(8, 4, 0.05)
  loose, _ = _clustered(8, 4, 3.0)
  loss_tight, terms = analysis.identity_loss(tight, identity, 4, scale=16.0, margin=0.2)
  loss_loose, _ = analysis.identity_loss(loose, identity, 4, scale=16.0, margin=0.2)
  assert loss_tight < 0.05 < loss_loose
  assert terms['accuracy'] == 1.0
  order = np.arange(32).reshape(8, 4)[::-1].reshape(-1)  # groups reversed, still contiguous
  loss_reordered, _ = analysis.identity_loss(tight[order], identity, 4, scale=16.0, margin=0.2)
  np.testing.assert_allclose(loss_reordered, loss_tight, rtol=1e-3)


def test_identity_loss_leaves_each_sample_out_of_its_prototype():
  """Two views that are each other's opposite have a prototype pointing away: a high loss."""
  x = np.asarray([[1, 0], [-1, 0], [0, 1], [0, -1]], np.float32)
  loss, terms = analysis.identity_loss(x, np.asarray([0, 0, 1, 1], np.int32), 2, 16.0, 0.0)
  assert loss > 5.0 and terms['accuracy'] == 0.0


def test_verification_tar():
  tight, identity = _clustered(40, 4, 0.05)
  assert analysis.verification_tar(tight, identity, 1e-3) == 1.0
  random = np.random.default_rng(1).normal(size=(160, 32))
  random /= np.linalg.norm(random, axis=-1, keepdims=True)
  assert analysis.verification_tar(random, identity, 1e-3) < 0.1


def test_reconstructor_targets_round_trip_through_the_heads():
  model = analysis._face_model()  # pylint: disable=protected-access
  from faceshop_jax.face_model import prior  # pylint: disable=g-import-not-at-top
  coeffs, camera = prior.sample_controls(jax.random.PRNGKey(0), model, 4)
  targets = analysis.reconstructor_targets(coeffs, camera)
  assert targets.shape == (4, sum(analysis.reconstructor_lib.head_sizes(model, 'yaw_pitch')))
