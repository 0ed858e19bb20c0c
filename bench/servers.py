"""Every server of a bench run, started in a temporary directory and stopped again.

- slapd holding the generated school (``demo.slapd.Slapd``);
- three sidecars (``testbed.stack.SidecarProcess``) with the demo's configuration
  (``demo.run.write_demo_config``): one with the Basic credentials cache, one
  without (``[cache] basic_ttl = 0``), and one without it with ``[server]
  workers = 2`` and a local redis-server (``testbed.redis_server``), each
  behind its own nginx with the project's include (``demo.nginx.Nginx``);
- the bare aiohttp app, behind one nginx with the include as it is and one
  with the include sent through a keep-alive upstream;
- nginx answering 200 itself;
- the peer: nginx-ldap-auth's daemon as it ships (``--peer``), or the
  stand-in that does its LDAP steps (bench/peer_stand_in.py), behind an nginx
  of its own with the LDAP settings in headers, against the same slapd.

Each nginx has one worker, as ``demo.nginx`` writes it. Everything listens
on 127.0.0.1 or on unix sockets in the run's directory; every process is
registered with the caller's ExitStack, so that an error or Ctrl-C stops
them all.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from bench import nginx_sites, procstat
from bench.drivers import REPO_ROOT, SYSTEM_PYTHON
from demo.nginx import Nginx, default_include
from demo.ports import free_port
from demo.processes import terminate
from demo.run import write_demo_config
from demo.school import School
from demo.slapd import Slapd
from sidecar.admin.jitsi_edits import without_upstream
from sidecar.config.settings import load_settings
from testbed.redis_server import RedisServer
from testbed.stack import SidecarProcess, until_answering

POLL_SECONDS = 0.05
START_TIMEOUT = 20.0

# Appended to the demo's configuration. The load comes from one address, and
# (e) is nothing but wrong passwords: limits as high as they go, counted over
# one second, so that no ban ever answers instead of the directory.
LOAD_SETTINGS = """
[cache]
basic_ttl = {basic_ttl}

