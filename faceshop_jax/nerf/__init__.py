"""Tri-plane sampling, the decoder, the volume renderer and volume blending (DESIGN §4)."""
from faceshop_jax.nerf.blend import blend_fields
from faceshop_jax.nerf.blend import blended_field
from faceshop_jax.nerf.blend import face_probability
from faceshop_jax.nerf.decoder import TriplaneDecoder
from faceshop_jax.nerf.field import triplane_field
from faceshop_jax.nerf.triplane import aggregate
from faceshop_jax.nerf.triplane import PLANE_AXES
from faceshop_jax.nerf.triplane import plane_coordinates
from faceshop_jax.nerf.triplane import sample_triplanes
from faceshop_jax.nerf.triplane import split_planes
from faceshop_jax.nerf.volume import FieldFn
from faceshop_jax.nerf.volume import importance_depths
from faceshop_jax.nerf.volume import march
from faceshop_jax.nerf.volume import merge_order
from faceshop_jax.nerf.volume import render_image
from faceshop_jax.nerf.volume import render_rays
from faceshop_jax.nerf.volume import stratified_depths
