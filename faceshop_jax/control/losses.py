"""VAE-GAN losses of one control factor (paper Eqs. 6–8; DESIGN §5), as pure functions of params.

Generator side: L = ||x − D(E(x))||² + kl_weight·KL(E(x) ‖ N(0, I)) + adversarial_weight·L_adv,
with the reconstruction a mean squared error over batch and coefficients and the KL summed over
latent dimensions and averaged over the batch (the scales the 0.0025 weight was tuned for in
3DFaceShop's train_vae.py). adversarial_weight=0 is the plain-VAE baseline of Fig. 10 (a).

Which decoded samples the critic sees ("fakes"):
- 'reconstruction' (default): D(z), z ~ E(z|x). The paper trains the critic "to better distinguish
  the reconstructed attribute coefficients from real sampled ones", and 3DFaceShop's train_vae.py
  feeds it exactly the reconstructions.
- 'prior': D(z), z ~ N(0, I) — what the generator stages actually sample.
- 'both': the two concatenated (Larsen et al.'s VAE-GAN), which also pushes the prior's holes
  (latents no posterior covers) towards the data.
All inputs are normalised coefficients [B, data_size] (space.Normalizer).
"""
import chex
import jax
import jax.numpy as jnp

from faceshop_jax.control import modules

FAKE_SOURCES = ('reconstruction', 'prior', 'both')
LOSS_TYPES = ('logistic', 'hinge')


def kl_divergence(mean: jnp.ndarray, logvar: jnp.ndarray) -> jnp.ndarray:
  """KL(N(mean, diag(exp(logvar))) ‖ N(0, I)) [...] of mean, logvar [..., k] (summed over k)."""
  chex.assert_equal_shape([mean, logvar])
  return 0.5 * jnp.sum(jnp.exp(logvar) + jnp.square(mean) - 1.0 - logvar, axis=-1)


def _forward(vae: modules.FactorVAE, vae_params, batch: jnp.ndarray, key: jax.Array,
             fake_source: str):
  """Reconstruction [B, d], posterior mean and logvar [B, k], and the critic's fakes [B', d]."""
  if fake_source not in FAKE_SOURCES:
    raise ValueError(f'fake_source must be one of {FAKE_SOURCES}; got {fake_source!r}.')
  chex.assert_rank(batch, 2)
  key_posterior, key_prior = jax.random.split(key)
  reconstruction, mean, logvar = vae.apply(vae_params, batch, key_posterior)
  if fake_source == 'reconstruction':
    return reconstruction, mean, logvar, reconstruction
  z = jax.random.normal(key_prior, mean.shape, mean.dtype)
  decoded = vae.apply(vae_params, z, method=vae.decode)
  fakes = decoded if fake_source == 'prior' else jnp.concatenate([reconstruction, decoded])
  return reconstruction, mean, logvar, fakes


def _check_loss_type(loss_type: str):
  if loss_type not in LOSS_TYPES:
    raise ValueError(f'loss_type must be one of {LOSS_TYPES}; got {loss_type!r}.')


def vae_generator_loss(vae_params, critic_params, batch: jnp.ndarray, key: jax.Array, *,
                       vae: modules.FactorVAE, critic: modules.Critic,
                       kl_weight: float = 0.0025, adversarial_weight: float = 5.0,
                       fake_source: str = 'reconstruction', loss_type: str = 'logistic'):
  """The VAE's loss; differentiate with respect to vae_params (argument 0).

  Args:
    vae_params: FactorVAE variables ({'params': ...}).
    critic_params: Critic variables; treated as constants by the caller's optimiser.
    batch: [B, data_size] normalised coefficients.
    key: PRNG key of the posterior (and prior) samples.
    vae: the FactorVAE module.
    critic: the Critic module.
    kl_weight: μ of Eq. 7.
    adversarial_weight: weight of Eq. 8; 0 gives the plain VAE.
    fake_source: 'reconstruction', 'prior' or 'both' (module docstring).
    loss_type: 'logistic' (non-saturating softplus(−D(fake)), 3DFaceShop's) or 'hinge' (−D(fake)).

  Returns:
    total scalar and {'reconstruction', 'kl', 'adversarial'} unweighted scalar terms.
  """
  _check_loss_type(loss_type)
  reconstruction, mean, logvar, fakes = _forward(vae, vae_params, batch, key, fake_source)
  fake_logits = critic.apply(critic_params, fakes)
  if loss_type == 'logistic':
    adversarial = jnp.mean(jax.nn.softplus(-fake_logits))
  else:
    adversarial = -jnp.mean(fake_logits)
  terms = {
      'reconstruction': jnp.mean(jnp.square(reconstruction - batch)),
      'kl': jnp.mean(kl_divergence(mean, logvar)),
      'adversarial': adversarial,
  }
  total = (terms['reconstruction'] + kl_weight * terms['kl']
           + adversarial_weight * terms['adversarial'])
  return total, terms


def critic_loss(critic_params, vae_params, batch: jnp.ndarray, key: jax.Array, *,
                vae: modules.FactorVAE, critic: modules.Critic,
                fake_source: str = 'reconstruction', loss_type: str = 'logistic'):
  """The critic's loss (real = batch, fake = decoded); differentiate w.r.t. critic_params (arg 0).

  No gradient reaches vae_params: the fakes are stop-gradient'ed, so a joint jax.grad is safe.

  Args:
    critic_params: Critic variables.
    vae_params: FactorVAE variables.
    batch: [B, data_size] normalised coefficients.
    key: PRNG key of the decoded samples.
    vae: the FactorVAE module.
    critic: the Critic module.
    fake_source: 'reconstruction', 'prior' or 'both' (module docstring).
    loss_type: 'logistic' (softplus(D(fake)) + softplus(−D(real))) or 'hinge'
      (relu(1 + D(fake)) + relu(1 − D(real))).

  Returns:
    scalar loss and {'real_logit', 'fake_logit'} mean logits (scalars).
  """
  _check_loss_type(loss_type)
  *_, fakes = _forward(vae, vae_params, batch, key, fake_source)
  real_logits = critic.apply(critic_params, batch)
  fake_logits = critic.apply(critic_params, jax.lax.stop_gradient(fakes))
  if loss_type == 'logistic':
    loss = jnp.mean(jax.nn.softplus(fake_logits)) + jnp.mean(jax.nn.softplus(-real_logits))
  else:
    loss = jnp.mean(jax.nn.relu(1.0 + fake_logits)) + jnp.mean(jax.nn.relu(1.0 - real_logits))
  return loss, {'real_logit': jnp.mean(real_logits), 'fake_logit': jnp.mean(fake_logits)}
