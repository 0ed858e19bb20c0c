"""What the soak watches while it runs: the sidecar's resident memory and open
descriptors every few seconds, and the error lines of the sidecar's and
nginx's logs as they are written, each stamped with the time it was seen.

The logs are also kept from filling the disk: a daemon that cannot accept may
log the same error thousands of times a second. Past ``LOG_CAP_BYTES`` a log
is emptied (its writers append, so they go on at the new end) and the bytes
thrown away are counted; lines beyond ``READ_PER_TICK`` bytes a tick are
skipped, not read.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from soak.service import open_descriptors, resident_kib

LOG_CAP_BYTES = 200 * 1024 * 1024
READ_PER_TICK = 4 * 1024 * 1024
FOLLOW_SECONDS = 0.5
NGINX_LEVELS = ("[error]", "[crit]", "[alert]", "[emerg]")
MESSAGE_CHARS = 90


@dataclass(frozen=True)
class Sample:
    at: float  # time.monotonic()
    pid: int
    resident_kib: int | None
    descriptors: int | None


@dataclass
class LogLine:
    at: float
    source: str  # "sidecar" or "nginx"
    message: str  # digits folded into N, so that one kind of line counts as one


def fold(text: str) -> str:
    return re.sub(r"\d+", "N", text)[:MESSAGE_CHARS]


PLAIN = re.compile(r"^(?:\S+ )?(ERROR|CRITICAL|WARNING) (\S+: .*)")
# The last line of a traceback: what was raised.
RAISED = re.compile(r"^[\w.]+(?:Error|Exception|Exit)(?:: .*)?$")


def sidecar_line(line: str) -> str | None:
    plain = PLAIN.match(line)
    if plain:
        return fold(f"{plain.group(1)} {plain.group(2)}")
    if RAISED.match(line):
        return fold(f"raised {line}")
    if line.startswith("{") and '"level"' in line:  # log_format = "json"
        found = re.search(r'"level": ?"(ERROR|CRITICAL|WARNING)".*?"message": ?"([^"]*)', line)
        return fold(f"{found.group(1)} {found.group(2)}") if found else None
    return None


def nginx_line(line: str) -> str | None:
    if not any(level in line for level in NGINX_LEVELS):
        return None
    # "2026/.. [error] 123#123: *45 <message>, client: ..., server: ..."
    message = re.sub(r"^.*?\] \d+#\d+: (\*\d+ )?", "", line).split(", client:")[0]
    return fold(message)


@dataclass
class FollowedLog:
    path: Path
    source: str
    classify: Callable[[str], str | None]
    offset: int = 0
    thrown_away_bytes: int = 0
    skipped_bytes: int = 0
    partial: str = ""

    def read(self, now: float, found: list[LogLine]) -> None:
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return
        if size < self.offset:
            self.offset, self.partial = 0, ""  # emptied
        if size - self.offset > READ_PER_TICK:
            self.skipped_bytes += size - self.offset - READ_PER_TICK
            self.offset = size - READ_PER_TICK
            self.partial = ""
        with self.path.open("rb") as log:
            log.seek(self.offset)
            data = log.read(size - self.offset)
        self.offset += len(data)
        text = self.partial + data.decode("utf-8", errors="replace")
        *lines, self.partial = text.split("\n")
        for line in lines:
            message = self.classify(line)
            if message is not None:
                found.append(LogLine(now, self.source, message))
        if size > LOG_CAP_BYTES:
            self.path.write_bytes(b"")
            self.thrown_away_bytes += size
            self.offset, self.partial = 0, ""


@dataclass
class Watch:
    """A thread sampling the sidecar ``pid()`` names and following its logs."""

    pid: Callable[[], int | None]
    sample_seconds: float
    sidecar_log: Path
    nginx_error_log: Path
    capped: tuple[Path, ...] = ()  # other logs only kept small (slapd's, nginx's access log)
    samples: list[Sample] = field(default_factory=list)
    lines: list[LogLine] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _thread: threading.Thread | None = None

    def __post_init__(self) -> None:
        self.logs = [
            FollowedLog(self.sidecar_log, "sidecar", sidecar_line),
            FollowedLog(self.nginx_error_log, "nginx", nginx_line),
        ]

    def start(self) -> Watch:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        self.follow()

    def sample(self) -> Sample | None:
        pid = self.pid()
        if pid is None:
            return None
        taken = Sample(time.monotonic(), pid, resident_kib(pid), open_descriptors(pid))
        with self._lock:
            self.samples.append(taken)
        return taken

    def follow(self) -> None:
        found: list[LogLine] = []
        now = time.monotonic()
        for log in self.logs:
            log.read(now, found)
        for path in self.capped:
            try:
                if path.stat().st_size > LOG_CAP_BYTES:
                    path.write_bytes(b"")
            except FileNotFoundError:
                pass
        with self._lock:
            self.lines += found

    def _run(self) -> None:
        next_sample = time.monotonic()
        while not self._stop.wait(FOLLOW_SECONDS):
            self.follow()
            if time.monotonic() >= next_sample:
                self.sample()
                next_sample += self.sample_seconds

    def lines_between(self, start: float, end: float) -> list[LogLine]:
        with self._lock:
            return [line for line in self.lines if start <= line.at < end]

    def samples_between(self, start: float, end: float) -> list[Sample]:
        with self._lock:
            return [sample for sample in self.samples if start <= sample.at <= end]

    @property
    def thrown_away(self) -> dict[str, int]:
        return {log.source: log.thrown_away_bytes + log.skipped_bytes for log in self.logs}
