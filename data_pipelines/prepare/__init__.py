"""Real-photo preparation (paper §5.2): face detection, 3DMM fitting, alignment, cameras.

detect.py (RetinaFace, JAX) · landmarks.py (dlib 68 points) · fit.py (3DMM fitting, JAX) ·
align.py (Umeyama similarity, warp) · prepare.py (the command, `python -m data_pipelines.prepare`).
"""
