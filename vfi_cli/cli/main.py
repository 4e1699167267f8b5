"""The ``vfi`` group: its commands live in :mod:`.convert`, :mod:`.train` and :mod:`.evaluate`."""

from __future__ import annotations

import click

from vfi_cli import __version__
from vfi_cli.cli.convert import info, interpolate
from vfi_cli.cli.evaluate import bench, eval_command
from vfi_cli.cli.train import export, train


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="vfi")
def main() -> None:
    """vfi: raise a video's frame rate with the Zoom-In-to-Check interpolation network."""


for command in (interpolate, info, train, export, eval_command, bench):
    main.add_command(command)
