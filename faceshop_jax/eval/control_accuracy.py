"""Control accuracy (paper §5.4.2): AED, APD, AID and an identity similarity, beside chance and floor.

Following the paper (after DiscoFaceGAN): draw `identities` people, show each under `variations`
random expressions, poses and illuminations from the control prior, generate the images, read them
back with a face reconstructor (the *judge*: trained apart from every net a loss uses), and compare
the controls put in with those read back:
  AED  mean ‖β − β̂‖₂ over images (expression coefficients)             lower is better
  APD  mean ‖(yaw, pitch) − (ŷaw, p̂itch)‖₂ (radians; pose is the camera)  lower is better
  AID  mean ‖γ − γ̂‖₂ (27 SH coefficients)                                lower is better
  IDS  mean cosine of κ̂ − κ̄ and κ − κ̄, κ = (α, δ) standardised by the evaluation set's mean
       κ̄ and spread: does the judge read this person's identity           higher is better
A lone number says little, so `control_report` scores the same controls three ways:
  chance     a constant answer for every image (the evaluation set's mean controls)
  floor      the judge on the synthetic world's exact renders of the same controls and cameras
  generated  the judge on the generator's images
and the normalised score (chance − generated) / (chance − floor): 0 is no control, 1 is as
readable as the exact renders. Numbers depend on the judge: ours are measured with an in-domain
reconstructor on the synthetic world and are not comparable with the paper's Deep3DFaceRecon/FFHQ
numbers.
"""
from collections.abc import Callable
import functools

import jax
import jax.numpy as jnp
import numpy as np

from faceshop_jax import face_model
from faceshop_jax import geometry
from faceshop_jax import models
from faceshop_jax.analysis import reconstructor as reconstructor_lib
from faceshop_jax.analysis import weights
from faceshop_jax.face_model import prior as prior_lib
from faceshop_jax.world import portraits

# generate(coeffs [n, D], camera [n, 25], key) -> images float32[n, H, W, 3] on [-1, 1]
GenerateFn = Callable[[jax.Array, jax.Array, jax.Array], jax.Array]
# reconstruct(images) -> Reconstruction
ReconstructFn = Callable[[jax.Array], reconstructor_lib.Reconstruction]

METRICS = ('AED', 'APD', 'AID', 'IDS')
ROWS = ('chance', 'floor', 'generated', 'normalised')


def evaluation_controls(key, model: face_model.FaceModel, identities: int, variations: int):
  """Coefficients [identities · variations, D] and cameras: each identity (κ) under `variations`
  prior draws of β, γ and camera (row i · variations + v)."""
  key_people, key_variations = jax.random.split(key)
  people, _ = prior_lib.sample_controls(key_people, model, identities)
  n = identities * variations
  coeffs, camera = prior_lib.sample_controls(key_variations, model, n)
  return prior_lib.with_identity(model, coeffs, jnp.repeat(people, variations, axis=0)), camera


def identity_vector(model: face_model.FaceModel, coeffs) -> np.ndarray:
  """κ = (α, δ) [n, n_id + n_tex] of coefficients [n, D]."""
  parts = model.split_coeffs(coeffs)
  return np.concatenate([np.asarray(parts.identity), np.asarray(parts.texture)], axis=-1)


def standardised_cosine(kappa: np.ndarray, kappa_hat: np.ndarray, identity_mean: np.ndarray,
                        identity_std: np.ndarray) -> np.ndarray:
  """Cosines [n] of κ and κ̂ [n, K], each standardised by identity_mean, identity_std [K] first."""
  kappa = (kappa - identity_mean) / identity_std
  kappa_hat = (kappa_hat - identity_mean) / identity_std
  return np.sum(kappa * kappa_hat, -1) / np.maximum(
      np.linalg.norm(kappa, axis=-1) * np.linalg.norm(kappa_hat, axis=-1), 1e-8)


def control_distances(model: face_model.FaceModel, coeffs, camera,
                      reconstruction: reconstructor_lib.Reconstruction,
                      identity_mean: np.ndarray, identity_std: np.ndarray) -> dict[str, np.ndarray]:
  """Per-image AED, APD, AID distances and IDS similarities [n] (module docstring); κ is
  standardised by identity_mean, identity_std [n_id + n_tex]."""
  true, pred = model.split_coeffs(coeffs), model.split_coeffs(reconstruction.coeffs)
  pose = jnp.stack(geometry.yaw_pitch_from_camera(camera), -1)
  pose_hat = jnp.stack(geometry.yaw_pitch_from_camera(reconstruction.camera), -1)
  cosine = standardised_cosine(identity_vector(model, coeffs),
                               identity_vector(model, reconstruction.coeffs), identity_mean,
                               identity_std)
  return {'AED': np.asarray(jnp.linalg.norm(true.expression - pred.expression, axis=-1)),
          'APD': np.asarray(jnp.linalg.norm(pose - pose_hat, axis=-1)),
          'AID': np.asarray(jnp.linalg.norm(true.gamma - pred.gamma, axis=-1)),
          'IDS': cosine}


