"""A structured, deliberately non-Gaussian prior over the controls of the synthetic portrait world.

The synthetic world draws its ground truth from here, and the control-space stage (VAE-GANs over
κ, β, γ) learns to sample it; a plain Gaussian would make that stage pointless. The structure:
- identity κ = (α, δ): a mixture of `identity_clusters` populations; each cluster has its own mean
  shape offset and skin tone (the first `tone_components` albedo components), so shape and albedo
  are correlated through the cluster;
- expression β: sparse mixtures of named ARKit archetypes (smile, laugh, surprise, anger, sadness,
  disgust, blink, wink, jaw open, visemes, pucker, …) with random intensities, in [0, 1]; a model
  with unnamed units (BFM) gets sparse Laplacian coefficients instead;
- illumination γ: one or two directional lights (direction, colour temperature, intensity) plus a
  tinted ambient term, projected onto SH (shading.gamma_from_lights);
- camera: yaw and pitch from clipped Gaussians (configurable), on the default portrait sphere.
Angle and translation stay zero: the head is canonical and its pose is the camera.
"""
import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np

from faceshop_jax import geometry
from faceshop_jax.face_model import model as model_lib
from faceshop_jax.face_model import shading

# Archetypes: ARKit unit -> weight at full intensity.
_BOTH = lambda unit, w: {f'{unit}Left': w, f'{unit}Right': w}  # noqa: E731
EXPRESSION_ARCHETYPES = {
    'smile': {**_BOTH('mouthSmile', 0.8), **_BOTH('cheekSquint', 0.4), **_BOTH('eyeSquint', 0.2)},
    'laugh': {**_BOTH('mouthSmile', 1.0), 'jawOpen': 0.45, **_BOTH('cheekSquint', 0.6),
              **_BOTH('eyeSquint', 0.4), **_BOTH('mouthUpperUp', 0.3)},
    'smirk': {'mouthSmileLeft': 0.7, 'mouthDimpleLeft': 0.3, 'cheekSquintLeft': 0.2},
    'surprise': {'browInnerUp': 0.9, **_BOTH('browOuterUp', 0.8), **_BOTH('eyeWide', 0.8),
                 'jawOpen': 0.5, 'mouthFunnel': 0.2},
    'anger': {**_BOTH('browDown', 0.9), **_BOTH('noseSneer', 0.5), **_BOTH('mouthPress', 0.4),
              **_BOTH('eyeSquint', 0.4), **_BOTH('mouthFrown', 0.3)},
    'sadness': {'browInnerUp': 0.7, **_BOTH('mouthFrown', 0.8), 'mouthShrugLower': 0.4},
    'disgust': {**_BOTH('noseSneer', 0.8), **_BOTH('mouthUpperUp', 0.6), **_BOTH('browDown', 0.4)},
    'blink': {**_BOTH('eyeBlink', 1.0)},
    'wink': {'eyeBlinkLeft': 1.0, 'mouthSmileLeft': 0.4},
    'jaw_open': {'jawOpen': 0.8},
    'cheek_puff': {'cheekPuff': 0.8, 'mouthClose': 0.2},
    'pucker': {'mouthPucker': 1.0},
    'gaze_side': {'eyeLookOutLeft': 0.7, 'eyeLookInRight': 0.7},
    'viseme_aa': {'jawOpen': 0.6, **_BOTH('mouthLowerDown', 0.3)},
    'viseme_oo': {'mouthPucker': 0.8, 'mouthFunnel': 0.5, 'jawOpen': 0.2},
    'viseme_ee': {**_BOTH('mouthStretch', 0.6), **_BOTH('mouthSmile', 0.3), 'jawOpen': 0.15},
    'viseme_fv': {'mouthRollLower': 0.6, **_BOTH('mouthUpperUp', 0.3)},
    'viseme_mbp': {**_BOTH('mouthPress', 0.7), 'mouthRollUpper': 0.3},
}


