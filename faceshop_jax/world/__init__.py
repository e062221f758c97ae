"""The synthetic portrait world: the embedded head with hair, clothes and background, rendered with
exact controls, camera, landmarks, parsing and identities (paper-scale stand-in for FFHQ).

In the library, not in data_pipelines, because training stages draw from it on the fly (the
analysis stage's identity groups); data_pipelines' builders write datasets with it.
"""
