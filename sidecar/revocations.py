"""Logged-out sessions: a set of session ids, each until its session would have ended anyway.

A logout costs the same with ten ended sessions as with a hundred thousand:
the set is a dict (one look-up per page load), expiry goes by time buckets
(nothing is walked but what is due), and ``sessions.revocation_file`` is an
append-only log, one line per logout, on disk (fsync) before the logout is
confirmed. The file is rewritten whole (atomically) only once most of its
lines are over or repeated, so that over many logouts each pays a constant
share of it.

The file::

    jitsi-auth-sidecar revoked sessions v1
    <until, Unix time> <session id>
    ...

A file in the earlier JSON form (``{"<id>": <until>, ...}``) is read and
rewritten in this form at the next logout. A file that exists but cannot be
read in full stops the start (:class:`~sidecar.state_files.StateFileError`):
a sidecar that started without it would let every logged-out cookie in again.
"""

from __future__ import annotations

import heapq
import json
import logging
import re
from collections import deque
from collections.abc import Callable
from pathlib import Path

from sidecar.state_files import append_durably, remove_leftovers, unreadable, write_atomically

log = logging.getLogger(__name__)

SETTING = "sessions.revocation_file"
HEADER = b"jitsi-auth-sidecar revoked sessions v1\n"
# Logouts can only grow the set by logging in again first; this bounds it all the same
# (past it, the revocation that would have ended soonest is dropped first).
MAX_REVOKED_SESSIONS = 200_000
# The file is rewritten when it holds this many lines and twice as many as are current.
COMPACT_AT_LEAST = 4096
# Expiry is kept by buckets of this many seconds (each a list of ids): no heap entry
# per logout, and a look-up still judges the exact time.
BUCKET_SECONDS = 600
CONSEQUENCE = "let every logged-out session in again until its lifetime is over"

_LINE = re.compile(rb"([0-9]{1,12}) ([A-Za-z0-9_-]{1,128})")
_SESSION_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")


def _line(session_id: str, until: int) -> bytes:
    return b"%d %s\n" % (until, session_id.encode("ascii"))