@dataclasses.dataclass(frozen=True)
class PriorConfig:
  """Knobs of the prior (hashable, so it can be a static argument of jitted samplers)."""
  identity_clusters: int = 5
  cluster_seed: int = 1234  # fixes the clusters: one world, many samples
  cluster_spread: float = 0.7  # std of cluster centres in α units
  within_cluster_std: float = 0.75
  tone_components: int = 3
  tone_spread: float = 1.2
  texture_std: float = 0.7
  # Probabilities of 0, 1 and 2 active archetypes.
  archetype_counts: tuple[float, float, float] = (0.25, 0.55, 0.2)
  intensity_range: tuple[float, float] = (0.3, 1.0)
  unit_noise_probability: float = 0.05  # each unit may get a small random activation
  unit_noise_max: float = 0.3
  second_light_probability: float = 0.4
  light_intensity_range: tuple[float, float] = (0.2, 0.9)
  ambient_range: tuple[float, float] = (0.15, 0.6)
  yaw_std: float = 0.3  # radians; FFHQ-like
  max_yaw: float = 0.8
  pitch_mean: float = 0.0
  pitch_std: float = 0.12
  max_pitch: float = 0.4


def archetype_matrix(model: model_lib.FaceModel) -> np.ndarray:
  """[A, n_exp] expression vectors of the archetypes this model can express (host-side)."""
  rows = []
  for units in EXPRESSION_ARCHETYPES.values():
    row = np.zeros(model.n_exp, np.float32)
    for unit, weight in units.items():
      if unit in model.expression_names:
        row[model.expression_names.index(unit)] = weight
    if row.any():
      rows.append(row)
  return np.stack(rows) if rows else np.zeros((0, model.n_exp), np.float32)


def _cluster_centres(model: model_lib.FaceModel, config: PriorConfig):
  key_shape, key_tone = jax.random.split(jax.random.PRNGKey(config.cluster_seed))
  shape_centres = config.cluster_spread * jax.random.normal(
      key_shape, (config.identity_clusters, model.n_id))
  tones = config.tone_spread * jax.random.normal(
      key_tone, (config.identity_clusters, min(config.tone_components, model.n_tex)))
  tone_centres = jnp.zeros((config.identity_clusters, model.n_tex)).at[:, :tones.shape[1]].set(tones)
  return shape_centres, tone_centres


def sample_identity(key, model: model_lib.FaceModel, n: int, config: PriorConfig = PriorConfig()):
  """Identity α [n, n_id], albedo δ [n, n_tex] and cluster index [n]."""
  key_cluster, key_shape, key_tex = jax.random.split(key, 3)
  shape_centres, tone_centres = _cluster_centres(model, config)
  cluster = jax.random.randint(key_cluster, (n,), 0, config.identity_clusters)
  alpha = shape_centres[cluster] + config.within_cluster_std * jax.random.normal(
      key_shape, (n, model.n_id))
  delta = tone_centres[cluster] + config.texture_std * jax.random.normal(key_tex, (n, model.n_tex))
  return alpha, delta, cluster


def sample_expression(key, model: model_lib.FaceModel, n: int, config: PriorConfig = PriorConfig()):
  """Expression β [n, n_exp]: sparse archetype mixtures in [0, 1] (Laplacian if units are unnamed)."""
  archetypes = jnp.asarray(archetype_matrix(model))
  key_count, key_pick, key_int, key_noise_on, key_noise = jax.random.split(key, 5)
  if archetypes.shape[0] == 0:  # unnamed units: sparse, heavy-tailed, centred
    active = jax.random.bernoulli(key_noise_on, 0.3, (n, model.n_exp))
    return active * jax.random.laplace(key_noise, (n, model.n_exp))
  counts = jax.random.choice(key_count, 3, (n,), p=jnp.asarray(config.archetype_counts))
  picks = jax.random.randint(key_pick, (n, 2), 0, archetypes.shape[0])
  low, high = config.intensity_range
  intensity = jax.random.uniform(key_int, (n, 2), minval=low, maxval=high)
  intensity = intensity * (jnp.arange(2) < counts[:, None])
  beta = jnp.einsum('ns,nse->ne', intensity, archetypes[picks])
  noise_on = jax.random.bernoulli(key_noise_on, config.unit_noise_probability, (n, model.n_exp))
  beta = beta + noise_on * jax.random.uniform(key_noise, (n, model.n_exp),
                                              maxval=config.unit_noise_max)
  return jnp.clip(beta, 0.0, 1.0)


