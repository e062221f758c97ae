"""StyleGAN2 building blocks: equalised-learning-rate layers and FIR resampling, NHWC.

Equalised learning rate (Karras et al.): a parameter is stored at unit scale and multiplied by a
constant gain at run time, so that Adam's per-parameter step size acts alike on every layer. With a
learning-rate multiplier `lr_mul`, weights are stored as N(0, 1) / lr_mul and used times
lr_mul / sqrt(fan_in): the effective weight starts at N(0, 1 / fan_in) while every gradient (and so
every update) reaching it is scaled by lr_mul.

Resampling follows StyleGAN2's upfirdn2d: zero-insertion up-sampling, padding, a separable FIR
filter ([1, 3, 3, 1] normalised, times up² when up-sampling) and decimation.
"""
import functools
import math
from typing import Optional, Sequence, Union

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

# The FIR low-pass filter of StyleGAN2 (binomial, 1-D taps; the 2-D filter is their outer product).
FIR_TAPS = (1.0, 3.0, 3.0, 1.0)
LRELU_SLOPE = 0.2
# The gain that keeps unit variance through a leaky ReLU (StyleGAN's def_gain for 'lrelu').
LRELU_GAIN = math.sqrt(2.0)
ACTIVATIONS = ('linear', 'lrelu')

Taps = Union[Sequence[float], np.ndarray, jnp.ndarray]


