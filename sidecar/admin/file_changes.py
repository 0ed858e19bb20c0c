"""Files changed one at a time with the admin's consent, and every change undoable.

Before a file is first changed, its bytes (or the fact that it did not
exist) go into the setup state folder with a manifest; later runs keep that
first copy, so ``setup --undo`` brings back every file as it was before the
first run, byte for byte and with its mode, and deletes the files setup
created. A file the admin has changed since setup wrote it is left alone by
the undo, which says so.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import json
import os
import shutil
import stat
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from sidecar.state_files import write_atomically

MANIFEST = "manifest.json"
SECRET_MODE = 0o600
PLAIN_MODE = 0o644


@dataclass(frozen=True)
class Change:
    """One file as setup wants it."""

    path: Path
    new: bytes
    what: str  # what the change is for, shown before the diff
    secret: bool = False  # the whole file is a secret: never shown, written 0600
    masked: Sequence[str] = ()  # secrets inside the file, hidden in the diff

    def current(self) -> bytes | None:
        try:
            return self.path.read_bytes()
        except FileNotFoundError:
            return None

    @property
    def needed(self) -> bool:
        return self.current() != self.new

    def diff(self, shown_as: str) -> str:
        """What would change, as a unified diff; secrets never appear."""
        old = self.current()
        if self.secret:
            verb = "create" if old is None else "replace"
            return f"{verb} {shown_as} (a secret: {len(self.new)} bytes, mode 0600)\n"
        before = "" if old is None else old.decode("utf-8", "replace")
        after = self.new.decode("utf-8", "replace")
        for secret in self.masked:
            before = before.replace(secret, "********")
            after = after.replace(secret, "********")
        lines = difflib.unified_diff(
            before.splitlines(keepends=True),
            after.splitlines(keepends=True),
            fromfile="/dev/null" if old is None else shown_as,
            tofile=shown_as,
        )
        return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class Record:
    """One file in the manifest: how it was before setup first touched it."""

    path: str
    existed: bool
    backup: str | None  # the copy's name in the state folder
    mode: int | None
    written: str  # sha256 of what setup last wrote
    created_folders: list[str] = field(default_factory=list)
    owner: list[int] | None = None  # uid and gid, given back when run as root


class StateFolder:
    """The manifest and the first copies (root's alone: they may hold secrets)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @property
    def manifest(self) -> Path:
        return self.folder / MANIFEST

    def records(self) -> dict[str, Record]:
        try:
            raw = json.loads(self.manifest.read_text("utf-8"))
        except FileNotFoundError:
            return {}
        return {item["path"]: Record(**item) for item in raw["files"]}

    def save(self, records: dict[str, Record]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        document = {"files": [vars(record) for record in records.values()]}
        write_atomically(
            self.manifest, json.dumps(document, indent=2).encode() + b"\n", mode=SECRET_MODE
        )

    def remember(self, records: dict[str, Record], path: Path, created: list[Path]) -> None:
        """The first copy of ``path``, unless an earlier run kept one."""
        key = str(path)
        if key in records:
            return
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        if path.exists():
            backup = f"{len(records):03d}-{path.name}"
            shutil.copyfile(path, self.folder / backup)
            (self.folder / backup).chmod(SECRET_MODE)
            status = path.stat()
            mode = stat.S_IMODE(status.st_mode)
            owner = [status.st_uid, status.st_gid]
            records[key] = Record(key, True, backup, mode, "", [], owner)
        else:
            records[key] = Record(key, False, None, None, "", [str(p) for p in created])


def _missing_folders(path: Path) -> list[Path]:
    """The folders above ``path`` that do not exist yet, outermost first."""
    missing = []
    for parent in path.parents:
        if parent.exists():
            break
        missing.append(parent)
    return list(reversed(missing))


def write_change(change: Change) -> None:
    """Write one file: an existing file keeps its mode (and owner), a new one gets its own."""
    change.path.parent.mkdir(parents=True, exist_ok=True)
    existing = change.path.stat() if change.path.exists() else None
    if change.secret:
        mode = SECRET_MODE
    else:
        mode = stat.S_IMODE(existing.st_mode) if existing else PLAIN_MODE
    write_atomically(change.path, change.new, mode=mode)
    if existing is not None and os.geteuid() == 0:
        os.chown(change.path, existing.st_uid, existing.st_gid)


@dataclass
class Applied:
    """What one run wrote, and how things were before it, to roll the run back."""

    state: StateFolder
    records_before: dict[str, Record]
    before: dict[Path, bytes | None] = field(default_factory=dict)
    created_folders: list[Path] = field(default_factory=list)

    def roll_back(self) -> None:
        """Every file of the run as it was, and the state folder as it was."""
        for path, old in self.before.items():
            if old is None:
                path.unlink(missing_ok=True)
            else:
                write_atomically(path, old, mode=stat.S_IMODE(path.stat().st_mode))
        _remove_empty(self.created_folders)
        kept = {record.backup for record in self.records_before.values()}
        for record in self.state.records().values():
            if record.backup is not None and record.backup not in kept:
                (self.state.folder / record.backup).unlink(missing_ok=True)
        if self.records_before:
            self.state.save(self.records_before)
        else:
            shutil.rmtree(self.state.folder, ignore_errors=True)


def _remove_empty(folders: Iterable[Path]) -> None:
    """The folders a run created, deepest first, as far as they are empty again."""
    for folder in sorted(set(folders), key=lambda path: len(path.parts), reverse=True):
        with contextlib.suppress(OSError):  # something else lives there now
            folder.rmdir()


def apply(
    changes: Iterable[Change],
    state: StateFolder,
    *,
    consent: Callable[[Change], bool],
) -> Applied:
    """Write each needed change the admin agrees to, keeping the first copies."""
    records = state.records()
    applied = Applied(state, {key: replace(record) for key, record in records.items()})
    for change in changes:
        if not change.needed or not consent(change):
            continue
        created = _missing_folders(change.path)
        state.remember(records, change.path, created)
        applied.before[change.path] = change.current()
        applied.created_folders += created
        write_change(change)
        records[str(change.path)].written = _digest(change.new)
        state.save(records)
    return applied


@dataclass(frozen=True)
class UndoResult:
    restored: list[Path]
    removed: list[Path]
    left: list[Path]  # changed since setup wrote them: not touched


def undo(state: StateFolder, *, force: bool = False) -> UndoResult:
    """Every file back as it was before setup first changed it."""
    records = state.records()
    restored, removed, left = [], [], []
    folders: list[Path] = []
    for record in records.values():
        path = Path(record.path)
        current = path.read_bytes() if path.exists() else None
        if not force and (current is None or _digest(current) != record.written):
            left.append(path)
            continue
        if record.existed and record.backup is not None:
            original = (state.folder / record.backup).read_bytes()
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomically(
                path, original, mode=record.mode if record.mode is not None else PLAIN_MODE
            )
            if record.owner is not None and os.geteuid() == 0:
                os.chown(path, *record.owner)
            restored.append(path)
        else:
            path.unlink(missing_ok=True)
            folders += [Path(name) for name in record.created_folders]
            removed.append(path)
    _remove_empty(folders)
    if not left:
        shutil.rmtree(state.folder, ignore_errors=True)
    else:
        kept = {key: record for key, record in records.items() if Path(key) in left}
        state.save(kept)
    return UndoResult(restored, removed, left)
