"""Allows ``python -m vfi_cli``."""

import sys

from vfi_cli.signals import exit_status, install

install()  # before the imports: Ctrl-C or SIGTERM at any moment exits cleanly
try:
    from vfi_cli.cli import main
except KeyboardInterrupt as exc:
    print("Interrupted: nothing was written.", file=sys.stderr)
    sys.exit(exit_status(exc))

main()
