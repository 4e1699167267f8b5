"""YUV <-> RGB with the stream's own matrix and range, so that colours survive the round trip.

8-bit video is decoded by swscale to 8-bit RGB (exact to rounding). Video of more than 8 bits per
sample becomes 16-bit RGB with the matrix applied here in float32: swscale's 10-bit -> 16-bit RGB
path maps white to 0xFF00 instead of 0xFFFF (a gain error of one 8-bit level). RGB -> planar YUV is
done here too, for every depth: swscale's full-range 8-bit encode is up to 1.05 levels off, ours
rounds exactly. swscale still does the chroma resampling (4:2:0 <-> 4:4:4 at the same bit depth,
which involves no matrix).
"""

from __future__ import annotations

from dataclasses import dataclass

import av
import numpy as np
from av.video.reformatter import ColorRange, Colorspace, Interpolation

# AVColorSpace (the stream's tag) -> swscale matrix.
_MATRIX = {1: Colorspace.ITU709, 4: Colorspace.FCC, 5: Colorspace.ITU601, 6: Colorspace.SMPTE170M,
           7: Colorspace.SMPTE240M, 9: Colorspace.BT2020, 10: Colorspace.BT2020}
_SCALE_FLAGS = Interpolation.BICUBIC | Interpolation.ACCURATE_RND | Interpolation.FULL_CHR_H_INT
# swscale matrix -> (Kr, Kb) of ITU-T H.273.
_KR_KB = {Colorspace.ITU709: (0.2126, 0.0722), Colorspace.ITU601: (0.299, 0.114), Colorspace.FCC: (0.30, 0.11),
          Colorspace.SMPTE240M: (0.212, 0.087), Colorspace.BT2020: (0.2627, 0.0593)}


def bit_depth(pix_fmt: str) -> int:
    """Bits per sample of a pixel format (its deepest component)."""
    return max(component.bits for component in av.VideoFormat(pix_fmt).components)


def has_alpha(pix_fmt: str) -> bool:
    """Whether a pixel format carries transparency (yuva420p, rgba, gbrap, ya8 ...)."""
    try:
        return len(av.VideoFormat(pix_fmt).components) in (2, 4)
    except ValueError:
        return False


def rgb_format(pix_fmt: str) -> str:
    """The RGB format that holds ``pix_fmt`` without losing precision: rgb24 or rgb48le."""
    return "rgb24" if bit_depth(pix_fmt) <= 8 else "rgb48le"


def _is_rgb(pix_fmt: str) -> bool:
    return av.VideoFormat(pix_fmt).is_rgb


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

    @classmethod
    def srgb(cls, height: int) -> ColorInfo:
        """Images: sRGB pixels, tagged BT.709 matrix and primaries, sRGB transfer, limited-range YUV out."""
        return cls(colorspace=1, color_range=1, color_primaries=1, color_trc=13, height=height)

    @property
    def matrix(self) -> Colorspace:
        """The tagged matrix; untagged video uses BT.709 from 720 lines up and BT.601 below, as players do."""
        if self.colorspace in _MATRIX:
            return _MATRIX[self.colorspace]
        return Colorspace.ITU709 if self.height >= 720 else Colorspace.ITU601

    def range_for(self, pix_fmt: str) -> ColorRange:
        """RGB is full range; untagged YUV is limited ('MPEG') range, except the yuvj formats (full)."""
        if _is_rgb(pix_fmt):
            return ColorRange.JPEG
        if self.color_range in (1, 2):
            return ColorRange(self.color_range)
        return ColorRange.JPEG if pix_fmt.startswith("yuvj") else ColorRange.MPEG


def is_planar_yuv(pix_fmt: str) -> bool:
    """Planar Y'CbCr of at most 16 bits: the formats whose matrix vfi applies itself (here, or on the model's device)."""
    return pix_fmt.startswith("yuv") and av.VideoFormat(pix_fmt).is_planar and bit_depth(pix_fmt) <= 16


def ycbcr_matrix(color: ColorInfo) -> np.ndarray:
    """3x3 matrix from non-linear R'G'B' in [0,1] to Y' in [0,1] and Cb, Cr in [-1/2, 1/2]."""
    kr, kb = _KR_KB[color.matrix]
    kg = 1.0 - kr - kb
    return np.array([[kr, kg, kb],
                     [-kr / (2 - 2 * kb), -kg / (2 - 2 * kb), 0.5],
                     [0.5, -kg / (2 - 2 * kr), -kb / (2 - 2 * kr)]], dtype=np.float64)


def code_levels(bits: int, full: bool) -> tuple[float, float, float, float]:
    """(Y offset, Y scale, C offset, C scale) of n-bit code values, as in ITU-T H.273."""
    if full:
        return 0.0, float((1 << bits) - 1), float(1 << (bits - 1)), float((1 << bits) - 1)
    shift = 1 << (bits - 8)
    return 16.0 * shift, 219.0 * shift, 128.0 * shift, 224.0 * shift


