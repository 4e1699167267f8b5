"""What the machine has: the RAM that can be had without swapping, and this process's peak resident
memory, through psutil on every platform (``/proc/meminfo`` is Linux's only; ``resource`` does not
exist on Windows)."""

from __future__ import annotations

import sys


def available_memory() -> int:
    """Bytes of RAM available to a new allocation without swapping (Linux's MemAvailable)."""
    import psutil

    return int(psutil.virtual_memory().available)


def peak_rss() -> int:
    """Peak resident memory of this process in bytes: ru_maxrss where POSIX has it (KiB on Linux,
    bytes on macOS), the peak working set on Windows, else the current resident size."""
    try:
        import resource
    except ImportError:  # Windows
        import psutil

        info = psutil.Process().memory_info()
        return int(getattr(info, "peak_wset", info.rss))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)
