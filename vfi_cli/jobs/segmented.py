"""Where the segments of a conversion run: here, one after the other (:func:`run_segments`).

An executor starts the journal, runs :func:`~vfi_cli.jobs.segments.run_segment` for each segment
not done yet, and joins them when all are done; one for a cluster would hand the same calls to
workers, with the same journal and join.
"""

from __future__ import annotations

import logging
import signal
import time
from typing import TYPE_CHECKING

from vfi_cli.errors import Interrupted
from vfi_cli.jobs.manifest import Journal
from vfi_cli.jobs.segments import SegmentPlan, join, run_segment, summarize
from vfi_cli.progress import SILENT, Progress
from vfi_cli.results import Summary
from vfi_cli.units import format_time

if TYPE_CHECKING:
    from vfi_cli.engine.runner import FrameInterpolator

log = logging.getLogger(__name__)
CHANGED = "the input or options changed since the interrupted run; starting over"


def run_segments(plan: SegmentPlan, interpolator: FrameInterpolator, weights_digest: str, *, expected_frames: int,
              resume: bool = True, overwrite: bool = False, progress: Progress = SILENT) -> Summary:
    """Convert ``plan``'s segments in this process, in order, skipping those an interrupted run
    finished (unless ``resume`` is off), then join them into the output and remove the work folder.

    Raises:
        Interrupted: Ctrl-C or a handled signal; the finished segments are kept for the next run
            (the message says so), or the work folder is removed when none was finished.
    """
    started = time.perf_counter()
    journal = Journal(plan.work)
    if journal.begin(plan.journal_key(weights_digest), resume):
        log.warning(CHANGED)
    done = journal.done()
    resumed = f"; resuming after {len(done)} done by an interrupted run" if done else ""
    progress.status(f"{plan.count} segments of {format_time(plan.seconds)} in {plan.work.name}{resumed}")
    ran: list[int] = []
    try:
        with progress.task("interpolating", expected_frames, done=_frames(done), unit="frames") as update:
            for index in range(plan.count):
                if index in done:
                    continue
                before = _frames(done)
                run_segment(plan, index, interpolator, on_frame=lambda n: update(before + n))
                done = journal.done()
                ran.append(index)
        join(plan, done, overwrite=overwrite)
    except KeyboardInterrupt as exc:
        raise _kept(plan, journal, exc) from None
    journal.remove()
    busy = {stage: sum(done[i]["busy_seconds"][stage] for i in ran) for stage in ("decode", "model", "encode")}
    return summarize(plan, done, time.perf_counter() - started, busy)


def _frames(done: dict[int, dict]) -> int:
    return sum(entry["frames_out"] for entry in done.values())


def _kept(plan: SegmentPlan, journal: Journal, exc: KeyboardInterrupt) -> KeyboardInterrupt:
    """The interruption to raise: it says what is kept for the next run, if anything."""
    kept = len(journal.done())
    if not kept:
        journal.remove()
        return exc
    return Interrupted(f"Interrupted: {kept} of {plan.count} segments are kept in {plan.work}; run the same command "
                       "to resume (--no-resume starts over).", getattr(exc, "signum", signal.SIGINT))
