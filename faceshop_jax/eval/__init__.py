"""Evaluation of trained generators: image-set metrics (FID, KID) over Inception features."""
