"""Encoder settings: vfi's quality and speed options in each encoder's own terms, the user's
``--encoder-opt`` options over them, and what the encoder said about them.

``--preset`` takes x264's names (ultrafast … placebo) for every encoder: x264 and x265 use them as
they are, SVT-AV1 gets its own preset numbers and VP9 its ``cpu-used`` speed (and the realtime
deadline for ultrafast), so that one name means about the same trade-off everywhere. SVT-AV1 also
takes its own numbers directly (``--preset 6``). Encoders without a speed preset ignore it.
The user's options (:attr:`~vfi_cli.config.EncodeSettings.options`) go over all of vfi's.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

import av
import av.logging

from vfi_cli.config import PRESETS, merge_params
from vfi_cli.errors import VideoError
from vfi_cli.video import ffmpeg_message

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
    elif codec in ("libvpx-vp9", "libaom-av1"):
        table = _VP9_CPU_USED if codec == "libvpx-vp9" else _AOM_CPU_USED
        if preset not in table:
            raise VideoError(f"--preset {preset!r} is not a preset name (use {', '.join(PRESETS)})")
        options["cpu-used"] = table[preset]
        if codec == "libvpx-vp9":
            options["deadline"] = "realtime" if preset == "ultrafast" else "good"
    return options


def with_user_options(base: Mapping[str, str], user: tuple[tuple[str, str], ...]) -> dict[str, str]:
    """``base`` (vfi's options) with the user's on top; parameter lists (``*-params``) are merged key by key."""
    options = dict(base)
    for key, value in user:
        options[key] = merge_params(options[key], value) if key.endswith("-params") and key in options else value
    return options


def quiet_library(codec: str) -> dict[str, str]:
    """Options that keep an encoder library from printing its own lines on stderr (beside FFmpeg's log,
    which vfi turns into its one ``Warning: ...`` form): x265 and SVT-AV1 print progress and notices
    such as "x265 [info]: ..." or "Svt[warn]: ..." (SVT-AV1 its whole configuration) by default; only
    their errors are left. A user's ``--encoder-opt x265-params=log-level=info`` (or the environment's
    ``SVT_LOG``) still wins."""
    if codec == "libsvtav1":
        os.environ.setdefault("SVT_LOG", "1")  # errors only; SVT-AV1 reads it when it first starts in a process
    return {"x265-params": "log-level=error"} if codec == "libx265" else {}


def refused_options(user: tuple[tuple[str, str], ...], left_over: Mapping[str, str]) -> list[str]:
    """The user's option names the encoder left unused when it opened (FFmpeg hands back what no one took)."""
    return [key for key, _ in user if key in left_over]


def ffmpeg_call(call: Callable[[], object], codec: str | None = None, complaints: list[str] | None = None) -> str | None:
    """Run an FFmpeg step (open an encoder, write a header): None when it works, else its own reason
    (the last error line it logged, such as 'MPEG-1/2 does not support 47/1 fps', which FFmpeg's error
    code alone does not tell). What the encoder ``codec`` warned about its options goes to
    ``complaints``: FFmpeg's wrappers only warn about an unknown or bad entry of a parameter list
    such as ``x265-params``, and go on."""
    previous = av.logging.get_level()
    av.logging.set_level(av.logging.WARNING)
    reason = None
    try:
        with av.logging.Capture() as logs:
            call()
    except (av.FFmpegError, ValueError) as exc:
        reason = ffmpeg_message(exc)
    finally:
        av.logging.set_level(previous)
    said = [(level, name, " ".join(str(message).split())) for level, name, message in logs]
    if reason is not None:
        errors = [text for level, _, text in said if level <= av.logging.ERROR and text]
        return errors[-1] if errors else reason
    if complaints is not None:
        complaints += [text for level, name, text in said if name == codec and level <= av.logging.WARNING and "option" in text.lower()]
    return None
