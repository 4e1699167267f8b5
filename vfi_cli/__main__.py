"""Allows ``python -m vfi_cli``."""

from vfi_cli.cli import main

main()
