"""Control accuracy (paper §5.4.2): AED, APD, AID.

Following the paper (after DiscoFaceGAN): draw `identities` people, show each under `variations`
random expressions, poses and illuminations from the control prior, generate the images, read them
back with a face reconstructor, and average the distance between the controls put in and those
reconstructed:
  AED  mean ‖β − β̂‖₂ over images (expression coefficients)
  APD  mean ‖(yaw, pitch) − (ŷaw, p̂itch)‖₂ (radians; pose lives in the camera here)
  AID  mean ‖γ − γ̂‖₂ (27 SH coefficients)
Lower is better. The numbers depend on the reconstructor: ours are measured with the in-domain
reconstructor on the synthetic world and are not comparable with the paper's Deep3DFaceRecon/FFHQ
numbers.
"""
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from faceshop_jax import face_model
from faceshop_jax import geometry
from faceshop_jax.analysis import reconstructor as reconstructor_lib
from faceshop_jax.face_model import prior as prior_lib

# generate(coeffs [n, D], camera [n, 25], key) -> images float32[n, H, W, 3] on [-1, 1]
GenerateFn = Callable[[jax.Array, jax.Array, jax.Array], jax.Array]
# reconstruct(images) -> Reconstruction
ReconstructFn = Callable[[jax.Array], reconstructor_lib.Reconstruction]


def evaluation_controls(key, model: face_model.FaceModel, identities: int, variations: int):
  """Coefficients [identities · variations, D] and cameras: each identity (κ) under `variations`
  prior draws of β, γ and camera (row i · variations + v)."""
  key_people, key_variations = jax.random.split(key)
  people, _ = prior_lib.sample_controls(key_people, model, identities)
  n = identities * variations
  coeffs, camera = prior_lib.sample_controls(key_variations, model, n)
  return prior_lib.with_identity(model, coeffs, jnp.repeat(people, variations, axis=0)), camera


def control_distances(model: face_model.FaceModel, coeffs, camera,
                      reconstruction: reconstructor_lib.Reconstruction) -> dict[str, np.ndarray]:
  """Per-image expression, pose and illumination distances [n] (see the module docstring)."""
  true, pred = model.split_coeffs(coeffs), model.split_coeffs(reconstruction.coeffs)
  pose = jnp.stack(geometry.yaw_pitch_from_camera(camera), -1)
  pose_hat = jnp.stack(geometry.yaw_pitch_from_camera(reconstruction.camera), -1)
  return {'AED': np.asarray(jnp.linalg.norm(true.expression - pred.expression, axis=-1)),
          'APD': np.asarray(jnp.linalg.norm(pose - pose_hat, axis=-1)),
          'AID': np.asarray(jnp.linalg.norm(true.gamma - pred.gamma, axis=-1))}


def control_accuracy(generate: GenerateFn, reconstruct: ReconstructFn, model: face_model.FaceModel,
                     key, identities: int = 1000, variations: int = 10,
                     batch_size: int = 16) -> dict[str, float]:
  """{'AED', 'APD', 'AID'} means, and 'images' (the count), of a generator's control accuracy."""
  key_controls, key_generate = jax.random.split(key)
  coeffs, camera = evaluation_controls(key_controls, model, identities, variations)
  distances = {k: [] for k in ('AED', 'APD', 'AID')}
  n = coeffs.shape[0]
  for start in range(0, n, batch_size):
    c, cam = coeffs[start:start + batch_size], camera[start:start + batch_size]
    images = generate(c, cam, jax.random.fold_in(key_generate, start))
    for k, v in control_distances(model, c, cam, reconstruct(images)).items():
      distances[k].append(v)
  results = {k: float(np.mean(np.concatenate(v))) for k, v in distances.items()}
  results['images'] = n
  return results
