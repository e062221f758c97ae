"""The 3DMM-conditioned tri-plane generator (paper §4.2; EG3D's TriPlaneGenerator, planes fixed).

  control vector z [B, z_dim] + conditioning camera c [B, 25]
    → MappingNetwork → ws [B, num_ws, w_dim]
    → SynthesisNetwork → [B, P, P, 3·C] → tri-planes XY, XZ, YZ [B, 3, P, P, C]
    → TriplaneDecoder per sample (density, C features, K semantic logits)
    → volume rendering through the rendering camera → features, semantics, depth, alpha at r²
    → SuperResolution (features, ws) → image [B, R, R, 3]
Images are on the [-1, 1] scale: the decoder's first three features (in [0, 1]) are mapped by
2x − 1 to give image_raw, so the raw and SR images share the real images' scale at D.
The renderer runs the decoder inside `jax.lax.map` and its own gradient rule, where linen cannot
create parameters: the decoder is therefore applied functionally with its (already created)
variables.
"""
import functools

import flax.linen as nn
import jax
import jax.numpy as jnp

from faceshop_jax import classes
from faceshop_jax import geometry
from faceshop_jax import nerf
from faceshop_jax import stylegan

RENDER_RNG = 'render'  # RNG stream of the stratified and importance sampling jitter
# Every RNG stream the generator draws from when it is asked to ('noise': per-layer noise).
RNG_STREAMS = (stylegan.NOISE_RNG, RENDER_RNG)
COMPUTE_DTYPES = ('float32', 'bfloat16')


