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

from vfi_cli.errors import VfiError
from vfi_cli.files import atomic_write, locked, read_json_object

FORMAT = 1  # of the journal itself: a journal of another format is started over
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

    def begin(self, key: dict[str, Any], resume: bool = True) -> bool:
        """Make the work folder and keep its journal when it was written for ``key`` (the input's
        fingerprint and the options) and ``resume`` is on; else empty the folder and start a journal.
        Returns True when an interrupted run's journal was there and is dropped because ``key`` changed."""
        self.folder.mkdir(exist_ok=True)
        with locked(self.folder / _LOCK):
            found = self._read()
            if found is not None and resume and found.get("format") == FORMAT and found.get("key") == key:
                return False
            for entry in self.folder.iterdir():
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry)
                elif entry.name != _LOCK:
                    entry.unlink()
            self._write({"format": FORMAT, "key": key, "segments": {}})
            return found is not None and resume and bool(found.get("segments"))

    def record(self, index: int, entry: dict[str, Any]) -> None:
        """Record segment ``index`` as done: ``entry`` holds its ``file`` (a name in the folder, None for
        a segment without frames) and what its summary says; its size is taken here."""
        name = entry.get("file")
        size = None if name is None else (self.folder / name).stat().st_size
        with locked(self.folder / _LOCK):
            journal = self._read()
            if journal is None:
                raise VfiError(f"the journal of {self.folder} is gone; the conversion was started over elsewhere")
            journal["segments"][str(index)] = entry | {"bytes": size}
            self._write(journal)

    def done(self) -> dict[int, dict[str, Any]]:
        """The segments recorded whose files are still there, whole."""
        journal = self._read() or {"segments": {}}
        kept = {}
        for index, entry in journal["segments"].items():
            name = entry.get("file")
            if name is None or _size(self.folder / name) == entry.get("bytes"):
                kept[int(index)] = entry
        return kept

    def remove(self) -> None:
        """Remove the work folder: the output is in place."""
        shutil.rmtree(self.folder, ignore_errors=True)

    def _read(self) -> dict[str, Any] | None:
        """The journal, or None when there is none or it is not one vfi wrote (it is then started over)."""
        if not self.path.is_file():
            return None
        try:
            journal = read_json_object(self.path)
        except VfiError:
            return None
        return journal if isinstance(journal.get("segments"), dict) else None

    def _write(self, journal: dict[str, Any]) -> None:
        atomic_write(self.path, lambda temporary: temporary.write_text(json.dumps(journal, indent=1) + "\n"))


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except OSError:
        return None
