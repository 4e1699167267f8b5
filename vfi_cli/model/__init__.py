"""The interpolation network of the paper: flow U-Net, feature extractor, warping and synthesis."""

from vfi_cli.model.network import Interpolator, InterpolatorOutput

__all__ = ["Interpolator", "InterpolatorOutput"]
