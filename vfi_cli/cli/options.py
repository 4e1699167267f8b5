"""Options shared by several commands, the exit-status wrapper, and value parsers.

Choices and defaults are read from the dataclasses of :mod:`vfi_cli.config`, never written here.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from vfi_cli.cli.output import Output
from vfi_cli.cli.signals import exit_status
from vfi_cli.config import BACKENDS, DEFAULT_MODEL, FLOW_SCALES, MAX_THREADS, PRECISIONS, EngineOptions, is_model_name
from vfi_cli.errors import VfiError
from vfi_cli.units import parse_memory, parse_size

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")


def fail(message: str, code: int = 1) -> NoReturn:
    """One line on stderr, then exit: 1 for what went wrong, 2 for options that contradict each other."""
    message = " ".join(line.strip() for line in message.splitlines() if line.strip())  # one line, whatever FFmpeg said
    click.echo(f"Error: {message}", err=True)
    sys.exit(code)


def call(action: Callable[[], T]) -> T:
    """Run a command's one API call: a :class:`VfiError` is one line and exit 1; Ctrl-C, SIGTERM,
    SIGHUP and SIGQUIT (:mod:`.signals`) exit with 128 + the signal's number (130 for Ctrl-C) and
    the interruption's own message (what was kept), else "nothing was written"."""
    try:
        return action()
    except VfiError as exc:
        fail(str(exc))
    except KeyboardInterrupt as exc:
        interrupted(exc)


def interrupted(exc: BaseException) -> NoReturn:
    """Say what an interruption left (its message, else that nothing was written) and exit with its status."""
    try:
        click.echo(str(exc) or "Interrupted: nothing was written.", err=True)
    except OSError:  # SIGHUP: the terminal is gone
        pass
    sys.exit(exit_status(exc))


def verbosity(quiet_help: str | None = None) -> Callable[[F], F]:
    """``-v/--verbose`` (info lines; twice: debug) and, with ``quiet_help``, ``-q/--quiet``; the
    command receives ``output``, the :class:`Output` they configure, in their place."""

    def decorate(command: F) -> F:
        @functools.wraps(command)
        def run(*args: Any, verbose: int = 0, quiet: bool = False, **kwargs: Any) -> Any:
            return command(*args, output=Output(verbose=verbose, quiet=quiet), **kwargs)

        if quiet_help is not None:
            run = click.option("-q", "--quiet", is_flag=True, help=quiet_help)(run)
        return click.option("-v", "--verbose", count=True, help="Also show info lines (-vv: debug lines).")(run)  # type: ignore[return-value]

    return decorate