def constant_reconstruction(model: face_model.FaceModel, coeffs, camera
                            ) -> reconstructor_lib.Reconstruction:
  """The chance predictor: the mean coefficients and mean (yaw, pitch) of the set, for every image."""
  n = coeffs.shape[0]
  yaw, pitch = geometry.yaw_pitch_from_camera(camera)
  mean_camera = geometry.camera_from_yaw_pitch(jnp.full(n, jnp.mean(yaw)),
                                               jnp.full(n, jnp.mean(pitch)))
  return reconstructor_lib.Reconstruction(
      coeffs=jnp.broadcast_to(jnp.mean(coeffs, axis=0), coeffs.shape), camera=mean_camera,
      landmarks=jnp.zeros((n, 68, 2)))


def normalised_score(chance: float, floor: float, value: float) -> float:
  """(chance − value) / (chance − floor): 0 at chance, 1 at the floor (either orientation)."""
  return float((chance - value) / (chance - floor)) if chance != floor else float('nan')


def control_report(generate: GenerateFn, exact_render: GenerateFn, reconstruct: ReconstructFn,
                   model: face_model.FaceModel, key, identities: int = 1000, variations: int = 10,
                   batch_size: int = 16) -> dict:
  """{'chance' | 'floor' | 'generated' | 'normalised': {metric: value}, 'images': n}.

  generate and exact_render get the same controls, cameras and keys: exact_render draws the
  synthetic world's portrait of them (hair, clothes, background from the key), the floor.
  """
  key_controls, key_generate = jax.random.split(key)
  coeffs, camera = evaluation_controls(key_controls, model, identities, variations)
  kappa = identity_vector(model, coeffs)
  kappa_mean, kappa_std = kappa.mean(0), np.maximum(kappa.std(0), 1e-6)
  n = coeffs.shape[0]
  per_image = {row: {k: [] for k in METRICS} for row in ('floor', 'generated')}
  for start in range(0, n, batch_size):
    c, cam = coeffs[start:start + batch_size], camera[start:start + batch_size]
    batch_key = jax.random.fold_in(key_generate, start)
    for row, make in (('floor', exact_render), ('generated', generate)):
      distances = control_distances(model, c, cam, reconstruct(make(c, cam, batch_key)),
                                    kappa_mean, kappa_std)
      for k, v in distances.items():
        per_image[row][k].append(v)
  report = {row: {k: float(np.mean(np.concatenate(v))) for k, v in metrics.items()}
            for row, metrics in per_image.items()}
  chance = control_distances(model, coeffs, camera, constant_reconstruction(model, coeffs, camera),
                             kappa_mean, kappa_std)
  report['chance'] = {k: float(np.mean(v)) for k, v in chance.items()}
  report['normalised'] = {k: normalised_score(report['chance'][k], report['floor'][k],
                                              report['generated'][k]) for k in METRICS}
  report['images'] = n
  return {k: report[k] for k in ROWS + ('images',)}


def format_report(report: dict, rows=ROWS, metrics=METRICS) -> str:
  """The report as a plain-text table: one line per row, one column per metric."""
  width = max(10, max(len(m) for m in metrics) + 2)
  lines = [f'{"":12s}' + ''.join(f'{m:>{width}s}' for m in metrics)]
  for row in rows:
    lines.append(f'{row:12s}' + ''.join(f'{report[row][m]:{width}.3f}' for m in metrics))
  return '\n'.join(lines)


@functools.lru_cache(maxsize=4)
def world_renderer(face_model_spec: str, size: int):
  """A jitted exact_render(coeffs [n, D], camera [n, 25], key) -> the synthetic world's portraits
  of those controls on [-1, 1] at size² (world.portraits.render_controls), for the floor row."""
  model = face_model.load(face_model_spec)
  scene = portraits.build_scene(model)

  @jax.jit
  def render(coeffs, camera, key):
    keys = jax.random.split(key, (coeffs.shape[0], 2))
    out = jax.vmap(lambda k, c, cam: portraits.render_controls(k[0], k[1], model, scene, c, cam,
                                                               size))(keys, coeffs, camera)
    return out['image'] * 2.0 - 1.0

  return render


def generator_images(config, generator_variables) -> GenerateFn:
  """generate(coeffs, camera, key): a generator stage's images of those controls, ε ~ N(0, I) from
  the key, conditioned on and rendered through the camera (models.sampler)."""
  sample = models.sampler(config)

  def generate(coeffs, camera, key):
    noise = jax.random.normal(key, (coeffs.shape[0], config.model.noise_dim))
    return sample(generator_variables, models.control_vector(config, coeffs, noise),
                  camera)['image']

  return generate


def judge_reconstructor(judge: str, model: face_model.FaceModel) -> ReconstructFn:
  """The jitted reconstruct of `judge`'s reconstructor (a directory of role nets or a packaged
  name) for `model`."""
  judge_net = weights.load_role_net(judge, 'reconstructor')
  return jax.jit(lambda images: reconstructor_lib.reconstruct_faces(judge_net, model, images))


def generator_report(config, generator_variables, judge: str, identities: int, variations: int,
                     seed: int = 0) -> dict:
  """control_report of a generator stage's generator (its config and variables {'params', ...}),
  read by the reconstructor of `judge` (a directory of role nets or a packaged name)."""
  model = face_model.load(config.data.face_model)
  return control_report(generator_images(config, generator_variables),
                        world_renderer(config.data.face_model, config.model.sr_resolution),
                        judge_reconstructor(judge, model), model, jax.random.PRNGKey(seed),
                        identities, variations)
