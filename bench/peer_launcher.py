"""Runs nginx-ldap-auth's daemon unmodified, with a listen backlog of 128 instead of 5.

``/usr/bin/python3 -u -m bench.peer_launcher DAEMON [ITS ARGUMENTS...]``

The daemon's server class inherits ``request_queue_size`` (the ``listen()``
backlog, 5) from ``socketserver.TCPServer``; with 32 or 64 clients at once the
kernel then refuses or drops connections and the daemon's tail is made of
retransmits, not of its work. Raising the class attribute before the script
runs gives it the backlog any server here gets, without touching its file. The
script then runs as ``python DAEMON ...`` would run it (``-u``: as its own
shell header starts it, unbuffered).

Standard library only: it runs under Debian's python3, where python-ldap is.
"""

from __future__ import annotations

import runpy
import socketserver
import sys

BACKLOG = 128


def main() -> int:
    if len(sys.argv) < 2:
        print("usage: python3 -m bench.peer_launcher DAEMON [ARGUMENTS...]", file=sys.stderr)
        return 2
    socketserver.TCPServer.request_queue_size = BACKLOG
    daemon = sys.argv[1]
    sys.argv = sys.argv[1:]  # the daemon's argparse sees its own name and arguments
    runpy.run_path(daemon, run_name="__main__")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
