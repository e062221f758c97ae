"""Volume rendering of a field along rays: stratified + importance sampling, midpoint ray marching.

The EG3D recipe, written from the maths:
  1. coarse depths: one stratified sample in each of `num_coarse` equal bins of [near, far]
     (the bin midpoints when there is no key);
  2. the field is evaluated at the sample points; between consecutive samples t_j < t_{j+1} the
     density σ, features and semantic probabilities are taken as the mean of the two ends (midpoint
     rule), so interval j has opacity α_j = 1 − exp(−σ_j δ_j), δ_j = t_{j+1} − t_j, transmittance
     T_j = exp(−Σ_{k<j} σ_k δ_k) and weight w_j = T_j α_j;
  3. fine depths: `num_fine` samples from the piecewise-constant density ∝ (max-blurred coarse
     weights + padding) over the coarse intervals, by inverse CDF, with the gradient stopped;
  4. coarse and fine samples (the coarse field values are reused) are merged, sorted by depth and
     marched again; the outputs are the weighted sums of that march.
Outputs per ray: features Σ w c, semantics Σ w p with p = softmax(logits) (paper Eq. 13, so they sum
to alpha), accumulated alpha Σ w = 1 − T_end, and depth Σ w t_mid / alpha (`far` where nothing was
hit). There is no background term: features composite over zero.

Depths are distances along unit directions, in metres; densities are per metre.
"""
import abc
import dataclasses
from typing import Any, Callable, Optional

import chex
import jax
import jax.numpy as jnp

from faceshop_jax.geometry import rays as rays_lib

# field_fn(points [..., S, 3], directions [..., 3]) ->
#   (density [..., S] activated, ≥ 0, per metre; features [..., S, C]; semantic_logits [..., S, K]).
FieldFn = Callable[[jnp.ndarray, jnp.ndarray], tuple[jnp.ndarray, jnp.ndarray, jnp.ndarray]]

IMAGE_OUTPUTS = ('features', 'semantics', 'depth', 'alpha')


@dataclasses.dataclass(frozen=True, kw_only=True)
class SplitField(abc.ABC):
  """A FieldFn that reads its tables linearly: field(p) = decode(params, lookup(tables, p), p).

  render_image differentiates such a field with its own rule: the tables' cotangent (e.g. the
  tri-planes') is one array carried through the loop over ray chunks, each chunk scatter-adding
  its share into it (add_lookup_transpose), where plain autodiff of the chunk loop would zero-fill
  and add a full-size cotangent per chunk. The rule gives no cotangent to the rays: differentiating
  a render with respect to the camera through a SplitField raises JAX's UnexpectedTracerError (wrap
  the field in a plain function to do that).

  Attributes:
    tables: pytree of the arrays lookup reads (leading axis: the image).
    params: pytree of decode's parameters.
  """
  tables: Any
  params: Any

  @abc.abstractmethod
  def lookup(self, tables, points: jnp.ndarray) -> jnp.ndarray:
    """Looked-up values [B, ..., D] at points [B, ..., 3]; linear in tables."""

  @abc.abstractmethod
  def add_lookup_transpose(self, tables_cotangent, points: jnp.ndarray,
                           looked_cotangent: jnp.ndarray):
    """tables_cotangent + the transpose of lookup(·, points) applied to looked_cotangent."""

  @abc.abstractmethod
  def decode(self, params, looked: jnp.ndarray, points: jnp.ndarray):
    """(density [B, ...], features [B, ..., C], semantic_logits [B, ..., K]) of looked-up values."""

  def __call__(self, points: jnp.ndarray, directions: jnp.ndarray):
    del directions
    return self.decode(self.params, self.lookup(self.tables, points), points)


# Rays that gather less opacity than this have no meaningful expected depth.
_MIN_ALPHA_FOR_DEPTH = 1e-6