def sample_illumination(key, n: int, config: PriorConfig = PriorConfig()):
  """SH illumination γ [n, 27] from one or two directional lights and an ambient term."""
  keys = jax.random.split(key, 6)
  azimuth = jax.random.uniform(keys[0], (n, 2), minval=-0.6 * math.pi, maxval=0.6 * math.pi)
  elevation = jax.random.uniform(keys[1], (n, 2), minval=-0.2, maxval=1.0)
  directions = jnp.stack([jnp.cos(elevation) * jnp.sin(azimuth), jnp.sin(elevation),
                          jnp.cos(elevation) * jnp.cos(azimuth)], axis=-1)
  temperature = jax.random.uniform(keys[2], (n, 2, 1), minval=-1.0, maxval=1.0)
  tint = jnp.concatenate([1 + 0.15 * temperature, jnp.ones_like(temperature),
                          1 - 0.15 * temperature], axis=-1)
  low, high = config.light_intensity_range
  intensity = jax.random.uniform(keys[3], (n, 2, 1), minval=low, maxval=high)
  second = jax.random.bernoulli(keys[4], config.second_light_probability, (n,))
  intensity = intensity * jnp.stack([jnp.ones(n), second.astype(jnp.float32)], -1)[..., None]
  low, high = config.ambient_range
  ambient = jax.random.uniform(keys[5], (n, 1), minval=low, maxval=high) * tint[:, 0]
  return shading.gamma_from_lights(directions, tint * intensity, ambient)


def sample_camera(key, n: int, config: PriorConfig = PriorConfig()):
  """Yaw [n], pitch [n] (radians) and cameras [n, 25] on the default portrait sphere."""
  key_yaw, key_pitch = jax.random.split(key)
  yaw = jnp.clip(config.yaw_std * jax.random.normal(key_yaw, (n,)), -config.max_yaw, config.max_yaw)
  pitch = jnp.clip(config.pitch_mean + config.pitch_std * jax.random.normal(key_pitch, (n,)),
                   -config.max_pitch, config.max_pitch)
  return yaw, pitch, geometry.camera_from_yaw_pitch(yaw, pitch)


# The coefficient fields (model.Coefficients) of each control factor the generator is given.
FACTOR_FIELDS = {'identity': ('identity', 'texture'), 'expression': ('expression',),
                 'illumination': ('gamma',)}


def with_factor(model: model_lib.FaceModel, coeffs: jnp.ndarray, donor: jnp.ndarray,
                factor: str) -> jnp.ndarray:
  """coeffs [..., D] with one FACTOR_FIELDS factor (identity κ = (α, δ), expression β or
  illumination γ) taken from donor [..., D] (broadcast)."""
  if factor not in FACTOR_FIELDS:
    raise ValueError(f'Unknown factor {factor!r}; factors are {sorted(FACTOR_FIELDS)}.')
  parts, donor_parts = model.split_coeffs(coeffs), model.split_coeffs(donor)
  return model.merge_coeffs(parts._replace(
      **{field: getattr(donor_parts, field) for field in FACTOR_FIELDS[factor]}))


def with_identity(model: model_lib.FaceModel, coeffs: jnp.ndarray,
                  person: jnp.ndarray) -> jnp.ndarray:
  """coeffs [..., D] with the identity κ = (shape α, albedo δ) of person [..., D] (broadcast)."""
  return with_factor(model, coeffs, person, 'identity')


def sample_controls(key, model: model_lib.FaceModel, n: int, config: PriorConfig = PriorConfig()):
  """Full coefficient vectors [n, D] (canonical pose) and cameras [n, 25]."""
  key_id, key_exp, key_light, key_cam = jax.random.split(key, 4)
  alpha, delta, _ = sample_identity(key_id, model, n, config)
  beta = sample_expression(key_exp, model, n, config)
  gamma = sample_illumination(key_light, n, config)
  _, _, camera = sample_camera(key_cam, n, config)
  zeros3 = jnp.zeros((n, 3))
  coeffs = model.merge_coeffs(model_lib.Coefficients(alpha, beta, delta, zeros3, gamma, zeros3))
  return coeffs, camera
