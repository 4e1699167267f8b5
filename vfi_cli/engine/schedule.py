"""Exact output timing: which output frame is made from which input frames, at which fractional t.

All times are :class:`fractions.Fraction` seconds, so a 2-hour conversion at 60000/1001 fps has
no float drift: output frame j sits at exactly j / rate_out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

# Snap input times at most this far onto the nominal grid (the tick of Matroska's millisecond timestamps).
DEFAULT_TOLERANCE = Fraction(1, 1000)


def round_half_up(value: Fraction) -> int:
    return int((value + Fraction(1, 2)) // 1)


def fraction_gcd(a: Fraction, b: Fraction) -> Fraction:
    """The largest step of which both ``a`` and ``b`` are whole multiples."""
    return Fraction(math.gcd(a.numerator * b.denominator, b.numerator * a.denominator), a.denominator * b.denominator)


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

    Two modes. With a ``factor`` N the output follows the input's own timestamps: each input frame
    is kept at its real time and N-1 frames are made evenly inside each interval, so variable-rate
    input gives variable-rate output with every input frame where it was. Without, the output has
    the constant rate ``rate_out`` (frame j at exactly j / rate_out) and each frame is made at its
    real fraction of the input interval around it.

    Input times within ``tolerance`` of the nominal grid k / rate_in are snapped onto it: containers
    round timestamps to their time base, which would otherwise turn t = 1/2 into 0.4999 and miss
    frames that coincide with input frames. Keep ``tolerance`` at the stream's tick, so that the
    real times of variable-rate video are not moved. A missing or non-increasing time is taken as
    one nominal frame after the previous one. The output covers the input's whole duration (last
    frame time plus one nominal frame): its tail holds the last input frame.

    With an ``end`` (a preview of part of the input) the output covers [0, end) and no more: the
    first input frame at or after ``end`` only closes the last interval (its frames are made between
    the last frame before ``end`` and that one, as in a conversion of the whole input).

    With a ``span`` (begin, end; end None: to the end) the schedule makes one segment of a longer
    conversion (:mod:`vfi_cli.jobs.segments`): input times are the input's own (from its first frame),
    the first one given is snapped like any other instead of being taken as 0, and only the output
    frames at times in [begin, end) are given: exactly those a schedule of the whole input gives
    there. It needs the input frames from the last one before ``begin`` to the first at or after
    ``end``; :attr:`used` counts those in the span.
    """

    def __init__(self, rate_in: Fraction, rate_out: Fraction, *, factor: int | None = None,
                 tolerance: Fraction = DEFAULT_TOLERANCE, end: Fraction | None = None,
                 span: tuple[Fraction, Fraction | None] | None = None) -> None:
        if rate_in <= 0 or rate_out <= 0:
            raise ValueError("frame rates must be positive")
        if factor is not None and (factor < 1 or rate_out != rate_in * factor):
            raise ValueError("rate_out must be rate_in * factor")
        self.rate_in = Fraction(rate_in)
        self.rate_out = Fraction(rate_out)
        self.factor = factor
        self.tolerance = Fraction(min(Fraction(tolerance), 1 / (4 * self.rate_in)))
        if end is not None and end <= 0:
            raise ValueError("end must be positive")
        self.end = None if end is None else Fraction(end)
        if span is not None and (end is not None or (span[1] is not None and span[1] <= span[0])):
            raise ValueError("a span is a segment of the whole input: give no end, and a span that ends after it begins")
        self.span = span
        self.inputs = 0
        self.outputs = 0
        self.ended = False  # an input at or after ``end`` has come: the output is complete
        self.used = 0  # input frames before ``end`` (held ones too): those the output shows
        self._last: Fraction | None = None  # the time of the last input (the start of the span being made)
        self._seen: Fraction | None = None  # the time of the last frame registered, held or not
        self._held: list[Fraction] = []  # times of the frames held since ``_last``
        self._stopped_at: Fraction | None = None
        self._last_end: Fraction | None = None

    def output_time_base(self, input_time_base: Fraction | None) -> Fraction:
        """A tick on which every output time falls exactly (what the encoder's time base must be)."""
        if self.factor is None:
            return 1 / self.rate_out
        grid = 1 / self.rate_in if input_time_base is None else fraction_gcd(1 / self.rate_in, Fraction(input_time_base))
        tick = grid / self.factor
        # Encoders and muxers keep time bases in 32-bit integers; beyond that a microsecond tick is exact enough.
        return tick if tick.numerator == 1 and tick.denominator < 2**31 else Fraction(1, 1_000_000)

    def _snap(self, time: Fraction | None) -> Fraction:
        step = 1 / self.rate_in
        if self._seen is None and self.span is None:
            return Fraction(0)
        if self._seen is None and time is None:
            raise ValueError("a segment's first input frame needs a timestamp")
        if self._seen is not None and (time is None or time <= self._seen):
            return self._seen + step
        grid = round_half_up(time * self.rate_in) / self.rate_in
        if abs(time - grid) <= self.tolerance and (self._seen is None or grid > self._seen):
            return grid
        return time

    def _between(self, start: Fraction, end: Fraction) -> list[OutputFrame]:
        """The output frames in [start, end), made between input ``inputs - 1`` and the next; held
        frames in between split the span as input frames would, and t runs evenly over all of it."""
        left = self.inputs - 1
        made = []
        stop = end if self.end is None else min(end, self.end)
        if self.factor is not None:
            bounds = [start, *self._held, end]
            for a, b in zip(bounds[:-1], bounds[1:]):
                for m in range(self.factor):
                    if (out_time := a + (b - a) * m / self.factor) >= stop:
                        self._stopped_at = out_time  # where the last frame made ends
                        return made
                    made.append(OutputFrame(self.outputs, out_time, left, (out_time - start) / (end - start)))
                    self.outputs += 1
            return made
        while (out_time := self.outputs / self.rate_out) < stop:
            made.append(OutputFrame(self.outputs, out_time, left, (out_time - start) / (end - start)))
            self.outputs += 1
        return made

    def add_input(self, time: Fraction | None) -> list[OutputFrame]:
        """Register the next input frame (its time relative to the first frame, or None)."""
        current = self._snap(None if time is None else Fraction(time))
        if self._last is None and self.span is not None and self.factor is None:
            self.outputs = math.ceil(current * self.rate_out)  # output j lies at j / rate_out on the input's clock
        made = [] if self._last is None or self.ended else self._between(self._last, current)
        if self._reaches_end(time, current):
            if not self.ended:
                self.ended, self._last_end = True, current  # this frame only closed the last interval
        else:
            self._last, self._held = current, []
            self.used += self._in_span(current)
        self._seen = current
        self.inputs += 1
        return self._spanned(made)

    def _in_span(self, time: Fraction) -> bool:
        begin, end = self.span or (Fraction(0), None)
        return begin <= time and (end is None or time < end)

    def _spanned(self, made: list[OutputFrame]) -> list[OutputFrame]:
        """The output frames a segment gives: those in its span (all without one)."""
        return made if self.span is None else [job for job in made if self._in_span(job.time)]

    def hold(self, time: Fraction | None) -> None:
        """Register an input frame that repeats the previous one (a drawing held "on twos"; see
        :mod:`vfi_cli.engine.dedup`). It is not an input of its own: the output frames of the span from
        the frame it repeats to the next input are all made between those two, at times t spread
        evenly over the whole span, so the drawing's motion is spread over the frames it was held for.
        Output times stay where they would be: with a factor, N per frame interval, held or not."""
        current = self._snap(None if time is None else Fraction(time))
        if self._last is None:
            raise ValueError("the first input frame cannot repeat another")
        if not self.ended and not self._reaches_end(time, current):
            self._held.append(current)
            self.used += self._in_span(current)
        self._seen = current

    def _reaches_end(self, time: Fraction | None, current: Fraction) -> bool:
        """Whether a frame at ``time`` (``current`` once snapped to the grid) lies at or after ``end``.
        Its own time counts as well: with --start 0.3 --end 3.5 on a 24 fps Matroska input, the frame
        at 3.5 s is 3.167 s (milliseconds) after the part's first one, at 0.333 s, and 19/6 s once
        snapped to the grid: just before ``end``, it would open a sliver of an interval, an output
        frame 1/6000 s after the last (in the same millisecond of the file's clock)."""
        return self.end is not None and (current >= self.end or (time is not None and Fraction(time) >= self.end))

    def finish(self) -> list[OutputFrame]:
        """The remaining output frames once the input has ended (copies of the last input frame)."""
        if self._last is None or self.ended:
            return []
        if self.factor is not None:
            made = self._between(self._last, self.input_duration)
        else:
            made = []
            total = max(self.outputs, round_half_up(self.input_duration * self.rate_out))
            while self.outputs < total:
                made.append(OutputFrame(self.outputs, self.outputs / self.rate_out, self.inputs - 1, Fraction(0)))
                self.outputs += 1
        # Output frames between the last input's time and the end show the last input frame.
        return self._spanned([OutputFrame(o.number, o.time, self.inputs - 1, Fraction(0)) for o in made])

    @property
    def input_duration(self) -> Fraction:
        """Time of the last input frame plus one nominal frame (at most ``end``; ``end`` once the input has reached it)."""
        if self.ended:
            return self.end
        if self._seen is None:
            return Fraction(0)
        return self._seen + 1 / self.rate_in if self.end is None else min(self._seen + 1 / self.rate_in, self.end)

    @property
    def output_duration(self) -> Fraction:
        """Where the last output frame ends: with an ``end``, the first output time at or after it."""
        if self.factor is not None and self.ended:
            return self._stopped_at if self._stopped_at is not None else self._last_end
        if self.factor is not None:
            return self.input_duration
        return self.outputs / self.rate_out
