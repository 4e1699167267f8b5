"""Files vfi reads or writes besides media: JSON it is given, outputs checked before the work, and
the final no-replace rename of a finished output.

Everything here raises :class:`~vfi_cli.errors.VfiError` with a one-line message for what a user
or a file can get wrong.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from vfi_cli.errors import VfiError

MAX_JSON_BYTES = 64 << 20  # a card, a config or a metrics file is kilobytes; refuse what cannot be one
MAX_JSON_DEPTH = 64


def json_depth(value: Any) -> int:
    """How deeply lists and objects nest in ``value`` (0 for a plain value); iterative, so a file
    nested thousands deep cannot exhaust the stack."""
    deepest, pending = 0, [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, depth)
        pending.extend((child, depth + 1) for child in children)
    return deepest


def parse_json_object(text: str | bytes, what: str) -> dict[str, Any]:
    """A JSON object from ``text``; anything else (not JSON, nested absurdly deep, a list ...) is a
    one-line :class:`VfiError` naming ``what``."""
    if len(text) > MAX_JSON_BYTES:
        raise VfiError(f"{what} is too large to be JSON vfi wrote ({len(text):,d} bytes)")
    try:
        value = json.loads(text)
    except RecursionError:
        raise VfiError(f"{what} nests more than {MAX_JSON_DEPTH} levels deep") from None
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError
        raise VfiError(f"{what} is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise VfiError(f"{what} must hold a JSON object, not {type(value).__name__}")
    if json_depth(value) > MAX_JSON_DEPTH:
        raise VfiError(f"{what} nests more than {MAX_JSON_DEPTH} levels deep")
    return value


def read_json_object(path: Path, what: str | None = None) -> dict[str, Any]:
    """The JSON object in the file ``path`` (``what`` names it in messages; default the path)."""
    what = what or str(path)
    path = Path(path)
    if not path.is_file():
        raise VfiError(f"{what} is missing or not a file")
    try:
        if path.stat().st_size > MAX_JSON_BYTES:
            raise VfiError(f"{what} is too large to be JSON vfi wrote ({path.stat().st_size:,d} bytes)")
        data = path.read_bytes()
    except OSError as exc:
        raise VfiError(f"cannot read {what}: {exc.strerror or exc}") from None
    return parse_json_object(data, what)


def atomic_write(path: Path, write: Callable[[Path], Any]) -> None:
    """Call ``write`` on a hidden temporary name beside ``path``, then rename it into place: readers in
    other processes see the old file or the new one, never half of one."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        write(temporary)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


# ----------------------------------------------------------------------------- outputs, checked first


def _probe_write(folder: Path) -> str | None:
    """Create and remove a file in ``folder``: None when that works, else why not. ``os.access``
    alone misses read-only mounts, ACLs and root on read-only filesystems."""
    try:
        handle, name = tempfile.mkstemp(prefix=".vfi-write-test-", dir=folder)
    except OSError as exc:
        return exc.strerror or str(exc)
    os.close(handle)
    os.unlink(name)
    return None


def _refuse_stdout(path: Path, what: str) -> None:
    """'-' is standard output to many programs; vfi never makes a file or folder of that name."""
    if str(path) == "-":
        raise VfiError(f"{what} '-' (standard output) is not supported: vfi writes a file and moves it into place "
                       "when complete; give a name")


def check_output_file(path: Path, what: str, *, overwrite: bool = True) -> None:
    """Refuse, before any work, an output file that could not be written at the end: a folder of
    that name, a missing or read-only parent folder, an existing file without ``overwrite``, '-'."""
    path = Path(path)
    _refuse_stdout(path, what)
    if path.is_dir():
        raise VfiError(f"{what} {path} is a folder; give a file name")
    if path.exists() and not path.is_file():
        raise VfiError(f"{what} {path} exists and is not a regular file")
    if path.exists() and not overwrite:
        raise VfiError(f"{what} {path} exists (pass --overwrite to replace it)")
    parent = path.parent
    if not parent.is_dir():
        raise VfiError(f"{what} {path}: folder {parent} does not exist" if not parent.exists() else
                       f"{what} {path}: {parent} is not a folder")
    reason = _probe_write(parent)
    if reason is not None:
        raise VfiError(f"{what} {path}: cannot write in {parent} ({reason})")
    if path.exists() and not os.access(path, os.W_OK):
        raise VfiError(f"{what} {path} is read-only")


