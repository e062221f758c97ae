"""The networks a stage config describes, and the control vectors they take.

config.model holds the sizes; config.data.face_model names the 3DMM whose coefficients make the
control vector z = (ε, κ = (α, δ), β, γ): noise, identity shape and albedo, expression and SH
illumination (DESIGN §3). Shared by the generator stages and inference, which restores a stage's
generator from its config alone.
"""
import jax
import jax.numpy as jnp

from faceshop_jax import face_model
from faceshop_jax import stylegan
from faceshop_jax.face_model import model as face_model_lib
from faceshop_jax.models import generator as generator_lib

def control_dim(config) -> int:
  """Length of z: config.model.noise_dim + the face model's α, δ and β sizes + 27 (γ)."""
  model = face_model.load(config.data.face_model)
  return config.model.noise_dim + model.n_id + model.n_tex + model.n_exp + face_model_lib.N_GAMMA


def control_vector(config, coeffs: jax.Array, noise: jax.Array) -> jax.Array:
  """z [n, control_dim] = (ε, κ = (α, δ), β, γ) of coefficients [n, D] and noise ε [n, noise_dim]."""
  parts = face_model.load(config.data.face_model).split_coeffs(coeffs)
  return jnp.concatenate([noise, parts.identity, parts.texture, parts.expression, parts.gamma],
                         axis=-1)


def make_generator(config) -> generator_lib.TriPlaneGenerator:
  m = config.model
  return generator_lib.TriPlaneGenerator(
      z_dim=control_dim(config), w_dim=m.w_dim, mapping_layers=m.mapping_layers,
      plane_resolution=m.plane_resolution, plane_channels=m.plane_channels,
      channel_base=m.channel_base, channel_max=m.channel_max,
      rendering_resolution=m.rendering_resolution, sr_resolution=m.sr_resolution,
      num_coarse=m.num_coarse, num_fine=m.num_fine, chunk_rays=m.chunk_rays,
      plane_aggregation=m.plane_aggregation, sr_variant=m.sr_variant,
      sr_channels=tuple(m.sr_channels), fused_modconv=m.fused_modconv)


def make_discriminator(config) -> stylegan.DualDiscriminator:
  m = config.model
  return stylegan.DualDiscriminator(resolution=m.sr_resolution, channel_base=m.d_channel_base,
                                    channel_max=m.d_channel_max,
                                    max_blur_sigma=config.loss.blur_init_sigma)
