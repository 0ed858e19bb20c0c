"""Is the demo's port free, and how somebody on another machine reaches the demo.

nginx retries a taken port for a few seconds and then gives up, while a
probe that connects to the port finds the other server answering: without a
check first, the demo would say it runs while somebody else's server holds
its address (on a Jitsi host, the videobridge often holds 8080).
"""

from __future__ import annotations

import errno
import socket

# The demo's nginx listens here only: its passwords are printed on the terminal.
DEMO_ADDRESS = "127.0.0.1"


def port_is_taken(port: int, address: str = DEMO_ADDRESS) -> bool:
    """Whether a listening socket (on ``address`` or on every address) holds ``port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As nginx binds: a connection of an earlier run in TIME_WAIT is no owner.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((address, port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                return True
            raise
    return False


def next_free_port(after: int, address: str = DEMO_ADDRESS) -> int | None:
    """The first port above ``after`` nobody holds, among the next hundred."""
    for port in range(after + 1, min(after + 101, 65536)):
        if not port_is_taken(port, address):
            return port
    return None


def taken_port_message(port: int, address: str = DEMO_ADDRESS) -> str:
    """What the demo says, and does not start, when ``port`` is taken."""
    suggestion = next_free_port(port, address)
    choose = (
        f"choose another, for example: make demo DEMO_PORT={suggestion}"
        f" (or python -m demo --port {suggestion})"
        if suggestion is not None
        else "choose another with make demo DEMO_PORT=<port> (or python -m demo --port <port>)"
    )
    return (
        f"demo: port {port} on {address} is taken by another server"
        f" (on a Jitsi host often the videobridge; `ss -ltnp 'sport = :{port}'` names it);"
        f" nothing was started. {choose}"
    )


def remote_access_lines(port: int) -> list[str]:
    """How to open the demo from another machine: it listens on loopback only."""
    host = socket.gethostname()
    return [
        f"  It listens on {DEMO_ADDRESS} only. From another machine, forward the port",
        "  through SSH and open the same address there:",
        f"    ssh -N -L {port}:{DEMO_ADDRESS}:{port} <you>@{host}",
        f"    then http://{DEMO_ADDRESS}:{port}/Mathe7b in that machine's browser",
    ]
