"""Every server of a bench run, started in a temporary directory and stopped again.

- slapd holding the generated school (``demo.slapd.Slapd``);
- two sidecars (``testbed.stack.SidecarProcess``) with the demo's configuration
  (``demo.run.write_demo_config``): one with the Basic credentials cache, one
  without (``[cache] basic_ttl = 0``), each behind its own nginx with the
  project's include (``demo.nginx.Nginx``);
- the bare aiohttp app, behind one nginx with the include as it is and one
  with the include sent through a keep-alive upstream;
- nginx answering 200 itself.

Each nginx has one worker, as ``demo.nginx`` writes it. Everything listens
on 127.0.0.1 or on unix sockets in the run's directory; every process is
registered with the caller's ExitStack, so that an error or Ctrl-C stops
them all.
"""

from __future__ import annotations

import subprocess
import sys
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from bench import nginx_sites, procstat
from bench.drivers import REPO_ROOT
from demo.nginx import Nginx, default_include, free_port
from demo.processes import terminate
from demo.run import write_demo_config
from demo.school import School
from demo.slapd import Slapd
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


@dataclass(frozen=True)
class Site:
    """One nginx and the app behind it: where the load goes, whose CPU it costs."""

    nginx: Nginx
    app_pid: int | None

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
        return [*self.nginx_pids(), *([self.app_pid] if self.app_pid is not None else [])]


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
    include_handling: str


def _started_nginx(stack: ExitStack, workdir: Path, nginx: Nginx) -> Nginx:
    workdir.mkdir(parents=True, exist_ok=True)
    stack.callback(nginx.stop)
    nginx.start()
    return nginx


def _sidecar_site(
    stack: ExitStack, workdir: Path, slapd: Slapd, *, basic_ttl: int
) -> tuple[SidecarProcess, Site]:
    workdir.mkdir(parents=True)
    port = free_port()
    config = write_demo_config(
        workdir,
        port=port,
        ldap_url=slapd.ldap_url,
        extra=LOAD_SETTINGS.format(basic_ttl=basic_ttl),
    )
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
    return sidecar, Site(_started_nginx(stack, workdir / "nginx", nginx), sidecar.process.pid)


def _slapd_pid(slapd: Slapd) -> int:
    return int((slapd.workdir / "slapd.pid").read_text("ascii").split()[0])


def start_servers(stack: ExitStack, workdir: Path, school: School) -> Servers:
    include_text = default_include().read_text("utf-8")
    handling = nginx_sites.include_connection_handling(include_text)
    if handling != nginx_sites.NEW_CONNECTION:
        raise nginx_sites.IncludeNotUnderstood(
            "the include no longer proxies to the sidecar's socket directly: "
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

    keepalive_include = workdir / "keepalive-include.conf"
    keepalive_include.write_text(nginx_sites.with_upstream_keepalive(include_text), "utf-8")
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
        ),
        "bare_keepalive": Nginx(
            workdir / "nginx-bare-keepalive",
            port=free_port(),
            sidecar_socket=bare_app.socket_path,
            xmpp_port=free_port(),
            include=keepalive_include,
            http_extra=nginx_sites.keepalive_upstream(str(bare_app.socket_path)),
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
        include_handling=handling,
    )
