"""vfi: video frame-rate conversion with the Zoom-In-to-Check interpolation network (CVPR 2019)."""

__version__ = "0.1.0"
