"""Video input and output with PyAV; knows nothing of torch.

A PyAV of a release vfi does not support is refused here, before any module of this room imports it,
with one line naming the releases that work (:mod:`vfi_cli.environment`)."""

from vfi_cli.environment import check_pyav

check_pyav()


def ffmpeg_message(exc: BaseException) -> str:
    """FFmpeg's reason for a failure, with its last log line when it says more than the error code."""
    reason = getattr(exc, "strerror", None) or str(exc)
    log = getattr(exc, "log", None)
    if log and len(log) == 3 and log[2]:
        detail = str(log[2]).strip()
        if detail and detail not in reason:
            reason = f"{reason} ({detail})"
    return reason
