"""A real small filesystem for state files: a tmpfs of a few pages, filled up or
remounted read-only, as a full or read-only state disk is in production.

Mounting needs root (CAP_SYS_ADMIN); where that is missing the tests that need
it say so and are skipped (never counted as passed).
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

SIZE = "64k"
_FILLER = ".filler"


class SmallDisk:
    def __init__(self, path: Path) -> None:
        self.path = path

    def fill(self) -> None:
        """Write until the filesystem refuses: every later write gets ENOSPC."""
        for chunk in (b"\0" * 4096, b"\0"):  # then what a page still takes, a byte at a time
            with (self.path / _FILLER).open("ab", buffering=0) as filler:
                try:
                    while True:
                        filler.write(chunk)
                except OSError as error:
                    if error.errno != errno.ENOSPC:
                        raise

    def free(self) -> None:
        (self.path / _FILLER).unlink(missing_ok=True)

    def read_only(self) -> None:
        _mount("-o", "remount,ro", str(self.path))

    def writable(self) -> None:
        _mount("-o", "remount,rw", str(self.path))

    def files(self) -> set[str]:
        """What is on it, besides the filler."""
        return {name for name in os.listdir(self.path) if name != _FILLER}


def _mount(*arguments: str) -> None:
    subprocess.run(["mount", *arguments], check=True, capture_output=True)


@contextlib.contextmanager
def small_disk(path: Path) -> Iterator[SmallDisk]:
    path.mkdir()
    try:
        _mount("-t", "tmpfs", "-o", f"size={SIZE},mode=0700", "tmpfs", str(path))
    except (OSError, subprocess.CalledProcessError) as error:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {error}")
    try:
        yield SmallDisk(path)
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False, capture_output=True)
