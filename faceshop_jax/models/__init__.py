"""Whole networks assembled from stylegan/ and nerf/: the tri-plane generator (paper §4.2)."""
from faceshop_jax.models.generator import TriPlaneGenerator
