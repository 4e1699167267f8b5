"""The releases of PyAV vfi runs with, checked before a command or an API call first needs PyAV.

PyAV changes its API in major releases (15, 17 and 19 did) and once in a patch release (18.1.1), so
vfi names the majors its tests run on (the same range as pyproject's) and refuses the others with one
line, before an import of a wrong PyAV fails on a name it lacks (:mod:`vfi_cli.video.pyav` reads the
API that moved between the supported ones).
"""

from __future__ import annotations

import re

from vfi_cli.errors import VfiError

# Lowest supported release, first unsupported one. 18.0 is the first with the colour names vfi uses
# (Colorspace.BT2020); 20 is a major release no test has run on yet.
PYAV = ((18, 0), (20, 0))
PYAV_REQUIREMENT = "av>=18.0,<20"


def _release(version: str) -> tuple[int, int]:
    numbers = re.match(r"(\d+)(?:\.(\d+))?", version)
    if numbers is None:
        return (0, 0)
    return int(numbers.group(1)), int(numbers.group(2) or 0)


def unsupported_pyav(version: str) -> str | None:
    """Why PyAV ``version`` cannot run vfi (one line naming the releases that can), or None when it can."""
    lowest, beyond = PYAV
    if lowest <= _release(version) < beyond:
        return None
    return (f"PyAV {version} is installed, but vfi needs PyAV {lowest[0]}.{lowest[1]} or later, before {beyond[0]}.0: "
            f"pip install '{PYAV_REQUIREMENT}'")


def check_pyav() -> None:
    """Raise :class:`VfiError` (one line) when PyAV is missing or of a release vfi does not support
    (read from the installed distribution's metadata: PyAV itself is not imported)."""
    from importlib import metadata

    try:
        version = metadata.version("av")
    except metadata.PackageNotFoundError:
        raise VfiError(f"PyAV is not installed, and vfi reads and writes video through it: "
                       f"pip install '{PYAV_REQUIREMENT}'") from None
    reason = unsupported_pyav(version)
    if reason is not None:
        raise VfiError(reason)