def check_output_folder(path: Path, what: str) -> None:
    """Refuse, before any work, an output folder that could not be filled at the end: a file of
    that name, a read-only folder, a parent that is missing or read-only when it must be created, '-'."""
    path = Path(path)
    _refuse_stdout(path, what)
    if path.exists() and not path.is_dir():
        raise VfiError(f"{what} {path} exists and is not a folder")
    existing = path
    while not existing.exists():  # mkdir(parents=True) creates the rest later
        if existing.parent == existing:
            break
        existing = existing.parent
    if not existing.is_dir():
        raise VfiError(f"{what} {path}: {existing} is not a folder")
    reason = _probe_write(existing)
    if reason is not None:
        raise VfiError(f"{what} {path}: cannot write in {existing} ({reason})")


# ----------------------------------------------------------------------------- the final rename

_RENAME_NOREPLACE = 1
_libc: Any = None


def _renameat2(source: Path, destination: Path) -> bool:
    """Linux renameat2(RENAME_NOREPLACE): True when done; False when not available here.

    Raises FileExistsError when ``destination`` exists (atomically: no window between check and rename).
    """
    global _libc
    if _libc is None:
        name = ctypes.util.find_library("c")
        try:
            _libc = ctypes.CDLL(name, use_errno=True) if name else False
        except OSError:
            _libc = False
    function = getattr(_libc, "renameat2", None) if _libc else None
    if function is None:
        return False
    at_fdcwd = -100
    result = function(at_fdcwd, os.fsencode(source), at_fdcwd, os.fsencode(destination), _RENAME_NOREPLACE)
    if result == 0:
        return True
    error = ctypes.get_errno()
    if error in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):  # old kernel or a filesystem without the flag
        return False
    raise OSError(error, os.strerror(error), str(destination))


def rename_no_replace(source: Path, destination: Path) -> None:
    """Move ``source`` (a file or folder) to ``destination`` only if nothing is there.

    Atomic where the kernel can (renameat2 with RENAME_NOREPLACE); else a hard link and unlink for
    files (link fails on an existing name) and a checked rename for folders. Raises FileExistsError
    when ``destination`` exists, leaving both untouched.
    """
    if _renameat2(source, destination):
        return
    if Path(source).is_dir():
        if os.path.lexists(destination):
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(destination))
        os.rename(source, destination)
        return
    try:
        os.link(source, destination)
    except FileExistsError:
        raise
    except OSError:  # a filesystem without hard links (FAT, some network mounts): check, then rename
        if os.path.lexists(destination):
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(destination)) from None
        os.rename(source, destination)
        return
    os.unlink(source)


def identity(path: Path) -> tuple[int, ...] | None:
    """What is at ``path`` now (device, inode, modification and change times), None when nothing is:
    a file replaced or rewritten meanwhile has another identity, even where the inode is reused."""
    try:
        stat = os.lstat(path)
    except FileNotFoundError:
        return None
    return stat.st_dev, stat.st_ino, stat.st_mtime_ns, stat.st_ctime_ns


def commit_output(temporary: Path, destination: Path, replaces: tuple[int, ...] | None) -> None:
    """Move a finished output into place.

    ``replaces`` is what was at ``destination`` when the work started (see :func:`identity`), which
    the user allowed to be replaced (``--overwrite``); None when nothing was there. Whatever appeared
    or changed at ``destination`` meanwhile (another run, another program) is never replaced: a
    one-line error says so, and the temporary output is left for the caller to remove.
    """
    temporary, destination = Path(temporary), Path(destination)
    try:
        if replaces is None:
            rename_no_replace(temporary, destination)
            return
        if identity(destination) not in (replaces, None):
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(destination))
        if temporary.is_dir() and destination.is_dir():  # a PNG folder replaces a PNG folder
            old = destination.with_name(f".{destination.name}.vfi-old-{os.getpid()}")
            os.replace(destination, old)
            os.replace(temporary, destination)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(temporary, destination)
    except FileExistsError:
        raise VfiError(
            f"{destination} appeared while this run was writing it (another run or program wrote it); "
            "it was left as it is and this run's output was discarded"
        ) from None
    except OSError as exc:
        raise VfiError(f"cannot move the finished output to {destination}: {exc.strerror or exc}") from None


