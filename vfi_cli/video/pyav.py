"""The two places where the PyAV releases vfi supports (:data:`vfi_cli.environment.PYAV`) disagree,
read in a way every one of them answers:

- ``frame.side_data`` iterated over side data up to 18.1.0 and over their types from 18.1.1 on
  (it became a true mapping); a lookup by type works in both (:func:`side_data`);
- rates and time bases were ``Fraction`` or None up to 18 and are ``av.AVRational`` from 19 on, never
  None (an unset one is 0/1); :func:`rational` turns either into a ``Fraction`` or None, and
  :func:`seconds` a timestamp with its time base into seconds.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any


def side_data(frame: Any, kind: Any) -> bytes | None:
    """The bytes of a decoded frame's side data of type ``kind`` (an ``av.sidedata.sidedata.Type``), or None."""
    entry = frame.side_data.get(kind)
    return None if entry is None else bytes(entry)


def rational(value: Any) -> Fraction | None:
    """A PyAV rate or time base as a ``Fraction``; None when it is unset (None, or 0 as PyAV 19 reports it)."""
    if not value:
        return None
    return Fraction(value.numerator, value.denominator)


def seconds(stamp: int | None, time_base: Any) -> Fraction | None:
    """A PyAV timestamp (pts or dts) in seconds; None when the stamp or its time base is unset."""
    tick = rational(time_base)
    return None if stamp is None or tick is None else stamp * tick
