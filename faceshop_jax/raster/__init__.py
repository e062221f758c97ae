"""Differentiable triangle rasterizer (nvdiffrast's contract) in pure JAX; see rasterizer.py."""
from faceshop_jax.raster.flow import image_flow
from faceshop_jax.raster.flow import warp
from faceshop_jax.raster.rasterizer import Fragments
from faceshop_jax.raster.rasterizer import interpolate
from faceshop_jax.raster.rasterizer import rasterize