def channels(channel_base: int, channel_max: int, res: int) -> int:
  """StyleGAN's feature width at resolution `res`: min(channel_base // res, channel_max)."""
  return min(channel_base // res, channel_max)


def bias_act(x: jnp.ndarray, bias: Optional[jnp.ndarray], activation: str = 'linear',
             gain: float = 1.0, clamp: Optional[float] = None) -> jnp.ndarray:
  """x [..., C] + bias [C], then `activation` with its gain times `gain`, then clamp to ±clamp·gain.

  As StyleGAN2's layers use bias_act: the clamp scales with the extra gain (residual branches pass
  gain √½ and so clamp at √½ of the layer's clamp).
  """
  if activation not in ACTIVATIONS:
    raise ValueError(f'activation must be one of {ACTIVATIONS}; got {activation!r}.')
  if bias is not None:
    x = x + bias.astype(x.dtype)
  if activation == 'lrelu':
    x = jax.nn.leaky_relu(x, LRELU_SLOPE) * (LRELU_GAIN * gain)
  elif gain != 1.0:
    x = x * gain
  if clamp is not None:
    x = jnp.clip(x, -clamp * gain, clamp * gain)
  return x


def _shifted_sum(x: jnp.ndarray, terms, axis: int, length: int, stride: int = 1) -> jnp.ndarray:
  """Σ_(tap, offset) tap · x[offset + stride·q] along axis for q in [0, length): a sum of strided
  slices, which fuses into one loop on every backend (offsets index into x as given)."""
  return sum(tap * jax.lax.slice_in_dim(x, offset, offset + stride * (length - 1) + 1, stride,
                                        axis=axis)
             for tap, offset in terms)


def _fir_1d(x: jnp.ndarray, taps: jnp.ndarray, axis: int, up: int, down: int,
            padding: tuple[int, int]) -> jnp.ndarray:
  """upfirdn along one axis: zero-insert, pad (negative crops), convolve with taps, decimate.

  Computed without materialising the zero-inserted signal or the samples decimation drops:
  up-sampling runs as `up` polyphase filters (output phase r only meets taps k ≡ pad_before − r
  mod up), decimation evaluates the filter at the kept positions only. Taps are flipped, so this
  is a true convolution, as upfirdn2d's default.
  """
  n, n_taps = x.shape[axis], taps.shape[0]
  flipped = [taps[n_taps - 1 - k] for k in range(n_taps)]
  before, after = padding
  length = n * up + before + after - n_taps + 1  # outputs before decimation
  if length <= 0:
    raise ValueError(f'upfirdn2d: {n} samples up {up} with padding {padding} are fewer than the '
                     f'{n_taps} taps.')
  if up == 1:
    config = [(0, 0, 0)] * x.ndim
    config[axis] = (before, after, 0)
    x = jax.lax.pad(x, jnp.zeros((), x.dtype), config)
    return _shifted_sum(x, zip(flipped, range(n_taps)), axis, -(-length // down), down)
  # Output m = up·i + r sums flipped[k] · x[i + (r + k − before) / up] over the k that divide.
  per_phase = -(-length // up)
  phase_terms = [[(flipped[k], (r + k - before) // up) for k in range(n_taps)
                  if (r + k - before) % up == 0] for r in range(up)]
  offsets = [offset for terms in phase_terms for _, offset in terms]
  pad_lo = max(0, -min(offsets))
  pad_hi = max(0, per_phase - 1 + max(offsets) - (n - 1))
  config = [(0, 0, 0)] * x.ndim
  config[axis] = (pad_lo, pad_hi, 0)
  x = jax.lax.pad(x, jnp.zeros((), x.dtype), config)
  phases = [_shifted_sum(x, [(tap, offset + pad_lo) for tap, offset in terms], axis, per_phase)
            if terms else jnp.zeros_like(jax.lax.slice_in_dim(x, 0, per_phase, axis=axis))
            for terms in phase_terms]
  out = jnp.stack(phases, axis=axis + 1)
  shape = list(out.shape)
  shape[axis:axis + 2] = [per_phase * up]
  out = jax.lax.slice_in_dim(out.reshape(shape), 0, length, axis=axis)
  return jax.lax.slice_in_dim(out, 0, length, stride=down, axis=axis) if down > 1 else out


def upfirdn2d(x: jnp.ndarray, taps: Taps = FIR_TAPS, *, up: int = 1, down: int = 1,
              padding: tuple[int, int] = (0, 0), gain: float = 1.0) -> jnp.ndarray:
  """Up-samples, pads, FIR-filters and down-samples images x [B, H, W, C] along H and W.

  Args:
    x: images [B, H, W, C].
    taps: 1-D filter taps [K] (Python, numpy or a traced jnp array); normalised to sum 1, the
      separable 2-D filter is their outer product.
    up: zero-insertion factor (up - 1 zeros after each sample).
    down: decimation factor (keep samples 0, down, 2·down, ...).
    padding: (before, after) padding of the up-sampled image, the same on both axes; negative crops.
    gain: overall gain of the 2-D filter (up² keeps the mean through zero-insertion).

  Returns:
    [B, H', W', C] with H' = (H·up + before + after − K + 1) / down rounded up.
  """
  chex.assert_rank(x, 4)
  taps = jnp.asarray(taps, x.dtype)
  taps = taps / jnp.sum(taps) * jnp.sqrt(jnp.asarray(gain, x.dtype))
  for axis in (1, 2):
    x = _fir_1d(x, taps, axis, up, down, padding)
  return x


def upsample2d(x: jnp.ndarray, taps: Taps = FIR_TAPS) -> jnp.ndarray:
  """2× FIR up-sampling: [B, H, W, C] -> [B, 2H, 2W, C] (StyleGAN2's upsample2d)."""
  k = len(taps)
  return upfirdn2d(x, taps, up=2, padding=((k + 1) // 2, (k - 2) // 2), gain=4.0)


def downsample2d(x: jnp.ndarray, taps: Taps = FIR_TAPS) -> jnp.ndarray:
  """2× FIR down-sampling: [B, H, W, C] -> [B, H/2, W/2, C] (StyleGAN2's downsample2d)."""
  k = len(taps)
  return upfirdn2d(x, taps, down=2, padding=((k - 1) // 2, (k - 2) // 2))


def conv2d_resample(x: jnp.ndarray, w: jnp.ndarray, *, up: int = 1, down: int = 1,
                    groups: int = 1) -> jnp.ndarray:
  """'Same' convolution of x [B, H, W, I] with w [k, k, I / groups, O], optionally resampled by 2.

  up=2 is `conv(upsample2d(x), w)`; down=2 is the convolution FIR-filtered and decimated
  (`conv(x, w)` sampled as downsample2d would), computed by filtering first and striding by 2.
  StyleGAN2 computes up=2 as a transposed convolution filtered afterwards, which agrees except on
  the outermost pixel ring; on XLA:CPU its gradient is ~11× slower (B4, 256 ch, 32² -> 64²:
  5.7 s vs 0.52 s forward + backward), hence this order. 1×1 kernels (ungrouped) are a matrix
  product, taken at the lower resolution: before up-sampling, after down-sampling (exact).

  Returns:
    [B, H·up/down, W·up/down, O].
  """
  if up not in (1, 2) or down not in (1, 2) or up * down == 4:
    raise ValueError(f'conv2d_resample supports up or down by 2 (not both); got up={up}, down={down}.')
  k = w.shape[0]
  pad = k // 2
  conv = functools.partial(jax.lax.conv_general_dilated, rhs=w, feature_group_count=groups,
                           dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
  if k == 1 and groups == 1:
    # A matrix product: on XLA:CPU ~5× faster than the 1×1 convolution, ~20× for its weight gradient.
    x = jnp.einsum('bhwi,io->bhwo', x if down == 1 else downsample2d(x), w[0, 0])
    return upsample2d(x) if up == 2 else x
  if up == 2 and k == 1:
    return upsample2d(conv(x, window_strides=(1, 1), padding='VALID'))
  if up == 2:
    x = upsample2d(x)
  if down == 2:
    x = upfirdn2d(x, FIR_TAPS, padding=(pad + 1, pad + 1))
    return conv(x, window_strides=(2, 2), padding='VALID')
  return conv(x, window_strides=(1, 1), padding=[(pad, pad)] * 2)


class Dense(nn.Module):
  """Equalised-learning-rate fully connected layer: [..., I] -> [..., features].

  Attributes:
    features: output width.
    activation: 'linear' or 'lrelu' (slope 0.2, gain √2).
    lr_multiplier: scales the effective learning rate of weight and bias (0.01 in the mapping net).
    bias_init: initial effective bias (stored as bias_init / lr_multiplier); 1 for the style
      affines so that styles start near 1.
    use_bias: add a bias.
    clamp: clamp the output to ±clamp (None: no clamp).
  """
  features: int
  activation: str = 'linear'
  lr_multiplier: float = 1.0
  bias_init: float = 0.0
  use_bias: bool = True
  clamp: Optional[float] = None

  @nn.compact
  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    fan_in = x.shape[-1]
    weight = self.param(
        'weight', lambda key, shape: jax.random.normal(key, shape) / self.lr_multiplier,
        (fan_in, self.features))
    x = x @ (weight * (self.lr_multiplier / math.sqrt(fan_in))).astype(x.dtype)
    bias = None
    if self.use_bias:
      bias = self.param('bias', lambda _, shape: jnp.full(shape, self.bias_init / self.lr_multiplier,
                                                                 jnp.float32),
                        (self.features,))
      bias = (bias * self.lr_multiplier).astype(x.dtype)
    return bias_act(x, bias, self.activation, clamp=self.clamp)


class Conv2d(nn.Module):
  """Equalised-lr 'same' convolution, optionally resampled: [B, H, W, I] -> [B, H', W', O].

  H' = H·up/down.

  Attributes:
    features: output channels O.
    kernel_size: odd square kernel size.
    activation: 'linear' or 'lrelu'.
    use_bias: add a bias.
    up: 1 or 2 (FIR up-sampling, see conv2d_resample).
    down: 1 or 2 (FIR down-sampling).
    conv_clamp: clamp the output to ±conv_clamp·gain (None: no clamp).
  """
  features: int
  kernel_size: int
  activation: str = 'linear'
  use_bias: bool = True
  up: int = 1
  down: int = 1
  conv_clamp: Optional[float] = None

  @nn.compact
  def __call__(self, x: jnp.ndarray, gain: float = 1.0) -> jnp.ndarray:
    """`gain` multiplies the activation gain and the clamp (√½ on residual branches)."""
    chex.assert_rank(x, 4)
    k, fan_in = self.kernel_size, x.shape[-1]
    weight = self.param('weight', nn.initializers.normal(1.0), (k, k, fan_in, self.features))
    weight = weight * (1.0 / math.sqrt(fan_in * k * k))
    x = conv2d_resample(x, weight.astype(x.dtype), up=self.up, down=self.down)
    bias = self.param('bias', nn.initializers.zeros, (self.features,)) if self.use_bias else None
    return bias_act(x, bias, self.activation, gain=gain, clamp=self.conv_clamp)
