"""``python -m soak`` (``make soak``): a mixed load through nginx and the sidecar
while the things it depends on fail, one phase at a time, then the counts.

The load (``soak.load``) is people with sessions (with and without a token on
the URL), pupils waiting for a closed room, cached and new Basic logins, form
logins, wrong passwords and unknown names (each from an address of its own),
at half the highest open-loop rate the stack keeps up with, found by steps
down from a closed loop of the same mix (``soak.calibration``; ``--rate`` to
fix it).
The sidecar runs as systemd runs it (``soak.service``), under a descriptor
limit of 1024. The phases (``--phases``, all by default) are in
``soak.phases``. What must hold, and is reported for each phase: no answer
other than 200/302/401/403/429/503, no wrong password or unknown name let in,
the sidecar's descriptors back where they were after a fault, no request lost
to a restart, nothing done undone by a restart with a full disk, resident
memory flat over the last ten minutes of the mixed load. Results go to
``soak/results/latest.{json,md}``; the exit status is 1 when any of that
failed.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from demo.processes import stop_on_sigterm
from soak.phases import FILL_NAMES, PHASES, RUNNERS, Durations
from soak.report import markdown, verdicts
from soak.service import RESTART_ORDERS
from soak.stack import Options, SoakStack

RESULTS = Path(__file__).with_name("results")
# The full soak, as the reliability issue asks for it.
FULL_MINUTES = 15.0
FULL_OUTAGE_SECONDS = 60.0
FULL_CALM_SECONDS = 30.0
FULL_RESTARTS = 30
MIN_OUTAGE_SECONDS = 5.0
MIN_CALM_SECONDS = 5.0
MIN_RESTARTS = 3


def _phases(text: str) -> list[str]:
    chosen = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in PHASES]
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(f"phases are {', '.join(PHASES)}; not {unknown}")
    return chosen


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m soak", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    add = parser.add_argument
    add("--phases", type=_phases, default=list(PHASES), help=f"comma-separated: {','.join(PHASES)}")
    add(
        "--minutes",
        type=float,
        default=FULL_MINUTES,
        help="the mixed load (make soak SOAK_MINUTES=)",
    )
    scaled = "(default: scaled with --minutes, full at 15)"
    add("--outage-seconds", type=float, help=f"slapd stopped, killed, slow: 60 s {scaled}")
    add("--calm-seconds", type=float, help=f"load before and after each fault: 30 s {scaled}")
    add("--redis-down-seconds", type=float, default=5.0)
    add("--restarts", type=int, help=f"30 {scaled}")
    add("--restart-interval", type=float, default=8.0, help="seconds from one restart to the next")
    add("--restart-order", choices=RESTART_ORDERS, default="ready-first")
    add("--slow-delay", type=float, default=2.0, help="seconds added to every directory answer")
    add(
        "--rate",
        type=float,
        default=None,
        help="requests a second (default: half the closed loop's)",
    )
    add("--calibrate-seconds", type=float, default=10.0)
    add("--connections", type=int, default=50, help="the load's connections to nginx")
    add("--people", type=int, default=2000, help="the school's size")
    add("--nofile", type=int, default=1024, help="the sidecar's descriptor limit (soft = hard)")
    add("--sample-seconds", type=float, default=10.0, help="memory and descriptors, how often")
    add("--window-seconds", type=float, default=10.0, help="the mixed load's time series")
    add(
        "--fill-names",
        type=int,
        default=FILL_NAMES,
        help="made-up names that fill the failure-count tables before the mixed load (0: none)",
    )
    # Above ldap.timeout and Redis's pause: work still under way has ended by then.
    add(
        "--settle-seconds",
        type=float,
        default=30.0,
        help="descriptors may close until then (the LDAP pool closes idle ones after 15 s)",
    )
    add("--out", type=Path, default=RESULTS)
    add("--keep", action="store_true", help="keep the working directory (logs) and say where")
    return parser


def scale_with_minutes(args: argparse.Namespace) -> None:
    """A shorter mixed load makes a shorter soak: every fault in proportion, within floors."""
    share = min(1.0, args.minutes / FULL_MINUTES)
    if args.outage_seconds is None:
        args.outage_seconds = max(MIN_OUTAGE_SECONDS, round(FULL_OUTAGE_SECONDS * share))
    if args.calm_seconds is None:
        args.calm_seconds = max(MIN_CALM_SECONDS, round(FULL_CALM_SECONDS * share))
    if args.restarts is None:
        args.restarts = max(MIN_RESTARTS, round(FULL_RESTARTS * share))


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    options = Options(
        people=args.people,
        rate=args.rate,
        connections=args.connections,
        nofile=args.nofile,
        sample_seconds=args.sample_seconds,
        restart_order=args.restart_order,
        settle_seconds=args.settle_seconds,
    )
    durations = Durations(
        minutes=args.minutes,
        outage=args.outage_seconds,
        calm=args.calm_seconds,
        redis_down=args.redis_down_seconds,
        restarts=args.restarts,
        restart_interval=args.restart_interval,
        slow_delay=args.slow_delay,
        window=args.window_seconds,
        fill_names=args.fill_names,
    )
    report: dict[str, Any] = {
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
    }
    started = time.monotonic()
    with SoakStack(workdir, options) as stack:
        stack.use("direct")
        report["rate"] = (
            stack.calibrate(args.calibrate_seconds)
            if args.rate is None
            else {"soak rate req/s": args.rate}
        )
        print(f"soak: {report['rate']}", file=sys.stderr, flush=True)
        report["state files on"] = (
            "a 64 KiB tmpfs"
            if stack.state.mounted
            else f"a plain directory ({stack.state.problem})"
        )
        phases: dict[str, Any] = {}
        for name in args.phases:
            elapsed = time.monotonic() - started
            print(f"soak: {name} (at {elapsed:.0f} s) ...", file=sys.stderr, flush=True)
            try:
                phases[name] = RUNNERS[name](stack, durations)
            except Exception as error:  # the other phases still run
                traceback.print_exc()
                phases[name] = {"error": f"{type(error).__name__}: {error}"[:500]}
        report["phases"] = phases
        report["log bytes thrown away"] = stack.watch.thrown_away
    report["minutes"] = round((time.monotonic() - started) / 60, 1)
    return report


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    scale_with_minutes(args)
    stop_on_sigterm()
    if args.keep:
        workdir = tempfile.mkdtemp(prefix="soak-")
        print(f"soak: working in {workdir}, kept", file=sys.stderr)
        report = run(args, Path(workdir))
    else:
        with tempfile.TemporaryDirectory(prefix="soak-") as workdir:
            report = run(args, Path(workdir))
    failed = verdicts(report)
    report["what failed"] = failed
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "latest.json").write_text(json.dumps(report, indent=1) + "\n", "utf-8")
    table = markdown(report)
    (args.out / "latest.md").write_text(table, "utf-8")
    print(table)
    return 1 if failed else 0
