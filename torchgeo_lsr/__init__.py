"""torchgeo-lsr: label super-resolution and weak supervision for TorchGeo.

Turn weak sources (coarse land cover, OpenStreetMap, building footprints) into a
per-pixel prior and train a small network on imagery with the QR or RQ objective of
Malkin et al. (2022), "Resolving label uncertainty with implicit generative models".
"""

__version__ = "0.1.0"
