"""Disentanglement (paper §5.4.3, Eq. 25, Tables 3 and 5): DS and IS, beside chance and ceiling;
and the non-face error of an edit (Fig. 3).

The protocol (after DiscoFaceGAN): draw `bases` source portraits from the control prior; for each
factor i of FACTORS (expression β, pose = the camera's (yaw, pitch), illumination γ) redraw only i
from the prior `variations` times, everything else fixed (identity, the other factors, and the
noise / scene: each source and its edits share the generator's key). Every image is read by the
judge (a reconstructor trained apart from every net a loss uses), never by a loss net:
  DS_i  Π_{j≠i} σ_i/σ_j (Eq. 25) over i's edits, where σ_j is the spread of the judge's reading
        of attribute j: the per-source variance across the edits (ddof 1), averaged over sources,
        each dimension divided by that dimension's variance over the prior's own draws (the paper
        divides by the FFHQ variance; our data is the prior), then averaged over dimensions.
        σ_j ≈ 1 when j moves as much as across the prior. Higher is better: only i moves.
  IS    mean cosine between the source's and each edit's identity as the judge reads it, averaged
        over every edit. The paper embeds faces with a face-recognition net; our judge has only a
        reconstructor, so the identity is κ̂ = (α̂, δ̂) standardised by the prior's mean and
        spread, as control_accuracy's IDS is.
`disentanglement_report` scores the same controls three ways:
  chance     the entangled reference: every edit redraws every factor (and the scene), i.e. the
             world's exact renders of independent prior draws, unrelated people. Its σ's are one
             set, so Π_i DS_i = 1: DS about 1 is no disentanglement.
  ceiling    the judge on the world's exact renders of the single-factor edits: as disentangled
             as the world is, as far as the judge can tell (its reading noise bounds DS).
  generated  the judge on the generator's images of the same edits.
and the normalised score (control_accuracy.normalised_score; 0 at chance, 1 at the ceiling), of
log DS for the DS columns (DS is a ratio of products spanning orders of magnitude) and of IS.
A raw DS also says how much of each attribute the judge reads at all (our 64² judge reads back a
few percent of β's prior variance, most of the pose's), which the chance row measures: log DS −
log DS_chance is log DS with every σ divided by the judge's own chance σ instead.
Numbers depend on the judge and the prior: not comparable with the paper's Deep3DFaceRecon/FFHQ
numbers.

The non-face error (Fig. 3: an expression edit should leave hair, shoulders and background alone)
is measured in [0, 1] units (a fraction of the full intensity range; × 255 for grey levels): per
pixel, half the channel mean of |edited − source| of images on [-1, 1].
"""
import functools
from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np

from faceshop_jax import classes
from faceshop_jax import face_model
from faceshop_jax import geometry
from faceshop_jax import models
from faceshop_jax.eval import control_accuracy
from faceshop_jax.face_model import prior as prior_lib
from faceshop_jax.losses import disentangle as losses

FACTORS = ('expression', 'pose', 'illumination')
METRICS = tuple(f'DS_{factor}' for factor in FACTORS) + ('IS',)
ROWS = ('chance', 'ceiling', 'generated', 'normalised')


class PriorStatistics(NamedTuple):
  """attribute_variance: FACTORS entry -> variance [dims] over the prior's draws;
  identity_mean, identity_std [n_id + n_tex]: κ's mean and spread over the same draws."""
  attribute_variance: dict[str, np.ndarray]
  identity_mean: np.ndarray
  identity_std: np.ndarray


def attributes(model: face_model.FaceModel, coeffs, camera) -> dict[str, np.ndarray]:
  """{'expression': β [n, n_exp], 'pose': (yaw, pitch) [n, 2] radians, 'illumination': γ [n, 27],
  'identity': κ [n, n_id + n_tex]} of coefficients [n, D] and cameras [n, 25] (put in or read)."""
  parts = model.split_coeffs(coeffs)
  return {'expression': np.asarray(parts.expression),
          'pose': np.stack([np.asarray(a) for a in geometry.yaw_pitch_from_camera(camera)], -1),
          'illumination': np.asarray(parts.gamma),
          'identity': control_accuracy.identity_vector(model, coeffs)}


