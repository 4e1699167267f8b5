"""Where the segments of a conversion run: here, one after the other (:func:`run_segments`).

An executor starts the journal (:func:`begin`), runs :func:`~vfi_cli.jobs.segments.run_segment`
for each segment not done yet, and joins them when all are done (:func:`finish`); the Ray executor
(:mod:`.cluster`) hands the same calls to workers, with the same journal and join.
"""

from __future__ import annotations

import logging
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vfi_cli.errors import Interrupted
from vfi_cli.jobs.manifest import Journal
from vfi_cli.jobs.segments import SegmentPlan, join, run_segment, summarize
from vfi_cli.progress import SILENT, Progress
from vfi_cli.results import Summary
from vfi_cli.units import format_time

if TYPE_CHECKING:
    from vfi_cli.engine.runner import FrameInterpolator

log = logging.getLogger(__name__)


def run_segments(plan: SegmentPlan, interpolator: FrameInterpolator, digest: str, *, expected_frames: int,
              resume: bool = True, overwrite: bool = False, progress: Progress = SILENT) -> Summary:
    """Convert ``plan``'s segments in this process, in order, skipping those an interrupted run
    finished (unless ``resume`` is off), then join them into the output and remove the work folder.

    Raises:
        Interrupted: Ctrl-C or a handled signal; the finished segments are kept for the next run
            (the message says so), or the work folder is removed when none was finished.
    """
    started = time.perf_counter()
    journal, done = begin(plan, digest, resume)
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
        return finish(plan, journal, ran, started, overwrite)
    except KeyboardInterrupt as exc:
        raise kept(plan, journal, exc) from None


def weights_digest(card: dict[str, Any], path: Path | None) -> str:
    """What names the weights in a journal: the sha256 on their card, else their path. The local and
    the Ray executors both use this, so that a run interrupted on one resumes on the other."""
    return str(card.get("sha256", path))


def begin(plan: SegmentPlan, digest: str, resume: bool) -> tuple[Journal, dict[int, dict]]:
    """Start (or take up) ``plan``'s journal: the journal and the segments an interrupted run finished."""
    journal = Journal(plan.work)
    dropped = journal.begin(plan.journal_key(digest), resume)
    if dropped is not None:
        log.warning(dropped)
    return journal, journal.done()


def finish(plan: SegmentPlan, journal: Journal, ran: list[int], started: float, overwrite: bool) -> Summary:
    """Join the segments (all done) into the output, remove the work folder, and summarize: the
    stages' busy time is that of the segments run now (``ran``), the wall time since ``started``."""
    done = journal.done()
    join(plan, done, overwrite=overwrite)
    journal.remove()
    busy = {stage: sum(done[i]["busy_seconds"][stage] for i in ran) for stage in ("decode", "model", "encode")}
    return summarize(plan, done, time.perf_counter() - started, busy)


def _frames(done: dict[int, dict]) -> int:
    return sum(entry["frames_out"] for entry in done.values())


def kept(plan: SegmentPlan, journal: Journal, exc: KeyboardInterrupt) -> KeyboardInterrupt:
    """The interruption to raise: it says what is kept for the next run, if anything (the work folder
    is removed when nothing is)."""
    count = len(journal.done())
    if not count:
        journal.remove()
        return exc
    return Interrupted(f"Interrupted: {count} of {plan.count} segments are kept in {plan.work}; run the same command "
                       "to resume (--no-resume starts over).", getattr(exc, "signum", signal.SIGINT))
