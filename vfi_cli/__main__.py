"""Allows ``python -m vfi_cli``."""

import sys

try:
    from vfi_cli.cli import main
except KeyboardInterrupt:  # Ctrl-C while Python imports, before the command line handles signals
    print("Interrupted: nothing was written.", file=sys.stderr)
    sys.exit(130)

main()
