"""A small file system of its own for the sidecar's state files, that the soak
can fill up: ``guests.state_file`` and ``sessions.revocation_file`` live on a
64 KiB tmpfs, mounted for the run and unmounted at its end, also when the run
fails. Mounting needs root (CAP_SYS_ADMIN); without it the files live in a
plain directory and the full-disk phase says it could not run.
"""

from __future__ import annotations

import errno
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

SIZE = "64k"
FILLER = "filler"
CHUNK = 4096


@dataclass(frozen=True)
class StateDirectory:
    path: Path
    mounted: bool
    problem: str  # why it is not a tmpfs of its own ("" when it is)

    def fill(self) -> int:
        """Write a file until the file system is full; the bytes it took."""
        written = 0
        with (self.path / FILLER).open("ab", buffering=0) as filler:
            while True:
                try:
                    written += filler.write(b"\0" * CHUNK)
                except OSError as error:
                    if error.errno != errno.ENOSPC:
                        raise
                    break
        # Smaller pieces, so that not even a short write finds room.
        with (self.path / FILLER).open("ab", buffering=0) as filler:
            while True:
                try:
                    written += filler.write(b"\0")
                except OSError:
                    break
        return written

    def free(self) -> None:
        (self.path / FILLER).unlink(missing_ok=True)


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603
        command, capture_output=True, text=True, timeout=30, check=False
    )


@contextmanager
def state_directory(path: Path) -> Iterator[StateDirectory]:
    path.mkdir(parents=True, exist_ok=True)
    mounted = _run("mount", "-t", "tmpfs", "-o", f"size={SIZE},mode=0700", "tmpfs", str(path))
    problem = "" if mounted.returncode == 0 else (mounted.stderr.strip() or "mount failed")
    try:
        yield StateDirectory(path, mounted.returncode == 0, problem)
    finally:
        if mounted.returncode == 0 and _run("umount", str(path)).returncode != 0:
            # Still in use (a process that did not end): detach it now, gone when free.
            _run("umount", "--lazy", str(path))
