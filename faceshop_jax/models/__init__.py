"""Whole networks assembled from stylegan/ and nerf/: the tri-plane generator (paper §4.2), and
the networks and control vectors a stage config describes."""
from faceshop_jax.models.build import blended_sampler
from faceshop_jax.models.build import control_dim
from faceshop_jax.models.build import CONTROL_FACTORS
from faceshop_jax.models.build import control_statistics
from faceshop_jax.models.build import control_vector
from faceshop_jax.models.build import make_discriminator
from faceshop_jax.models.build import make_generator
from faceshop_jax.models.build import sampler
from faceshop_jax.models.controls import check_control_space
from faceshop_jax.models.controls import Controls
from faceshop_jax.models.controls import sample_coefficients
from faceshop_jax.models.controls import sample_controls
from faceshop_jax.models.controls import seed_controls
from faceshop_jax.models.generator import RNG_STREAMS
from faceshop_jax.models.generator import TriPlaneGenerator
