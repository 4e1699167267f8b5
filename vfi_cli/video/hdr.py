"""HDR10 static metadata: the mastering display (SMPTE ST 2086) and the content light level (CTA-861.3),
read from the input's first frame and written through the parameters of each encoder that takes them.

FFmpeg hands both to the decoded frames whether the input carried them in the bitstream (HEVC and
AVC SEI, AV1 metadata OBUs) or in the container (MP4 ``mdcv``/``clli``, Matroska ``MasteringMetadata``).
PyAV cannot set a stream's side data, so the output carries them in the bitstream: x265, x264 and
SVT-AV1 write them from their parameter lists; other encoders (VP9, AOM AV1, FFV1 ...) have no way
in, and the user is told they are lost. HLG needs no such metadata: its transfer function is a
colour tag, which every encoder writes (:class:`~vfi_cli.video.color.ColorInfo`).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from fractions import Fraction

import av
from av.sidedata.sidedata import Type

from vfi_cli.video.pyav import side_data

# The parameter list each encoder reads them from, and how it names the two entries.
HDR_ENCODERS = {"libx265": ("x265-params", "master-display", "max-cll"),
                "libx264": ("x264-params", "mastering-display", "cll"),
                "libsvtav1": ("svtav1-params", "mastering-display", "content-light")}


@dataclass(frozen=True)
class HdrMetadata:
    """Mastering display: chromaticities (x, y) of its red, green and blue primaries and white point,
    and its luminance range in cd/m²; content light level: MaxCLL and MaxFALL in cd/m². A part the
    input does not state is None."""

    primaries: tuple[tuple[Fraction, Fraction], ...] | None = None  # red, green, blue
    white_point: tuple[Fraction, Fraction] | None = None
    luminance: tuple[Fraction, Fraction] | None = None  # (min, max)
    max_cll: int | None = None
    max_fall: int | None = None

    @classmethod
    def of_frame(cls, frame: av.VideoFrame) -> HdrMetadata | None:
        """What a decoded frame's side data says; None when it carries neither."""
        found: dict = {}
        data = side_data(frame, Type.MASTERING_DISPLAY_METADATA)
        if data is not None and len(data) >= 88:
            values = struct.unpack("<20i", data[:80])
            ratios = [Fraction(n, d) if d else Fraction(0) for n, d in zip(values[0::2], values[1::2])]
            has_primaries, has_luminance = struct.unpack("<2i", data[80:88])
            if has_primaries:
                found.update(primaries=((ratios[0], ratios[1]), (ratios[2], ratios[3]), (ratios[4], ratios[5])),
                             white_point=(ratios[6], ratios[7]))
            if has_luminance:
                found.update(luminance=(ratios[8], ratios[9]))
        data = side_data(frame, Type.CONTENT_LIGHT_LEVEL)
        if data is not None and len(data) >= 8:
            found.update(zip(("max_cll", "max_fall"), struct.unpack("<2I", data[:8])))
        return cls(**found) if found else None

    def encoder_params(self, codec: str) -> dict[str, str] | None:
        """The parameter list that makes ``codec`` write this metadata, or None when it cannot."""
        if codec not in HDR_ENCODERS:
            return None
        key, display_name, light_name = HDR_ENCODERS[codec]
        entries = []
        if self.primaries is not None and self.white_point is not None and self.luminance is not None:
            (rx, ry), (gx, gy), (bx, by) = self.primaries
            points = {"G": (gx, gy), "B": (bx, by), "R": (rx, ry), "WP": self.white_point}
            low, high = self.luminance
            if codec == "libsvtav1":  # decimal values
                chroma = "".join(f"{name}({float(x):.5f},{float(y):.5f})" for name, (x, y) in points.items())
                entries.append(f"{display_name}={chroma}L({float(high):.4f},{float(low):.4f})")
            else:  # x265 and x264: chromaticity in 0.00002 and luminance in 0.0001 cd/m² units (HEVC SEI)
                chroma = "".join(f"{name}({round(x * 50000)},{round(y * 50000)})" for name, (x, y) in points.items())
                entries.append(f"{display_name}={chroma}L({round(high * 10000)},{round(low * 10000)})")
        if self.max_cll is not None:
            entries.append(f"{light_name}={self.max_cll},{self.max_fall or 0}")
        return {key: ":".join(entries)} if entries else None
