"""The journal of a conversion in segments: which are done, in a small JSON file in the work folder.

Several processes may finish segments at once (workers of a cluster): every change is a
read-modify-write under an exclusive lock, written under a temporary name and renamed into place,
so the file is always whole. A segment counts as done only once its file is complete (its writer
renames it into place when finished) and recorded here with its size; a file that is missing or of
another size is done again. The journal names the input (size, modification time, a hash of its
first bytes) and the options, so that a changed input or changed options start over instead of
mixing two runs.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

from vfi_cli.errors import VfiError, first_line
from vfi_cli.files import atomic_write, locked, read_json_object

FORMAT = 1  # of the journal itself: a journal of another format is started over
CHANGED = "the input or options changed since the interrupted run; starting over"
HEAD_BYTES = 1 << 16  # the start of the input that is hashed (its header)
JOURNAL = "journal.json"
_LOCK = "journal.lock"


def input_fingerprint(path: Path) -> dict[str, Any]:
    """What tells whether the input is still the file the interrupted run read: size, modification
    time and the sha256 of its first 64 KiB (hashing all of a long video would take minutes)."""
    stat = Path(path).stat()
    with open(path, "rb") as handle:
        head = hashlib.sha256(handle.read(HEAD_BYTES)).hexdigest()
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "head_sha256": head}


class Journal:
    """The journal in ``folder`` (the work folder of one output)."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.path = self.folder / JOURNAL

    def begin(self, key: dict[str, Any], resume: bool = True) -> str | None:
        """Make the work folder and keep its journal when it was written for ``key`` (the input's
        fingerprint and the options) and ``resume`` is on; else empty the folder and start a journal.
        Returns what to warn the user of when ``resume`` is on and an interrupted run's segments are
        dropped: ``key`` changed (:data:`CHANGED`), or the journal is not one vfi wrote as it is (an
        edited file: the message names it and what in it was rejected); None otherwise."""
        self.folder.mkdir(exist_ok=True)
        with locked(self.folder / _LOCK):
            found, rejected = self._load()
            if found is not None and resume and found.get("format") == FORMAT and found.get("key") == key:
                return None
            for entry in self.folder.iterdir():
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry)
                elif entry.name != _LOCK:
                    entry.unlink()
            self._write({"format": FORMAT, "key": key, "segments": {}})
        if not resume:
            return None
        if rejected is not None:
            return f"{self.path} is not a journal vfi wrote ({rejected}): its segments are not used; starting over"
        return CHANGED if found is not None and found["segments"] else None

    def record(self, index: int, entry: dict[str, Any]) -> None:
        """Record segment ``index`` as done: ``entry`` holds its ``file`` (a name in the folder, None for
        a segment without frames) and what its summary says; its size is taken here."""
        name = entry.get("file")
        size = None if name is None else (self.folder / name).stat().st_size
        with locked(self.folder / _LOCK):
            journal, _ = self._load()
            if journal is None:
                raise VfiError(f"the journal of {self.folder} is gone; the conversion was started over elsewhere")
            journal["segments"][str(index)] = entry | {"bytes": size}
            self._write(journal)

    def done(self) -> dict[int, dict[str, Any]]:
        """The segments recorded whose files are still there, whole."""
        journal = self._load()[0] or {"segments": {}}
        kept = {}
        for index, entry in journal["segments"].items():
            name = entry.get("file")
            if name is None or _size(self.folder / name) == entry.get("bytes"):
                kept[int(index)] = entry
        return kept

    def remove(self) -> None:
        """Remove the work folder: the output is in place."""
        shutil.rmtree(self.folder, ignore_errors=True)

    def _load(self) -> tuple[dict[str, Any] | None, str | None]:
        """The journal, or None when there is none; with why it is not used when it is not one vfi
        wrote (unreadable, or a segment naming anything but a file in the work folder: nothing
        outside the folder is ever read or removed on a journal's word)."""
        if not self.path.exists():
            return None, None
        try:
            journal = read_json_object(self.path, "it")
        except VfiError as exc:
            return None, first_line(exc)
        segments = journal.get("segments")
        if not isinstance(segments, dict):
            return None, "it has no table of segments"
        for index, entry in segments.items():
            if not index.isdigit() or not isinstance(entry, dict):
                return None, f"its segment {index!r} is not a segment's record"
            name = entry.get("file")
            if name is not None and (not isinstance(name, str) or Path(name).name != name or name in ("", ".", "..")):
                return None, f"segment {index} names {name!r}, which is not a file in the work folder"
            if not isinstance(entry.get("bytes"), (int, type(None))) or isinstance(entry.get("bytes"), bool):
                return None, f"segment {index} states no size"
        return journal, None

    def _write(self, journal: dict[str, Any]) -> None:
        atomic_write(self.path, lambda temporary: temporary.write_text(json.dumps(journal, indent=1) + "\n"))


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except OSError:
        return None