# ----------------------------------------------------------------------------- partials of killed runs


def partial_owner(name: str, prefix: str, suffix: str) -> int | None:
    """The process id in a temporary name ``{prefix}{pid}{suffix}``, None when ``name`` is not one."""
    if not (name.startswith(prefix) and name.endswith(suffix)) or len(name) <= len(prefix) + len(suffix):
        return None
    digits = name[len(prefix) : len(name) - len(suffix)]
    return int(digits) if digits.isdigit() else None


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` exists (also another user's), through psutil on every platform: on
    Windows ``os.kill(pid, 0)`` would not test the process but send it a Ctrl-C."""
    import psutil

    return pid > 0 and psutil.pid_exists(pid)


def _lock(path: Path, exclusive: bool) -> tuple[int | None, bool]:
    """Open ``path`` and try a non-blocking ``flock`` on it: (the descriptor, None when it cannot be
    opened or locks are not available here; whether the lock was taken)."""
    try:
        import fcntl

        handle = os.open(path, os.O_RDONLY)
    except (ImportError, OSError):
        return None, False
    try:
        fcntl.flock(handle, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
    except OSError:
        return handle, False
    return handle, True


def hold(path: Path) -> int | None:
    """Mark a temporary output (file or folder) as in use for as long as the returned descriptor is
    open (a shared ``flock``, released by the kernel when the process dies, whatever kills it)."""
    return _lock(path, exclusive=False)[0]


def release(handle: int | None) -> None:
    if handle is not None:
        try:
            os.close(handle)
        except OSError:
            pass


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created if missing) for the block, waiting for it:
    several processes take turns at a read-modify-write. Where locks are not available, no lock."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        os.close(handle)


def _in_use(path: Path) -> bool:
    """Whether a live process holds ``path`` (see :func:`hold`); also one whose pid this process
    cannot see (another PID namespace sharing the folder)."""
    handle, locked = _lock(path, exclusive=True)
    release(handle)
    return handle is not None and not locked


def remove_stale_partials(folder: Path, prefix: str, suffix: str) -> list[str]:
    """Remove the temporaries ``{prefix}{pid}{suffix}`` in ``folder`` whose process is gone (killed
    with SIGKILL, a power loss); returns their names. Those of live processes (a run writing the
    same output right now: its pid is alive, or it holds the file, see :func:`hold`) are left alone."""
    removed = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        pid = partial_owner(name, prefix, suffix)
        if pid is None or pid == os.getpid() or process_alive(pid):
            continue
        path = Path(folder) / name
        if _in_use(path):
            continue
        try:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
        except OSError:
            continue
        removed.append(name)
    return removed


class OutputClaim:
    """A run's hold on its output for the whole run: an exclusive ``flock`` on a hidden file beside it (``.NAME.vfi-lock``,
    holding the run's pid), so that a second run for the same output is refused at once, naming that pid, instead of
    after it has done work. The kernel drops the lock whatever ends the process; :meth:`release` also removes the file,
    and a file left unlocked by a killed run is taken over. Where locks are not available, nothing is held."""

    def __init__(self, destination: Path) -> None:
        self.path = Path(destination).with_name(f".{Path(destination).name}.vfi-lock")
        self._handle: int | None = None
        try:
            import fcntl
        except ImportError:
            return
        while self._handle is None:
            handle = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                owner = os.pread(handle, 32, 0).decode(errors="replace").strip()
                os.close(handle)
                pid = f" (pid {owner})" if owner.isdigit() else ""
                raise VfiError(f"another vfi run{pid} is writing {destination}; wait for it to end, or stop it") from None
            try:  # the file may have been removed, by the run that held it, between our open and lock
                same = os.path.samestat(os.fstat(handle), os.stat(self.path))
            except FileNotFoundError:
                same = False
            if same:
                self._handle = handle
            else:  # open the new file and try again
                os.close(handle)
        os.ftruncate(self._handle, 0)
        os.pwrite(self._handle, f"{os.getpid()}\n".encode(), 0)

    def release(self) -> None:
        """Remove the file and drop the lock (once; later calls do nothing)."""
        if self._handle is None:
            return
        try:
            if os.path.samestat(os.fstat(self._handle), os.stat(self.path)):
                os.unlink(self.path)
        except OSError:
            pass
        release(self._handle)
        self._handle = None

    def __enter__(self) -> OutputClaim:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