def stratified_depths(near, far, jitter: jnp.ndarray) -> jnp.ndarray:
  """Depths [..., S]: sample i at near + (i + jitter_i)·(far − near)/S.

  Args:
    near, far: scalars or [...] per ray.
    jitter: [..., S] in [0, 1); 0.5 gives the bin midpoints.
  """
  num = jitter.shape[-1]
  near, far = jnp.asarray(near)[..., None], jnp.asarray(far)[..., None]
  return near + (jnp.arange(num, dtype=jitter.dtype) + jitter) * ((far - near) / num)


def _midpoints(x: jnp.ndarray, axis: int) -> jnp.ndarray:
  """Means of consecutive entries along axis (length S -> S − 1)."""
  n = x.shape[axis]
  return 0.5 * (jax.lax.slice_in_dim(x, 1, n, axis=axis) +
                jax.lax.slice_in_dim(x, 0, n - 1, axis=axis))


def march(depths: jnp.ndarray, density: jnp.ndarray) -> jnp.ndarray:
  """Midpoint-rule weights w_j = T_j α_j [..., S − 1] of the intervals between sorted depths.

  Args:
    depths: [..., S] sorted sample depths.
    density: [..., S] non-negative densities at those depths.
  """
  chex.assert_equal_shape([depths, density])
  optical = _midpoints(density, -1) * jnp.diff(depths, axis=-1)
  alpha = 1.0 - jnp.exp(-optical)
  optical_before = jnp.concatenate(
      [jnp.zeros_like(optical[..., :1]), jnp.cumsum(optical[..., :-1], axis=-1)], axis=-1)
  return alpha * jnp.exp(-optical_before)


def importance_depths(depths: jnp.ndarray, weights: jnp.ndarray, jitter: jnp.ndarray,
                      padding: float = 0.01) -> jnp.ndarray:
  """Inverse-CDF samples [..., M] of the coarse weights; no gradient flows through them.

  The density over the coarse intervals is ∝ blur(w) + padding, constant within an interval, where
  blur(w)_j = (max(w_{j−1}, w_j) + max(w_j, w_{j+1}))/2 (mip-NeRF / EG3D), which widens a peak to
  its neighbours; padding keeps some samples everywhere (a near-empty ray samples ~uniformly).
  Sample i inverts the CDF at u_i = (i + jitter_i)/M, one sample per quantile stratum.

  Args:
    depths: [..., S] sorted coarse depths (interval edges).
    weights: [..., S − 1] weights of the coarse intervals.
    jitter: [..., M] in [0, 1); 0.5 gives the stratum midpoints.
    padding: added to every blurred weight; must be > 0 when a ray can have all-zero weights.

  Returns:
    [..., M] sorted depths in [depths[..., 0], depths[..., -1]].
  """
  chex.assert_equal_shape_prefix([depths, weights, jitter], depths.ndim - 1)
  chex.assert_axis_dimension(weights, -1, depths.shape[-1] - 1)
  depths, weights = jax.lax.stop_gradient(depths), jax.lax.stop_gradient(weights)
  edge_padded = jnp.concatenate([weights[..., :1], weights, weights[..., -1:]], axis=-1)
  neighbour_max = jnp.maximum(edge_padded[..., :-1], edge_padded[..., 1:])  # [..., S]
  pdf = _midpoints(neighbour_max, -1) + padding
  cdf = jnp.cumsum(pdf, axis=-1)
  cdf = jnp.concatenate([jnp.zeros_like(cdf[..., :1]), cdf], axis=-1) / cdf[..., -1:]  # [..., S]
  num = jitter.shape[-1]
  u = (jnp.arange(num, dtype=jitter.dtype) + jitter) / num
  # Interval of each u: how many interior CDF knots lie at or below it (compare-all: S·M per ray,
  # cheaper than a binary search's gathers at these sizes on XLA).
  index = jnp.sum(cdf[..., None, 1:-1] <= u[..., :, None], axis=-1)
  take = lambda x, i: jnp.take_along_axis(x, i, axis=-1)  # noqa: E731
  cdf_lo, cdf_hi = take(cdf, index), take(cdf, index + 1)
  t_lo, t_hi = take(depths, index), take(depths, index + 1)
  fraction = jnp.clip((u - cdf_lo) / jnp.maximum(cdf_hi - cdf_lo, 1e-12), 0.0, 1.0)
  return t_lo + fraction * (t_hi - t_lo)


