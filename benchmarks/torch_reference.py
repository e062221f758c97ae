r"""PyTorch reference of the tri-plane generator: generator_bench.py's cases, written as EG3D does.

  python benchmarks/torch_reference.py [--cases=eg3d_small,eg3d_full] [--runs=3] [--batches=1]

A self-contained PyTorch (CPU, float32, NCHW) EG3D generator doing the same work as ours
(faceshop_jax/models/generator.py; random initialisation, no numerical parity): the layers, widths,
resolutions, sample counts and rays of generator_bench.py's CASES, written with the operations of
NVlabs/eg3d's PyTorch code (networks_stylegan2.py, superresolution.py, volumetric_rendering/*, and
torch_utils/ops' reference paths, which are what EG3D runs on a CPU: `_upfirdn2d_ref`,
conv2d_resample, bias_act's reference). generator_bench.py times it beside the JAX generator, in the
same process; this script prints one JSON line per case on its own.

FLOP-relevant shapes (B = batch; 'a → b @ r²' is a modulated 3×3 convolution at output side r;
every modulated layer also has a 512 → a style affine):
  mapping: z 512 and embed(c 25 → 512), concatenated 1024 → `mapping_layers` FC 512 (lrelu,
    lr × 0.01), broadcast to 14 ws.
  backbone (StyleGAN2 'skip', 4² → 256², 96 = 3 planes × 32 channels out):
    eg3d_small (channel_base 4096, channel_max 128): const 128 @ 4²; 128 → 128 @ 4²;
      then per block (conv0 up 2×, conv1): 128 → 128 @ 8², 16², 32²; 128 → 64, 64 → 64 @ 64²;
      64 → 32, 32 → 32 @ 128²; 32 → 16, 16 → 16 @ 256²; ToRGB 1×1 per block (C → 96, not
      demodulated) added to the FIR-up-sampled running 96-channel image.
    eg3d_full (32768 / 512): 512 channels @ 4² … 64²; 512 → 256, 256 → 256 @ 128²;
      256 → 128, 128 → 128 @ 256²; ToRGB C → 96 likewise.
  renderer, per image r² rays in chunks of `chunk_rays` (512) rays of every image:
    eg3d_small: r = 64 (4,096 rays), 24 stratified + 24 importance samples = 196,608 samples;
    eg3d_full: r = 128 (16,384 rays), 48 + 48 = 1,572,864 samples.
    Per sample: grid_sample of 3 planes × 32 channels (bilinear, zero padding, align_corners=False)
    summed over the planes, decoder FC 32 → 64 softplus, 64 → 1 + 32 (density, features) [and
    64 → 19 semantic logits, softmax: not in the benchmark, see below]; coarse march,
    blurred-weight inverse CDF (searchsorted), torch.sort merge of the 2 × S samples, gather of
    density and 32 features [and 19 probabilities], midpoint march, features composited.
  super-resolution (EG3D's SuperresolutionHybrid, ws[:, -1] for every layer, 'skip' blocks with a
    3-channel ToRGB each, starting from the raw RGB):
    eg3d_small (2×): 32 → 128, 128 → 128 @ 64² (no up-sampling); 128 → 64 (up), 64 → 64 @ 128².
    eg3d_full (4×): 32 → 256 (up), 256 → 256 @ 256²; 256 → 128 (up), 128 → 128 @ 512².
Parameters: 3,574,443 (eg3d_small) and 32,239,307 (eg3d_full), ours' exactly. Convolution and
matmul FLOPs of a forward call per image (torch's flop counter here; ours counted from its jaxpr):
eg3d_small 10.70 G, eg3d_full 502.7 G in both, plus here the depthwise FIR convolutions (0.46 G,
3.4 G), which ours computes as shifted sums.

Differences of the work from ours, and why:
  * An up-sampling 3×3 convolution is, by default, FIR up-sampling (zero insertion + the 4×4
    [1,3,3,1] filter as one depthwise conv2d, EG3D's `_upfirdn2d_ref`) followed by the 3×3 conv2d
    at the output resolution: the order of our layers.conv2d_resample, so the convolution FLOPs are
    ours. EG3D's conv2d_resample instead runs a stride-2 transposed convolution at the input
    resolution and filters afterwards, 4× fewer FLOPs in those layers (about half of all the
    convolution FLOPs: per image eg3d_small 9.0 → 5.6 G, eg3d_full 490 → 289 G):
    --up_conv=transpose runs that (less work than ours, so not the default).
  * FIR filtering is EG3D's non-separable 4×4 depthwise conv (16 multiply-adds per output value;
    ours is polyphase and separable, 4 per value): 4% (eg3d_small) and 0.7% (eg3d_full) more FLOPs.
  * Rays are chunked as ours (EG3D renders all rays of an image at once); the last chunk is not
    padded (our sizes are multiples of 512 anyway). Stratified and importance jitter is 0.5 (bin
    midpoints), as ours without a 'render' RNG. The coarse and fine samples are merged by
    torch.sort (EG3D's unify_samples; ours is a bitonic merge). Weights are EG3D's cumprod form.
  * Only the image is computed (image_only: no semantic head, softmax, semantic compositing, depth
    or alpha), as generator_bench asks ours for the image alone and XLA drops the rest as dead code;
    in the gradient the semantic head's is zero, as jax.grad gives.
  * forward + backward is plain autograd: each chunk's intermediates are kept (ours keeps each
    sample's looked-up tri-plane features and depth, and recomputes the decoder in the backward).
Modulated convolutions: fused (EG3D's grouped convolution with per-sample weights, groups = B) or
not (scale activations, shared conv2d, scale outputs). EG3D trains with fused_modconv_default =
'inference_only', i.e. fused for inference and not for training; `--fused=auto` (FUSED_DEFAULT)
takes the faster of the two per case as measured on this 2-core CPU (torch 2.13, medians of 3–9
alternating calls): the same, as it happens. Forward: fused, a tie within the noise (eg3d_small
B1 0.293 vs 0.300 s unfused, B4 1.53 vs 1.55 s; eg3d_full B1 5.57 vs 5.67 s); forward + backward
(eg3d_small B2): unfused, 1.88 vs 2.22 s fused.
"""
import argparse
import json
import math
import statistics
import time

