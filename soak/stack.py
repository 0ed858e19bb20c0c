"""Everything the soak runs, on loopback: slapd holding a generated school, a
delaying proxy in front of it, stand-ins for Prosody's HTTP API, nginx with
the include, the sidecar as a systemd service (``soak.service``), a Redis when
a phase wants one, the state files on a small tmpfs, and the load
(``soak.load``) as a process of its own."""

from __future__ import annotations

import json
import os
import random
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from bench.school import generated_school, people_with_a_role
from demo.jitsi_http import JitsiHttp
from demo.nginx import Nginx
from demo.ports import free_port
from demo.run import SUBJECT, classroom_config, write_demo_config
from demo.school import School
from demo.slapd import Slapd
from soak import calibration
from soak.browser import Browser
from soak.client import ANSWER_TIMEOUT, QUEUE_TIMEOUT
from soak.load import LoadJob
from soak.proxy import DelayingProxy
from soak.service import Service, open_descriptors
from soak.statedisk import StateDirectory, state_directory
from soak.watch import Watch
from testbed.kept_connections import let_go
from testbed.redis_server import RedisServer

# Nothing here is about bans: every failure is a made-up name or password.
# Basic logins are remembered for a minute, so that the load's people, taken
# in turn, log in anew once more than a minute has passed since their last.
SOAK_SETTINGS = """
[regulation]
max_failures_per_user = 10000
max_failures_per_user_overall = 1000000
max_failures_per_address = 100000

[cache]
basic_ttl = 60
"""
BASIC_TTL = 60.0
BELOW_EPHEMERAL = (20000, 32000)
REDIS_CLI = "/usr/bin/redis-cli"
LOAD_READY_TIMEOUT = 120.0
SETTLE_STEP = 0.5
POLL_SECONDS = 0.1
# Between the calibration's steps: what the step before left waiting is answered.
CALIBRATION_PAUSE = 5.0
# A step's load is planned this much longer than it runs: it is stopped, never ends early.
SLACK = 10.0
OPEN_ROOM = "gastraum"  # the room guests and the logged-out pupil try: open, so a token means in


def ports_nobody_borrows(count: int) -> list[int]:
    """Free loopback ports below Linux's ephemeral range: under this much load a
    port from that range, free while slapd is stopped, soon becomes the source
    port of some connection, and slapd could not listen there again."""
    found: list[int] = []
    while len(found) < count:
        port = random.randrange(*BELOW_EPHEMERAL)  # noqa: S311
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        if port not in found:
            found.append(port)
    return found


@dataclass(frozen=True)
class Options:
    people: int
    rate: float | None  # None: half of what a closed loop gets
    connections: int
    nofile: int
    sample_seconds: float
    restart_order: str
    settle_seconds: float  # after the load, how long descriptors may take to close


