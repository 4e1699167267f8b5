"""Exact output timing: which output frame is made from which input frames, at which fractional t.

All times are :class:`fractions.Fraction` seconds, so a 2-hour conversion at 60000/1001 fps has
no float drift: output frame j sits at exactly j / rate_out.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

# Decimal spellings of the NTSC rates mean the x/1001 rates users have in mind.
_NTSC = {"23.976": Fraction(24000, 1001), "29.97": Fraction(30000, 1001), "47.952": Fraction(48000, 1001),
         "59.94": Fraction(60000, 1001), "119.88": Fraction(120000, 1001)}


def parse_rate(text: str) -> Fraction:
    """'60', '60000/1001', '59.94' (read as 60000/1001) or '25.5' -> an exact positive rate."""
    text = text.strip()
    if text in _NTSC:
        return _NTSC[text]
    try:
        rate = Fraction(text)
    except (ValueError, ZeroDivisionError) as exc:
        raise ValueError(f"not a frame rate: {text!r} (use e.g. 60, 59.94 or 60000/1001)") from exc
    if rate <= 0:
        raise ValueError(f"frame rate must be positive, got {text!r}")
    return rate


def round_half_up(value: Fraction) -> int:
    return int((value + Fraction(1, 2)) // 1)


@dataclass(frozen=True)
class OutputFrame:
    """Output frame ``number`` at ``time``: a copy of input ``left`` when t == 0, else made between
    inputs ``left`` and ``left + 1`` at fractional time ``t``."""

    number: int
    time: Fraction
    left: int
    t: Fraction

    @property
    def is_copy(self) -> bool:
        return self.t == 0


class Schedule:
    """Turns input frame times, as they arrive, into the output frames that can be made so far.

    Input times are snapped to the nominal grid k / rate_in when within a quarter frame of it
    (containers round timestamps to their time base, which would otherwise turn t = 1/2 into
    0.4999 and miss frames that coincide with input frames); a missing or non-increasing time is
    taken as one nominal frame after the previous one. The output covers the input's whole
    duration (last frame time plus one nominal frame): its tail holds the last input frame.
    """

    def __init__(self, rate_in: Fraction, rate_out: Fraction) -> None:
        if rate_in <= 0 or rate_out <= 0:
            raise ValueError("frame rates must be positive")
        self.rate_in = Fraction(rate_in)
        self.rate_out = Fraction(rate_out)
        self.inputs = 0
        self.outputs = 0
        self._last: Fraction | None = None

    def _snap(self, time: Fraction | None) -> Fraction:
        step = 1 / self.rate_in
        if self._last is None:
            return Fraction(0)
        if time is None or time <= self._last:
            return self._last + step
        grid = round_half_up(time * self.rate_in) / self.rate_in
        if abs(time - grid) <= step / 4 and grid > self._last:
            return grid
        return time

    def _next_time(self) -> Fraction:
        return self.outputs / self.rate_out

    def add_input(self, time: Fraction | None) -> list[OutputFrame]:
        """Register the next input frame (its time relative to the first frame, or None)."""
        current = self._snap(None if time is None else Fraction(time))
        made: list[OutputFrame] = []
        if self._last is not None:
            left = self.inputs - 1
            span = current - self._last
            while self._next_time() < current:
                out_time = self._next_time()
                made.append(OutputFrame(self.outputs, out_time, left, (out_time - self._last) / span))
                self.outputs += 1
        self._last = current
        self.inputs += 1
        return made

    def finish(self) -> list[OutputFrame]:
        """The remaining output frames once the input has ended (copies of the last input frame)."""
        if self._last is None:
            return []
        total = max(self.outputs, round_half_up(self.input_duration * self.rate_out))
        made = []
        while self.outputs < total:
            out_time = self._next_time()
            # Output frames between the last input's time and the end show the last input frame.
            made.append(OutputFrame(self.outputs, out_time, self.inputs - 1, Fraction(0)))
            self.outputs += 1
        return made

    @property
    def input_duration(self) -> Fraction:
        """Time of the last input frame plus one nominal frame."""
        return Fraction(0) if self._last is None else self._last + 1 / self.rate_in

    @property
    def output_duration(self) -> Fraction:
        return self.outputs / self.rate_out
