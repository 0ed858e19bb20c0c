"""``python -m bench`` (what ``make bench`` runs): measure the sidecar against its baselines."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from bench.run import FULL, QUICK, RESULTS, run, tools_missing


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run of about a minute (200 people, short rounds)",
    )
    parser.add_argument("--users", type=int, help="people with a role in slapd")
    parser.add_argument("--rounds", type=int, help="rounds per case")
    parser.add_argument("--seconds", type=int, help="seconds per round")
    parser.add_argument("--warmup", type=int, help="seconds of warm-up per case (0: none)")
    parser.add_argument(
        "--peer",
        type=Path,
        help="nginx-ldap-auth-daemon.py to measure beside the sidecar (default: its stand-in)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"default: {RESULTS}")
    parser.add_argument("--no-chart", action="store_true", help="no latest.png (no matplotlib)")
    parser.add_argument(
        "--keep", action="store_true", help="keep the working directory (logs, configuration)"
    )
    args = parser.parse_args()
    plan = QUICK if args.quick else FULL
    changes = {
        "users": args.users,
        "rounds": args.rounds,
        "round_seconds": args.seconds,
        "warmup_seconds": args.warmup,
    }
    plan = replace(plan, **{key: value for key, value in changes.items() if value is not None})
    if args.peer is not None and not args.peer.is_file():
        print(f"bench: --peer {args.peer}: no such file", file=sys.stderr)
        return 2
    missing = tools_missing()
    if missing:
        print(f"bench: missing {', '.join(missing)} (make bench installs them)", file=sys.stderr)
        return 2
    try:
        return run(
            plan,
            args.out,
            keep=args.keep,
            chart=not args.no_chart,
            peer_daemon=args.peer.resolve() if args.peer is not None else None,
        )
    except KeyboardInterrupt:
        print("bench: interrupted; everything it started is stopped", file=sys.stderr)
        return 130
    except RuntimeError as error:
        # wrk, a driver, slapd, nginx or a sidecar failed: the error says which and why.
        hint = "" if args.keep else " (--keep keeps the logs)"
        print(f"bench failed{hint}: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