def prior_statistics(key, model: face_model.FaceModel, samples: int) -> PriorStatistics:
  """The prior's variance of each attribute and κ's mean and spread, from `samples` draws."""
  coeffs, camera = prior_lib.sample_controls(key, model, samples)
  values = attributes(model, coeffs, camera)
  kappa = values['identity']
  return PriorStatistics({factor: values[factor].var(0) for factor in FACTORS}, kappa.mean(0),
                         np.maximum(kappa.std(0), 1e-6))


def single_factor_edits(key, model: face_model.FaceModel, coeffs, camera, factor: str,
                        variations: int):
  """coeffs [n, D], camera [n, 25] -> (coeffs [n, variations, D], camera [n, variations, 25]):
  each row `variations` times with only `factor` (a FACTORS entry) redrawn from the prior."""
  n = coeffs.shape[0]
  coeffs = jnp.broadcast_to(coeffs[:, None], (n, variations, coeffs.shape[-1]))
  camera = jnp.broadcast_to(camera[:, None], (n, variations, camera.shape[-1]))
  fresh_coeffs, fresh_camera = prior_lib.sample_controls(key, model, n * variations)
  if factor == 'pose':
    return coeffs, fresh_camera.reshape(camera.shape)
  return prior_lib.with_factor(model, coeffs, fresh_coeffs.reshape(coeffs.shape), factor), camera


def edit_controls(key, model: face_model.FaceModel, bases: int, variations: int) -> dict:
  """The protocol's controls: 'source' -> (coeffs [bases, D], camera [bases, 25]) from the prior;
  each FACTORS entry -> (coeffs [bases, variations, D], camera [bases, variations, 25]), the
  sources with only that factor redrawn; 'everything' -> the same shapes of independent prior
  draws (the entangled reference)."""
  key_source, key_everything, *key_factors = jax.random.split(key, 2 + len(FACTORS))
  source = prior_lib.sample_controls(key_source, model, bases)
  controls = {'source': source}
  for factor, key_factor in zip(FACTORS, key_factors):
    controls[factor] = single_factor_edits(key_factor, model, *source, factor, variations)
  coeffs, camera = prior_lib.sample_controls(key_everything, model, bases * variations)
  controls['everything'] = (coeffs.reshape(bases, variations, -1),
                            camera.reshape(bases, variations, -1))
  return controls


def attribute_spread(readings: dict[str, np.ndarray],
                     prior_variance: dict[str, np.ndarray]) -> dict[str, float]:
  """σ_j for each FACTORS entry j (module docstring): readings[j] [bases, variations, dims] of one
  factor's edits, prior_variance[j] [dims]."""
  return {j: float(np.mean(readings[j].var(axis=1, ddof=1).mean(0) / prior_variance[j]))
          for j in FACTORS}


def disentanglement_score(spread: dict[str, float], factor: str) -> float:
  """DS_i = Π_{j≠i} σ_i/σ_j (Eq. 25) of the spreads σ (FACTORS entry -> float) of i's edits."""
  return float(np.prod([spread[factor] / spread[j] for j in FACTORS if j != factor]))


def identity_similarity(source_identity: np.ndarray, edited_identity: np.ndarray,
                        statistics: PriorStatistics) -> float:
  """Mean standardised cosine of κ̂ of each source [bases, K] and of its edits
  [bases, variations, K]."""
  bases, variations, size = edited_identity.shape
  chex.assert_shape(source_identity, (bases, size))
  return float(np.mean(control_accuracy.standardised_cosine(
      np.repeat(source_identity, variations, axis=0), edited_identity.reshape(-1, size),
      statistics.identity_mean, statistics.identity_std)))


def protocol_scores(source: dict[str, np.ndarray], edits: dict[str, dict[str, np.ndarray]],
                    statistics: PriorStatistics) -> dict[str, float]:
  """{metric: value} of METRICS from the judge's readings (attributes) of the sources [bases, ...]
  and of each factor's edits (FACTORS entry -> readings [bases, variations, ...])."""
  scores = {f'DS_{factor}': disentanglement_score(
      attribute_spread(edits[factor], statistics.attribute_variance), factor)
            for factor in FACTORS}
  scores['IS'] = float(np.mean([
      identity_similarity(source['identity'], edits[factor]['identity'], statistics)
      for factor in FACTORS]))
  return scores


