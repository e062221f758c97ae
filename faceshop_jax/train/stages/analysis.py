"""The `analysis` stage: in-domain face analysis nets trained on the synthetic world's exact labels.

  python -m faceshop_jax.main --config=configs/analysis.py:cpu --workdir=/tmp/analysis

The paper reads generated images with pretrained Deep3DFaceRecon, BiSeNet and ArcFace, which cannot
be downloaded here. This stage trains the same architectures (small widths at the `:cpu` preset) on
portraits rendered on the fly, where every label is exact:
  reconstructor  deep3d.ReconNet, 'yaw_pitch' heads: standardised id | exp | tex | gamma | (yaw,
                 pitch) regression plus the 68 landmarks it implies (reconstructor.decode_heads);
  parser         bisenet.BiSeNet: per-pixel cross-entropy on the 19 classes, main + auxiliary heads;
  identity       iresnet.IResNet: CosFace-style margin loss against leave-one-out prototypes of the
                 batch's identities (each batch holds `identities` people × `views` portraits).
BatchNorm statistics ride in state.constants['batch_stats'] (updated by the step, not by gradients).
At the end the nets are exported to WORKDIR/analysis/{reconstructor,parser,identity}
(weights.load_role_net) and evaluated on held-out identities (WORKDIR/eval.json): coefficient error
per factor, pose error, landmark NME, parsing mIoU and identity verification (TAR at FAR 1e-3), each
beside its chance row (the held-out mean, the most frequent class per pixel, random embeddings).
"""
import collections
import functools
import json
import os

from absl import logging
import jax
import jax.numpy as jnp
import numpy as np
import optax

from faceshop_jax.world import portraits
from faceshop_jax import classes
from faceshop_jax import data as data_lib
from faceshop_jax import face_model
from faceshop_jax import geometry
from faceshop_jax import visualize
from faceshop_jax.analysis import bisenet
from faceshop_jax.analysis import deep3d
from faceshop_jax.analysis import iresnet
from faceshop_jax.analysis import reconstructor as reconstructor_lib
from faceshop_jax.analysis import weights
from faceshop_jax.face_model import prior as prior_lib
from faceshop_jax.train import stage as stage_lib
from faceshop_jax.train import state as state_lib

NETS = tuple(weights.ROLE_KINDS)  # ('reconstructor', 'parser', 'identity')
POSE = 'yaw_pitch'
_HELDOUT_SEED_OFFSET = 1 << 31  # held-out identities never meet training ones
_LEFT_EYE_CORNER, _RIGHT_EYE_CORNER = 36, 45  # NME normaliser: outer eye corners (300-W)


@functools.lru_cache(maxsize=1)
def _face_model() -> face_model.FaceModel:
  return face_model.load_embedded()


def net_configs(config) -> dict[str, dict]:
  """The saved-net configs (weights.save_analysis_net) of the three nets; JSON-serialisable."""
  nets, size = config.nets, config.data.resolution
  return {
      'reconstructor': {
          'backbone': nets.reconstructor.backbone.to_dict(), 'input_size': size, 'pose': POSE,
          'out_sizes': reconstructor_lib.head_sizes(_face_model(), POSE)},
      'parser': {'n_classes': classes.NUM_CLASSES, 'input_size': size,
                 'backbone': nets.parser.backbone.to_dict(),
                 **{k: nets.parser[k] for k in ('context_width', 'fuse_width', 'head_width',
                                                'aux_head_width')}},
      'identity': {'stage_blocks': list(nets.identity.stage_blocks), 'width': nets.identity.width,
                   'input_size': size, 'num_features': nets.identity.num_features},
  }


def trained_roles(config) -> tuple[str, ...]:
  """The nets this run trains: config.roles (all three by default; the judge preset only the
  reconstructor)."""
  return tuple(config.get('roles', NETS))


def modules(config) -> dict:
  configs = net_configs(config)
  return {name: weights.net_module(weights.ROLE_KINDS[name]).build(configs[name])
          for name in trained_roles(config)}


