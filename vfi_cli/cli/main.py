"""The ``vfi`` group: its commands live in :mod:`.convert`, :mod:`.train` and :mod:`.evaluate`."""

from __future__ import annotations

from typing import Any

import click

from vfi_cli import __version__
from vfi_cli.cli.convert import info, interpolate
from vfi_cli.cli.evaluate import bench, eval_command
from vfi_cli.cli.options import call, fail, interrupted
from vfi_cli.cli.signals import deferred, install
from vfi_cli.cli.train import export, train
from vfi_cli.environment import check_pyav


class _Commands(click.Group):
    """The ``vfi`` group: termination signals act as Ctrl-C from the start (:mod:`.signals`), an
    interruption outside a command's API call (while torch loads) still exits cleanly with 128 + the
    signal, a PyAV of a release vfi does not support is one line before any command runs, and so is a
    bad option value (Click would print its usage block above it)."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        install()
        return super().main(*args, **kwargs)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            if not {"-h", "--help"} & set(ctx.args):  # a command will run: load torch where a signal cannot abort it
                call(check_pyav)  # a PyAV vfi does not support: one line, before anything imports it
                with deferred():
                    import torch  # noqa: F401
            return super().invoke(ctx)
        except click.UsageError as exc:  # a bad option value: one line, not Click's usage block
            if isinstance(exc, getattr(click.exceptions, "NoArgsIsHelpError", ())):
                raise  # a command given nothing shows its help
            command = " ".join(filter(None, ("vfi", ctx.invoked_subcommand, "-h")))
            fail(f"{exc.format_message()} ('{command}' lists the options)", exc.exit_code)
        except KeyboardInterrupt as exc:
            interrupted(exc)


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="vfi")
def main() -> None:
    """vfi: raise a video's frame rate with the Zoom-In-to-Check interpolation network."""


for command in (interpolate, info, train, export, eval_command, bench):
    main.add_command(command)