try:
  import torch
  import torch.nn.functional as F
except ImportError as e:  # a benchmark-only dependency
  raise ImportError("The PyTorch reference needs torch: pip install -e '.[test]'") from e

from generator_cases import CASES  # pylint: disable=g-import-not-at-top,wrong-import-position

KINDS = ('forward', 'forward_backward')
# fused_modconv per (case, kind) under --fused=auto: the faster here (see the module docstring).
FUSED_DEFAULT = {('eg3d_small', 'forward'): True, ('eg3d_small', 'forward_backward'): False,
                 ('eg3d_full', 'forward'): True, ('eg3d_full', 'forward_backward'): False}
UP_CONVS = ('upsample_first', 'transpose')

# Our portrait camera and volume (faceshop_jax.geometry): metres, OpenCV camera axes.
DEFAULT_FOCAL = 1015.0 / 224.0
RAY_NEAR, RAY_FAR, BOX_HALF_SIZE = 0.88, 1.12, 0.185
CAMERA_SIZE = 25
NUM_CLASSES = 19
# Projections onto planes XY, XZ, YZ: (x, y, z) @ P[:, :2] = (u, v) (faceshop_jax/nerf/triplane.py).
PLANE_PROJECTIONS = ((0, 1, 2), (0, 2, 1), (1, 2, 0))


# ---------------------------------------------------------------------------------------------
# torch_utils/ops, reference (CPU) paths.

def setup_filter(taps=(1, 3, 3, 1)) -> torch.Tensor:
  """upfirdn2d.setup_filter: the normalised 2-D outer product (EG3D keeps 4 taps non-separable)."""
  f = torch.as_tensor(taps, dtype=torch.float32)
  f = f.ger(f)
  return f / f.sum()


def upfirdn2d(x, f, up=1, down=1, padding=(0, 0, 0, 0), gain=1.0):
  """EG3D's `_upfirdn2d_ref`: zero insertion, pad, depthwise 2-D FIR conv2d, decimation. NCHW."""
  batch, channels, height, width = x.shape
  if up > 1:
    x = x.reshape(batch, channels, height, 1, width, 1)
    x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1])
    x = x.reshape(batch, channels, height * up, width * up)
  px0, px1, py0, py1 = padding
  x = F.pad(x, [max(px0, 0), max(px1, 0), max(py0, 0), max(py1, 0)])
  x = x[:, :, max(-py0, 0):x.shape[2] - max(-py1, 0), max(-px0, 0):x.shape[3] - max(-px1, 0)]
  f = (f * (gain ** (f.ndim / 2))).to(x.dtype).flip([0, 1])
  x = F.conv2d(x, f[None, None].repeat(channels, 1, 1, 1), groups=channels)
  return x[:, :, ::down, ::down] if down > 1 else x


def upsample2d(x, f, up=2):
  fw = f.shape[-1]
  p0, p1 = (fw + up - 1) // 2, (fw - up) // 2
  return upfirdn2d(x, f, up=up, padding=(p0, p1, p0, p1), gain=up**2)


