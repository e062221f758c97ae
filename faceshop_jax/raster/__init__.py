"""Differentiable triangle rasterizer (nvdiffrast's contract) in pure JAX; see rasterize.py."""
from faceshop_jax.raster.rasterize import Fragments
from faceshop_jax.raster.rasterize import interpolate
from faceshop_jax.raster.rasterize import rasterize
