"""The `finetune` stage (paper §6.3): a trained generator carried to another portrait domain.

  python -m faceshop_jax.main --config=configs/finetune.py:cpu --workdir=/tmp/finetune \
      --config.init_from=/tmp/imitative

It starts from a gan, imitative or disentangle run (config.init_from: its generator, EMA and
discriminator) and trains on the new domain's portraits (a `portrait_folder` of aligned stylised
photos, or a restyled synthetic world) with the gan stage's step alone: the adversarial loss, lazy
R1, the density regulariser and the EMA, with no imitation or disentanglement term (the paper:
"fine-tune the network with adversarial loss"), and D's first config.loss.freeze_d_blocks blocks
frozen (Freeze-D, as the paper does; gan.freeze_d). The controls are not trained here: they keep
working as far as the generator keeps what the earlier stages taught it, which
`python -m faceshop_jax.evaluate` measures.
"""
import dataclasses

from faceshop_jax.train.stages import gan


def check_config(config) -> None:
  if not config.init_from:
    raise ValueError('The finetune stage carries a trained generator to a new domain: set '
                     '--config.init_from=WORKDIR of a gan, imitative or disentangle run (e.g. one '
                     'of configs/imitative.py:cpu).')
  gan.check_config(config)


STAGE = dataclasses.replace(gan.STAGE, name='finetune', check_config=check_config)
