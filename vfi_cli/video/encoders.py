"""Encoder settings: vfi's quality and speed options in each encoder's own terms.

``--preset`` takes x264's names (ultrafast … placebo) for every encoder: x264 and x265 use them as
they are, SVT-AV1 gets its own preset numbers and VP9 its ``cpu-used`` speed (and the realtime
deadline for ultrafast), so that one name means about the same trade-off everywhere. SVT-AV1 also
takes its own numbers directly (``--preset 6``). Encoders without a speed preset ignore it.
"""

from __future__ import annotations

import os

from vfi_cli.config import PRESETS
from vfi_cli.errors import VideoError

# Encoders whose quality is set by CRF.
CRF_ENCODERS = {"libx264", "libx265", "libvpx-vp9", "libsvtav1", "libaom-av1"}

# vfi's preset name -> the encoder's own options.
_SVTAV1 = dict(zip(PRESETS, ("13", "12", "11", "10", "9", "8", "6", "4", "2", "0")))
_SVTAV1_NUMBERS = range(-1, 14)
_VP9_CPU_USED = dict(zip(PRESETS, ("8", "5", "4", "3", "2", "1", "0", "0", "0", "0")))
_AOM_CPU_USED = dict(zip(PRESETS, ("8", "7", "6", "5", "4", "3", "2", "1", "0", "0")))


def encoder_options(codec: str, crf: int | None, preset: str | None) -> dict[str, str]:
    """The FFmpeg options that set ``codec``'s quality (CRF) and speed (``preset``, vfi's name).

    Raises :class:`VideoError` for a preset the encoder has no equivalent of.
    """
    options: dict[str, str] = {}
    if crf is not None and codec in CRF_ENCODERS:
        options["crf"] = str(crf)
        if codec == "libvpx-vp9":
            options["b"] = "0"  # constant quality
    if preset is None:
        return options
    preset = preset.strip().lower()
    if codec in ("libx264", "libx265"):
        if preset not in PRESETS:
            raise VideoError(f"--preset {preset!r} is not a {codec} preset (use {', '.join(PRESETS)})")
        options["preset"] = preset
    elif codec == "libsvtav1":
        if preset in _SVTAV1:
            options["preset"] = _SVTAV1[preset]
        elif preset.lstrip("-").isdigit() and int(preset) in _SVTAV1_NUMBERS:
            options["preset"] = str(int(preset))
        else:
            raise VideoError(f"--preset {preset!r} is not an SVT-AV1 preset (use {', '.join(PRESETS)}, or a number from 0 to 13)")
        os.environ.setdefault("SVT_LOG", "1")  # SVT-AV1 prints its whole configuration on stderr otherwise
    elif codec in ("libvpx-vp9", "libaom-av1"):
        table = _VP9_CPU_USED if codec == "libvpx-vp9" else _AOM_CPU_USED
        if preset not in table:
            raise VideoError(f"--preset {preset!r} is not a preset name (use {', '.join(PRESETS)})")
        options["cpu-used"] = table[preset]
        if codec == "libvpx-vp9":
            options["deadline"] = "realtime" if preset == "ultrafast" else "good"
    return options
