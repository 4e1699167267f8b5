"""Conversions sent to a Ray cluster (``--ray``): every segment of every file is one Ray task.

Ray is the scheduler: this process (the driver) plans each file's segments (headers only), starts
each file's journal in its work folder beside the output, submits one task per segment not done
yet (:func:`~vfi_cli.jobs.segments.run_segment`) and, as the tasks finish (``ray.wait``), joins
each file whose segments are all done. A file that runs in one piece (short, a preview, ``dedup``,
images) is one task that converts it whole. The work folders (journal and segment files) must lie
on storage that every worker sees at the same path, as must the inputs: a worker writes its
segment there and records it in the journal, and the driver joins from there.

Each task asks for one GPU (``num_gpus=1``: Ray gives it one, as ``cuda``) when the device is CUDA
(or "auto" on a cluster with GPUs), else ``--threads`` CPUs (default 1: segments are independent,
so one thread per task and as many tasks as cores uses the cores better than a few tasks of many
threads). A worker process that dies (out of memory, a node lost) has its task retried elsewhere
by Ray (``max_retries``); the retry makes the segment again from its start, and the journal counts
a segment only once its file is whole. A task that fails (a file that cannot be decoded) fails its
file: the others go on, and the segments done are kept for the next run.

Tasks, not actors: a Ray worker process runs many tasks in turn, so the model is kept per process
(:data:`_models`) and loads once per worker, while Ray alone places each task, retries it and
spreads the segments of one long file over the whole cluster; an actor per GPU would need a queue
of our own to feed it.
"""

from __future__ import annotations

import logging
import signal
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import Any

from vfi_cli.config import RAY_LOCAL, RAY_TIMEOUT, ConvertOptions, EngineOptions
from vfi_cli.errors import Interrupted, VfiError, first_line
from vfi_cli.files import OutputClaim
from vfi_cli.jobs.batch import BatchJob
from vfi_cli.jobs.manifest import Journal
from vfi_cli.jobs.segments import SegmentPlan
from vfi_cli.progress import SILENT, Progress
from vfi_cli.results import FileResult, LoadedModel, Summary

log = logging.getLogger(__name__)
RETRIES = 3  # times Ray runs a task again after its worker process died
_RAY_PORTS = {"": 6379, "ray://": 10001}  # Ray's own default ports: the head's GCS, and Ray Client's
_models: dict[tuple[Any, ...], LoadedModel] = {}  # in a worker process: the model its tasks use, loaded once


def ray_module() -> Any:
    """Ray, or a one-line error saying how to install it (it is an optional dependency)."""
    try:
        import ray
    except ImportError:
        raise VfiError("Ray is not installed: pip install 'vfi-zoom[ray]'") from None
    return ray


def ray_endpoint(address: str) -> tuple[str, int] | None:
    """The host and port a cluster address names ("HOST:PORT", "ray://HOST:PORT", "[::1]:6379"; Ray's
    default port without one), or None for "local" and "auto", which name no machine."""
    if address in (RAY_LOCAL, "auto"):
        return None
    scheme = "ray://" if address.startswith("ray://") else ""
    rest = address.removeprefix(scheme)
    host, colon, port = rest.rpartition(":")
    if not colon or host.count(":") and not host.startswith("["):  # no port, or a bare IPv6 address
        host, port = rest, str(_RAY_PORTS[scheme])
    if not port.isdigit() or not 0 < int(port) < 65536 or not host.strip("[]"):
        raise VfiError(f"{address!r} is not a Ray cluster address (local, auto, HOST:PORT or ray://HOST:PORT)")
    return host.strip("[]"), int(port)


def check_reachable(address: str, timeout: float = RAY_TIMEOUT) -> None:
    """Raise :class:`VfiError` within ``timeout`` seconds when nothing answers at the cluster's address.

    A plain TCP connection, tried before Ray is asked: ray.init() on an address where nothing
    listens retries for minutes, printing its own log lines, and Ray rewrites 127.0.0.1 to this
    machine's interface address, so that a typo could send it elsewhere."""
    endpoint = ray_endpoint(address)
    if endpoint is None:
        return
    try:
        socket.create_connection(endpoint, timeout=timeout).close()
    except TimeoutError:
        raise VfiError(f"cannot reach the Ray cluster at {address}: no answer within {timeout:g} s") from None
    except OSError as exc:
        raise VfiError(f"cannot reach the Ray cluster at {address}: {exc.strerror or first_line(exc)}") from None


def convert_on_ray(source: Path, destination: Path, options: ConvertOptions, *, address: str, engine: EngineOptions,
                   weights: Path | None, input_fps: Fraction | None, overwrite: bool, progress: Progress,
                   segment: Fraction | float | None, resume: bool, timeout: float = RAY_TIMEOUT) -> Summary:
    """What :func:`~vfi_cli.jobs.convert.convert_file` does, with the segments sent to Ray; a failure is raised."""
    job = BatchJob(source, destination, options, overwrite, segment, resume, input_fps)
    result = run_ray([job], address=address, engine=engine, weights=weights, progress=progress, timeout=timeout)[0]
    if result.summary is None:
        raise VfiError(result.reason or f"{source} failed")
    return result.summary


