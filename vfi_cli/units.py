"""Option values written as text, read and shown one way everywhere: frame rates, times, memory sizes, frame sizes.

Standard library only, so that the command line, the option dataclasses and the engine share it.
"""

from __future__ import annotations

import re
from fractions import Fraction

# Decimal spellings of the NTSC rates mean the x/1001 rates users have in mind.
_NTSC = {"23.976": Fraction(24000, 1001), "29.97": Fraction(30000, 1001), "47.952": Fraction(48000, 1001),
         "59.94": Fraction(60000, 1001), "119.88": Fraction(120000, 1001)}
_MEMORY_UNITS = {"": 1, "b": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}


def parse_rate(text: str) -> Fraction:
    """'60', '60000/1001', '59.94' (read as 60000/1001) or '25.5' -> an exact positive rate.

    Raises:
        ValueError: ``text`` is not a positive rate.
    """
    text = text.strip()
    if text in _NTSC:
        return _NTSC[text]
    try:
        rate = Fraction(text)
    except (ValueError, ZeroDivisionError) as exc:
        raise ValueError(f"not a frame rate: {text!r} (use e.g. 60, 59.94 or 60000/1001)") from exc
    if rate <= 0:
        raise ValueError(f"frame rate must be positive, got {text!r}")
    if rate.numerator >= 2**31 or rate.denominator >= 2**31:  # containers keep rates and time bases in 32 bits
        raise ValueError(f"frame rate {text!r} is too precise to store; give it as a fraction such as 30000/1001")
    return rate


# Target rates vfi makes: from 1 fps (or the input's own rate, when lower) up to MAX_FACTOR times the input's rate.
MAX_FACTOR = 64
MIN_RATE = Fraction(1)


def rate_bounds(rate_in: Fraction) -> tuple[Fraction, Fraction]:
    """The lowest and highest output rate that make sense for an input at ``rate_in``: below 1 fps
    an output frame would outlast a second of the input (a 1-second clip at 0.0001 fps is one frame
    lasting hours), above 64x it would make 63 frames between two real ones."""
    return min(MIN_RATE, Fraction(rate_in)), Fraction(rate_in) * MAX_FACTOR


def check_output_rate(rate_in: Fraction, rate_out: Fraction) -> None:
    """Raise ValueError, in one line, for an output rate outside :func:`rate_bounds`."""
    low, high = rate_bounds(rate_in)
    if not low <= rate_out <= high:
        raise ValueError(
            f"{_shown(rate_out)} fps is outside what vfi makes from {_shown(rate_in)} fps input: "
            f"from {_shown(low)} to {_shown(high)} fps (1 fps, or the input's rate if lower, up to {MAX_FACTOR}x the input's)"
        )


def _shown(rate: Fraction) -> str:
    return str(rate) if rate.denominator == 1 else f"{float(rate):.6g}"


def parse_time(text: str | float | Fraction) -> Fraction:
    """'90', '2.5', '1:30', '01:02:03.250' (hours:minutes:seconds) -> exact seconds, not negative.

    Raises:
        ValueError: ``text`` is not such a time.
    """
    if not isinstance(text, str):
        seconds = Fraction(text)
    else:
        match = re.fullmatch(r"\s*(?:(?:(\d+):)?(\d+):)?(\d+(?:\.\d*)?|\.\d+)\s*", text)
        if not match:
            raise ValueError(f"{text!r} is not a time (use seconds, MM:SS or HH:MM:SS, e.g. 90, 1:30.5)")
        hours, minutes, rest = match.groups()
        if (hours or minutes) and Fraction(rest) >= 60 or hours and int(minutes) >= 60:
            raise ValueError(f"{text!r} is not a time: minutes and seconds run to 59")
        seconds = Fraction(rest) + 60 * int(minutes or 0) + 3600 * int(hours or 0)
    if seconds < 0:
        raise ValueError(f"a time must not be negative, got {text!r}")
    return seconds


def format_time(seconds: Fraction) -> str:
    """'12.500 s', or '1:02:03.250' from a minute up."""
    if seconds < 60:
        return f"{float(seconds):.3f} s"
    whole, millis = divmod(round(Fraction(seconds) * 1000), 1000)
    minutes, secs = divmod(whole, 60)
    hours, minutes = divmod(minutes, 60)
    shown = f"{minutes}:{secs:02d}" if not hours else f"{hours}:{minutes:02d}:{secs:02d}"
    return f"{shown}.{millis:03d}"


def format_rate(rate: Fraction) -> str:
    """'50', or '59.940 (60000/1001)' for a rate that is not a whole number."""
    return str(rate.numerator) if rate.denominator == 1 else f"{float(rate):.3f} ({rate.numerator}/{rate.denominator})"


def parse_memory(text: str) -> int:
    """'6G', '800M', '1.5GiB', '2048MB' or a byte count -> bytes (binary units).

    Raises:
        ValueError: ``text`` is not a positive memory size.
    """
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*", text.lower())
    if not match:
        raise ValueError(f"{text!r} is not a memory size such as 6G, 800M or 1.5GiB")
    value = float(match.group(1)) * _MEMORY_UNITS[match.group(2)]
    if value < 1:
        raise ValueError(f"memory size {text!r} must be positive")
    return int(value)


def format_memory(size: float) -> str:
    """Bytes in the largest binary unit they fill: '1.5 GiB', '800.0 MiB', '12 B'."""
    for unit in ("T", "G", "M", "K"):
        if size >= _MEMORY_UNITS[unit.lower()]:
            return f"{size / _MEMORY_UNITS[unit.lower()]:.1f} {unit}iB"
    return f"{int(size)} B"


def parse_size(text: str) -> tuple[int, int]:
    """'HxW' (height first, as in 1024x2048) -> (height, width).

    Raises:
        ValueError: ``text`` is not two positive whole numbers joined by 'x'.
    """
    height, sep, width = text.lower().partition("x")
    if not sep or not height.isdigit() or not width.isdigit() or int(height) < 1 or int(width) < 1:
        raise ValueError(f"{text!r} is not HEIGHTxWIDTH, e.g. 1024x2048")
    return int(height), int(width)
