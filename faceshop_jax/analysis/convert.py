r"""Converts a public PyTorch checkpoint of an analysis net into a Flax save (see weights.py).

  python -m faceshop_jax.analysis.convert --kind deep3d --src epoch_20.pth --out /tmp/deep3d

Kinds and the layouts they read:
  deep3d     Deep3DFaceRecon_pytorch's ReconNetWrapper: torchvision ResNet-50 + 257-output head
  bisenet    zllrunning/face-parsing.PyTorch BiSeNet (ResNet-18 context path, 19 classes)
  arcface    insightface arcface_torch iresnet50 / iresnet100 (depth read off the checkpoint)
  inception  pytorch-fid's FID Inception-v3 (pt_inception-2015-12-05)
  vgg16      torchvision VGG16 features (ImageNet)
Needs the `convert` extra (torch); nothing is downloaded.
"""
from collections.abc import Sequence

from absl import app
from absl import flags

from faceshop_jax.analysis import torch_layout
from faceshop_jax.analysis import weights

def convert_state_dict(kind: str, state_dict) -> tuple[dict, dict]:
  """(config, variables) of `kind` from a torch state dict {name: array}; checks every key and shape."""
  net = weights.net_module(kind)
  layout = torch_layout.TorchLayout(state_dict, kind)
  config = net.infer_config(layout)
  variables = net.variables_from_torch(layout, config)
  layout.finish()
  return config, variables


def convert(kind: str, src: str, out: str) -> dict:
  """Converts the checkpoint at `src` and saves it to `out`; returns the architecture config."""
  config, variables = convert_state_dict(kind, torch_layout.load_torch_state_dict(src))
  weights.save_analysis_net(out, kind, config, variables)
  return config


def main(argv: Sequence[str]):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  flag = flags.FLAGS
  config = convert(flag.kind, flag.src, flag.out)
  print(f'Wrote {flag.kind} {config} to {flag.out}')


def define_flags():
  """The command line's flags (defined only when run as a program: the module is also a library)."""
  flags.DEFINE_enum('kind', None, sorted(weights.KINDS), 'Which network the checkpoint holds.')
  flags.DEFINE_string('src', None, 'PyTorch checkpoint (.pth/.pt state dict).')
  flags.DEFINE_string('out', None, 'Directory to write the Flax save to.')
  flags.mark_flags_as_required(['kind', 'src', 'out'])


if __name__ == '__main__':
  define_flags()
  app.run(main)
