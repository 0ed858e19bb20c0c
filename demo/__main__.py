"""``python -m demo`` (what ``make demo`` runs): a throwaway school, nginx and the sidecar."""

from __future__ import annotations

import argparse
from pathlib import Path

from demo.run import run_demo


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m demo", description=__doc__)
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument(
        "--include",
        type=Path,
        default=None,
        help="the nginx include file (default: the one in this source tree)",
    )
    args = parser.parse_args()
    if not 0 < args.port < 65536:
        parser.error(f"--port {args.port}: a port is 1 to 65535")
    return run_demo(port=args.port, include=args.include)


if __name__ == "__main__":
    raise SystemExit(main())
