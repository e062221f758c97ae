"""The networks of one control factor (paper §4.1): an MLP VAE and an MLP critic.

Both work on *normalised* coefficients (see space.Normalizer); they carry no state besides their
parameters (no batch statistics), so a train step is a pure function of (params, batch, key).
"""
import chex
import flax.linen as nn
import jax
import jax.numpy as jnp


class MLP(nn.Module):
  """`depth` hidden Dense layers of `width` with leaky ReLU, then a linear Dense to `out_size`."""
  width: int
  depth: int
  out_size: int
  negative_slope: float = 0.2

  @nn.compact
  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    """[..., in] -> [..., out_size]."""
    for _ in range(self.depth):
      x = nn.leaky_relu(nn.Dense(self.width)(x), self.negative_slope)
    return nn.Dense(self.out_size)(x)


class FactorVAE(nn.Module):
  """A VAE over one factor's normalised coefficients, with a N(0, I) prior on the latent.

  Parameters: {'encoder': ..., 'decoder': ...}; the decoder alone is what the generator needs.

  Attributes:
    data_size: coefficients per sample (160 identity, 64/52 expression, 27 illumination).
    latent_size: latent dimensions (128, 32, 16).
    width: hidden width of encoder and decoder.
    depth: hidden layers of encoder and decoder.
    logvar_limit: the posterior log-variance is soft-clamped to (−limit, limit) (limit·tanh(·/limit):
      the identity under a few units, smooth, never saturating to a zero gradient), so one bad step
      cannot overflow exp(logvar) and end the run with an infinite KL.
  """
  data_size: int
  latent_size: int
  width: int = 256
  depth: int = 3
  logvar_limit: float = 10.0

  def setup(self):
    self.encoder = MLP(self.width, self.depth, 2 * self.latent_size)
    self.decoder = MLP(self.width, self.depth, self.data_size)

  def encode(self, x: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Posterior mean and log-variance, each [..., latent_size], of x [..., data_size]."""
    if x.shape[-1] != self.data_size:
      raise ValueError(f'FactorVAE encodes {self.data_size} values per sample; '
                       f'got an array of shape {x.shape}.')
    mean, logvar = jnp.split(self.encoder(x), 2, axis=-1)
    return mean, self.logvar_limit * jnp.tanh(logvar / self.logvar_limit)

  def decode(self, z: jnp.ndarray) -> jnp.ndarray:
    """Normalised coefficients [..., data_size] from latents z [..., latent_size]."""
    if z.shape[-1] != self.latent_size:
      raise ValueError(f'FactorVAE decodes {self.latent_size} latent values per sample; '
                       f'got an array of shape {z.shape}.')
    return self.decoder(z)

  def __call__(self, x: jnp.ndarray, key: jax.Array):
    """Reconstructs x [..., data_size] through one reparameterised sample of the posterior.

    Returns:
      reconstruction [..., data_size], mean [..., latent_size], logvar [..., latent_size].
    """
    mean, logvar = self.encode(x)
    z = mean + jnp.exp(0.5 * logvar) * jax.random.normal(key, mean.shape, mean.dtype)
    reconstruction = self.decode(z)
    chex.assert_equal_shape([reconstruction, x])
    return reconstruction, mean, logvar


class Critic(nn.Module):
  """Tells real normalised coefficients [..., data_size] from decoded ones: logits [...]."""
  width: int = 256
  depth: int = 3

  @nn.compact
  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    return MLP(self.width, self.depth, 1)(x)[..., 0]