def check_config(config) -> None:
  unknown = set(trained_roles(config)) - set(NETS)
  if unknown or not trained_roles(config):
    raise ValueError(f'config.roles = {tuple(config.roles)} must name some of {NETS}.')
  if config.data.resolution % 32:
    raise ValueError(f'config.data.resolution = {config.data.resolution} must be a multiple of 32 '
                     '(BiSeNet downsamples 32x).')
  if config.batch_size % config.data.views:
    raise ValueError(f'config.batch_size = {config.batch_size} must be a multiple of '
                     f'config.data.views = {config.data.views} (whole identity groups).')
  if config.data.views < 2:
    raise ValueError('config.data.views must be >= 2: the identity loss needs two views a person.')


def _group_batch(config, first_seed: int, identities: int) -> dict[str, np.ndarray]:
  render = portraits.identity_group_renderer(config.data.resolution, config.data.views)
  seeds = np.arange(first_seed, first_seed + identities, dtype=np.uint32)
  out = jax.device_get(render(seeds))
  out['image'] = np.round(out['image'] * 255).astype(np.uint8)
  out['parsing'] = out['parsing'].astype(np.int32)
  return out


def make_data(config):
  identities = config.batch_size // jax.process_count() // config.data.views
  offset = config.seed * 10_000_019  # another seed, other people
  return data_lib.generated_batches(
      lambda i: _group_batch(config, offset + i * identities, identities))


def heldout_batches(config):
  """The held-out identity groups, in batches of config.batch_size portraits."""
  identities = config.batch_size // config.data.views
  for start in range(0, config.data.heldout_identities, identities):
    yield _group_batch(config, _HELDOUT_SEED_OFFSET + start, identities)


def reconstructor_targets(coeffs: jnp.ndarray, camera: jnp.ndarray) -> jnp.ndarray:
  """The 'yaw_pitch' heads' targets float32[B, sum(head_sizes)] of coeffs [B, D], cameras [B, 25]."""
  parts = _face_model().split_coeffs(coeffs)
  yaw, pitch = geometry.yaw_pitch_from_camera(camera)
  return jnp.concatenate([parts.identity, parts.expression, parts.texture, parts.gamma,
                          yaw[:, None], pitch[:, None]], axis=-1)


def init_constants(config) -> dict:
  """Mean and std of the reconstructor's targets over config.data.statistics_samples prior draws."""
  model, n = _face_model(), config.data.statistics_samples
  coeffs, camera = jax.jit(lambda key: prior_lib.sample_controls(key, model, n))(
      jax.random.PRNGKey(config.seed + 1))
  targets = reconstructor_targets(coeffs, camera)
  return {'target_mean': jnp.mean(targets, axis=0),
          'target_std': jnp.maximum(jnp.std(targets, axis=0), 1e-6)}


def init_state(config, rng, constants) -> state_lib.TrainState:
  nets = modules(config)
  size = config.data.resolution
  images = jnp.zeros((1, size, size, 3))
  inits = {'reconstructor': lambda key: nets['reconstructor'].init(key, images),
           'parser': lambda key: nets['parser'].init(key, images, with_aux=True),
           'identity': lambda key: nets['identity'].init(key, images)}
  variables = {name: inits[name](key) for name, key in zip(NETS, jax.random.split(rng, 3))
               if name in nets}
  opt = config.optimizer
  tx = optax.adamw(optax.cosine_decay_schedule(opt.learning_rate, config.num_train_steps),
                   weight_decay=opt.weight_decay)
  return state_lib.TrainState.create(
      params={name: v['params'] for name, v in variables.items()},
      tx={name: tx for name in variables}, rng=jax.random.fold_in(rng, 7),
      constants={**constants, 'batch_stats': {name: v['batch_stats'] for name, v in variables.items()}})


def _images(batch) -> jnp.ndarray:
  return batch['image'].astype(jnp.float32) / 127.5 - 1.0


def reconstructor_loss(config, outputs, batch, constants):
  """Standardised head regression + landmark error (fractions of the image side, squared)."""
  mean, std = constants['target_mean'], constants['target_std']
  target = (reconstructor_targets(batch['coeffs'], batch['camera']) - mean) / std
  # The expression head may weigh more: sparse β is the hardest factor to read (the judge preset).
  model = _face_model()
  head_weight = np.ones(target.shape[-1], np.float32)
  head_weight[model.n_id:model.n_id + model.n_exp] = config.loss.get('expression_weight', 1.0)
  regression = jnp.mean(jnp.square(outputs - target) * head_weight)
  size = config.data.resolution
  decoded = reconstructor_lib.decode_heads(outputs * std + mean, _face_model(), POSE, size, size)
  landmarks = jnp.mean(jnp.sum(jnp.square((decoded.landmarks - batch['landmarks']) / size), -1))
  total = regression + config.loss.landmark_weight * landmarks
  return total, {'regression': regression, 'landmarks': landmarks}