def _judge_readings(render: control_accuracy.GenerateFn,
                    reconstruct: control_accuracy.ReconstructFn, model: face_model.FaceModel,
                    coeffs, camera, key, batch_size: int) -> dict[str, np.ndarray]:
  """The judge's attributes [n, ...] of render(coeffs [n, D], camera [n, 25]), batch_size rows at
  a time, the batch from row s rendered with fold_in(key, s): calls with the same key and n give
  each row the same noise and scene."""
  batches = []
  for start in range(0, coeffs.shape[0], batch_size):
    images = render(coeffs[start:start + batch_size], camera[start:start + batch_size],
                    jax.random.fold_in(key, start))
    reconstruction = reconstruct(images)
    batches.append(attributes(model, reconstruction.coeffs, reconstruction.camera))
  return {k: np.concatenate([batch[k] for batch in batches]) for k in batches[0]}


def _edit_readings(read, coeffs, camera, keys) -> dict[str, np.ndarray]:
  """read's attributes [bases, variations, ...] of coeffs [bases, variations, D] and camera
  [bases, variations, 25], variation v rendered with keys[v]."""
  per_variation = [read(coeffs=coeffs[:, v], camera=camera[:, v], key=key)
                   for v, key in enumerate(keys)]
  return {k: np.stack([r[k] for r in per_variation], 1) for k in per_variation[0]}


def disentanglement_report(generate: control_accuracy.GenerateFn,
                           exact_render: control_accuracy.GenerateFn,
                           reconstruct: control_accuracy.ReconstructFn,
                           model: face_model.FaceModel, key, bases: int = 1000,
                           variations: int = 2, batch_size: int = 16,
                           prior_samples: int = 10_000) -> dict:
  """{'chance' | 'ceiling' | 'generated' | 'normalised': {metric: value}, 'images': n}, n the
  images each of generate and exact_render makes (module docstring; defaults: the paper's 1,000
  sources and two edits each).

  generate and exact_render get the same controls, cameras and keys; a source and its edits share
  their key. exact_render draws the synthetic world's portrait of them (hair, clothes, background
  from the key): the ceiling, and with independent keys the chance row.

  Raises:
    ValueError: variations < 2 (a variance across edits needs two).
  """
  if variations < 2:
    raise ValueError(f'DS needs at least 2 variations per source (a variance); got {variations}.')
  key_prior, key_controls, key_scene, key_unrelated = jax.random.split(key, 4)
  statistics = prior_statistics(key_prior, model, prior_samples)
  controls = edit_controls(key_controls, model, bases, variations)
  same_scene = [key_scene] * variations
  report, sources = {}, {}
  for row, render in (('ceiling', exact_render), ('generated', generate)):
    read = functools.partial(_judge_readings, render, reconstruct, model, batch_size=batch_size)
    sources[row] = read(*controls['source'], key_scene)
    edits = {factor: _edit_readings(read, *controls[factor], same_scene) for factor in FACTORS}
    report[row] = protocol_scores(sources[row], edits, statistics)
  read_exact = functools.partial(_judge_readings, exact_render, reconstruct, model,
                                 batch_size=batch_size)
  unrelated = _edit_readings(read_exact, *controls['everything'],
                             [jax.random.fold_in(key_unrelated, v) for v in range(variations)])
  report['chance'] = protocol_scores(sources['ceiling'], dict.fromkeys(FACTORS, unrelated),
                                     statistics)
  report['normalised'] = {
      metric: control_accuracy.normalised_score(
          *(np.log(report[row][metric]) for row in ('chance', 'ceiling', 'generated')))
      for metric in METRICS if metric != 'IS'}
  report['normalised']['IS'] = control_accuracy.normalised_score(
      report['chance']['IS'], report['ceiling']['IS'], report['generated']['IS'])
  report['images'] = bases * (1 + len(FACTORS) * variations)
  return {k: report[k] for k in ROWS + ('images',)}


def format_report(report: dict) -> str:
  """The report as a plain-text table: one line per ROWS entry, one column per metric."""
  return control_accuracy.format_report(report, ROWS, METRICS)


