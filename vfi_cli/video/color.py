"""YUV <-> RGB with the stream's own matrix and range, so that colours survive the round trip."""

from __future__ import annotations

from dataclasses import dataclass

import av
import numpy as np
from av.video.reformatter import ColorRange, Colorspace, Interpolation

# AVColorSpace (the stream's tag) -> swscale matrix.
_MATRIX = {1: Colorspace.ITU709, 4: Colorspace.FCC, 5: Colorspace.ITU601, 6: Colorspace.SMPTE170M,
           7: Colorspace.SMPTE240M, 9: Colorspace.BT2020, 10: Colorspace.BT2020}
_SCALE_FLAGS = Interpolation.BICUBIC | Interpolation.ACCURATE_RND | Interpolation.FULL_CHR_H_INT


@dataclass(frozen=True)
class ColorInfo:
    """Colour tags of a stream (FFmpeg's enum values) and the matrix and range used to convert it."""

    colorspace: int = 2  # AVCOL_SPC_UNSPECIFIED
    color_range: int = 0  # AVCOL_RANGE_UNSPECIFIED
    color_primaries: int = 2
    color_trc: int = 2
    height: int = 0

    @classmethod
    def of_frame(cls, frame: av.VideoFrame) -> ColorInfo:
        return cls(frame.colorspace, frame.color_range, frame.color_primaries, frame.color_trc, frame.height)

    @property
    def matrix(self) -> Colorspace:
        """The tagged matrix; untagged video uses BT.709 from 720 lines up and BT.601 below, as players do."""
        if self.colorspace in _MATRIX:
            return _MATRIX[self.colorspace]
        return Colorspace.ITU709 if self.height >= 720 else Colorspace.ITU601

    def range_for(self, pix_fmt: str) -> ColorRange:
        """Untagged YUV is limited ('MPEG') range, except the yuvj formats, which are full range."""
        if self.color_range in (1, 2):
            return ColorRange(self.color_range)
        return ColorRange.JPEG if pix_fmt.startswith("yuvj") else ColorRange.MPEG


def to_rgb(frame: av.VideoFrame, color: ColorInfo) -> np.ndarray:
    """Decode-side conversion: an ``[H,W,3]`` uint8 RGB array."""
    rgb = frame.reformat(
        format="rgb24",
        src_colorspace=color.matrix,
        src_color_range=color.range_for(frame.format.name),
        dst_color_range=ColorRange.JPEG,
        interpolation=_SCALE_FLAGS,
    )
    return rgb.to_ndarray()


def from_rgb(rgb: np.ndarray, pix_fmt: str, color: ColorInfo) -> av.VideoFrame:
    """Encode-side conversion with the same matrix and range the input was decoded with."""
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
    return frame.reformat(
        format=pix_fmt,
        src_colorspace=color.matrix,
        dst_colorspace=color.matrix,
        src_color_range=ColorRange.JPEG,
        dst_color_range=color.range_for(pix_fmt),
        interpolation=_SCALE_FLAGS,
    )


def convert_format(frame: av.VideoFrame, pix_fmt: str, color: ColorInfo) -> av.VideoFrame:
    """An input frame in the output's pixel format, without a detour through RGB."""
    if frame.format.name == pix_fmt:
        return frame
    return frame.reformat(
        format=pix_fmt,
        src_colorspace=color.matrix,
        dst_colorspace=color.matrix,
        src_color_range=color.range_for(frame.format.name),
        dst_color_range=color.range_for(pix_fmt),
        interpolation=_SCALE_FLAGS,
    )
