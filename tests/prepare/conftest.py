"""Shared inputs of the data-preparation tests: a real photo and the fitting settings."""
import numpy as np
import pytest

from data_pipelines.prepare import fit as fit_lib

# Small and short, so the tests stay fast; both fitting tests share one compiled fit.
FIT_SIZE = 128
FIT_CONFIG = fit_lib.FitConfig(appearance_steps=20)


@pytest.fixture(scope='session')
def astronaut() -> np.ndarray:
  """scikit-image's astronaut (Eileen Collins, NASA; public domain): RGB uint8 [512, 512, 3]."""
  skimage_data = pytest.importorskip('skimage.data')
  return skimage_data.astronaut()