def generator_report(config, generator_variables, judge: str, bases: int, variations: int,
                     seed: int = 0) -> dict:
  """disentanglement_report of a generator stage's generator (its config and variables
  {'params', ...}), read by the reconstructor of `judge` (a directory of role nets or a packaged
  name)."""
  model = face_model.load(config.data.face_model)
  return disentanglement_report(
      control_accuracy.generator_images(config, generator_variables),
      control_accuracy.world_renderer(config.data.face_model, config.model.sr_resolution),
      control_accuracy.judge_reconstructor(judge, model), model, jax.random.PRNGKey(seed), bases,
      variations)


def pixel_error(source, edited) -> jax.Array:
  """Per-pixel error [B, H, W] in [0, 1] units: the channel mean of |edited − source| / 2, images
  [B, H, W, C] on [-1, 1]."""
  chex.assert_rank(source, 4)
  chex.assert_equal_shape([source, edited])
  return jnp.mean(jnp.abs(edited - source), axis=-1) / 2.0


def error_map(source, edited) -> jax.Array:
  """Fig. 3's error map [H, W]: pixel_error averaged over a batch of source/edited pairs
  [B, H, W, C] on [-1, 1]."""
  return jnp.mean(pixel_error(source, edited), axis=0)


def nonface_error(source, edited, face_probability) -> jax.Array:
  """Mean pixel_error [] outside the face, over a batch of source/edited pairs [B, H, W, C] on
  [-1, 1]: each pixel weighted by 1 − face_probability [B, H, W] (the source's probability of the
  face classes at that pixel, at the image's size), so a hard mask gives the plain mean over
  non-face pixels."""
  chex.assert_shape(face_probability, source.shape[:3])
  outside = 1.0 - face_probability
  return jnp.sum(outside * pixel_error(source, edited)) / jnp.maximum(jnp.sum(outside), 1e-8)


def expression_edit_errors(config, generator_variables, sources: int, seed: int = 0,
                           batch_size: int = 16) -> dict:
  """Fig. 3 for a generator stage's generator: the non-face error of expression edits.

  `sources` portraits (controls, noise and cameras from the prior) each get their expression β
  redrawn and are rendered three ways: whole (the new controls rendered as they are), blended (the
  edit volume-blended into the source, TriPlaneGenerator.edit), and, for chance, another portrait
  drawn independently. Non-face pixels are those neither the source nor the whole edit renders as
  face (the union of their face masses: a mouth that opens moves the face's border).

  Returns:
    {'unblended' | 'blended' | 'chance': mean non-face error in [0, 1] units, 'sources': n,
     'maps': {'unblended' | 'blended': error_map [R, R] over the whole image}}.
  """
  model = face_model.load(config.data.face_model)
  sample, blended_sample = models.sampler(config), models.blended_sampler(config)
  totals = {'unblended': 0.0, 'blended': 0.0, 'chance': 0.0}
  maps = {'unblended': 0.0, 'blended': 0.0}
  for start in range(0, sources, batch_size):
    n = min(batch_size, sources - start)
    key_source, key_edit, key_noise, key_other = jax.random.split(
        jax.random.fold_in(jax.random.PRNGKey(seed), start), 4)
    coeffs, camera = prior_lib.sample_controls(key_source, model, n)
    edited = prior_lib.with_factor(model, coeffs, prior_lib.sample_controls(key_edit, model, n)[0],
                                   'expression')
    other = prior_lib.sample_controls(key_other, model, n)[0]
    noise = jax.random.normal(key_noise, (2, n, config.model.noise_dim))
    z_source, z_edited, z_other = (models.control_vector(config, c, e) for c, e in
                                   ((coeffs, noise[0]), (edited, noise[0]), (other, noise[1])))
    source, whole = sample(generator_variables, z_source, camera), sample(
        generator_variables, z_edited, camera)
    images = {'unblended': whole['image'],
              'blended': blended_sample(generator_variables, z_edited, z_source, camera)['image'],
              'chance': sample(generator_variables, z_other, camera)['image']}
    size = source['image'].shape[1:3]
    face = jnp.maximum(*(losses.class_probability(out['semantics'], classes.FACE, size)
                         for out in (source, whole)))
    for name, image in images.items():
      totals[name] += n * float(nonface_error(source['image'], image, face))
      if name in maps:
        maps[name] += n * np.asarray(error_map(source['image'], image))
  return {**{name: total / sources for name, total in totals.items()}, 'sources': sources,
          'maps': {name: value / sources for name, value in maps.items()}}