[regulation]
max_failures_per_user = 10000
max_failures_per_user_overall = 1000000
max_failures_per_address = 100000
window = 1
ban_time = 1
"""
# With more than one worker, Redis keeps what the demo keeps in state files.
SHARED_STATE = """
[state]
redis_url = "{redis_url}"
"""
# Longer than a whole run: "cached Basic" stays cached throughout.
CACHED_BASIC_TTL = 3600


class ServerGone(RuntimeError):
    """A server of the run stopped while it was being measured."""


class BareApp:
    """``bench.bare_app`` as a process, on a unix socket."""

    def __init__(self, socket_path: Path, log_path: Path) -> None:
        self.socket_path = socket_path
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, timeout: float = START_TIMEOUT) -> None:
        with self.log_path.open("ab") as log:
            # The bench's own interpreter and module; the socket path is its own too.
            self.process = subprocess.Popen(  # noqa: S603
                [sys.executable, "-m", "bench.bare_app", str(self.socket_path)],
                cwd=REPO_ROOT,
                stdout=log,
                stderr=log,
            )
        until_answering(
            self.process,
            self.socket_path,
            "/auth/verify",
            self.log_path,
            timeout,
            interval=POLL_SECONDS,
        )

    def stop(self) -> None:
        process, self.process = self.process, None
        terminate(process)


PEER_DAEMON_LABEL = "nginx-ldap-auth's daemon, unmodified, backlog 128"
PEER_STAND_IN_LABEL = "stand-in for nginx-ldap-auth's daemon (bench/peer_stand_in.py)"


class PeerProcess:
    """nginx-ldap-auth's daemon (through bench/peer_launcher.py) or the stand-in, on
    127.0.0.1:``port``, under Debian's python3 (python3-ldap)."""

    def __init__(self, daemon: Path | None, port: int, log_path: Path) -> None:
        self.daemon = daemon
        self.port = port
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def label(self) -> str:
        return PEER_STAND_IN_LABEL if self.daemon is None else PEER_DAEMON_LABEL

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def command(self) -> list[str]:
        if self.daemon is None:
            return [SYSTEM_PYTHON, "-m", "bench.peer_stand_in", str(self.port)]
        # The daemon's own options: where to listen. The LDAP settings come in headers.
        return [
            SYSTEM_PYTHON,
            "-u",
            "-m",
            "bench.peer_launcher",
            str(self.daemon),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
        ]

    def start(self, timeout: float = START_TIMEOUT) -> None:
        with self.log_path.open("ab") as log:
            # Debian's python3 with a module of the bench, or the file the caller named.
            self.process = subprocess.Popen(  # noqa: S603
                self.command(), cwd=REPO_ROOT, stdout=log, stderr=log
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                log_text = self.log_path.read_text("utf-8", errors="replace")
                raise ServerGone(f"the peer ({self.label}) exited: {log_text[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(POLL_SECONDS)
        self.stop()
        raise ServerGone(f"the peer ({self.label}) did not listen within {timeout:.0f} s")

    def stop(self) -> None:
        process, self.process = self.process, None
        terminate(process)


@dataclass(frozen=True)
class Site:
    """One nginx and the app behind it: where the load goes, whose CPU it costs."""

    nginx: Nginx
    app_pid: int | None
    helper_pids: tuple[int, ...] = ()  # what the app asks on every request (Redis)

    @property
    def url(self) -> str:
        return self.nginx.url

    @property
    def port(self) -> int:
        return self.nginx.port

    def nginx_pids(self) -> list[int]:
        """nginx's master and workers (its pid file names the master)."""
        try:
            master = int((self.nginx.workdir / "nginx.pid").read_text("ascii").split()[0])
        except FileNotFoundError:
            raise ServerGone(f"nginx in {self.nginx.workdir} is not running") from None
        return [master, *procstat.children(master)]

    def pids(self) -> list[int]:
        """nginx, the app with its worker processes, and its helpers."""
        app = [] if self.app_pid is None else [self.app_pid, *procstat.children(self.app_pid)]
        return [*self.nginx_pids(), *app, *self.helper_pids]


@dataclass(frozen=True)
class Servers:
    slapd: Slapd
    slapd_pid: int
    cached_sidecar: SidecarProcess
    uncached_sidecar: SidecarProcess
    nginx_alone: Site
    bare: Site
    bare_keepalive: Site
    cached: Site  # the sidecar with the Basic cache
    uncached: Site  # the sidecar without
    two_workers: Site  # without the cache, workers = 2 sharing a local Redis
    include_handling: str
    peer: Site  # nginx-ldap-auth's daemon or its stand-in
    peer_label: str


def _started_nginx(stack: ExitStack, workdir: Path, nginx: Nginx) -> Nginx:
    workdir.mkdir(parents=True, exist_ok=True)
    stack.callback(nginx.stop)
    nginx.start()
    return nginx


def _with_workers(config: Path, workers: int) -> None:
    """The demo's configuration with ``workers`` processes: no state files (Redis keeps
    that state, and the configuration refuses both)."""
    text = config.read_text("utf-8")
    for key in ("public_url = ", "revocation_file = ", "state_file = "):
        if f"\n{key}" not in text:
            raise RuntimeError(f"the demo's configuration has no `{key.strip()}` line any more")
    text = text.replace("\npublic_url = ", f"\nworkers = {workers}\npublic_url = ", 1)
    text = text.replace("\nrevocation_file = ", "\n# revocation_file = ")
    text = text.replace("\nstate_file = ", "\n# state_file = ")
    config.write_text(text, "utf-8")


def _sidecar_site(
    stack: ExitStack,
    workdir: Path,
    slapd: Slapd,
    *,
    basic_ttl: int,
    workers: int = 1,
    redis: RedisServer | None = None,
) -> tuple[SidecarProcess, Site]:
    workdir.mkdir(parents=True)
    port = free_port()
    extra = LOAD_SETTINGS.format(basic_ttl=basic_ttl)
    if redis is not None:
        extra += SHARED_STATE.format(redis_url=redis.url)
    config = write_demo_config(workdir, port=port, ldap_url=slapd.ldap_url, extra=extra)
    if workers > 1:
        _with_workers(config, workers)
    sidecar = SidecarProcess(config, workdir / "sidecar.sock", workdir / "sidecar.log")
    stack.callback(sidecar.stop)
    sidecar.start()
    assert sidecar.process is not None
    nginx = Nginx(
        workdir / "nginx",
        port=port,
        sidecar_socket=sidecar.socket_path,
        xmpp_port=free_port(),  # /http-bind is never asked for here
    )
    helpers = () if redis is None or redis.process is None else (redis.process.pid,)
    site = Site(_started_nginx(stack, workdir / "nginx", nginx), sidecar.process.pid, helpers)
    return sidecar, site


def _slapd_pid(slapd: Slapd) -> int:
    return int((slapd.workdir / "slapd.pid").read_text("ascii").split()[0])


def _peer_ldap(config: Path) -> nginx_sites.PeerLdap:
    """The sidecar's own LDAP settings, as the peer is given them."""
    ldap = load_settings(config, environ={}).ldap
    return nginx_sites.PeerLdap(
        url=ldap.urls[0],
        base_dn=ldap.user_base,
        bind_dn=ldap.bind_dn or "",
        bind_password=ldap.bind_password.reveal().decode("utf-8") if ldap.bind_password else "",
        template=nginx_sites.peer_template(ldap.user_filter),
    )


def _peer_site(
    stack: ExitStack, workdir: Path, daemon: Path | None, settings: nginx_sites.PeerLdap
) -> tuple[PeerProcess, Site]:
    workdir.mkdir(parents=True)
    peer = PeerProcess(daemon, free_port(), workdir / "peer.log")
    stack.callback(peer.stop)
    peer.start()
    nginx = Nginx(
        workdir / "nginx",
        port=free_port(),
        sidecar_socket=workdir / "unused.sock",  # the peer's site has no include
        xmpp_port=free_port(),
        site=nginx_sites.peer_site(peer.port, settings),
    )
    return peer, Site(_started_nginx(stack, workdir / "nginx", nginx), peer.pid)


def start_servers(
    stack: ExitStack, workdir: Path, school: School, *, peer_daemon: Path | None = None
) -> Servers:
    """``peer_daemon``: nginx-ldap-auth-daemon.py to run; None: the stand-in."""
    include_text = default_include().read_text("utf-8")
    handling = nginx_sites.include_connection_handling(include_text)
    if handling != nginx_sites.KEEPALIVE:
        raise nginx_sites.IncludeNotUnderstood(
            "the include no longer checks through its upstream: "
            "the bare baselines in bench/nginx_sites.py must follow it"
        )

    slapd = Slapd(workdir / "slapd", school=school)
    stack.callback(slapd.stop)
    slapd.start(timeout=60.0)

    bare_app = BareApp(workdir / "bare.sock", workdir / "bare.log")
    stack.callback(bare_app.stop)
    bare_app.start()

    cached_sidecar, cached = _sidecar_site(
        stack, workdir / "sidecar-cached", slapd, basic_ttl=CACHED_BASIC_TTL
    )
    uncached_sidecar, uncached = _sidecar_site(
        stack, workdir / "sidecar-uncached", slapd, basic_ttl=0
    )

    redis = RedisServer(workdir / "redis")
    stack.callback(redis.stop)
    redis.start()
    _, two_workers = _sidecar_site(
        stack, workdir / "sidecar-two-workers", slapd, basic_ttl=0, workers=2, redis=redis
    )

    peer, peer_site = _peer_site(
        stack, workdir / "peer", peer_daemon, _peer_ldap(uncached_sidecar.config)
    )

    direct_include = workdir / "direct-include.conf"
    direct_include.write_text(without_upstream(include_text), "utf-8")
    sites = {
        "alone": Nginx(
            workdir / "nginx-alone",
            port=free_port(),
            sidecar_socket=bare_app.socket_path,
            xmpp_port=free_port(),
            site=nginx_sites.STATIC_SITE,
        ),
        "bare": Nginx(
            workdir / "nginx-bare",
            port=free_port(),
            sidecar_socket=bare_app.socket_path,
            xmpp_port=free_port(),
            include=direct_include,
        ),
        "bare_keepalive": Nginx(
            workdir / "nginx-bare-keepalive",
            port=free_port(),
            sidecar_socket=bare_app.socket_path,
            xmpp_port=free_port(),
        ),
    }
    for nginx in sites.values():
        _started_nginx(stack, nginx.workdir, nginx)
    return Servers(
        slapd=slapd,
        slapd_pid=_slapd_pid(slapd),
        cached_sidecar=cached_sidecar,
        uncached_sidecar=uncached_sidecar,
        nginx_alone=Site(sites["alone"], None),
        bare=Site(sites["bare"], bare_app.pid),
        bare_keepalive=Site(sites["bare_keepalive"], bare_app.pid),
        cached=cached,
        uncached=uncached,
        two_workers=two_workers,
        include_handling=handling,
        peer=peer_site,
        peer_label=peer.label,
    )
