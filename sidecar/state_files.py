"""The daemon's state files on disk: written whole and atomically, or appended
durably; either written or not, never half.

:func:`write_atomically` replaces a file the only safe way: a temporary file
in the same directory, fsync, rename over the old one, fsync the directory.
A crash at any moment leaves the old content or the new, never a mix, and a
failure (a full disk, a read-only directory) leaves no temporary file behind.
:func:`append_durably` adds a record to the end of a file and returns only
once it is on disk; a record that did not fit is cut off again, so the file
never ends in half a record.

Both raise :class:`OSError` when the state was not written: the caller then
tells the person that the action did not happen (see docs/operations.md's "State on
disk"). A state file that exists but cannot be read in full stops the start
with a :class:`StateFileError`, for both files alike: starting without it
would bring back what it holds (logged-out sessions, withdrawn links).
"""

from __future__ import annotations

import contextlib
import glob
import os
import tempfile
from pathlib import Path

# How the temporary files of write_atomically are named: .<name>.<random>.tmp
_TEMPORARY_PREFIX = "."
_TEMPORARY_SUFFIX = ".tmp"
_TEMPORARY_MODE = 0o600  # what mkstemp gives


class StateFileError(RuntimeError):
    """A state file exists but cannot be read in full: the daemon does not start.

    The message is the one line an admin sees: the setting, the file, the
    problem and what to do.
    """


def unreadable(setting: str, path: Path, problem: object, *, consequence: str) -> StateFileError:
    """The one-line refusal for a state file that cannot be read; ``consequence`` is
    what starting without it would do ("bring ... back")."""
    return StateFileError(
        f"{setting}: cannot read {path} ({problem}); not starting, as that would "
        f"{consequence}. Restore or repair the file; to start anyway, move it away "
        f"(that will {consequence})"
    )


def _fsync_directory(directory: Path) -> None:
    """Make a rename or a new name in ``directory`` survive a power cut."""
    descriptor = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def write_atomically(path: Path, data: bytes, *, mode: int = 0o600) -> None:
    """Replace ``path`` with ``data``, all or nothing, on disk when this returns.

    The file gets ``mode``, 0600 unless told (the daemon's own state). Raises OSError when
    the data is not written; the old content is then still in place and no
    temporary file is left. (Should only the last step, the directory's fsync,
    fail, the new content is in place but not yet sure to outlive a power cut.)
    """
    descriptor, temporary = tempfile.mkstemp(
        prefix=f"{_TEMPORARY_PREFIX}{path.name}.", suffix=_TEMPORARY_SUFFIX, dir=path.parent
    )
    try:
        with open(descriptor, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        if mode != _TEMPORARY_MODE:
            os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    _fsync_directory(path.parent)


def append_durably(path: Path, record: bytes) -> None:
    """Add ``record`` to the end of ``path`` (created if missing), on disk when this returns.

    Raises OSError when it was not written; whatever part of it did reach the
    file is cut off again, so that the next record starts on a clean line.
    """
    created = not path.exists()
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        size = os.fstat(descriptor).st_size
        try:
            view = memoryview(record)
            while view:
                # A full disk may take part of the record and refuse the rest.
                view = view[os.write(descriptor, view) :]
            os.fsync(descriptor)
        except OSError:
            with contextlib.suppress(OSError):
                os.ftruncate(descriptor, size)
            raise
    finally:
        os.close(descriptor)
    if created:
        _fsync_directory(path.parent)


def remove_leftovers(path: Path) -> None:
    """Remove temporary files of :func:`write_atomically` for ``path`` that a crash
    (a kill, a power cut) left behind; they are never read."""
    with contextlib.suppress(OSError):
        for leftover in path.parent.glob(
            f"{_TEMPORARY_PREFIX}{glob.escape(path.name)}.*{_TEMPORARY_SUFFIX}"
        ):
            with contextlib.suppress(OSError):
                leftover.unlink()
