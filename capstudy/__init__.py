"""capstudy: capacity studies of pretraining benefit across downscaled backbones."""

__version__ = "0.1.0"
