"""nginx's kept connections to the sidecar, told apart from the sidecar's own descriptors.

The include's upstream keeps idle connections to the sidecar open for up to
60 s. A count of the sidecar's descriptors that should come back to where it
was (after an outage, say) first has nginx let go of them: a reload, whose old
workers close their idle connections at once, then a wait until the sidecar
holds no connection accepted on its socket.
"""

from __future__ import annotations

import os
from pathlib import Path

from demo.nginx import Nginx
from testbed.poll import poll_until

# /proc/net/unix: St 03 is a connected socket (the listening one is 01).
_CONNECTED = "03"


def accepted_connections(pid: int, socket_path: Path) -> int:
    """Connections ``pid`` holds that were accepted on the unix socket ``socket_path``."""
    inodes = set()
    try:
        listed = os.listdir(f"/proc/{pid}/fd")
        table = Path(f"/proc/{pid}/net/unix").read_text("ascii").splitlines()[1:]
    except OSError:
        return 0  # the process has gone
    for fd in listed:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue  # closed while listed
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for line in table:
        fields = line.split()
        if len(fields) > 7 and fields[7] == str(socket_path) and fields[5] == _CONNECTED:
            count += fields[6] in inodes
    return count


def let_go(nginx: Nginx, pid: int, socket_path: Path, seconds: float = 10.0) -> bool:
    """nginx reloaded until ``pid`` holds none of its connections; False if it still does."""
    nginx.reload()
    return poll_until(lambda: accepted_connections(pid, socket_path) == 0, seconds=seconds)
