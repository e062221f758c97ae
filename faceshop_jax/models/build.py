"""The networks a stage config describes, and the control vectors they take.

config.model holds the sizes; config.data.face_model names the 3DMM whose coefficients make the
control vector z = (ε, κ = (α, δ), β, γ): noise, identity shape and albedo, expression and SH
illumination (DESIGN §3). Shared by the generator stages and inference, which restores a stage's
generator from its config alone.

How each factor is scaled in z (config.model.control_scaling):
  'per_factor'  each of ε, α, δ, β, γ is centred on the control prior's mean and scaled to unit
                expected energy (‖part‖² ≈ 1), so every factor reaches the mapping at comparable
                strength, as DiscoFaceGAN feeds unit-scale latents per factor. Raw coefficients of
                the embedded head carry ~88 (α), ~46 (δ), 0.8 (β) and 0.4 (γ) of energy per sample
                beside ε's 32: after the mapping's second-moment normalisation, β and γ together
                were 0.7% of its input, and the generator could not see expression or light.
  'raw'         the coefficients as they are (the conditioning before that was found; kept for
                the ablation that shows it).
"""
import functools

import jax
import jax.numpy as jnp
import numpy as np

from faceshop_jax import face_model
from faceshop_jax import stylegan
from faceshop_jax.face_model import model as face_model_lib
from faceshop_jax.face_model import prior as prior_lib
from faceshop_jax.models import generator as generator_lib

def control_dim(config) -> int:
  """Length of z: config.model.noise_dim + the face model's α, δ and β sizes + 27 (γ)."""
  model = face_model.load(config.data.face_model)
  return config.model.noise_dim + model.n_id + model.n_tex + model.n_exp + face_model_lib.N_GAMMA


CONTROL_SCALINGS = ('per_factor', 'raw')
CONTROL_FACTORS = ('identity', 'texture', 'expression', 'gamma')  # z's order after ε
_STATISTICS_SAMPLES = 16_384


@functools.lru_cache(maxsize=8)
def control_statistics(face_model_spec: str) -> dict[str, tuple[np.ndarray, float]]:
  """{factor: (mean [size], spread)} of the control prior's α, δ, β, γ (16,384 fixed draws).

  spread is the root of the summed per-coordinate variances, so (x − mean) / spread has unit
  expected energy. Concrete numpy values, even when first asked for inside a traced function.
  """
  model = face_model.load(face_model_spec)
  with jax.ensure_compile_time_eval():
    coeffs, _ = prior_lib.sample_controls(jax.random.PRNGKey(0), model, _STATISTICS_SAMPLES)
    parts = model.split_coeffs(coeffs)
    statistics = {}
    for factor in CONTROL_FACTORS:
      values = np.asarray(getattr(parts, factor), np.float64)
      statistics[factor] = (values.mean(0).astype(np.float32),
                            float(np.sqrt(np.sum(values.var(0)))))
  return statistics


def control_vector(config, coeffs: jax.Array, noise: jax.Array) -> jax.Array:
  """z [n, control_dim] = (ε, κ = (α, δ), β, γ) of coefficients [n, D] and noise ε [n, noise_dim],
  each factor scaled as config.model.control_scaling says (module docstring)."""
  parts = face_model.load(config.data.face_model).split_coeffs(coeffs)
  factors = [getattr(parts, factor) for factor in CONTROL_FACTORS]
  scaling = config.model.get('control_scaling', 'raw')
  if scaling == 'per_factor':
    statistics = control_statistics(config.data.face_model)
    noise = noise / np.sqrt(noise.shape[-1])  # ε ~ N(0, I): unit expected energy
    factors = [(x - statistics[f][0]) / statistics[f][1] for f, x in zip(CONTROL_FACTORS, factors)]
  elif scaling != 'raw':
    raise ValueError(f'config.model.control_scaling = {scaling!r}; known: {CONTROL_SCALINGS}.')
  return jnp.concatenate([noise, *factors], axis=-1)


def make_generator(config) -> generator_lib.TriPlaneGenerator:
  m = config.model
  return generator_lib.TriPlaneGenerator(
      z_dim=control_dim(config), w_dim=m.w_dim, mapping_layers=m.mapping_layers,
      plane_resolution=m.plane_resolution, plane_channels=m.plane_channels,
      channel_base=m.channel_base, channel_max=m.channel_max,
      rendering_resolution=m.rendering_resolution, sr_resolution=m.sr_resolution,
      num_coarse=m.num_coarse, num_fine=m.num_fine, chunk_rays=m.chunk_rays,
      plane_aggregation=m.plane_aggregation, sr_variant=m.sr_variant,
      sr_channels=tuple(m.sr_channels), fused_modconv=m.fused_modconv,
      density_scale=m.get('density_scale', 1.0),
      density_prior_radius=m.get('density_prior_radius', 0.1),
      density_prior_strength=m.get('density_prior_strength', 0.0),
      compute_dtype=m.get('compute_dtype', 'float32'))


_SAMPLERS = {}  # config JSON -> jitted sampler, so each run's summaries and evaluations compile once


def sampler(config):
  """The jitted apply(variables, z [n, control_dim], camera [n, 25]) -> outputs of config's
  generator, conditioned on and rendered through the camera with constant noise (summaries,
  evaluation, inference)."""
  key = config.to_json_best_effort()
  if key not in _SAMPLERS:
    generator = make_generator(config)
    _SAMPLERS[key] = jax.jit(
        lambda variables, z, c: generator.apply(variables, z, c, c, noise_mode='const'))
  return _SAMPLERS[key]


_BLENDED_SAMPLERS = {}


def blended_sampler(config):
  """The jitted apply(variables, z_edited, z_original [n, control_dim], camera [n, 25]) -> outputs
  of config's generator for the volume-blended edit of z_original into z_edited (paper §4.4;
  TriPlaneGenerator.edit), conditioned on and rendered through the camera, constant noise."""
  key = config.to_json_best_effort()
  if key not in _BLENDED_SAMPLERS:
    generator = make_generator(config)
    _BLENDED_SAMPLERS[key] = jax.jit(lambda variables, z_edited, z_original, c: generator.apply(
        variables, z_edited, z_original, c, c, noise_mode='const', method=generator.edit))
  return _BLENDED_SAMPLERS[key]


def make_discriminator(config) -> stylegan.DualDiscriminator:
  m = config.model
  return stylegan.DualDiscriminator(resolution=m.sr_resolution, channel_base=m.d_channel_base,
                                    channel_max=m.d_channel_max,
                                    max_blur_sigma=config.loss.blur_init_sigma)
