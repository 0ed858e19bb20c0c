"""What systemd hands a service and wants to hear from it, without a library.

Socket activation: systemd listens on the socket unit's address and passes
the listening socket as file descriptor 3 (``LISTEN_FDS``, ``LISTEN_PID``),
so requests that come while the daemon restarts wait in the socket's
backlog instead of failing. Readiness: with ``Type=notify`` systemd waits
for ``READY=1`` on ``NOTIFY_SOCKET`` before it counts the service as
started.
"""

from __future__ import annotations

import os
import socket

# The first file descriptor systemd passes (SD_LISTEN_FDS_START).
FIRST_PASSED_FD = 3


def inherited_socket() -> socket.socket | None:
    """The listening socket systemd passed to this process, or None."""
    if os.environ.get("LISTEN_PID") != str(os.getpid()):
        return None
    try:
        count = int(os.environ.get("LISTEN_FDS", "0"))
    except ValueError:
        return None
    if count < 1:
        return None
    # Not for child processes: the socket is this process's.
    for name in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
        os.environ.pop(name, None)
    return socket.socket(fileno=FIRST_PASSED_FD)


def notify(state: str) -> bool:
    """Tell systemd ``state`` (``READY=1``, ``STOPPING=1``); False when nobody listens."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]  # an abstract socket
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as channel:
        try:
            channel.sendto(state.encode("ascii"), address)
        except OSError:
            return False
    return True