def chroma_shift(pix_fmt: str) -> tuple[int, int]:
    """log2 of the chroma subsampling (vertical, horizontal): (1, 1) for 4:2:0, (0, 1) for 4:2:2, (0, 0) for 4:4:4."""
    chroma = av.VideoFormat(pix_fmt, 16, 16).components[1]
    return (16 // chroma.height).bit_length() - 1, (16 // chroma.width).bit_length() - 1


def yuv_planes(frame: av.VideoFrame) -> list[np.ndarray]:
    """The three planes of a planar frame as ``[H,W]`` views (no copy): uint8, or uint16 beyond 8 bits."""
    dtype = np.uint8 if bit_depth(frame.format.name) <= 8 else np.uint16
    size = np.dtype(dtype).itemsize
    return [np.frombuffer(plane, dtype=dtype).reshape(plane.height, plane.line_size // size)[:, : plane.width]
            for plane in frame.planes[:3]]


def _yuv444(pix_fmt: str) -> str:
    bits = bit_depth(pix_fmt)
    return "yuv444p" if bits == 8 else f"yuv444p{bits}le"


def _yuv_to_rgb16(frame: av.VideoFrame, color: ColorInfo) -> np.ndarray:
    name = frame.format.name
    bits = bit_depth(name)
    full = color.range_for(name) == ColorRange.JPEG
    if name != _yuv444(name):  # chroma upsampling only: same depth, same range, no matrix
        frame = frame.reformat(format=_yuv444(name), src_colorspace=color.matrix, dst_colorspace=color.matrix,
                               src_color_range=color.range_for(name), dst_color_range=color.range_for(name),
                               interpolation=_SCALE_FLAGS)
    y_off, y_scale, c_off, c_scale = code_levels(bits, full)
    y, cb, cr = yuv_planes(frame)
    luma = (y.astype(np.float32) - y_off) * np.float32(65535.0 / y_scale)
    blue_diff = (cb.astype(np.float32) - c_off) * np.float32(65535.0 / c_scale)
    red_diff = (cr.astype(np.float32) - c_off) * np.float32(65535.0 / c_scale)
    inverse = np.linalg.inv(ycbcr_matrix(color)).astype(np.float32)
    rgb = np.empty((*y.shape, 3), dtype=np.uint16)
    for channel in range(3):  # R' = Y' + m01 Cb + m02 Cr ..., one channel at a time, in place
        value = inverse[channel, 1] * blue_diff
        value += inverse[channel, 2] * red_diff
        value += luma
        np.clip(value, 0.0, 65535.0, out=value)
        rgb[..., channel] = np.rint(value, out=value)
    return rgb


def _rgb_to_yuv(rgb: np.ndarray, pix_fmt: str, color: ColorInfo) -> av.VideoFrame:
    bits = bit_depth(pix_fmt)
    full = color.range_for(pix_fmt) == ColorRange.JPEG
    y_off, y_scale, c_off, c_scale = code_levels(bits, full)
    matrix = ycbcr_matrix(color) / np.iinfo(rgb.dtype).max
    red, green, blue = (rgb[..., channel].astype(np.float32) for channel in range(3))
    height, width = rgb.shape[:2]
    frame = av.VideoFrame(width, height, _yuv444(pix_fmt))
    top = float((1 << bits) - 1)
    for index, (plane, offset, scale) in enumerate(zip(yuv_planes(frame), (y_off, c_off, c_off), (y_scale, c_scale, c_scale))):
        weights = (matrix[index] * scale).astype(np.float32)
        value = weights[0] * red  # in place from here: this runs for every synthesised frame
        value += weights[1] * green
        value += weights[2] * blue
        value += np.float32(offset)
        np.clip(value, 0.0, top, out=value)
        plane[...] = np.rint(value, out=value)
    if frame.format.name == pix_fmt:
        return frame
    return frame.reformat(format=pix_fmt, src_colorspace=color.matrix, dst_colorspace=color.matrix,
                          src_color_range=color.range_for(pix_fmt), dst_color_range=color.range_for(pix_fmt),
                          interpolation=_SCALE_FLAGS)


def to_rgb(frame: av.VideoFrame, color: ColorInfo) -> np.ndarray:
    """Decode-side conversion: ``[H,W,3]`` RGB, uint8 for 8-bit frames and uint16 for deeper ones."""
    if is_planar_yuv(frame.format.name) and bit_depth(frame.format.name) > 8:
        return _yuv_to_rgb16(frame, color)
    rgb = frame.reformat(
        format=rgb_format(frame.format.name),
        src_colorspace=color.matrix,
        src_color_range=color.range_for(frame.format.name),
        dst_color_range=ColorRange.JPEG,
        interpolation=_SCALE_FLAGS,
    )
    return rgb.to_ndarray()


def from_rgb(rgb: np.ndarray, pix_fmt: str, color: ColorInfo) -> av.VideoFrame:
    """Encode-side conversion with the same matrix and range the input was decoded with.

    ``rgb`` is uint8 or uint16, as :func:`to_rgb` made it.
    """
    if is_planar_yuv(pix_fmt):
        return _rgb_to_yuv(rgb, pix_fmt, color)
    source_format = "rgb48le" if rgb.dtype == np.uint16 else "rgb24"
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format=source_format)
    return frame.reformat(
        format=pix_fmt,
        src_colorspace=color.matrix,
        dst_colorspace=color.matrix,
        src_color_range=ColorRange.JPEG,
        dst_color_range=color.range_for(pix_fmt),
        interpolation=_SCALE_FLAGS,
    )


def frame_from_planes(planes: list[np.ndarray], pix_fmt: str) -> av.VideoFrame:
    """A planar YUV frame holding ``planes`` (Y, Cb, Cr code values, made on the model's device)."""
    frame = av.VideoFrame(planes[0].shape[1], planes[0].shape[0], pix_fmt)
    for target, source in zip(yuv_planes(frame), planes):
        target[...] = source
    return frame


def convert_format(frame: av.VideoFrame, pix_fmt: str, color: ColorInfo) -> av.VideoFrame:
    """An input frame in the output's pixel format, without a detour through RGB.

    When the formats match (the default) the decoded picture itself is returned: copied frames
    reach the encoder bit for bit as they were decoded.
    """
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