def parser_loss(logits, labels):
  """Cross-entropy of the main and both auxiliary heads (face-parsing.PyTorch trains on all)."""
  terms = [optax.softmax_cross_entropy_with_integer_labels(l, labels).mean() for l in logits]
  return sum(terms), {'main': terms[0]}


def identity_loss(embeddings, identity, views: int, scale: float, margin: float):
  """CosFace-style loss against prototypes of the batch's identities.

  embeddings: float32[G * views, F] unit-norm, grouped by identity (row g * views + v). The
  prototype of a sample's own identity leaves the sample out, so the loss cannot be met by
  remembering itself.
  """
  groups = embeddings.shape[0] // views
  sums = embeddings.reshape(groups, views, -1).sum(axis=1)  # [G, F]
  cos_all = embeddings @ iresnet.unit_norm(sums).T  # [N, G]
  own = iresnet.unit_norm(sums[identity] - embeddings)  # leave-one-out prototypes [N, F]
  cos_own = jnp.sum(embeddings * own, axis=-1)
  one_hot = jax.nn.one_hot(identity, groups)
  cos = jnp.where(one_hot > 0, cos_own[:, None], cos_all)
  logits = scale * (cos - margin * one_hot)
  loss = optax.softmax_cross_entropy_with_integer_labels(logits, identity).mean()
  return loss, {'accuracy': jnp.mean(jnp.argmax(cos, axis=-1) == identity)}


def train_step(config, state, batch, key):
  del key
  nets = modules(config)
  images = _images(batch)
  stats = state.constants['batch_stats']

  def run(name, params, *args, **kwargs):
    return nets[name].apply({'params': params, 'batch_stats': stats[name]}, *args, train=True,
                            mutable=['batch_stats'], **kwargs)

  def recon(params):
    outputs, updates = run('reconstructor', params,
                           deep3d.preprocess(nets['reconstructor'], images))
    loss, terms = reconstructor_loss(config, outputs, batch, state.constants)
    return loss, (terms, updates)

  def parse(params):
    logits, updates = run('parser', params, bisenet.preprocess(nets['parser'], images),
                          with_aux=True)
    loss, terms = parser_loss(logits, batch['parsing'])
    return loss, (terms, updates)

  def embed(params):
    features, updates = run('identity', params, iresnet.preprocess(nets['identity'], images))
    loss, terms = identity_loss(iresnet.unit_norm(features), batch['identity'], config.data.views,
                                config.loss.identity_scale, config.loss.identity_margin)
    return loss, (terms, updates)

  grads, metrics, new_stats = {}, {}, {}
  losses = {'reconstructor': recon, 'parser': parse, 'identity': embed}
  for name in trained_roles(config):
    fn = losses[name]
    (loss, (terms, updates)), grads[name] = jax.value_and_grad(fn, has_aux=True)(
        state.params[name])
    new_stats[name] = updates['batch_stats']
    metrics.update({f'{name}/loss': loss, **{f'{name}/{k}': v for k, v in terms.items()}})
  state = state.apply_gradients(grads)
  return state.replace(constants={**state.constants, 'batch_stats': new_stats}), metrics


def variables_of(state, name: str) -> dict:
  return jax.device_get({'params': state.params[name],
                         'batch_stats': state.constants['batch_stats'][name]})


def export(config, state, directory: str) -> None:
  """Writes the three nets to directory/{reconstructor,parser,identity}."""
  configs = net_configs(config)
  configs['reconstructor'].update(
      output_mean=np.asarray(state.constants['target_mean']).tolist(),
      output_std=np.asarray(state.constants['target_std']).tolist())
  for name in trained_roles(config):
    weights.save_analysis_net(os.path.join(directory, name), weights.ROLE_KINDS[name],
                              configs[name], variables_of(state, name))