class RevokedSessions:
    """Ids of sessions ended by logout, until their lifetime is over.

    With a ``path`` they are kept in that file, so that a restart does not
    bring a logged-out cookie back to life.
    """

    def __init__(
        self,
        path: Path | None,
        *,
        clock: Callable[[], float],
        max_entries: int = MAX_REVOKED_SESSIONS,
    ) -> None:
        self._path = path
        self._clock = clock
        self._max_entries = max_entries
        self._until: dict[str, int] = {}
        self._buckets: dict[int, deque[str]] = {}
        self._bucket_order: list[int] = []  # a heap of the keys of _buckets
        # Logouts not on disk yet (the last write failed): written with the next one.
        self._unsaved: dict[str, int] = {}
        # Lines in the file; None while it is not (yet) a log this class wrote:
        # missing, or in the earlier form. The next write then writes it whole.
        self._lines_on_disk: int | None = None
        self._compact_at = COMPACT_AT_LEAST
        if path is not None:
            remove_leftovers(path)
            self._load(path)

    def __len__(self) -> int:
        return len(self._until)

    def __contains__(self, session_id: object) -> bool:
        until = self._until.get(session_id) if isinstance(session_id, str) else None
        return until is not None and until > self._clock()

    def revoke(self, session_id: str, until: int) -> bool:
        """End ``session_id`` until the Unix time ``until``, here at once.

        True when that is on disk (or no file is kept); False when it could not be
        written: it then holds in this process only, and is written with the next
        logout that can be.
        """
        self.remember(session_id, until)
        if self._path is None or session_id not in self._until:
            return True
        if not _SESSION_ID.fullmatch(session_id):
            # Never so for an id this sidecar made; a line that could not be read
            # back would stop the next start.
            log.warning("session id of an unexpected form: logout kept in memory only")
            return False
        self._unsaved[session_id] = self._until[session_id]
        return self._write(self._path)

    def remember(self, session_id: str, until: int) -> None:
        """End ``session_id`` in this process only (it is known elsewhere, in Redis)."""
        self._forget_expired()
        if until <= self._clock() or self._until.get(session_id, 0) >= until:
            return
        self._until[session_id] = until
        bucket = until // BUCKET_SECONDS
        if bucket not in self._buckets:
            self._buckets[bucket] = deque()
            heapq.heappush(self._bucket_order, bucket)
        self._buckets[bucket].append(session_id)
        while len(self._until) > self._max_entries:
            self._drop_soonest()

    # -- expiry ------------------------------------------------------------------

    def _forget_expired(self) -> None:
        """Forget whole buckets that are over: each id is looked at once, when due."""
        now = self._clock()
        while self._bucket_order and (self._bucket_order[0] + 1) * BUCKET_SECONDS <= now:
            for session_id in self._buckets.pop(heapq.heappop(self._bucket_order)):
                until = self._until.get(session_id)
                if until is not None and until <= now:
                    del self._until[session_id]
                    self._unsaved.pop(session_id, None)

    def _drop_soonest(self) -> None:
        """Past the cap: drop the oldest id of the soonest bucket (about the soonest to
        end anyway; never the logout being made, which is the newest)."""
        bucket = self._bucket_order[0]
        ids = self._buckets[bucket]
        while ids:
            session_id = ids.popleft()
            until = self._until.get(session_id)
            if until is not None and until // BUCKET_SECONDS == bucket:
                del self._until[session_id]
                self._unsaved.pop(session_id, None)
                break
        if not ids:
            del self._buckets[heapq.heappop(self._bucket_order)]

    # -- the file ------------------------------------------------------------------

    def _load(self, path: Path) -> None:
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return
        except OSError as error:
            raise unreadable(
                SETTING, path, error.strerror or error, consequence=CONSEQUENCE
            ) from None
        try:
            if data.startswith(b"{"):
                entries = self._earlier_form(data)
            else:
                entries = self._log_lines(data)
                self._lines_on_disk = len(entries)
        except ValueError as error:
            raise unreadable(SETTING, path, error, consequence=CONSEQUENCE) from None
        self._remember_all(entries)
        self._compact_at = max(COMPACT_AT_LEAST, 2 * len(self._until))

    def _remember_all(self, entries: list[tuple[str, int]]) -> None:
        """:meth:`remember` for a whole file at once (at the start: a bulk path)."""
        now = self._clock()
        until_of = self._until
        for session_id, until in entries:
            if until > now and until_of.get(session_id, 0) < until:
                until_of[session_id] = until
        buckets = self._buckets
        for session_id, until in until_of.items():
            bucket = until // BUCKET_SECONDS
            if bucket not in buckets:
                buckets[bucket] = deque()
            buckets[bucket].append(session_id)
        self._bucket_order = list(buckets)
        heapq.heapify(self._bucket_order)
        while len(until_of) > self._max_entries:
            self._drop_soonest()

    @staticmethod
    def _log_lines(data: bytes) -> list[tuple[str, int]]:
        if not data:
            return []  # made empty by hand: nothing ended
        if not data.startswith(HEADER):
            raise ValueError("not a list of revoked sessions (its first line is not the header)")
        body = data[len(HEADER) :]
        if not body:
            return []
        if not body.endswith(b"\n"):
            raise ValueError("its last line is incomplete")
        entries = []
        for number, line in enumerate(body[:-1].split(b"\n"), start=2):
            matched = _LINE.fullmatch(line)
            if matched is None:
                raise ValueError(f"line {number} is not '<until> <session id>'")
            entries.append((matched[2].decode("ascii"), int(matched[1])))
        return entries

    @staticmethod
    def _earlier_form(data: bytes) -> list[tuple[str, int]]:
        """The JSON object earlier versions wrote: {"<id>": <until>}."""
        try:
            decoded = json.loads(data)
        except ValueError:  # UnicodeDecodeError included
            raise ValueError("not valid JSON") from None
        if not isinstance(decoded, dict) or not all(
            _SESSION_ID.fullmatch(key) and isinstance(until, int) and not isinstance(until, bool)
            for key, until in decoded.items()
        ):
            raise ValueError("not an object of session ids and times")
        return list(decoded.items())

    def _write(self, path: Path) -> bool:
        """Write what is not on disk yet: appended, or the whole file when it is due."""
        if self._lines_on_disk is None or self._lines_on_disk >= self._compact_at:
            try:
                self._compact(path)
                return True
            except OSError as error:
                if self._lines_on_disk is None:
                    self._failed(path, error)
                    return False
                # Appending may still work (a read-only directory, a file that is not):
                # try that, and compacting again only after as many logouts again.
                self._compact_at = self._lines_on_disk + max(COMPACT_AT_LEAST, len(self._until))
                log.warning("cannot rewrite %s %s (%s); appending", SETTING, path, error)
        record = b"".join(_line(sid, until) for sid, until in self._unsaved.items())
        try:
            append_durably(path, record)
        except OSError as error:
            self._failed(path, error)
            return False
        self._lines_on_disk += len(self._unsaved)
        self._unsaved.clear()
        return True

    def _compact(self, path: Path) -> None:
        """Rewrite the file with the current revocations only."""
        now = self._clock()
        lines = [f"{until} {sid}\n" for sid, until in self._until.items() if until > now]
        write_atomically(path, HEADER + "".join(lines).encode("ascii"))
        self._lines_on_disk = len(lines)
        self._compact_at = max(COMPACT_AT_LEAST, 2 * len(lines))
        self._unsaved.clear()

    def _failed(self, path: Path, error: OSError) -> None:
        log.error(
            "cannot write %s %s (%s): %d logout(s) hold until a restart only, until it can be",
            SETTING,
            path,
            error.strerror or error,
            len(self._unsaved),
        )