def _memory(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    try:
        return None if value is None else parse_memory(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def size(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[int, int] | None:
    """``HxW`` (height first, as in 1024x2048) -> (height, width)."""
    try:
        return None if value is None else parse_size(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def key_values(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """Repeated ``KEY=VALUE`` options -> ((key, value), ...), in the order given (the value may hold '=')."""
    pairs = []
    for text in value:
        key, sep, rest = text.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{text!r} is not KEY=VALUE")
        pairs.append((key.strip(), rest))
    return tuple(pairs)


def comma_list(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[str, ...]:
    return tuple(item.strip() for item in (value or "").split(",") if item.strip())


def weights_option(help: str = f"Model weights (.safetensors); default: the shipped model {DEFAULT_MODEL}.") -> Callable[[F], F]:
    """``--weights FILE`` and ``--model NAME`` (a shipped model), one at most; the command receives
    either as ``weights``: a Path for a file, a str for a name, which the API tells apart."""

    def decorate(command: F) -> F:
        @functools.wraps(command)
        def run(*args: Any, weights: Path | None = None, model: str | None = None, **kwargs: Any) -> Any:
            if weights is not None and model is not None:
                fail("give either --weights or --model, not both", 2)
            return command(*args, weights=weights if model is None else model, **kwargs)

        run = click.option("--model", metavar="NAME", callback=_model_name,
                           help=f"A shipped model instead, by name (default {DEFAULT_MODEL}; `vfi info` lists them).")(run)
        return click.option("--weights", type=click.Path(path_type=Path), help=help)(run)  # type: ignore[return-value]

    return decorate


def _model_name(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None and not is_model_name(value):
        raise click.BadParameter(f"{value!r} is a path: give a file with --weights (--model takes a shipped model's name)")
    return value


def engine_options(
    defaults: EngineOptions, *, memory: bool = True, scale: bool | None = None, all_backends: bool = False, device_list: bool = False,
) -> Callable[[F], F]:
    """--device, --precision, --backend, --threads, (``scale``, by default ``memory``) --scale and
    (``memory``) --batch-size, --max-memory, --tile, --tile-overlap; the command receives them as ``engine``, an
    :class:`EngineOptions`. With ``all_backends``, ``--backend all`` is offered too and reaches the
    command as ``all_backends=True`` beside the default engine. With ``device_list``, ``--device``
    may name several devices (``cuda:0,cuda:1``): ``engine.device`` is the first, and the command
    receives them all as ``devices``."""
    backends = BACKENDS + (("all",) if all_backends else ())
    several = "; a batch (-o) takes several, one per worker: cuda:0,cuda:1" if device_list else ""
    options = [
        click.option("--device", default=defaults.device, show_default=True, help=f"auto, cpu, cuda, cuda:N or mps (an Apple GPU){several}."),
        click.option("--precision", type=click.Choice(PRECISIONS), help="Default: fp16 on CUDA; on the CPU bf16 where it is native (AMX, AVX-512 BF16), else fp32."),
        click.option("--backend", type=click.Choice(backends), default=defaults.backend, show_default=True,
                     help="How the network runs: PyTorch, or the optional ONNX Runtime / OpenVINO extras (CPU); auto: "
                     "OpenVINO on the CPU when installed, else PyTorch"
                     + ("; all: time each installed one." if all_backends else ".")),
        click.option("--threads", type=click.IntRange(1, MAX_THREADS), help="CPU threads for the model (default: PyTorch's choice)."),
    ]
    with_scale = memory if scale is None else scale
    if with_scale:
        options.append(
            click.option("--scale", "flow_scale", type=click.Choice([f"{s:g}" for s in FLOW_SCALES]), default=f"{defaults.flow_scale:g}",
                         show_default=True, help="Estimate flow on frames shrunk by this (0.5 for 4K, 0.25 for 8K, as RIFE's --scale)."),
        )
    if memory:
        options += [
            click.option("--batch-size", type=click.IntRange(1, 256), default=defaults.batch_size, show_default=True,
                         help="Frames synthesised per model call."),
            click.option("--max-memory", callback=_memory, metavar="SIZE",
                         help="Memory for the model, e.g. 6G or 800M (default: half the free RAM, 80% of free GPU memory)."),
            click.option("--tile", type=click.IntRange(min=16), metavar="PIXELS", help="Always cut frames into tiles of this side."),
            click.option("--tile-overlap", type=click.IntRange(min=4), metavar="PIXELS",
                         help="Band shared by neighbouring tiles; keep it above 4x the largest motion (default 128, 1/15 of the long side above 1080p)."),
        ]
    names = ("device", "precision", "backend", "threads", "batch_size", "flow_scale", "max_memory", "tile", "tile_overlap")

    def decorate(command: F) -> F:
        @functools.wraps(command)
        def run(*args: Any, **kwargs: Any) -> Any:
            given = {name: kwargs.pop(name) for name in names if name in kwargs}
            if device_list:
                kwargs["devices"] = tuple(d.strip() for d in given["device"].split(",") if d.strip()) or (defaults.device,)
                given["device"] = kwargs["devices"][0]
            if all_backends:
                kwargs["all_backends"] = given.get("backend") == "all"
                given["backend"] = "auto" if kwargs["all_backends"] else given["backend"]
            return command(*args, engine=EngineOptions(**given), **kwargs)

        for option in reversed(options):
            run = option(run)
        return run  # type: ignore[return-value]

    return decorate