def merge_order(first: jnp.ndarray, second: jnp.ndarray) -> jnp.ndarray:
  """The stable argsort [..., S1 + S2] of concat(first, second) when each is sorted ascending.

  A bitonic merge: first, +inf padding and second reversed form one rise-then-fall sequence of
  P = 2^⌈log2(S1 + S2)⌉ values, which log2(P) compare-exchange stages sort; ties are broken by the
  index, so the result equals jnp.argsort(concat(...), stable=True). On XLA:CPU this is several
  times faster than the general sort for a few dozen samples per ray.

  Args:
    first: [..., S1] ascending (e.g. the stratified depths).
    second: [..., S2] ascending (e.g. the importance depths).
  """
  chex.assert_equal_shape_prefix([first, second], first.ndim - 1)
  n1, n2 = first.shape[-1], second.shape[-1]
  size = 1 << (n1 + n2 - 1).bit_length()
  fill = jnp.full(first.shape[:-1] + (size - n1 - n2,), jnp.inf, first.dtype)
  values = jnp.concatenate([first, fill, second[..., ::-1]], axis=-1)
  # Padding takes indices n1 + n2 … P − 1, after every real sample, so it sorts last among ties.
  index = jnp.concatenate([jnp.arange(n1), jnp.arange(n1 + n2, size), n1 + jnp.arange(n2)[::-1]])
  index = jnp.broadcast_to(index.astype(jnp.int32), values.shape)
  lead = values.shape[:-1]
  half = size // 2
  while half:
    # Compare-exchange i with i + half inside each block of 2·half.
    v = values.reshape(lead + (size // (2 * half), 2, half))
    i = index.reshape(v.shape)
    swap = (v[..., 0, :] > v[..., 1, :]) | ((v[..., 0, :] == v[..., 1, :]) &
                                           (i[..., 0, :] > i[..., 1, :]))
    exchange = lambda x: jnp.stack(  # noqa: E731
        [jnp.where(swap, x[..., 1, :], x[..., 0, :]), jnp.where(swap, x[..., 0, :], x[..., 1, :])],
        axis=-2).reshape(lead + (size,))
    values, index = exchange(v), exchange(i)
    half //= 2
  return index[..., :n1 + n2]


def _sample_points(origins, directions, depths):
  """Points [..., S, 3] at origins + depths·directions."""
  return origins[..., None, :] + depths[..., None] * directions[..., None, :]


def _activated(field_values, depths):
  """(density [..., S], features, semantic logits) -> the same with probabilities for logits."""
  density, features, logits = field_values
  chex.assert_shape(density, depths.shape)
  chex.assert_equal_shape_prefix([features, logits, density[..., None]], density.ndim)
  return density, features, jax.nn.softmax(logits, axis=-1)


def _merged(depths, coarse, fine_depths, fine):
  """Coarse and fine depths [..., S1], [..., S2] and per-sample values (tuples of [..., S1, ·] and
  [..., S2, ·] arrays, or [..., S] ones) sorted into one march: (depths, values)."""
  order = merge_order(depths, fine_depths)

  def take(a, b):
    index = order.reshape(order.shape + (1,) * (a.ndim - order.ndim))
    return jnp.take_along_axis(jnp.concatenate([a, b], order.ndim - 1), index, order.ndim - 1)

  return take(depths, fine_depths), tuple(map(take, coarse, fine))


def _composite(depths, density, features, probs, far) -> dict[str, jnp.ndarray]:
  """The march of sorted samples: render_rays' outputs."""
  weights = march(depths, density)
  alpha = weights.sum(axis=-1)
  expected_depth = jnp.clip(
      (weights * _midpoints(depths, -1)).sum(-1) / jnp.maximum(alpha, _MIN_ALPHA_FOR_DEPTH),
      depths[..., 0], depths[..., -1])
  depth = jnp.where(alpha > _MIN_ALPHA_FOR_DEPTH, expected_depth,
                    jnp.broadcast_to(far, alpha.shape))
  return {
      'features': jnp.einsum('...s,...sc->...c', weights, _midpoints(features, -2)),
      'semantics': jnp.einsum('...s,...sk->...k', weights, _midpoints(probs, -2)),
      'depth': depth,
      'alpha': alpha,
      'weights': weights,
      'sample_depths': depths,
  }


def _march_samples(evaluate, near, far, coarse_jitter, fine_jitter, pdf_padding):
  """The stratified then importance samples of rays, sorted into one march.

  Args:
    evaluate: depths [..., S] -> per-sample values (density [..., S], features, probabilities,
      then anything else per sample).
    near, far, pdf_padding: as render_rays.
    coarse_jitter, fine_jitter: [..., num_coarse], [..., num_fine].

  Returns:
    (depths [..., S1 + S2] sorted, evaluate's values at them).
  """
  depths = stratified_depths(near, far, coarse_jitter)
  values = evaluate(depths)
  if fine_jitter.shape[-1]:
    fine_depths = importance_depths(depths, march(depths, values[0]), fine_jitter, pdf_padding)
    depths, values = _merged(depths, values, fine_depths, evaluate(fine_depths))
  return depths, values


def _render(field_fn: FieldFn, origins, directions, near, far, coarse_jitter, fine_jitter,
            pdf_padding) -> dict[str, jnp.ndarray]:
  """render_rays with the stratification jitter given ([..., num_coarse], [..., num_fine])."""
  depths, values = _march_samples(
      lambda depths: _activated(field_fn(_sample_points(origins, directions, depths), directions),
                                depths), near, far, coarse_jitter, fine_jitter, pdf_padding)
  return _composite(depths, *values, far)


def _split_render(field: SplitField, origins, directions, near, far, coarse_jitter, fine_jitter,
                  pdf_padding):
  """_render's IMAGE_OUTPUTS for a SplitField and what its gradient needs: the final march's
  depths [..., S] and looked-up values [..., S, D]."""
  def evaluate(depths):
    points = _sample_points(origins, directions, depths)
    looked = field.lookup(field.tables, points)
    return (*_activated(field.decode(field.params, looked, points), depths), looked)

  depths, (*values, looked) = _march_samples(evaluate, near, far, coarse_jitter, fine_jitter,
                                             pdf_padding)
  out = _composite(depths, *values, far)
  return {name: out[name] for name in IMAGE_OUTPUTS}, (depths, looked)


def _split_render_vjp(field: SplitField, origins, directions, far, samples, outputs_cotangent,
                      cotangents):
  """cotangents (of the field's tables and params) plus a chunk's share, from the cotangent of its
  outputs (a dict of those not symbolically zero) and _split_render's samples."""
  depths, looked = samples
  points = _sample_points(origins, directions, depths)

  def outputs(params, looked):
    out = _composite(depths, *_activated(field.decode(params, looked, points), depths), far)
    return {name: out[name] for name in outputs_cotangent}

  _, outputs_vjp = jax.vjp(outputs, field.params, looked)
  params_cotangent, looked_cotangent = outputs_vjp(outputs_cotangent)
  tables_cotangent, params_sum = cotangents
  return (field.add_lookup_transpose(tables_cotangent, points, looked_cotangent),
          jax.tree.map(jnp.add, params_sum, params_cotangent))


def _draw_jitter(key: Optional[jax.Array], shape, num_coarse: int, num_fine: int):
  """Stratification jitter for rays of `shape`: uniform [0, 1) with a key, 0.5 without."""
  if key is None:
    return jnp.full(shape + (num_coarse,), 0.5), jnp.full(shape + (num_fine,), 0.5)
  coarse_key, fine_key = jax.random.split(key)
  return (jax.random.uniform(coarse_key, shape + (num_coarse,)),
          jax.random.uniform(fine_key, shape + (num_fine,)))


def render_rays(field_fn: FieldFn, origins: jnp.ndarray, directions: jnp.ndarray, near, far,
                num_coarse: int, num_fine: int, key: Optional[jax.Array] = None,
                pdf_padding: float = 0.01) -> dict[str, jnp.ndarray]:
  """Renders rays through a field (the recipe in the module docstring).

  Args:
    field_fn: (points [..., S, 3], directions [..., 3]) -> (density [..., S] activated ≥ 0 per
      metre, features [..., S, C], semantic_logits [..., S, K]); `...` is the rays' batch shape.
    origins: [..., 3] ray origins (metres).
    directions: [..., 3] unit ray directions.
    near, far: depth range, scalars or [...] per ray.
    num_coarse: stratified samples per ray (≥ 2).
    num_fine: importance samples per ray (0 for none).
    key: PRNG key for the stratification; None gives deterministic midpoints.
    pdf_padding: see importance_depths.

  Returns:
    features [..., C], semantics [..., K] (sum to alpha), depth [...], alpha [...],
    weights [..., S − 1] and sample_depths [..., S] of the final march, S = num_coarse + num_fine.
  """
  chex.assert_equal_shape([origins, directions])
  chex.assert_axis_dimension(origins, -1, 3)
  coarse_jitter, fine_jitter = _draw_jitter(key, origins.shape[:-1], num_coarse, num_fine)
  return _render(field_fn, origins, directions, near, far, coarse_jitter, fine_jitter, pdf_padding)


def render_image(field_fn: FieldFn, camera: jnp.ndarray, height: int, width: int, near, far,
                 num_coarse: int, num_fine: int, chunk_rays: int,
                 key: Optional[jax.Array] = None,
                 pdf_padding: float = 0.01) -> dict[str, jnp.ndarray]:
  """Renders one image per camera, `chunk_rays` rays of every image at a time.

  The chunks run in sequence (`jax.lax.map`), so a pass holds one chunk's samples at a time,
  B·chunk_rays·(num_coarse + num_fine) of them. With the tri-plane field (C = 32, K = 19; measured
  on XLA:CPU) a sample costs ≈ 1.1 KiB of temporaries forward and ≈ 2.5 KiB under grad: B = 4,
  96 samples and chunk_rays = 4096 is ≈ 1.7 GiB forward, ≈ 4 GiB for a gradient. A plain FieldFn
  is differentiated through `jax.checkpoint`ed chunks (the backward reruns each chunk's forward).
  A SplitField (the generator's TriplaneField) has its own rule: the forward keeps each sample's
  depth and looked-up values (B·H·W·S·(D + 1) floats: 0.8 GiB for B = 4 at 128², 96 samples,
  D = 32), the backward decodes them again, differentiates decoder and march, and scatter-adds
  the tables' cotangent into one float32 array carried through the chunk loop; outputs whose
  cotangent is symbolically zero (e.g. semantics in a loss that ignores them) are not
  differentiated. The jitter is drawn for the whole image before chunking, so the image does not
  depend on chunk_rays, key or no key.

  Args:
    field_fn: as in render_rays, called on chunks with batch shape [B, chunk_rays]: points
      [B, chunk_rays, S, 3], so that it can read image b's field (e.g. its tri-planes) at index b.
    camera: [B, 25] cameras (geometry.camera convention).
    height, width: image size in pixels.
    near, far, num_coarse, num_fine, key, pdf_padding: as in render_rays (near, far scalars).
    chunk_rays: rays of each image per chunk; H·W need not be a multiple of it.

  Returns:
    features [B, H, W, C], semantics [B, H, W, K], depth [B, H, W], alpha [B, H, W].
  """
  chex.assert_shape(camera, (None, 25))
  batch, num_rays = camera.shape[0], height * width
  origins, directions = rays_lib.camera_rays(camera, height, width)
  coarse_jitter, fine_jitter = _draw_jitter(key, (batch, num_rays), num_coarse, num_fine)
  num_chunks = -(-num_rays // chunk_rays)
  pad = num_chunks * chunk_rays - num_rays

  def to_chunks(x):  # [B, H·W, ...] -> [num_chunks, B, chunk_rays, ...]
    x = jnp.pad(x, [(0, 0), (0, pad)] + [(0, 0)] * (x.ndim - 2), mode='edge')
    return jnp.moveaxis(x.reshape((batch, num_chunks, chunk_rays) + x.shape[2:]), 1, 0)

  def from_chunks(x):  # [num_chunks, B, chunk_rays, ...] -> [B, H, W, ...]
    x = jnp.moveaxis(x, 0, 1).reshape((batch, num_chunks * chunk_rays) + x.shape[3:])
    return x[:, :num_rays].reshape((batch, height, width) + x.shape[2:])

  def render_chunk(field_fn, chunk):
    out = _render(field_fn, *chunk[:2], near, far, *chunk[2:], pdf_padding)
    return {name: out[name] for name in IMAGE_OUTPUTS}

  chunks = tuple(to_chunks(x) for x in (origins.reshape(batch, num_rays, 3),
                                        directions.reshape(batch, num_rays, 3),
                                        coarse_jitter, fine_jitter))
  if not isinstance(field_fn, SplitField):
    return jax.tree.map(from_chunks, jax.lax.map(
        jax.checkpoint(lambda chunk: render_chunk(field_fn, chunk)), chunks))

  def split_forward(tables, params):
    field = dataclasses.replace(field_fn, tables=tables, params=params)
    return jax.lax.map(lambda chunk: _split_render(field, *chunk[:2], near, far, *chunk[2:],
                                                   pdf_padding), chunks)

  @jax.custom_vjp
  def render_split(tables, params):
    return split_forward(tables, params)[0]

  def render_split_forward(tables, params):
    tables, params = jax.tree.map(  # symbolic_zeros wraps each leaf
        lambda x: x.value, (tables, params),
        is_leaf=lambda x: isinstance(x, jax.custom_derivatives.CustomVJPPrimal))
    outputs, samples = split_forward(tables, params)
    return outputs, (tables, params, samples)

  def render_split_backward(residuals, outputs_cotangent):
    tables, params, samples = residuals
    field = dataclasses.replace(field_fn, tables=tables, params=params)
    outputs_cotangent = {name: ct for name, ct in outputs_cotangent.items()
                         if not isinstance(ct, jax.custom_derivatives.SymbolicZero)}
    # The tables' cotangent accumulates in float32 whatever their dtype (bfloat16 planes).
    zeros = (jax.tree.map(lambda x: jnp.zeros(x.shape, jnp.float32), tables),
             jax.tree.map(jnp.zeros_like, params))
    (tables_cotangent, params_cotangent), _ = jax.lax.scan(
        lambda cotangents, xs: (_split_render_vjp(field, *xs[0][:2], far, *xs[1:],
                                                  cotangents), None),
        zeros, (chunks, samples, outputs_cotangent))
    return jax.tree.map(lambda c, x: c.astype(x.dtype), tables_cotangent, tables), params_cotangent

  render_split.defvjp(render_split_forward, render_split_backward, symbolic_zeros=True)
  return jax.tree.map(from_chunks, render_split(field_fn.tables, field_fn.params))