@functools.lru_cache(maxsize=4)
def _evaluator(directory: str, roles: tuple[str, ...]):
  """Jitted held-out predictions of the `roles` nets saved in `directory`."""
  nets = {name: weights.load_role_net(directory, name) for name in roles}
  model = _face_model()

  @jax.jit
  def predict(images):
    out = {}
    if 'reconstructor' in nets:
      recon = reconstructor_lib.reconstruct_faces(nets['reconstructor'], model, images)
      out.update(coeffs=recon.coeffs, camera=recon.camera, landmarks=recon.landmarks)
    if 'parser' in nets:
      parser = nets['parser']
      out['parsing'] = jnp.argmax(bisenet.parse(parser.module, parser.variables, images), -1)
    if 'identity' in nets:
      identity = nets['identity']
      out['embedding'] = iresnet.embed(identity.module, identity.variables, images)
    return out

  return predict


def verification_tar(embeddings: np.ndarray, identity: np.ndarray, far: float) -> float:
  """True-accept rate at the threshold whose false-accept rate over all impostor pairs is `far`."""
  similarity = embeddings @ embeddings.T
  upper = np.triu_indices(len(identity), k=1)
  same = (identity[:, None] == identity[None, :])[upper]
  scores = similarity[upper]
  threshold = np.quantile(scores[~same], 1.0 - far)
  return float(np.mean(scores[same] > threshold))


def _landmark_nme(landmarks: np.ndarray, true_landmarks: np.ndarray) -> np.ndarray:
  """Per-portrait mean landmark distance [N] over the outer-eye-corner distance (300-W NME), of
  predicted landmarks [N, 68, 2] (or one answer [68, 2] for all) against true ones [N, 68, 2]."""
  ocular = np.linalg.norm(true_landmarks[:, _LEFT_EYE_CORNER] - true_landmarks[:, _RIGHT_EYE_CORNER],
                          axis=-1)
  return np.linalg.norm(landmarks - true_landmarks, axis=-1).mean(-1) / ocular


