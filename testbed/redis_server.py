"""Debian's redis-server, started on a unix socket in a temporary directory."""

from __future__ import annotations

import subprocess
from pathlib import Path
from types import TracebackType

from demo.processes import terminate
from testbed.poll import accepts, poll_until


class RedisServer:
    def __init__(self, workdir: Path) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        self.socket_path = workdir / "redis.sock"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    def start(self) -> RedisServer:
        log = (self.workdir / "redis.log").open("ab")
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port", "0",
                "--unixsocket", str(self.socket_path),
                "--unixsocketperm", "700",
                "--save", "",
                "--appendonly", "no",
                "--dir", str(self.workdir),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        log.close()
        if not poll_until(self._accepting, seconds=20):
            raise RuntimeError("redis-server did not start")
        return self

    def _accepting(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise RuntimeError((self.workdir / "redis.log").read_text()[-2000:])
        return accepts(str(self.socket_path))

    def stop(self) -> None:
        process, self.process = self.process, None
        terminate(process)

    def keys(self) -> list[str]:
        listed = subprocess.run(
            ["redis-cli", "-s", str(self.socket_path), "--scan"],
            capture_output=True,
            text=True,
            check=True,
            timeout=20,
        )
        return listed.stdout.split()

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
