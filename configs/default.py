"""What every stage config shares: the harness's knobs. Stage files start from base_config()."""
import ml_collections


def base_config() -> ml_collections.ConfigDict:
  """Harness defaults (paper scale; presets override a handful)."""
  config = ml_collections.ConfigDict()
  config.stage = ''
  config.seed = 0
  config.batch_size = 64  # global, over all hosts and devices
  config.num_train_steps = 10_000
  config.log_every_steps = 100
  config.summary_every_steps = 1_000  # images and histograms; 0 turns them off
  config.checkpoint_every_steps = 1_000
  config.keep_checkpoints = 3
  config.async_checkpoints = True
  # Start the networks this stage shares with another run from that run's checkpoint (its WORKDIR;
  # step init_from_step, 0 = its newest); a run resumed from its own checkpoints ignores this.
  config.init_from = ''
  config.init_from_step = 0
  config.distributed = False  # jax.distributed.initialize() first (multi-host jobs)
  config.mesh = ml_collections.ConfigDict({
      'model': 1,  # devices per model replica; the rest is data parallelism
      'min_shard_size': 1 << 18,  # parameters smaller than this are replicated
  })
  return config


def select_preset(preset: str, presets: dict) -> None:
  """Applies presets[preset] (a function mutating the config); '' is the paper's scale.

  Raises:
    ValueError: naming the known presets.
  """
  if preset not in presets:
    raise ValueError(f'Unknown preset {preset!r}; known presets: {sorted(presets)} '
                     "(e.g. --config=configs/vae.py:cpu).")
  presets[preset]()
