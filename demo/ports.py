"""Is the demo's port free, and how somebody on another machine reaches the demo.

nginx retries a taken port for a few seconds and then gives up, while a
probe that connects to the port finds the other server answering: without a
check first, the demo would say it runs while somebody else's server holds
its address (on a Jitsi host, the videobridge often holds 8080).
"""

from __future__ import annotations

import errno
import itertools
import os
import random
import socket
from collections.abc import Iterator
from pathlib import Path

# The demo's nginx listens here only: its passwords are printed on the terminal.
DEMO_ADDRESS = "127.0.0.1"


# Where Linux picks the source port of an outgoing connection. A port taken
# from there for a server to listen on later can meanwhile become the source
# port of one of the many connections a loaded test makes, and the server
# then cannot bind it.
EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
# How many ports below that range the servers of tests, benchmarks and soak take from.
QUIET_PORT_COUNT = 12000


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = (int(bound) for bound in EPHEMERAL_RANGE.read_text("ascii").split())
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default
    return low, high


def quiet_ports() -> range:
    """Ports outside the ephemeral range, which no outgoing connection takes."""
    low, high = _ephemeral_range()
    if low - 1024 >= 1000:
        return range(max(1024, low - QUIET_PORT_COUNT), low)
    if 65535 - high >= 1000:
        return range(high + 1, min(65536, high + 1 + QUIET_PORT_COUNT))
    return range(0)


def _own_share(ports: range) -> range:
    # Parallel pytest workers each take from their own share, so two of them
    # never both find one port free and both start a server on it.
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or "1")
    if not worker.startswith("gw") or not worker[2:].isdigit() or count <= 1:
        return ports
    share = len(ports) // count
    index = int(worker[2:]) % count
    return ports[index * share : (index + 1) * share]


def _port_cycle() -> Iterator[int]:
    # One walk through this process's share, from a random start: a port
    # handed out and not yet bound is not handed out again soon after.
    ports = _own_share(quiet_ports())
    if not ports:
        return iter(())
    start = random.randrange(len(ports))  # noqa: S311 - a spread, not a secret
    return itertools.cycle([*ports[start:], *ports[:start]])


_ports = _port_cycle()


def free_port(address: str = DEMO_ADDRESS) -> int:
    """A port nothing holds now, for a server a test, benchmark or the soak starts."""
    for port in itertools.islice(_ports, 500):
        if not port_is_taken(port, address):
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((address, 0))  # no quiet range on this machine: let the kernel choose
        chosen: int = probe.getsockname()[1]
        return chosen


def free_ports(count: int, address: str = DEMO_ADDRESS) -> list[int]:
    """``count`` different free ports."""
    return [free_port(address) for _ in range(count)]


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