class LoadRun:
    """One run of ``python -m soak.load``: started, ready (its people logged in), stopped."""

    def __init__(self, workdir: Path, job: LoadJob, name: str) -> None:
        self.job_path = workdir / f"load-{name}.json"
        self.result_path = workdir / f"load-{name}.result.json"
        self.log_path = workdir / f"load-{name}.log"
        self.job_path.write_text(json.dumps(asdict(job)), "utf-8")
        self.process: subprocess.Popen[bytes] | None = None
        self.started = 0.0
        self.result: dict[str, Any] = {}

    def start(self) -> LoadRun:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603
                [sys.executable, "-m", "soak.load", str(self.job_path), str(self.result_path)],
                stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL,
            )  # fmt: skip
        assert self.process.stdout is not None
        readable, _, _ = select.select([self.process.stdout], [], [], LOAD_READY_TIMEOUT)
        line = self.process.stdout.readline().decode() if readable else ""
        if not line.startswith("ready"):
            self.stop()
            raise RuntimeError(f"the load did not start: {self.log_path.read_text()[-2000:]}")
        self.started = float(line.split()[1])
        return self

    def stop(self) -> dict[str, Any]:
        process, self.process = self.process, None
        if process is None:
            return self.result
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(QUEUE_TIMEOUT + ANSWER_TIMEOUT + 60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
        if not self.result_path.exists():
            raise RuntimeError(f"the load left no result: {self.log_path.read_text()[-2000:]}")
        self.result = json.loads(self.result_path.read_text("utf-8"))
        return self.result


class SoakStack:
    def __init__(self, workdir: Path, options: Options) -> None:
        self.workdir = workdir
        self.options = options
        self.school: School = generated_school(options.people)
        self.rate = options.rate or 0.0
        self._exit = ExitStack()
        self._config_name = ""
        self.loaded = False  # the sidecar has had load since it started
        self.configs: dict[str, Path] = {}

    # -- start and stop ------------------------------------------------------------

    def __enter__(self) -> SoakStack:
        try:
            self._start()
        except BaseException:
            self._exit.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._exit.close()

    def _start(self) -> None:
        workdir = self.workdir
        self.state: StateDirectory = self._exit.enter_context(state_directory(workdir / "state"))
        self.slapd = Slapd(workdir / "slapd", school=self.school)
        self.slapd.port, self.slapd.tls_port = ports_nobody_borrows(2)
        self.slapd.start()
        self._exit.callback(self.slapd.stop)
        self.proxy = DelayingProxy(self.slapd.port).start()
        self._exit.callback(self.proxy.stop)
        self.jitsi = JitsiHttp(domain=SUBJECT).start()
        self._exit.callback(self.jitsi.stop)
        self.jitsi.open(OPEN_ROOM)
        self.redis = RedisServer(workdir / "redis")
        self._exit.callback(self.redis.stop)
        self.port = free_port()
        self._write_configs()
        self.socket_path = workdir / "http.sock"
        self.service = Service(
            workdir,
            self.configs["direct"],
            self.socket_path,
            nofile=self.options.nofile,
            log_path=workdir / "sidecar.log",
        )
        self._exit.callback(self.service.close)
        (workdir / "nginx").mkdir()
        self.nginx = Nginx(
            workdir / "nginx",
            port=self.port,
            sidecar_socket=self.socket_path,
            xmpp_port=self.jitsi.port,
        )
        self.nginx.start()
        self._exit.callback(self.nginx.stop)
        self.watch = Watch(
            pid=lambda: self.service.current.pid if self.service.current else None,
            sample_seconds=self.options.sample_seconds,
            sidecar_log=workdir / "sidecar.log",
            nginx_error_log=self.nginx.error_log,
            capped=(self.slapd.log_file, self.nginx.access_log),
        ).start()
        self._exit.callback(self.watch.stop)

    def _write_configs(self) -> None:
        extra = SOAK_SETTINGS + classroom_config(self.jitsi)
        placeholder = "ldap://ldap.invalid"
        base = write_demo_config(
            self.workdir, port=self.port, ldap_url=placeholder, extra=extra
        ).read_text("utf-8")
        for name in ("revoked_sessions.json", "guest_links.json"):
            base = base.replace(str(self.workdir / name), str(self.state.path / name))
        redis = f'\n[state]\nredis_url = "{self.redis.url}"\n'
        variants = {
            "direct": base.replace(placeholder, self.slapd.ldap_url),
            "slow": base.replace(placeholder, self.proxy.url),
            "redis": base.replace(placeholder, self.slapd.ldap_url) + redis,
        }
        for name, text in variants.items():
            path = self.workdir / f"config-{name}.toml"
            path.write_text(text, "utf-8")
            path.chmod(0o600)
            self.configs[name] = path

    # -- the sidecar ------------------------------------------------------------------

    def use(self, config_name: str) -> None:
        """A sidecar with that configuration that has had no load yet: each phase has a
        process of its own (started as systemd restarts a service)."""
        if self.service.current is None:
            self.service.config = self.configs[config_name]
            self.service.start()
        elif self.loaded or config_name != self._config_name:
            self.service.config = self.configs[config_name]
            self.service.restart(self.options.restart_order)
        self._config_name = config_name
        self.loaded = False

    def descriptors(self) -> int | None:
        return open_descriptors(self.service.pid) if self.service.current else None

    def idle_descriptors(self) -> int | None:
        """The sidecar's descriptors without nginx's kept connections (a reload lets
        them go), for a count to compare with the one after a fault."""
        if self.service.current is None:
            return None
        let_go(self.nginx, self.service.pid, self.socket_path, self.options.settle_seconds)
        return self.descriptors()

    def settled_descriptors(self, target: int | None) -> int | None:
        """The sidecar's descriptors once the load's connections are gone (nginx's kept
        ones let go): polled until back at ``target`` or for ``settle_seconds``,
        whichever comes first."""
        deadline = time.monotonic() + self.options.settle_seconds
        if self.service.current is not None:
            let_go(self.nginx, self.service.pid, self.socket_path, self.options.settle_seconds)
        count = self.descriptors()
        while count is not None and target is not None and count > target:
            if time.monotonic() > deadline:
                break
            time.sleep(POLL_SECONDS)
            count = self.descriptors()
        return count

    # -- the load ---------------------------------------------------------------------

    def rotating(self) -> list[tuple[str, str]]:
        """The people new logins take in turn: everybody with a role but the few the load
        keeps logged in (sessions, cached Basic)."""
        return self.job("open", 0).rotating

    def job(self, mode: str, seconds: float, weights: dict[str, float] | None = None) -> LoadJob:
        teachers = [(p.uid, p.password) for p in self.school.teachers]
        pupils = [(p.uid, p.password) for p in self.school.pupils]
        cached, sessions = teachers[:8], pupils[:4]
        rotating = [
            (p.uid, p.password)
            for p in people_with_a_role(self.school)
            if (p.uid, p.password) not in cached and (p.uid, p.password) not in sessions
        ]
        job = LoadJob(
            port=self.port,
            mode=mode,
            rate=max(self.rate, 1.0),
            seconds=seconds,
            connections=self.options.connections,
            teachers=cached,
            pupils=sessions,
            rotating=rotating,
            basic_ttl=BASIC_TTL,
            seed=random.randrange(1 << 30),  # noqa: S311
        )
        return replace(job, weights=weights) if weights else job

    @contextmanager
    def load(
        self,
        name: str,
        seconds: float,
        *,
        mode: str = "open",
        weights: dict[str, float] | None = None,
        first_place: int = 0,
    ) -> Iterator[LoadRun]:
        """Load for at most ``seconds`` (stopped earlier on leaving): at the soak's
        rate (``open``), or as fast as the connections go (``closed``)."""
        self.loaded = True
        job = replace(self.job(mode, seconds, weights), first_place=first_place)
        run = LoadRun(self.workdir, job, name).start()
        try:
            yield run
        finally:
            run.stop()

    def warm_up(self, seconds: float) -> None:
        """Load for ``seconds``, then wait until the sidecar's descriptors stop changing."""
        with self.load("warm-up", seconds + 60):
            time.sleep(seconds)
        deadline = time.monotonic() + self.options.settle_seconds
        last = self.descriptors()
        while time.monotonic() < deadline:
            time.sleep(SETTLE_STEP)
            now = self.descriptors()
            if now == last:
                return
            last = now

    def calibrate(self, seconds: float) -> dict[str, Any]:
        """The closed loop's rate with ``connections`` clients, then open-loop steps down
        from it (see :mod:`soak.calibration`); the soak runs at half the highest step
        the stack kept up with (at half the lowest step when it kept up with none)."""
        self.loaded = True
        run = LoadRun(self.workdir, self.job("closed", seconds), "calibration").start()
        time.sleep(seconds)
        result = run.stop()
        answered = sum(sum(counts.values()) for counts in result["answers"].values())
        closed = answered / max(result["ended"] - result["started"], 1e-3)
        steps: list[calibration.Step] = []
        for share in calibration.STEP_SHARES:
            time.sleep(CALIBRATION_PAUSE)  # what the last step left waiting is answered
            rate = max(1.0, share * closed)
            job = replace(self.job("open", calibration.STEP_SECONDS + SLACK), rate=rate)
            step = LoadRun(self.workdir, job, f"calibration-{round(share * 100)}").start()
            time.sleep(calibration.STEP_SECONDS)
            steps.append(calibration.step_of(step.stop(), rate, calibration.STEP_SECONDS))
            if steps[-1].kept_up:
                break
        kept_up = calibration.sustainable(steps)
        self.rate = round((kept_up or steps[-1].rate) / 2)
        return {
            "closed-loop req/s": round(closed),
            "open-loop steps": [step.as_dict() for step in steps],
            "sustainable req/s": None if kept_up is None else round(kept_up),
            "soak rate req/s": self.rate,
        }

    # -- probes -------------------------------------------------------------------------

    def seconds_until_a_login_works(self, limit: float) -> float | None:
        """A form login (always a bind) by somebody the load does not use, until it works."""
        person = self.school.posix_only
        started = time.monotonic()
        while time.monotonic() - started < limit:
            try:
                page = Browser(self.port, timeout=20).log_in(person.uid, person.password, "/x")
                if page.status == 302:
                    return round(time.monotonic() - started, 2)
            except OSError:
                pass
            time.sleep(POLL_SECONDS)
        return None

    def redis_keys(self) -> int | None:
        try:
            counted = subprocess.run(  # noqa: S603
                [REDIS_CLI, "-s", str(self.redis.socket_path), "dbsize"],
                capture_output=True, text=True, timeout=5, check=False,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            return None
        return int(counted.stdout) if counted.stdout.strip().isdigit() else None

    def name_ports(self, text: str) -> str:
        """``tcp to port 20389`` -> ``tcp to slapd``: the soak's own ports by name."""
        names = {self.slapd.port: "slapd", self.proxy.port: "the delaying proxy"}
        for port, name in names.items():
            text = text.replace(f"port {port},", f"{name},")
        return text

    def slapd_pid(self) -> int:
        return int((self.slapd.workdir / "slapd.pid").read_text().split()[0])

    def signal_slapd(self, signum: signal.Signals) -> None:
        os.kill(self.slapd_pid(), signum)
