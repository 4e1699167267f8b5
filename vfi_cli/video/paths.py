"""Checks on the input and output paths of a conversion, made before anything slow starts."""

from __future__ import annotations

import os
import re
from fractions import Fraction
from pathlib import Path

from vfi_cli.errors import VfiError
from vfi_cli.video.images import check_folder_output, is_folder_output

# What a folder holds that is taken as video (by extension, lower case): the files a batch converts and the clips
# training reads; anything else in such a folder is left alone.
VIDEO_SUFFIXES = frozenset(
    ".mp4 .m4v .mov .mkv .webm .avi .ts .mts .m2ts .mpg .mpeg .flv .wmv .ogv .3gp .y4m .mxf .vob .dv".split()
)

# A URL scheme ("https:", "rtmp:" ...; two letters at least, so not a drive letter). pathlib turns "//" into "/".
_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+):/+")


def check_paths(source: Path, destination: Path, overwrite: bool, input_fps: Fraction | None = None) -> None:
    """Refuse, with one line each, what would fail late or destroy data."""
    if str(source) == "-":
        raise VfiError("IN '-' (standard input) is not supported: a conversion seeks in its input; give a file")
    if str(destination) == "-":
        raise VfiError("OUT '-' (standard output) is not supported: the output is written to a temporary file and renamed "
                       "when complete; give a file name such as out.mkv")
    for given in (source, destination):
        url = _URL.match(str(given))
        if url and not given.exists() and not given.parent.is_dir():
            shown = _URL.sub(r"\1://", str(given), count=1)
            raise VfiError(f"URLs are not supported ({shown}): download the file and pass its local path")
    if not source.exists():
        raise VfiError(f"input not found: {source}")
    if source.is_dir():
        if input_fps is None:
            raise VfiError(f"input is a folder: {source} (for numbered images, give their rate with --input-fps)")
    elif not source.is_file():
        raise VfiError(f"input is not a file: {source}")
    elif input_fps is not None:
        raise VfiError("--input-fps is for folders of numbered images; a video file has its own timing")
    if not destination.parent.resolve().is_dir():
        raise VfiError(f"output directory does not exist: {destination.parent}")
    if destination.exists() and destination.resolve() == source.resolve():
        raise VfiError("output is the same file as the input; choose another name")
    if is_folder_output(destination):
        check_folder_output(destination, overwrite)
    elif destination.exists():
        if os.path.samefile(destination, source):
            raise VfiError("output is the same file as the input; choose another name")
        if not overwrite:
            raise VfiError(f"output exists: {destination} (pass --overwrite to replace it)")
    if not os.access(destination.parent.resolve(), os.W_OK):
        raise VfiError(f"output directory is not writable: {destination.parent}")