class TriPlaneGenerator(nn.Module):
  """Control vector + camera → image, raw image, semantics, depth and alpha.

  Attributes:
    z_dim: control vector size (noise ε + κ + β + γ).
    w_dim: mapping output size.
    mapping_layers: FC layers of the mapping network (lr multiplier 0.01).
    plane_resolution: tri-plane side P (256 in the paper).
    plane_channels: features per plane C (32).
    channel_base, channel_max: backbone widths (StyleGAN2 rule).
    rendering_resolution: neural rendering side r (128; 64 early in training).
    sr_resolution: output side R (512).
    num_coarse, num_fine: stratified and importance samples per ray (48 + 48).
    chunk_rays: rays of each image rendered at a time (bounds memory).
    plane_aggregation: 'sum' (3DFaceShop) or 'mean' (EG3D).
    sr_variant: 'eg3d' or 'copo'; sr_channels: its two blocks' widths.
    fused_modconv: the grouped-convolution form (faster on GPU) or the shared-conv form (CPU).
    ray_near, ray_far, box_half_size: the portrait camera's ray bounds and the planes' extent.
    density_scale: the decoder's densities per metre per unit of softplus (nerf.TriplaneDecoder).
    density_prior_radius, density_prior_strength: a ball of this radius (metres) about the head
      centre added before the density softplus (nerf.sphere_density_offset), so the field starts
      as a visible head-sized volume; strength 0 (EG3D) starts from near-transparent fog.
    compute_dtype: 'float32', or 'bfloat16' for mixed precision as accelerators run it: the
      synthesis network's and super-resolution's activations, the tri-planes the renderer samples
      and the decoder run in bfloat16; parameters, the mapping network, the running images, volume
      compositing and every output stay float32 (EG3D runs its top layers in fp16 likewise).
  """
  z_dim: int
  w_dim: int = 512
  mapping_layers: int = 8
  plane_resolution: int = 256
  plane_channels: int = 32
  channel_base: int = 32768
  channel_max: int = 512
  rendering_resolution: int = 128
  sr_resolution: int = 512
  num_coarse: int = 48
  num_fine: int = 48
  chunk_rays: int = 4096
  plane_aggregation: str = 'sum'
  sr_variant: str = 'eg3d'
  sr_channels: tuple[int, int] = (128, 64)
  fused_modconv: bool = False
  num_classes: int = classes.NUM_CLASSES
  ray_near: float = geometry.RAY_NEAR
  ray_far: float = geometry.RAY_FAR
  box_half_size: float = geometry.BOX_HALF_SIZE
  density_scale: float = 1.0
  density_prior_radius: float = 0.1
  density_prior_strength: float = 0.0
  compute_dtype: str = 'float32'

  def setup(self):
    if self.compute_dtype not in COMPUTE_DTYPES:
      raise ValueError(f'compute_dtype must be one of {COMPUTE_DTYPES}; got {self.compute_dtype!r}.')
    dtype = jnp.dtype(self.compute_dtype)
    self.synthesis = stylegan.SynthesisNetwork(
        w_dim=self.w_dim, resolution=self.plane_resolution, img_channels=3 * self.plane_channels,
        channel_base=self.channel_base, channel_max=self.channel_max,
        fused_modconv=self.fused_modconv, dtype=dtype)
    self.mapping = stylegan.MappingNetwork(
        z_dim=self.z_dim, c_dim=geometry.CAMERA_SIZE, w_dim=self.w_dim,
        num_ws=self.synthesis.num_ws, num_layers=self.mapping_layers)
    self.decoder = nerf.TriplaneDecoder(num_features=self.plane_channels,
                                        num_classes=self.num_classes,
                                        density_scale=self.density_scale, dtype=dtype)
    self.superresolution = stylegan.SuperResolution(
        in_resolution=self.rendering_resolution, out_resolution=self.sr_resolution,
        variant=self.sr_variant, block_channels=tuple(self.sr_channels),
        fused_modconv=self.fused_modconv, dtype=dtype)

  def __call__(self, z: jax.Array, c_cond: jax.Array, c_render: jax.Array, *,
               truncation_psi: float = 1.0, noise_mode: str = 'random',
               update_w_avg: bool = False) -> dict[str, jax.Array]:
    """Generates portraits.

    Args:
      z: [B, z_dim] control vectors.
      c_cond: [B, 25] camera the mapping is conditioned on (may differ from c_render: EG3D's
        generator pose-conditioning swap).
      c_render: [B, 25] camera the volume is rendered through.
      truncation_psi: StyleGAN truncation (1 = none).
      noise_mode: 'random' (uses the 'noise' RNG stream), 'const' or 'none'.
      update_w_avg: track the mean w for truncation (call with mutable=['stats']).

    Returns:
      image [B, R, R, 3] and image_raw [B, r, r, 3] on [-1, 1]; features [B, r, r, C];
      semantics [B, r, r, K] (sum to alpha); depth [B, r, r]; alpha [B, r, r]; ws.
    """
    ws = self.mapping(z, c_cond, truncation_psi=truncation_psi, update_w_avg=update_w_avg)
    return self.render(ws, c_render, noise_mode=noise_mode)

  def edit(self, z_edited: jax.Array, z_original: jax.Array, c_cond: jax.Array,
           c_render: jax.Array, *, truncation_psi: float = 1.0, noise_mode: str = 'random',
           weight_source: str = 'union') -> dict[str, jax.Array]:
    """The volume-blended edit of z_original into z_edited [B, z_dim] (render_blended), both
    mapped through c_cond; __call__'s outputs."""
    ws_edited, ws_original = (self.mapping(z, c_cond, truncation_psi=truncation_psi)
                              for z in (z_edited, z_original))
    return self.render_blended(ws_edited, ws_original, c_render, noise_mode, weight_source)

  def field(self, ws: jax.Array, noise_mode: str = 'random'):
    """The radiance field of ws [B, num_ws, w_dim]: field_fn(points [B, ..., 3], directions) ->
    (density, features, semantic logits), as nerf.triplane_field."""
    planes = nerf.split_planes(self.synthesis(ws, noise_mode=noise_mode))  # [B, 3, P, P, C]
    planes = planes.astype(self.compute_dtype)
    if self.is_initializing():  # create the decoder's parameters outside the renderer's map
      self.decoder(jnp.zeros((1, self.plane_channels)))
    offset_fn = None
    if self.density_prior_strength:
      offset_fn = functools.partial(nerf.sphere_density_offset, radius=self.density_prior_radius,
                                    strength=self.density_prior_strength)
    return nerf.triplane_field(planes, {'params': self.decoder.variables['params']},
                               self.decoder.clone(parent=None).apply, self.box_half_size,
                               self.plane_aggregation, offset_fn)

  def density(self, ws: jax.Array, points: jax.Array, noise_mode: str = 'random') -> jax.Array:
    """Densities [B, N] at points [B, N, 3] (for EG3D's density regulariser)."""
    density, _, _ = self.field(ws, noise_mode)(points, None)
    return density

  def render(self, ws: jax.Array, c_render: jax.Array, noise_mode: str = 'random'):
    """The rest of __call__ from given ws [B, num_ws, w_dim] (e.g. for inversion or style mixing)."""
    return self.render_field(self.field(ws, noise_mode), ws, c_render, noise_mode)

  def render_blended(self, ws_edited: jax.Array, ws_original: jax.Array, c_render: jax.Array,
                     noise_mode: str = 'random', weight_source: str = 'union'):
    """Volume blending (paper §4.4): the edit of ws_original into ws_edited, face only.

    Per sample point the edited field's colour, features, density and semantics are taken where
    the semantic field says face and the original's elsewhere (nerf.blended_field; w from the
    `weight_source` field's face probability), before compositing, so the result is one field and
    as view-consistent as any render. Paper Eq. 24 weights the original field by w, but its Fig. 4
    and text keep the original outside the face; we follow the figure and the text. The
    super-resolution is modulated by ws_original, so what lies off the face matches the original
    render up to the SR's reach across the face's border.

    Args:
      ws_edited, ws_original: [B, num_ws, w_dim] the edited and the original controls' ws.
      c_render: [B, 25] the rendering camera.
      noise_mode: as __call__.
      weight_source: 'union' (the face of either field; covers both where a mouth opens and where
        it was), 'edited' (paper: s') or 'original'.

    Returns:
      __call__'s outputs for the blended field (ws is ws_original).
    """
    return self.render_field(self.blended_field(ws_edited, ws_original, noise_mode, weight_source),
                              ws_original, c_render, noise_mode)

  def blended_field(self, ws_edited: jax.Array, ws_original: jax.Array,
                    noise_mode: str = 'random', weight_source: str = 'union'):
    """The composite radiance field render_blended renders (a FieldFn, as `field`)."""
    return nerf.blended_field(self.field(ws_edited, noise_mode), self.field(ws_original, noise_mode),
                              weight_source)

  def render_field(self, field_fn, ws: jax.Array, c_render: jax.Array, noise_mode: str):
    """Volume-renders field_fn through c_render and super-resolves with ws."""
    key = self.make_rng(RENDER_RNG) if self.has_rng(RENDER_RNG) else None
    r = self.rendering_resolution
    out = nerf.render_image(field_fn, c_render, r, r, self.ray_near, self.ray_far,
                            self.num_coarse, self.num_fine, self.chunk_rays, key=key)
    image_raw = 2.0 * out['features'][..., :3] - 1.0
    image = self.superresolution(image_raw, out['features'], ws, noise_mode=noise_mode)
    return {'image': image, 'image_raw': image_raw, 'features': out['features'],
            'semantics': out['semantics'], 'depth': out['depth'], 'alpha': out['alpha'], 'ws': ws}
