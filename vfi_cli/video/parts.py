"""Previews: which frames of the input a ``--start``/``--end``/``--duration`` part covers.

The part starts at the first input frame at or after ``--start`` (so that its frames are the
input's own, and with ``--factor`` exactly the frames a conversion of the whole input makes there)
and ends before ``--end``, or ``--duration`` seconds after that first frame.
"""

from __future__ import annotations

import math
from fractions import Fraction

from vfi_cli.errors import VfiError
from vfi_cli.units import format_time
from vfi_cli.video.reader import FrameReader, Part, VideoInfo


def locate_part(info: VideoInfo, start: Fraction | None, end: Fraction | None = None,
                duration: Fraction | None = None) -> Part:
    """The part of ``info``'s input asked for, its start moved onto the first frame at or after ``start``.

    Raises:
        VfiError: no frame lies at or after ``start``, or none between ``start`` and ``end``.
    """
    asked = Fraction(start or 0)
    if info.path.is_dir():  # a folder of images: frame k is at k / rate
        index = math.ceil(asked * info.rate)
        first = index / info.rate if index < info.frame_count else None
    else:
        reader = FrameReader(info, part=Part(asked))
        frames = iter(reader)
        try:
            frame = next(frames, None)
        except VfiError:  # nothing decoded at or after the start
            frame = None
        finally:
            frames.close()
        first = None if frame is None else asked + (frame.time or 0)
    if first is None:
        length = f" (it lasts {format_time(info.duration)})" if info.duration else ""
        raise VfiError(f"--start {format_time(asked)} is at or after the end of {info.path.name}{length}")
    last = first + duration if duration is not None else end
    if last is not None and last <= first:
        raise VfiError(f"no frame of {info.path.name} lies between --start {format_time(asked)} and --end {format_time(last)} "
                       f"(the first frame from --start is at {format_time(first)})")
    return Part(first, last)