def run_ray(jobs: Sequence[BatchJob], *, address: str, engine: EngineOptions, weights: Path | None,
            progress: Progress = SILENT, on_done: Callable[[FileResult], None] | None = None,
            timeout: float = RAY_TIMEOUT) -> list[FileResult]:
    """Run ``jobs`` as Ray tasks on the cluster at ``address`` ("local": one started here; "auto":
    the one this machine belongs to; "HOST:6379" or "ray://HOST:10001"), or on the Ray this
    process already started. ``on_done`` hears each file's result as it comes.

    Raises:
        VfiError: Ray is not installed, the cluster cannot be reached (nothing answers at its
            address within ``timeout`` seconds), or the weights are unusable.
        Interrupted: Ctrl-C; the tasks are cancelled and the segments done are kept.
    """
    ray = ray_module()
    if not jobs:
        return []
    digest = checked_digest(weights)  # bad weights fail here, before any task is sent
    started_here = not ray.is_initialized()
    if started_here:
        check_reachable(address, timeout)
        try:
            ray.init(address=None if address == RAY_LOCAL else address, include_dashboard=False,
                     logging_level=logging.WARNING)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise VfiError(f"cannot reach the Ray cluster at {address}: {first_line(exc)}") from None
    try:
        return _Driver(ray, engine, weights, digest, progress, on_done).run(jobs)
    finally:
        if started_here:
            ray.shutdown()


def checked_digest(weights: Path | None) -> str:
    """The weights' name in a journal (:func:`~vfi_cli.jobs.segmented.weights_digest`, as a local run
    names them); reading them checks them too."""
    from vfi_cli.jobs.segmented import weights_digest
    from vfi_cli.model.weights import default_weights_path, load_weights

    _, card = load_weights(weights)
    return weights_digest(card, weights or default_weights_path())


def task_setup(engine: EngineOptions, cluster_gpus: float) -> tuple[dict[str, float], EngineOptions]:
    """The resources each task asks Ray for, and the engine options it runs with there."""
    cpus = engine.threads or 1
    gpu = engine.device.startswith("cuda") or (engine.device == "auto" and cluster_gpus > 0)
    resources = {"num_cpus": cpus, "num_gpus": 1} if gpu else {"num_cpus": cpus}
    return resources, replace(engine, device="cuda" if gpu else "cpu", threads=cpus)


# ----------------------------------------------------------------------------- in the worker processes


def _model(weights: Path | None, engine: EngineOptions) -> LoadedModel:
    from vfi_cli.backends.eager import load_model

    key = (weights, engine.device, engine.precision, engine.threads)
    if key not in _models:
        _models.clear()  # one model per process
        _models[key] = load_model(weights, engine)
    return _models[key]


def _segment_task(plan: SegmentPlan, index: int) -> int:
    """Make segment ``index`` of ``plan`` and record it in the journal."""
    from vfi_cli.engine.runner import FrameInterpolator
    from vfi_cli.jobs.segments import run_segment

    interpolator = FrameInterpolator.from_options(_model(plan.weights, plan.engine), plan.info.height, plan.info.width,
                                                  plan.engine)
    run_segment(plan, index, interpolator)
    return index


def _file_task(job: BatchJob, engine: EngineOptions, weights: Path | None) -> FileResult:
    """Convert a file in one piece (the driver found that it is not cut)."""
    from vfi_cli.jobs.executors import convert_job

    return convert_job(replace(job, segment=None), _model(weights, engine), engine)


# ----------------------------------------------------------------------------- in the driver


@dataclass
class _File:
    """A file whose segments are out: the journal, the segments outstanding and those run now."""

    job: BatchJob
    plan: SegmentPlan
    journal: Journal
    started: float
    waiting: set[int]
    ran: list[int] = field(default_factory=list)