def conv2d_resample(x, w, f, up=1, padding=0, groups=1, up_conv='upsample_first'):
  """x [N, I, H, W] ⊛ w [O, I/groups, k, k], 'same' padding, optionally up-sampled by 2.

  up_conv: 'upsample_first' (FIR up-sampling, then the convolution: our order and FLOPs) or
  'transpose' (EG3D's conv2d_resample: stride-2 transposed convolution, then the FIR filter).
  """
  out_channels, in_per_group, kh, kw = w.shape
  if up == 1:
    return F.conv2d(x, w, padding=padding, groups=groups)
  fw = f.shape[-1]
  if kw == 1:  # EG3D's fast path: 1×1 convolution first, then up-sample.
    x = F.conv2d(x, w, groups=groups)
    p0, p1 = padding + (fw + up - 1) // 2, padding + (fw - up) // 2
    return upfirdn2d(x, f, up=up, padding=(p0, p1, p0, p1), gain=up**2)
  if up_conv == 'upsample_first':
    return F.conv2d(upsample2d(x, f, up), w, padding=padding, groups=groups)
  # EG3D's 'upsampling with optional downsampling => transpose strided convolution'.
  p0, p1 = padding + (fw + up - 1) // 2, padding + (fw - up) // 2
  if groups == 1:
    w = w.transpose(0, 1)
  else:
    w = w.reshape(groups, out_channels // groups, in_per_group, kh, kw).transpose(1, 2)
    w = w.reshape(groups * in_per_group, out_channels // groups, kh, kw)
  p0, p1 = p0 - (kw - 1), p1 - (kw - up)
  pt = max(min(-p0, -p1), 0)
  x = F.conv_transpose2d(x, w, stride=up, padding=pt, groups=groups)
  return upfirdn2d(x, f, padding=(p0 + pt, p1 + pt, p0 + pt, p1 + pt), gain=up**2)


def bias_act(x, b, act='linear', gain=None, dim=1):
  """bias_act's reference: x + b (along dim), activation, gain (lrelu: slope 0.2, gain √2)."""
  if b is not None:
    x = x + b.reshape([-1 if i == dim else 1 for i in range(x.ndim)])
  if act == 'lrelu':
    x = F.leaky_relu(x, 0.2)
    gain = math.sqrt(2) if gain is None else gain
  if gain is not None and gain != 1:
    x = x * gain
  return x


def normalize_2nd_moment(x, dim=1, eps=1e-8):
  return x * (x.square().mean(dim=dim, keepdim=True) + eps).rsqrt()


# ---------------------------------------------------------------------------------------------
# networks_stylegan2.py

class FullyConnectedLayer(torch.nn.Module):
  """Equalised-lr linear layer, as EG3D's."""

  def __init__(self, in_features, out_features, bias=True, activation='linear', lr_multiplier=1.0,
               bias_init=0.0):
    super().__init__()
    self.activation = activation
    self.weight = torch.nn.Parameter(torch.randn([out_features, in_features]) / lr_multiplier)
    self.bias = (torch.nn.Parameter(torch.full([out_features], float(bias_init)))
                 if bias else None)
    self.weight_gain = lr_multiplier / math.sqrt(in_features)
    self.bias_gain = lr_multiplier

  def forward(self, x):
    w = self.weight * self.weight_gain
    b = self.bias
    if b is not None and self.bias_gain != 1:
      b = b * self.bias_gain
    if self.activation == 'linear' and b is not None:
      return torch.addmm(b.unsqueeze(0), x, w.t())
    return bias_act(x.matmul(w.t()), b, act=self.activation)


class MappingNetwork(torch.nn.Module):
  """z [B, 512], c [B, 25] → ws [B, num_ws, 512] (EG3D's, lr multiplier 0.01)."""

  def __init__(self, z_dim, c_dim, w_dim, num_ws, num_layers, lr_multiplier=0.01):
    super().__init__()
    self.num_ws, self.num_layers = num_ws, num_layers
    self.embed = FullyConnectedLayer(c_dim, w_dim)
    features = [z_dim + w_dim] + [w_dim] * num_layers
    for idx in range(num_layers):
      layer = FullyConnectedLayer(features[idx], features[idx + 1], activation='lrelu',
                                  lr_multiplier=lr_multiplier)
      setattr(self, f'fc{idx}', layer)
    self.register_buffer('w_avg', torch.zeros([w_dim]))

  def forward(self, z, c):
    x = torch.cat([normalize_2nd_moment(z), normalize_2nd_moment(self.embed(c))], dim=1)
    for idx in range(self.num_layers):
      x = getattr(self, f'fc{idx}')(x)
    return x.unsqueeze(1).repeat([1, self.num_ws, 1])


def modulated_conv2d(x, weight, styles, f, noise=None, up=1, padding=0, demodulate=True,
                     fused_modconv=True, up_conv='upsample_first'):
  """EG3D's modulated_conv2d (weight [O, I, k, k], styles [B, I])."""
  batch = x.shape[0]
  out_channels, in_channels, kh, kw = weight.shape
  w = dcoefs = None
  if demodulate or fused_modconv:
    w = weight.unsqueeze(0) * styles.reshape(batch, 1, -1, 1, 1)  # [B, O, I, k, k]
  if demodulate:
    dcoefs = (w.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt()  # [B, O]
  if demodulate and fused_modconv:
    w = w * dcoefs.reshape(batch, -1, 1, 1, 1)
  if not fused_modconv:
    x = x * styles.reshape(batch, -1, 1, 1)
    x = conv2d_resample(x, weight, f, up=up, padding=padding, up_conv=up_conv)
    if demodulate and noise is not None:
      return torch.addcmul(noise, x, dcoefs.reshape(batch, -1, 1, 1))  # fma.fma
    if demodulate:
      return x * dcoefs.reshape(batch, -1, 1, 1)
    return x if noise is None else x + noise
  x = x.reshape(1, -1, *x.shape[2:])
  w = w.reshape(-1, in_channels, kh, kw)
  x = conv2d_resample(x, w, f, up=up, padding=padding, groups=batch, up_conv=up_conv)
  x = x.reshape(batch, -1, *x.shape[2:])
  return x if noise is None else x + noise


class SynthesisLayer(torch.nn.Module):
  """Modulated 3×3 convolution + const noise + bias + lrelu (EG3D's SynthesisLayer)."""

  def __init__(self, in_channels, out_channels, w_dim, resolution, up=1, up_conv='upsample_first'):
    super().__init__()
    self.resolution, self.up, self.up_conv = resolution, up, up_conv
    self.register_buffer('resample_filter', setup_filter())
    self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
    self.weight = torch.nn.Parameter(torch.randn([out_channels, in_channels, 3, 3]))
    self.register_buffer('noise_const', torch.randn([resolution, resolution]))
    self.noise_strength = torch.nn.Parameter(torch.zeros([]))
    self.bias = torch.nn.Parameter(torch.zeros([out_channels]))

  def forward(self, x, w, noise_mode='const', fused_modconv=True):
    styles = self.affine(w)
    noise = None
    if noise_mode == 'random':
      noise = torch.randn([x.shape[0], 1, self.resolution, self.resolution]) * self.noise_strength
    elif noise_mode == 'const':
      noise = self.noise_const * self.noise_strength
    x = modulated_conv2d(x, self.weight, styles, self.resample_filter, noise=noise, up=self.up,
                         padding=1, fused_modconv=fused_modconv, up_conv=self.up_conv)
    return bias_act(x, self.bias, act='lrelu')


class ToRGBLayer(torch.nn.Module):
  """Modulated 1×1 convolution, not demodulated, + bias (EG3D's ToRGBLayer)."""

  def __init__(self, in_channels, out_channels, w_dim):
    super().__init__()
    self.register_buffer('resample_filter', setup_filter())
    self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
    self.weight = torch.nn.Parameter(torch.randn([out_channels, in_channels, 1, 1]))
    self.bias = torch.nn.Parameter(torch.zeros([out_channels]))
    self.weight_gain = 1 / math.sqrt(in_channels)

  def forward(self, x, w, fused_modconv=True):
    styles = self.affine(w) * self.weight_gain
    x = modulated_conv2d(x, self.weight, styles, self.resample_filter, demodulate=False,
                         fused_modconv=fused_modconv)
    return bias_act(x, self.bias)


class SynthesisBlock(torch.nn.Module):
  """EG3D's 'skip' SynthesisBlock (up=1: its SynthesisBlockNoUp)."""

  def __init__(self, in_channels, out_channels, w_dim, resolution, img_channels, up=2,
               up_conv='upsample_first'):
    super().__init__()
    self.in_channels, self.up = in_channels, up
    self.register_buffer('resample_filter', setup_filter())
    self.num_conv, self.num_torgb = (1 if in_channels == 0 else 2), 1
    if in_channels == 0:
      self.const = torch.nn.Parameter(torch.randn([out_channels, resolution, resolution]))
    else:
      self.conv0 = SynthesisLayer(in_channels, out_channels, w_dim, resolution, up=up,
                                  up_conv=up_conv)
    self.conv1 = SynthesisLayer(out_channels, out_channels, w_dim, resolution)
    self.torgb = ToRGBLayer(out_channels, img_channels, w_dim)

  def forward(self, x, img, ws, noise_mode='const', fused_modconv=True):
    w_iter = iter(ws.unbind(dim=1))
    if self.in_channels == 0:
      x = self.const.unsqueeze(0).repeat([ws.shape[0], 1, 1, 1])
      x = self.conv1(x, next(w_iter), noise_mode, fused_modconv)
    else:
      x = self.conv0(x, next(w_iter), noise_mode, fused_modconv)
      x = self.conv1(x, next(w_iter), noise_mode, fused_modconv)
    y = self.torgb(x, next(w_iter), fused_modconv)
    if img is None:
      img = y
    elif self.up == 2:  # add into the fresh up-sampled image, as EG3D
      img = upsample2d(img, self.resample_filter).add_(y)
    else:  # SynthesisBlockNoUp: not in place, which would overwrite the caller's image_raw
      img = img + y
    return x, img


class SynthesisNetwork(torch.nn.Module):
  """ws [B, 14, 512] → [B, 96, 256, 256] tri-plane features (EG3D's backbone synthesis)."""

  def __init__(self, w_dim, img_resolution, img_channels, channel_base, channel_max,
               up_conv='upsample_first'):
    super().__init__()
    log2 = int(math.log2(img_resolution))
    self.block_resolutions = [2**i for i in range(2, log2 + 1)]
    channels = {res: min(channel_base // res, channel_max) for res in self.block_resolutions}
    self.num_ws = 0
    for res in self.block_resolutions:
      in_channels = channels[res // 2] if res > 4 else 0
      block = SynthesisBlock(in_channels, channels[res], w_dim, res, img_channels, up_conv=up_conv)
      self.num_ws += block.num_conv + (block.num_torgb if res == img_resolution else 0)
      setattr(self, f'b{res}', block)

  def forward(self, ws, noise_mode='const', fused_modconv=True):
    block_ws, w_idx = [], 0
    for res in self.block_resolutions:
      block = getattr(self, f'b{res}')
      block_ws.append(ws.narrow(1, w_idx, block.num_conv + block.num_torgb))
      w_idx += block.num_conv
    x = img = None
    for res, cur_ws in zip(self.block_resolutions, block_ws):
      x, img = getattr(self, f'b{res}')(x, img, cur_ws, noise_mode, fused_modconv)
    return img


class SuperResolution(torch.nn.Module):
  """EG3D's SuperresolutionHybrid2X (64² → 128²) / SuperresolutionHybrid8XDC (128² → 512²)."""

  def __init__(self, in_channels, in_resolution, out_resolution, block_channels, w_dim=512,
               up_conv='upsample_first'):
    super().__init__()
    first_up = out_resolution // 2 // in_resolution
    self.block0 = SynthesisBlock(in_channels, block_channels[0], w_dim, out_resolution // 2, 3,
                                 up=first_up, up_conv=up_conv)
    self.block1 = SynthesisBlock(block_channels[0], block_channels[1], w_dim, out_resolution, 3,
                                 up_conv=up_conv)

  def forward(self, rgb, x, ws, noise_mode='const', fused_modconv=True):
    ws = ws[:, -1:, :].repeat(1, 3, 1)
    x, rgb = self.block0(x, rgb, ws, noise_mode, fused_modconv)
    _, rgb = self.block1(x, rgb, ws, noise_mode, fused_modconv)
    return rgb


# ---------------------------------------------------------------------------------------------
# volumetric_rendering/*: ray sampler, tri-plane sampling, decoder, importance renderer.

def camera_from_yaw_pitch(yaw, pitch, radius=1.0, focal=DEFAULT_FOCAL):
  """[B, 25] look-at cameras about the origin (faceshop_jax.geometry.camera_from_yaw_pitch)."""
  eye = radius * torch.stack([torch.cos(pitch) * torch.sin(yaw), torch.sin(pitch),
                              torch.cos(pitch) * torch.cos(yaw)], dim=-1)
  forward = F.normalize(-eye, dim=-1)
  right = F.normalize(torch.linalg.cross(forward, torch.tensor([0.0, 1.0, 0.0]).expand_as(eye)),
                      dim=-1)
  down = torch.linalg.cross(forward, right)
  cam2world = torch.eye(4).repeat(eye.shape[0], 1, 1)
  cam2world[:, :3, :3] = torch.stack([right, down, forward], dim=-1)
  cam2world[:, :3, 3] = eye
  intrinsics = torch.tensor([[focal, 0, 0.5], [0, focal, 0.5], [0, 0, 1]]).repeat(len(eye), 1, 1)
  return torch.cat([cam2world.reshape(-1, 16), intrinsics.reshape(-1, 9)], dim=1)


def sample_rays(cam2world, intrinsics, resolution):
  """EG3D's RaySampler (pixel centres, x along columns): origins, unit directions [B, r², 3]."""
  n, m = cam2world.shape[0], resolution**2
  cam_locs_world = cam2world[:, :3, 3]
  fx, fy, cx, cy = (intrinsics[:, 0, 0], intrinsics[:, 1, 1], intrinsics[:, 0, 2],
                    intrinsics[:, 1, 2])
  sk = intrinsics[:, 0, 1]
  ys, xs = torch.meshgrid(torch.arange(resolution, dtype=torch.float32),
                          torch.arange(resolution, dtype=torch.float32), indexing='ij')
  x_cam = ((xs + 0.5) / resolution).reshape(1, -1).expand(n, -1)
  y_cam = ((ys + 0.5) / resolution).reshape(1, -1).expand(n, -1)
  z_cam = torch.ones((n, m))
  x_lift = (x_cam - cx[:, None] + cy[:, None] * sk[:, None] / fy[:, None]
            - sk[:, None] * y_cam / fy[:, None]) / fx[:, None] * z_cam
  y_lift = (y_cam - cy[:, None]) / fy[:, None] * z_cam
  cam_rel_points = torch.stack((x_lift, y_lift, z_cam, torch.ones_like(z_cam)), dim=-1)
  world_rel_points = torch.bmm(cam2world, cam_rel_points.permute(0, 2, 1)).permute(0, 2, 1)[..., :3]
  ray_dirs = F.normalize(world_rel_points - cam_locs_world[:, None, :], dim=2)
  return cam_locs_world.unsqueeze(1).repeat(1, m, 1), ray_dirs


def sample_from_planes(plane_projections, planes, coordinates, box_half_size):
  """EG3D's sample_from_planes: planes [N, 3, C, H, W], points [N, M, 3] → [N, 3, M, C]."""
  n, n_planes, c, h, w = planes.shape
  m = coordinates.shape[1]
  coordinates = coordinates / box_half_size
  projected = torch.bmm(coordinates.unsqueeze(1).expand(-1, n_planes, -1, -1).reshape(-1, m, 3),
                        plane_projections.unsqueeze(0).expand(n, -1, -1, -1).reshape(-1, 3, 3))
  out = F.grid_sample(planes.reshape(n * n_planes, c, h, w), projected[..., :2].unsqueeze(1),
                      mode='bilinear', padding_mode='zeros', align_corners=False)
  return out.permute(0, 3, 2, 1).reshape(n, n_planes, m, c)


class OSGDecoder(torch.nn.Module):
  """EG3D's OSGDecoder with 3DFaceShop's semantic head (ours: faceshop_jax/nerf/decoder.py)."""

  def __init__(self, n_features=32, hidden=64, num_classes=NUM_CLASSES, density_shift=-1.0):
    super().__init__()
    self.density_shift = density_shift
    self.shared = FullyConnectedLayer(n_features, hidden)
    self.appearance = FullyConnectedLayer(hidden, 1 + n_features)
    self.semantic = FullyConnectedLayer(hidden, num_classes)

  def forward(self, x, semantics=True):
    """[..., C] aggregated features → density [...], features [..., C], logits [..., K] (None
    without semantics)."""
    lead = x.shape[:-1]
    h = F.softplus(self.shared(x.reshape(-1, x.shape[-1])))
    appearance = self.appearance(h)
    density = F.softplus(appearance[:, 0] + self.density_shift)
    features = torch.sigmoid(appearance[:, 1:]) * (1 + 2 * 0.001) - 0.001
    logits = self.semantic(h).reshape(*lead, -1) if semantics else None
    return density.reshape(lead), features.reshape(*lead, -1), logits


class ImportanceRenderer(torch.nn.Module):
  """EG3D's ImportanceRenderer + MipRayMarcher2 with our sampling recipe (nerf/volume.py)."""

  def __init__(self, num_coarse, num_fine, chunk_rays, ray_start=RAY_NEAR, ray_end=RAY_FAR,
               box_half_size=BOX_HALF_SIZE, aggregation='sum', pdf_padding=0.01):
    super().__init__()
    self.num_coarse, self.num_fine, self.chunk_rays = num_coarse, num_fine, chunk_rays
    self.ray_start, self.ray_end, self.box_half_size = ray_start, ray_end, box_half_size
    self.aggregation, self.pdf_padding = aggregation, pdf_padding
    projections = torch.zeros(3, 3, 3)
    for p, axes in enumerate(PLANE_PROJECTIONS):
      projections[p, list(axes), [0, 1, 2]] = 1.0
    self.register_buffer('plane_projections', projections)

  def forward(self, planes, decoder, ray_origins, ray_directions, semantics=True):
    """planes [B, 3, C, P, P], rays [B, R, 3] → features [B, R, C], semantics [B, R, K], depth and
    alpha [B, R] (features only when not `semantics`), `chunk_rays` rays of every image at a time.
    """
    outs = [self.render_rays(planes, decoder, ray_origins[:, s:s + self.chunk_rays],
                             ray_directions[:, s:s + self.chunk_rays], semantics)
            for s in range(0, ray_origins.shape[1], self.chunk_rays)]
    return {k: torch.cat([o[k] for o in outs], dim=1) for k in outs[0]}

  def run_model(self, planes, decoder, origins, directions, depths, semantics):
    n, r, s = depths.shape
    points = (origins.unsqueeze(-2) + depths.unsqueeze(-1) * directions.unsqueeze(-2))
    features = sample_from_planes(self.plane_projections, planes, points.reshape(n, -1, 3),
                                  self.box_half_size)
    features = features.sum(1) if self.aggregation == 'sum' else features.mean(1)
    density, features, logits = decoder(features, semantics)
    probs = torch.softmax(logits, dim=-1).reshape(n, r, s, -1) if semantics else None
    return density.reshape(n, r, s), features.reshape(n, r, s, -1), probs

  def render_rays(self, planes, decoder, origins, directions, semantics):
    n, r, _ = origins.shape
    delta = (self.ray_end - self.ray_start) / self.num_coarse
    depths = (self.ray_start + delta * (torch.arange(self.num_coarse, dtype=torch.float32) + 0.5)
              ).reshape(1, 1, -1).repeat(n, r, 1)
    density, features, probs = self.run_model(planes, decoder, origins, directions, depths,
                                              semantics)
    if self.num_fine:
      weights = self.ray_marcher_weights(depths, density)
      fine_depths = self.sample_importance(depths, weights)
      fine = self.run_model(planes, decoder, origins, directions, fine_depths, semantics)
      # unify_samples
      depths = torch.cat([depths, fine_depths], dim=-1)
      depths, indices = torch.sort(depths, dim=-1)
      density = torch.gather(torch.cat([density, fine[0]], dim=-1), -1, indices)
      index = indices.unsqueeze(-1)
      features = torch.gather(torch.cat([features, fine[1]], dim=-2), -2,
                              index.expand(-1, -1, -1, features.shape[-1]))
      if semantics:
        probs = torch.gather(torch.cat([probs, fine[2]], dim=-2), -2,
                             index.expand(-1, -1, -1, probs.shape[-1]))
    weights = self.ray_marcher_weights(depths, density)
    mid = lambda x: (x[..., :-1, :] + x[..., 1:, :]) / 2  # noqa: E731
    features = torch.sum(weights.unsqueeze(-1) * mid(features), -2)
    if not semantics:
      return {'features': features}
    alpha = weights.sum(-1)
    depths_mid = (depths[..., :-1] + depths[..., 1:]) / 2
    expected = torch.sum(weights * depths_mid, -1) / alpha.clamp_min(1e-6)
    expected = torch.minimum(torch.maximum(expected, depths[..., 0]), depths[..., -1])
    depth = torch.where(alpha > 1e-6, expected, torch.full_like(expected, self.ray_end))
    return {'features': features,
            'semantics': torch.sum(weights.unsqueeze(-1) * mid(probs), -2),
            'depth': depth, 'alpha': alpha}

  @staticmethod
  def ray_marcher_weights(depths, density):
    """MipRayMarcher2's weights of the intervals between depths [..., S] (densities activated)."""
    deltas = depths[..., 1:] - depths[..., :-1]
    densities_mid = (density[..., :-1] + density[..., 1:]) / 2
    alpha = 1 - torch.exp(-densities_mid * deltas)
    alpha_shifted = torch.cat([torch.ones_like(alpha[..., :1]), 1 - alpha + 1e-10], -1)
    return alpha * torch.cumprod(alpha_shifted, -1)[..., :-1]

  def sample_importance(self, depths, weights):
    """Inverse-CDF depths [N, R, num_fine] of the max-blurred weights, without gradient."""
    with torch.no_grad():
      n, r, s = depths.shape
      z_vals, weights = depths.reshape(n * r, s), weights.reshape(n * r, s - 1)
      weights = F.max_pool1d(F.pad(weights.unsqueeze(1), (1, 1), mode='replicate'), 2, 1)
      pdf = F.avg_pool1d(weights, 2, 1).squeeze(1) + self.pdf_padding  # [NR, S - 1]
      cdf = torch.cumsum(pdf, -1)
      cdf = torch.cat([torch.zeros_like(cdf[:, :1]), cdf], -1) / cdf[:, -1:]  # [NR, S]
      u = ((torch.arange(self.num_fine, dtype=torch.float32) + 0.5) / self.num_fine).expand(
          n * r, -1).contiguous()
      inds = torch.searchsorted(cdf[:, 1:-1].contiguous(), u, right=True)
      inds_sampled = torch.stack([inds, inds + 1], -1).view(n * r, -1)
      cdf_g = torch.gather(cdf, 1, inds_sampled).view(n * r, self.num_fine, 2)
      bins_g = torch.gather(z_vals, 1, inds_sampled).view(n * r, self.num_fine, 2)
      denom = (cdf_g[..., 1] - cdf_g[..., 0]).clamp_min(1e-12)
      fraction = ((u - cdf_g[..., 0]) / denom).clamp(0, 1)
      samples = bins_g[..., 0] + fraction * (bins_g[..., 1] - bins_g[..., 0])
    return samples.reshape(n, r, self.num_fine)


class TriPlaneGenerator(torch.nn.Module):
  """z [B, 512], c_cond, c_render [B, 25] → image [B, 3, R, R] and the rendered maps (EG3D's)."""

  def __init__(self, *, channel_base, channel_max, rendering_resolution, sr_resolution, num_coarse,
               num_fine, mapping_layers, sr_channels, chunk_rays=512, z_dim=512, w_dim=512,
               plane_resolution=256, plane_channels=32, num_classes=NUM_CLASSES,
               aggregation='sum', fused_modconv=False, up_conv='upsample_first'):
    super().__init__()
    if up_conv not in UP_CONVS:
      raise ValueError(f'up_conv is one of {UP_CONVS}; got {up_conv!r}.')
    self.plane_channels, self.rendering_resolution = plane_channels, rendering_resolution
    self.fused_modconv = fused_modconv
    self.backbone = SynthesisNetwork(w_dim, plane_resolution, 3 * plane_channels, channel_base,
                                     channel_max, up_conv)
    self.mapping = MappingNetwork(z_dim, CAMERA_SIZE, w_dim, self.backbone.num_ws, mapping_layers)
    self.decoder = OSGDecoder(plane_channels, num_classes=num_classes)
    self.renderer = ImportanceRenderer(num_coarse, num_fine, chunk_rays, aggregation=aggregation)
    self.superresolution = SuperResolution(plane_channels, rendering_resolution, sr_resolution,
                                           tuple(sr_channels), w_dim, up_conv)

  def forward(self, z, c_cond, c_render, noise_mode='const', image_only=False):
    """image_only: render the features alone (no semantic head, depth or alpha), the work our
    generator does when only the image is asked for (XLA drops the rest as dead code)."""
    ws = self.mapping(z, c_cond)
    fused = self.fused_modconv
    planes = self.backbone(ws, noise_mode, fused)
    n, r = len(planes), self.rendering_resolution
    planes = planes.view(n, 3, self.plane_channels, planes.shape[-2], planes.shape[-1])
    origins, directions = sample_rays(c_render[:, :16].view(-1, 4, 4),
                                      c_render[:, 16:25].view(-1, 3, 3), r)
    out = self.renderer(planes, self.decoder, origins, directions, semantics=not image_only)
    feature_image = out['features'].permute(0, 2, 1).reshape(n, -1, r, r).contiguous()
    image_raw = 2 * feature_image[:, :3] - 1
    image = self.superresolution(image_raw, feature_image, ws, noise_mode, fused)
    if image_only:
      return {'image': image}
    return {'image': image, 'image_raw': image_raw, 'features': feature_image,
            'semantics': out['semantics'].permute(0, 2, 1).reshape(n, -1, r, r),
            'depth': out['depth'].reshape(n, r, r), 'alpha': out['alpha'].reshape(n, r, r)}


# ---------------------------------------------------------------------------------------------
# Benchmark API (generator_bench.py imports it).

def build(case: str, chunk_rays: int, threads: int = 2, *, fused_modconv: bool = False,
          up_conv: str = 'upsample_first') -> torch.nn.Module:
  """The generator of `case` (random initialisation, seed 0), with `threads` intra-op threads."""
  torch.set_num_threads(threads)
  torch.manual_seed(0)
  return TriPlaneGenerator(chunk_rays=chunk_rays, fused_modconv=fused_modconv, up_conv=up_conv,
                           **CASES[case]['generator'])


def num_parameters(module: torch.nn.Module) -> tuple[int, int]:
  """(parameters, buffers) element counts."""
  return (sum(p.numel() for p in module.parameters()),
          sum(b.numel() for b in module.buffers()))


def _inputs(batch):
  generator = torch.Generator().manual_seed(batch)
  z = torch.randn(batch, 512, generator=generator)
  return z, camera_from_yaw_pitch(torch.zeros(batch), torch.zeros(batch))


def _call(generator, kind, z, camera):
  """As generator_bench's calls: the image alone, or the gradient of its mean (the semantic head's
  is zero, as jax.grad gives)."""
  if kind == 'forward':
    with torch.inference_mode():
      return generator(z, camera, camera, image_only=True)['image']
  image = generator(z, camera, camera, image_only=True)['image']
  return torch.autograd.grad(image.mean(), list(generator.parameters()), materialize_grads=True)


def time_case(case: str, kind: str, batch: int, chunk_rays: int, runs: int, *, threads: int = 2,
              fused_modconv: bool | None = None, up_conv: str = 'upsample_first') -> float:
  """Median seconds of `runs` calls after one warm-up call.

  kind: 'forward' (torch.inference_mode(), eval mode) or 'forward_backward' (the gradient of
  image.mean() w.r.t. every parameter, train mode). fused_modconv None: FUSED_DEFAULT.
  """
  if kind not in KINDS:
    raise ValueError(f'kind is one of {KINDS}; got {kind!r}.')
  if fused_modconv is None:
    fused_modconv = FUSED_DEFAULT[(case, kind)]
  generator = build(case, chunk_rays, threads, fused_modconv=fused_modconv, up_conv=up_conv)
  generator.train(kind == 'forward_backward')
  z, camera = _inputs(batch)
  _call(generator, kind, z, camera)
  times = []
  for _ in range(runs):
    start = time.perf_counter()
    _call(generator, kind, z, camera)
    times.append(time.perf_counter() - start)
  return statistics.median(times)


def count_flops(case: str, kind: str, batch: int, chunk_rays: int, *,
                fused_modconv: bool | None = None, up_conv: str = 'upsample_first') -> int:
  """FLOPs of one call that torch's FlopCounterMode sees (matmuls and convolutions only)."""
  from torch.utils import flop_counter  # pylint: disable=g-import-not-at-top
  if fused_modconv is None:
    fused_modconv = FUSED_DEFAULT[(case, kind)]
  generator = build(case, chunk_rays, torch.get_num_threads(), fused_modconv=fused_modconv,
                    up_conv=up_conv)
  generator.train(kind == 'forward_backward')
  counter = flop_counter.FlopCounterMode(display=False)
  with counter:
    _call(generator, kind, *_inputs(batch))
  return counter.get_total_flops()


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--cases', default='eg3d_small,eg3d_full')
  parser.add_argument('--runs', type=int, default=3)
  parser.add_argument('--chunk_rays', type=int, default=512)
  parser.add_argument('--threads', type=int, default=2, help='torch.set_num_threads')
  parser.add_argument('--batches', default='', help='only these batch sizes (comma-separated)')
  parser.add_argument('--kinds', default=','.join(KINDS))
  parser.add_argument('--fused', choices=('auto', 'fused', 'unfused'), default='auto',
                      help='modulated convolutions: auto = FUSED_DEFAULT per case')
  parser.add_argument('--up_conv', choices=UP_CONVS, default='upsample_first',
                      help="up-sampling convolutions: ours ('upsample_first') or EG3D's")
  parser.add_argument('--flops', action='store_true',
                      help="add the matmul + convolution FLOPs (torch's FlopCounterMode; one more "
                           'call per case)')
  args = parser.parse_args()
  batches = {int(b) for b in args.batches.split(',') if b}
  kinds = args.kinds.split(',')
  fused = {'auto': None, 'fused': True, 'unfused': False}[args.fused]
  torch.set_num_threads(args.threads)
  for case in args.cases.split(','):
    params, buffers = num_parameters(build(case, args.chunk_rays, args.threads))
    for kind, key in (('forward', 'forward_batches'), ('forward_backward', 'backward_batches')):
      if kind not in kinds:
        continue
      for batch in CASES[case][key]:
        if batches and batch not in batches:
          continue
        seconds = time_case(case, kind, batch, args.chunk_rays, args.runs, threads=args.threads,
                            fused_modconv=fused, up_conv=args.up_conv)
        line = {'case': f'{case}/{kind}', 'batch': batch, 'seconds': round(seconds, 4),
                'impl': 'torch', 'seconds_per_image': round(seconds / batch, 4),
                'fused_modconv': FUSED_DEFAULT[(case, kind)] if fused is None else fused,
                'up_conv': args.up_conv, 'params': params, 'buffers': buffers,
                'threads': args.threads}
        if args.flops:
          line['matmul_conv_flops'] = count_flops(case, kind, batch, args.chunk_rays,
                                                  fused_modconv=fused, up_conv=args.up_conv)
        print(json.dumps(line), flush=True)


if __name__ == '__main__':
  main()
