"""wrk, run once per round of a case, with ``check.lua`` checking every answer."""

from __future__ import annotations

import subprocess
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from bench.samples import Sample

WRK = "/usr/bin/wrk"
CHECK_SCRIPT = Path(__file__).with_name("check.lua")
# An answer slower than this is a timeout, not a latency: wrk's histogram ends there.
TIMEOUT_SECONDS = 10
# wrk needs a moment beyond its duration to connect and to write its result.
GRACE_SECONDS = 60


class WrkError(RuntimeError):
    """wrk did not run, or did not say what it measured."""


@dataclass(frozen=True)
class Expected:
    """The answer every request of a case must get."""

    status: int
    headers: tuple[tuple[str, str], ...] = ()  # (name, value prefix)

    def describe(self) -> str:
        checks = "".join(f", {name}: {prefix}..." for name, prefix in self.headers)
        return f"{self.status}{checks}"


@dataclass(frozen=True)
class Load:
    """How hard wrk pushes: threads, connections kept open, seconds."""

    threads: int
    connections: int
    seconds: int


def run_wrk(
    url: str, requests_file: Path, expected: Expected, load: Load, result_file: Path
) -> Sample:
    """One round: ``load`` against ``url``, every answer checked against ``expected``."""
    result_file.unlink(missing_ok=True)
    command = [
        WRK,
        f"-t{load.threads}",
        f"-c{load.connections}",
        f"-d{load.seconds}s",
        f"--timeout={TIMEOUT_SECONDS}s",
        "--latency",
        "-s",
        str(CHECK_SCRIPT),
        url,
        "--",
        str(requests_file),
        str(result_file),
        str(load.threads),
        str(expected.status),
    ]
    for name, prefix in expected.headers:
        command += [name, prefix]
    # Every argument is made here: paths in the bench's own directory and numbers.
    finished = subprocess.run(  # noqa: S603
        command,
        capture_output=True,
        text=True,
        timeout=load.seconds + GRACE_SECONDS,
        check=False,
    )
    if finished.returncode != 0 or not result_file.exists():
        raise WrkError(
            f"wrk against {url} failed ({finished.returncode}): "
            f"{finished.stderr.strip()[-2000:]} {finished.stdout.strip()[-2000:]}"
        )
    return parse_result(result_file.read_text("utf-8"))


def parse_result(text: str) -> Sample:
    """What ``check.lua`` wrote when wrk was done."""
    counts: dict[str, int] = {}
    histogram: Counter[int] = Counter()
    examples: list[str] = []
    for line in text.splitlines():
        kind, _, rest = line.partition(" ")
        if kind == "latency":
            value, count = rest.split()
            histogram[int(value)] += int(count)
        elif kind == "example":
            examples.append(rest)
        elif kind:
            counts[kind] = int(rest)
    try:
        return Sample(
            requests=counts["requests"],
            seconds=counts["duration_us"] / 1e6,
            latency_us=histogram,
            unexpected=counts["unexpected"],
            socket_errors=counts["socket_errors"],
            timeouts=counts["timeouts"],
            examples=examples,
        )
    except KeyError as missing:
        raise WrkError(f"wrk's result lacks {missing}") from None
