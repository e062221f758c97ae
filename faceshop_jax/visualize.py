"""Pictures: image grids and PNG writing (numpy + Pillow, no plotting stack)."""
import numpy as np
from PIL import Image


def to_uint8(images: np.ndarray, low: float = 0.0, high: float = 1.0) -> np.ndarray:
  """Float images in [low, high] (clipped) to uint8."""
  scaled = (np.asarray(images, np.float32) - low) / (high - low)
  return np.round(np.clip(scaled, 0.0, 1.0) * 255).astype(np.uint8)


def image_grid(images: np.ndarray, pad: int = 2, pad_value: int = 255) -> np.ndarray:
  """Tiles images [R, C, H, W, 3] (uint8) into one [R·(H+pad)+pad, C·(W+pad)+pad, 3] picture."""
  rows, cols, height, width, channels = images.shape
  grid = np.full((rows * (height + pad) + pad, cols * (width + pad) + pad, channels), pad_value,
                 images.dtype)
  for r in range(rows):
    for c in range(cols):
      top, left = pad + r * (height + pad), pad + c * (width + pad)
      grid[top:top + height, left:left + width] = images[r, c]
  return grid


def save_png(path, image: np.ndarray) -> None:
  """Writes a uint8 [H, W, 3] or [H, W] array as PNG."""
  Image.fromarray(np.asarray(image)).save(path, format='PNG')
