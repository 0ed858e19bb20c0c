"""``jitsi-auth-sidecar``: serve, and the admin commands check-config, test-login, mint, setup."""

from __future__ import annotations

import argparse
import asyncio
import logging
import socket
import sys
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from sidecar.admin import commands as admin
from sidecar.config.settings import DEFAULT_CONFIG_PATH, ConfigError, Settings, load_settings
from sidecar.daemon.workers import Supervisor, Worker
from sidecar.guest_links import StateFileError
from sidecar.web.logs import configure as configure_logging
from sidecar.web.server import LISTEN_BACKLOG, ListenError, serve

DESCRIPTION = (
    "Logs school people into Jitsi Meet rooms against the LDAP directory: serve runs the "
    "daemon beside nginx; check-config, test-login, mint and setup are the admin's commands."
)


def _load(path: Path) -> Settings:
    try:
        return load_settings(path)
    except ConfigError as error:
        # One line that names the key: that is all an admin needs to fix it.
        print(f"jitsi-auth-sidecar: configuration error: {error}", file=sys.stderr)
        raise SystemExit(2) from None


def _parser() -> argparse.ArgumentParser:
    # Plain text: argparse prints it as it is (the module's docstring has markup).
    parser = argparse.ArgumentParser(prog="jitsi-auth-sidecar", description=DESCRIPTION)
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {metadata.version('jitsi-auth-sidecar')}"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve_command = commands.add_parser(
        "serve",
        help="run the daemon",
        description="Answer nginx's auth_request subrequests for the Jitsi site until stopped.",
    )
    serve_command.add_argument(
        "--config",
        type=Path,
        default=DEFAULT_CONFIG_PATH,
        metavar="FILE",
        help=f"config.toml (default: {DEFAULT_CONFIG_PATH})",
    )
    admin.add_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command in admin.COMMANDS:
        return admin.run_command(args)
    logging.basicConfig(
        level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    if args.command == "serve":
        settings = _load(args.config)
        configure_logging(settings.server.log_format)
        if settings.server.workers > 1:
            try:
                return Supervisor(settings, _worker(settings), backlog=LISTEN_BACKLOG).supervise()
            except OSError as error:
                print(f"jitsi-auth-sidecar: server.listen: {error.strerror}", file=sys.stderr)
                return 2
        return _serve_here(settings)
    raise AssertionError(args.command)


def _serve_here(settings: Settings, **how: Any) -> int:
    try:
        asyncio.run(serve(settings, **how))
    except (ListenError, StateFileError) as error:
        print(f"jitsi-auth-sidecar: {error}", file=sys.stderr)
        return 2
    return 0


def _worker(settings: Settings) -> Worker:
    def serve_as_worker(listener: socket.socket, number: int, ready: Callable[[], None]) -> int:
        return _serve_here(settings, listener=listener, worker=number, on_ready=ready)

    return serve_as_worker


if __name__ == "__main__":
    raise SystemExit(main())