class _Driver:
    """Submits the tasks of a run, follows them as they finish, and joins the files."""

    def __init__(self, ray: Any, engine: EngineOptions, weights: Path | None, digest: str, progress: Progress,
                 on_done: Callable[[FileResult], None] | None) -> None:
        self.ray, self.weights, self.digest, self.progress = ray, weights, digest, progress
        self.on_done = on_done or (lambda result: None)
        self.resources, self.engine = task_setup(engine, ray.cluster_resources().get("GPU", 0))
        self.pending: dict[Any, tuple[_File | BatchJob, int | None]] = {}  # task -> its file and segment (None: whole)
        self.results: list[FileResult] = []
        self.claims: dict[Path, OutputClaim] = {}  # the outputs of the files whose segments are out, held till they end

    def run(self, jobs: Sequence[BatchJob]) -> list[FileResult]:
        try:
            return self._run(jobs)
        finally:
            for claim in self.claims.values():
                claim.release()

    def _run(self, jobs: Sequence[BatchJob]) -> list[FileResult]:
        segment = self.ray.remote(_segment_task).options(max_retries=RETRIES, **self.resources)
        whole = self.ray.remote(_file_task).options(max_retries=RETRIES, **self.resources)
        for job in jobs:
            self._submit(job, segment, whole)
        total = len(self.pending)
        cluster = self.ray.cluster_resources()
        self.progress.status(f"Ray: {len(jobs)} file(s) as {total} task(s) on {cluster.get('CPU', 0):g} CPU(s), "
                             f"{cluster.get('GPU', 0):g} GPU(s); each task asks for "
                             + ", ".join(f"{v:g} {k.removeprefix('num_')}" for k, v in self.resources.items()))
        try:
            with self.progress.task("Ray tasks", total, unit="tasks") as update:
                while self.pending:
                    ready, _ = self.ray.wait(list(self.pending), num_returns=1)
                    self._finished(ready[0])
                    update(total - len(self.pending))
        except KeyboardInterrupt as exc:
            raise self._interrupted(exc) from None
        return self.results

    def _submit(self, job: BatchJob, segment: Any, whole: Any) -> None:
        """Plan ``job`` and send its tasks: one per segment not done yet, or one for the whole file."""
        from vfi_cli.jobs.convert import open_input
        from vfi_cli.jobs.segmented import begin
        from vfi_cli.jobs.segments import plan_segments

        try:
            job.destination.parent.mkdir(parents=True, exist_ok=True)
            info = open_input(job.source, job.destination, job.options, job.overwrite, job.input_fps)
            plan = plan_segments(info, job.destination, job.options, self.engine, self.weights, job.segment)
            if plan is None:  # the task claims the output itself
                self.pending[whole.remote(job, self.engine, self.weights)] = (job, None)
                return
            self.claims[job.destination] = OutputClaim(job.destination)
            journal, done = begin(plan, self.digest, job.resume)
        except (VfiError, OSError) as exc:
            self._report(FileResult(job.source, job.destination, "failed", first_line(exc)))
            return
        file = _File(job, plan, journal, time.perf_counter(), set(range(plan.count)) - set(done))
        if done:
            self.progress.status(f"{job.source.name}: resuming after {len(done)} of {plan.count} segments done")
        for index in sorted(file.waiting):
            self.pending[segment.remote(plan, index)] = (file, index)
        if not file.waiting:
            self._join(file)

    def _finished(self, task: Any) -> None:
        """Take a finished task's outcome: a file's result, a segment done, or a failure of its file."""
        owner, index = self.pending.pop(task)
        try:
            value = self.ray.get(task)
        except self.ray.exceptions.RayError as exc:
            job = owner if isinstance(owner, BatchJob) else owner.job
            others = [t for t, (o, _) in self.pending.items() if o is owner]
            for other in others:  # the file failed: its other segments are not needed now
                self.ray.cancel(other)
                del self.pending[other]
            self._report(FileResult(job.source, job.destination, "failed", _reason(exc)))
            return
        if isinstance(owner, BatchJob):
            self._report(value)
            return
        owner.waiting.discard(index)
        owner.ran.append(index)
        if not owner.waiting:
            self._join(owner)

    def _join(self, file: _File) -> None:
        from vfi_cli.jobs.segmented import finish

        job = file.job
        try:
            summary = finish(file.plan, file.journal, file.ran, file.started, job.overwrite)
        except (VfiError, ValueError, OSError) as exc:  # ValueError: a segment's file went missing meanwhile
            self._report(FileResult(job.source, job.destination, "failed", first_line(exc)))
            return
        self._report(FileResult(job.source, job.destination, "converted", summary=summary, seconds=summary.seconds))

    def _report(self, result: FileResult) -> None:
        claim = self.claims.pop(result.destination, None)
        if claim is not None:
            claim.release()
        self.results.append(result)
        self.on_done(result)

    def _interrupted(self, exc: KeyboardInterrupt) -> Interrupted:
        """Cancel the tasks out (a running one stops as on Ctrl-C, removing what it was writing);
        the work folders keep their segments done, or are removed when they hold none."""
        tasks = list(self.pending)
        for task in tasks:
            self.ray.cancel(task)
        self.ray.wait(tasks, num_returns=len(tasks), timeout=10)  # let them stop before their folders go
        files = {id(owner): owner for owner, _ in self.pending.values() if isinstance(owner, _File)}
        for file in files.values():
            if not file.journal.done():
                file.journal.remove()
        converted = sum(result.status == "converted" for result in self.results)
        kept = " (their segments done are kept)" if files else ""
        return Interrupted(f"Interrupted: {converted} file(s) converted, {len(files)} left unfinished{kept}; run the same "
                           "command to go on.", signum=getattr(exc, "signum", signal.SIGINT))


def _reason(exc: Exception) -> str:
    """One line for a task's failure: the error raised in the worker, or what Ray says (a worker
    that died every time it was tried)."""
    cause = getattr(exc, "cause", None) or exc
    return first_line(cause) if isinstance(cause, VfiError) else f"{type(cause).__name__}: {first_line(cause)}"
