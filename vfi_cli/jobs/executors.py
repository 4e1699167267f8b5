"""How a batch's jobs run on this machine: one file after another with one model, or N files at
once in N worker processes, each with its own model (and device).

Worker processes, not threads: torch's CPU thread count is one setting per process, so only a
process per job can give each job its share of the cores (cores / N threads) instead of N jobs
each running on all of them; the pipeline's per-frame Python (scheduling, colour conversion) does
not contend for one GIL when N processes feed N GPUs; a process keeps its decoder, encoder and
model memory to itself and returns it when the batch ends; and a job that is a (picklable) function
of plain data is what a cluster executor sends out too. Measured on a 2-core machine shared with
another job (4 clips of 128x96, 48 frames, x2, the shipped model, x264; best of 3): one at a time
3.5 s, two threads 3.4 s, two processes 5.0 s (each worker first spends ~2-3 s importing torch
and loading the model). Two cores are already busy with one conversion (torch's threads, decode
and encode), so ``--jobs`` pays on machines with many cores or several GPUs, for files that take
longer than a worker's start; one at a time (the default) is right on a small machine.

Each job's outcome comes back as a :class:`~vfi_cli.results.FileResult`: a file that cannot be
converted is a "failed" result, and the batch goes on. What would fail every file (the weights,
the device) is raised instead and stops the batch. Ctrl-C stops it too: the file being converted
leaves nothing behind, and the files done stay done.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from vfi_cli.config import EngineOptions
from vfi_cli.errors import Interrupted, VfiError, first_line
from vfi_cli.jobs.batch import BatchJob
from vfi_cli.progress import SILENT, Progress
from vfi_cli.results import FileResult, LoadedModel

log = logging.getLogger(__name__)
OnDone = Callable[[FileResult], None]


def convert_job(job: BatchJob, model: LoadedModel, engine: EngineOptions, progress: Progress = SILENT) -> FileResult:
    """Convert one file with a model already loaded; any failure of this file is its result, not an exception."""
    from vfi_cli.jobs.convert import convert_file

    started = time.perf_counter()
    try:
        job.destination.parent.mkdir(parents=True, exist_ok=True)
        summary = convert_file(job.source, job.destination, job.options, engine=engine, overwrite=job.overwrite,
                               progress=progress, model=model, segment=job.segment, resume=job.resume,
                               input_fps=job.input_fps)
    except VfiError as exc:
        return FileResult(job.source, job.destination, "failed", first_line(exc), seconds=time.perf_counter() - started)
    except Exception as exc:  # noqa: BLE001 - one file's unforeseen failure must not stop the others
        log.debug("%s failed", job.source, exc_info=True)
        reason = f"{type(exc).__name__}: {first_line(exc)}"
        return FileResult(job.source, job.destination, "failed", reason, seconds=time.perf_counter() - started)
    return FileResult(job.source, job.destination, "converted", summary=summary, seconds=time.perf_counter() - started)


def check_devices(devices: Sequence[str]) -> None:
    """Refuse, before any worker starts, a device this machine does not have (one line)."""
    from vfi_cli.backends.eager import resolve_device

    for device in devices:
        resolve_device(device)


def worker_devices(devices: Sequence[str], workers: int) -> list[str]:
    """The device of each worker: the devices in turn (two workers per GPU with ``--jobs 4`` on two)."""
    return [devices[k % len(devices)] for k in range(workers)]


def run_local(
    jobs: Sequence[BatchJob], *, engine: EngineOptions, weights: Path | None, workers: int = 1, devices: Sequence[str] = (),
    progress: Progress = SILENT, on_done: OnDone | None = None,
) -> list[FileResult]:
    """Run ``jobs`` here: in order with one model (``workers`` 1), else in ``workers`` processes, the
    devices (default: the engine's) dealt out one per worker. ``on_done`` hears each result as it comes."""
    devices = tuple(devices) or (engine.device,)
    check_devices(devices)
    if not jobs:
        return []
    if workers == 1 and len(devices) == 1:
        return _sequential(jobs, replace(engine, device=devices[0]), weights, progress, on_done or _ignore)
    return _concurrent(jobs, engine, weights, worker_devices(devices, workers), progress, on_done or _ignore)


def _ignore(result: FileResult) -> None:
    pass


def _interrupted(exc: KeyboardInterrupt, done: int, total: int) -> Interrupted:
    return Interrupted(f"Interrupted: {done} of {total} file(s) done; run the same command again to convert the rest "
                       "(finished files are skipped).", signum=getattr(exc, "signum", signal.SIGINT))


def _sequential(jobs: Sequence[BatchJob], engine: EngineOptions, weights: Path | None, progress: Progress, on_done: OnDone) -> list[FileResult]:
    from vfi_cli.backends.eager import load_model

    model = load_model(weights, engine)  # once for the batch: memory does not grow with the number of files
    results: list[FileResult] = []
    try:
        for job in jobs:
            named = _Named(progress, f"[{len(results) + 1}/{len(jobs)}] {job.source.name}")
            results.append(convert_job(job, model, engine, named))
            on_done(results[-1])
    except KeyboardInterrupt as exc:
        raise _interrupted(exc, len(results), len(jobs)) from exc
    return results


class _Named:
    """A progress that names the file in its task label (a bar, or the lines of an unattended run)."""

    def __init__(self, inner: Progress, name: str) -> None:
        self.inner, self.name = inner, name

    def status(self, line: str) -> None:
        self.inner.status(line)

    def task(self, label: str, total: int | None, done: int = 0, unit: str = "items") -> Any:
        return self.inner.task(self.name, total, done, unit)


# ----------------------------------------------------------------------------- worker processes

_worker: dict[str, Any] = {}


def _start_worker(devices: Any, engine: EngineOptions, weights: Path | None, threads: int) -> None:
    """A worker's start: take a device, load the model once; an error is kept and raised by each job,
    so that the batch stops with it. SIGTERM acts as Ctrl-C, so the file being written is removed."""
    from vfi_cli.backends.eager import load_model

    signal.signal(signal.SIGTERM, signal.default_int_handler)
    engine = replace(engine, device=devices.get(), threads=engine.threads or threads)
    _worker["engine"] = engine
    try:
        _worker["model"] = load_model(weights, engine)
    except VfiError as exc:
        _worker["error"] = exc


def _run_in_worker(job: BatchJob) -> FileResult:
    if "error" in _worker:
        raise _worker["error"]
    return convert_job(job, _worker["model"], _worker["engine"])


def _concurrent(jobs: Sequence[BatchJob], engine: EngineOptions, weights: Path | None, devices: list[str],
                progress: Progress, on_done: OnDone) -> list[FileResult]:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool

    context = multiprocessing.get_context("spawn")  # never fork a process that holds torch and CUDA state
    slots = context.Queue()
    for device in devices:
        slots.put(device)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    threads = max(1, cores // len(devices))
    pool = ProcessPoolExecutor(len(devices), mp_context=context, initializer=_start_worker, initargs=(slots, engine, weights, threads))
    progress.status(f"{len(jobs)} file(s) in {len(devices)} worker processes ({', '.join(devices)}), "
                    f"{engine.threads or threads} CPU thread(s) each")
    results: list[FileResult] = []
    try:
        with progress.task("files", len(jobs), unit="files") as update:
            for future in as_completed([pool.submit(_run_in_worker, job) for job in jobs]):
                results.append(future.result())
                on_done(results[-1])
                update(len(results))
    except KeyboardInterrupt as exc:
        for process in list(getattr(pool, "_processes", {}).values()):  # the executor keeps no public list of them
            process.terminate()  # SIGTERM: the worker removes its partial output, as on Ctrl-C
        raise _interrupted(exc, len(results), len(jobs)) from exc
    except BrokenProcessPool:
        raise VfiError(f"a worker process died ({len(results)} of {len(jobs)} file(s) done; out of memory? "
                       "try fewer --jobs); run the same command again to convert the rest") from None
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return results
