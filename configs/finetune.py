"""Out-of-domain fine-tuning (`finetune` stage, paper §6.3), from a trained run.

  python -m faceshop_jax.main --config=configs/finetune.py:cpu --workdir=/tmp/finetune \
      --config.init_from=/tmp/imitative

The paper fine-tunes its generator on MetFaces (1,336 paintings) and Disney cartoon faces (400
images), preprocessed as its training data, with the adversarial loss alone and the first layers of
the discriminator frozen (Freeze-D). So: the gan stage's step (no imitation or disentanglement
term), `config.loss.freeze_d_blocks` of D's blocks frozen from the input resolution, and the
discriminator's blur off (the source run's has faded; the step count starts again at 0).

'' is the paper's scale (512², batch 4 per device on 8 devices) on 400 portraits of the cartoon
synthetic world (the size of the Disney set), Freeze-D on 4 of D's 7 blocks (512² to 64²); 'cpu'
continues an imitative:cpu run on 400 cartoon portraits at 64², Freeze-D on 2 of 4 blocks; 'test'
is for tests. Both build their cartoon data on first use. For real stylised portraits, align them
with `python -m data_pipelines.prepare`, build a portrait_folder dataset and pass
`--config.data.name=portrait_folder/NAME --config.data.data_dir=DIR
--config.data.build_synthetic=False`.

Why half the blocks: Freeze-D keeps the discriminator's low-level, high-resolution features (edges,
colour blobs, which a new style of the same subject reuses) and lets the lower-resolution blocks
and the camera-conditioned epilogue learn what the new domain's portraits look like. At 64² D has
4 blocks (b64, b32, b16, b8) of 17% of its parameters each; freezing 2 leaves b16, b8 and the
epilogue (66% of D) to adapt, while freezing 3 would leave one block and the epilogue for a whole
style. At 512² the paper-scale D has 7 blocks (b512 … b8): 4 freezes the high-resolution half.
"""
import ml_collections

from configs import default
from configs import gan


def get_config(preset: str = '') -> ml_collections.ConfigDict:
  """The finetune stage config for a preset."""
  config = gan.get_config(preset)
  config.stage = 'finetune'
  config.loss.blur_init_sigma = 0.0
  if preset == '':
    config.data.name = 'synthetic_portraits/r512_n400_cartoon'
    config.data.build_synthetic = True
    config.num_train_steps = 10_000
    config.loss.freeze_d_blocks = 4

  def cpu():
    # ~20 min on 2 cores shared with other jobs, building the 440 cartoon portraits included.
    config.data.name = 'synthetic_portraits/r64_n400_cartoon'
    config.num_train_steps = 400
    config.summary_every_steps = 100
    config.checkpoint_every_steps = 100
    config.loss.freeze_d_blocks = 2

  def test():  # gan:test's sizes and 2 steps
    config.data.name = 'synthetic_portraits/r32_n16_cartoon'
    config.loss.freeze_d_blocks = 2  # of 3 at 32²

  default.select_preset(preset, {'': lambda: None, 'cpu': cpu, 'test': test})
  return config
