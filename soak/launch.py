"""``python -m soak.launch FD NOFILE -- COMMAND...``: become COMMAND the way systemd
starts a socket-activated service: the listening socket as file descriptor 3,
``LISTEN_FDS=1`` and ``LISTEN_PID`` naming this very process (exec keeps the
pid), and the descriptor limit soft = hard = NOFILE.

A launcher of its own rather than ``preexec_fn``: the harness has threads, and
running Python between fork and exec in a threaded process can deadlock.
"""

from __future__ import annotations

import os
import resource
import sys

PASSED_FD = 3  # SD_LISTEN_FDS_START


def main(argv: list[str]) -> int:
    fd, nofile, separator, *command = argv
    if separator != "--" or not command:
        print("usage: python -m soak.launch FD NOFILE -- COMMAND...", file=sys.stderr)
        return 2
    listening = int(fd)
    if listening != PASSED_FD:
        os.dup2(listening, PASSED_FD, inheritable=True)
        os.close(listening)
    else:
        os.set_inheritable(PASSED_FD, True)
    limit = int(nofile)
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))
    env = {**os.environ, "LISTEN_FDS": "1", "LISTEN_PID": str(os.getpid())}
    os.execvpe(command[0], command, env)  # noqa: S606 - the harness's own command line
    return 127  # not reached: exec replaces this process


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