def _class_overlaps(labels: np.ndarray, true_labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """(intersection, union) pixel counts [NUM_CLASSES] of label maps [N, H, W] (or one map [H, W]
  for all) against true ones [N, H, W]."""
  labels = np.broadcast_to(labels, true_labels.shape)
  class_ids = np.arange(classes.NUM_CLASSES)[:, None, None, None]
  intersection = union = 0
  for start in range(0, len(true_labels), 64):  # [classes, 64, H, W] masks at a time
    a, b = labels[start:start + 64] == class_ids, true_labels[start:start + 64] == class_ids
    intersection = intersection + np.sum(a & b, axis=(1, 2, 3))
    union = union + np.sum(a | b, axis=(1, 2, 3))
  return intersection, union


def _miou(intersection: np.ndarray, union: np.ndarray) -> float:
  """Mean intersection over union of the classes present in either map."""
  present = union > 0
  return float(np.mean(intersection[present] / union[present]))


def evaluate(config, directory: str) -> dict[str, float]:
  """Held-out metrics of the nets this config trains, exported to `directory` (module docstring).

  Each metric stands beside its chance row, the best constant answer on the same portraits or a
  random one: `*_of_mean` predicts the held-out mean (coefficients, yaw and pitch, the landmark
  shape), `parser/miou_of_mode` the per-pixel most frequent class, and
  `identity/tar_at_far_1e-3_of_random` scores random unit embeddings (about the FAR itself).
  """
  roles = trained_roles(config)
  predict = _evaluator(os.path.abspath(directory), roles)
  model = _face_model()
  rows = collections.defaultdict(list)
  for group, batch in enumerate(heldout_batches(config)):
    out = jax.device_get(predict(_images(batch)))
    if 'reconstructor' in roles:
      rows['coeffs'].append(out['coeffs'])
      rows['true_coeffs'].append(batch['coeffs'])
      rows['yaw_pitch'].append(np.stack(geometry.yaw_pitch_from_camera(out['camera']), -1))
      rows['true_yaw_pitch'].append(np.stack(geometry.yaw_pitch_from_camera(batch['camera']), -1))
      rows['landmarks'].append(out['landmarks'])
      rows['true_landmarks'].append(batch['landmarks'])
    if 'parser' in roles:
      rows['parsing'].append(out['parsing'])
      rows['true_parsing'].append(batch['parsing'])
    if 'identity' in roles:
      rows['embedding'].append(out['embedding'])
      rows['identity'].append(batch['identity'] + group * config.batch_size)
    rows['portraits'].append(batch['image'].shape[0])
  cat = {k: np.concatenate(v) for k, v in rows.items() if k != 'portraits'}
  results = {'heldout_portraits': int(np.sum(rows['portraits']))}
  if 'reconstructor' in roles:
    pred, true = model.split_coeffs(cat['coeffs']), model.split_coeffs(cat['true_coeffs'])
    for factor in ('identity', 'expression', 'texture', 'gamma'):
      p, t = np.asarray(getattr(pred, factor)), np.asarray(getattr(true, factor))
      results[f'reconstructor/{factor}_mae'] = float(np.mean(np.abs(p - t)))
      results[f'reconstructor/{factor}_mae_of_mean'] = float(np.mean(np.abs(t - t.mean(0))))
    true_pose = cat['true_yaw_pitch']
    for answer, pose in (('', cat['yaw_pitch']), ('_of_mean', true_pose.mean(0))):
      pose_error = np.degrees(np.abs(pose - true_pose)).mean(0)
      results[f'reconstructor/yaw_error_degrees{answer}'] = float(pose_error[0])
      results[f'reconstructor/pitch_error_degrees{answer}'] = float(pose_error[1])
    true_landmarks = cat['true_landmarks']
    results['reconstructor/landmark_nme'] = float(np.mean(_landmark_nme(cat['landmarks'],
                                                                       true_landmarks)))
    results['reconstructor/landmark_nme_of_mean'] = float(np.mean(_landmark_nme(
        true_landmarks.mean(0), true_landmarks)))
  if 'parser' in roles:
    true_parsing = cat['true_parsing']
    counts = np.stack([np.sum(true_parsing == c, axis=0) for c in range(classes.NUM_CLASSES)])
    results['parser/miou'] = _miou(*_class_overlaps(cat['parsing'], true_parsing))
    results['parser/miou_of_mode'] = _miou(*_class_overlaps(np.argmax(counts, 0), true_parsing))
  if 'identity' in roles:
    embedding, identity = cat['embedding'], cat['identity']
    results['identity/tar_at_far_1e-3'] = verification_tar(embedding, identity, 1e-3)
    noise = np.random.default_rng(0).standard_normal(embedding.shape)
    results['identity/tar_at_far_1e-3_of_random'] = verification_tar(
        noise / np.linalg.norm(noise, axis=-1, keepdims=True), identity, 1e-3)
  return results


def summaries(config, state, batch) -> dict:
  """Training portraits | parser's labels | true labels (without a parser: portraits | labels)."""
  nets = modules(config)
  images = _images(batch)[:8]
  rows = [visualize.to_uint8(np.asarray(images), -1, 1)]
  if 'parser' in nets:
    logits = nets['parser'].apply(variables_of(state, 'parser'),
                                  bisenet.preprocess(nets['parser'], images))
    rows.append(classes.colorize(np.argmax(np.asarray(logits), -1)))
  rows.append(classes.colorize(np.asarray(batch['parsing'][:8])))
  return {'images': {'portraits_parsed_truth': visualize.image_grid(np.stack(rows))}}


def finish(config, workdir: str, state) -> None:
  """Exports the nets and writes the held-out evaluation (primary host only)."""
  if jax.process_index() != 0:
    return
  directory = os.path.join(workdir, 'analysis')
  export(config, state, directory)
  results = evaluate(config, directory)
  with open(os.path.join(workdir, 'eval.json'), 'w') as f:
    json.dump(results, f, indent=2, sort_keys=True)
  logging.info('Held-out evaluation: %s', results)


# What the console's last line tells a person to run next.
NEXT_STEPS = ('the nets are in {workdir}/analysis (pass it as --config.imitative.analysis_dir, or '
              'to evaluate as --judge)')


STAGE = stage_lib.Stage(name='analysis', check_config=check_config, make_data=make_data,
                        init_constants=init_constants, init_state=init_state,
                        train_step=train_step, summaries=summaries, finish=finish,
                        next_steps=NEXT_STEPS)
