"""The cases: what each sends, which answer each must get, whose CPU time it costs.

A case is measured in rounds (``Case.measure(seconds)`` is one round); the
run takes every case's rounds in turn. Every HTTP case goes through nginx
on loopback with the same wrk settings, and every answer is checked.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from bench import procstat
from bench.driver_io import DriverJob, JobPerson, LoginSteps, write_job
from bench.drivers import SYSTEM_PYTHON, VENV_PYTHON, run_driver
from bench.fixed_rate import FixedRateJob
from bench.logins import Admitted, CsrfPair
from bench.nginx_sites import NEW_CONNECTION
from bench.prepared import (
    LOGIN_PATH,
    ROOM_PATH,
    basic_authorization,
    get,
    post_form,
    room_with_token,
    write_requests,
)
from bench.rush import RushJob
from bench.rush import write_job as write_rush_job
from bench.samples import Sample
from bench.servers import Servers, Site
from bench.wrk import Expected, Load, run_wrk
from sidecar.config.settings import load_settings
from sidecar.web.csrf import FIELD as CSRF_FIELD

HOST = "127.0.0.1"

NGINX_ALONE = "nginx-200"
BARE = "bare-new-connection"
BARE_KEEPALIVE = "bare-keepalive"
BONSAI = "bonsai-connect-bind"
PYTHON_LDAP = "python-ldap-login"
ADMITTED_BASIC = "token-cached-basic"
REDIRECTED_BASIC = "fresh-token"
ADMITTED_SESSION = "token-session"
BIND_EACH = "basic-bind-each"
REFUSED_BASIC = "wrong-password"
LOGIN_POST = "login-post"
TWO_WORKERS = "-2w"  # suffix of the cases against workers = 2
BIND_EACH_2W = BIND_EACH + TWO_WORKERS
REFUSED_BASIC_2W = REFUSED_BASIC + TWO_WORKERS
PEER_BIND_EACH = "peer-basic-bind-each"
PEER_REFUSED = "peer-wrong-password"
RUSH = "rush-bind-each"
PEER_RUSH = "peer-rush"
RUSH_2W = RUSH + TWO_WORKERS
HALF_LOAD = "@half"  # suffix of the fixed-rate cases

ROOM_PAGE = Expected(200, (("Referrer-Policy", "strict-origin"),))  # the include's room page
ROOM_REDIRECT = Expected(302, (("Location", f"{ROOM_PATH}?jwt="),))
BASIC_CHALLENGE = Expected(401, (("WWW-Authenticate", "Basic "),))
PEER_ADMITTED = Expected(200)  # the peer's site serves the page itself


@dataclass(frozen=True)
class Case:
    name: str
    title: str
    group: str  # "baseline", "peer", "sidecar" or "fixed rate"
    expected: str  # what every answer must be
    measure: Callable[[int], Sample] = field(repr=False)
    baseline: str | None = None  # the case its throughput is compared with


@dataclass(frozen=True)
class WrkRound:
    """One wrk round against a site, with the CPU time of its processes and slapd's."""

    site: Site
    requests_file: Path
    expected: Expected
    load: Load
    slapd_pid: int
    result_file: Path

    def __call__(self, seconds: int) -> Sample:
        pids = self.site.pids()
        server_before = procstat.total_cpu_seconds(pids)
        slapd_before = procstat.cpu_seconds(self.slapd_pid)
        load = Load(self.load.threads, self.load.connections, seconds)
        sample = run_wrk(
            f"{self.site.url}/", self.requests_file, self.expected, load, self.result_file
        )
        sample.server_cpu = procstat.total_cpu_seconds(pids) - server_before
        sample.slapd_cpu = procstat.cpu_seconds(self.slapd_pid) - slapd_before
        return sample


@dataclass(frozen=True)
class DirectoryRound:
    """One round of an LDAP baseline: the client's own CPU time is what it costs."""

    python: str
    module: str
    job: DriverJob
    job_file: Path
    result_file: Path
    slapd_pid: int

    def __call__(self, seconds: int) -> Sample:
        write_job(self.job_file, replace(self.job, seconds=seconds))
        slapd_before = procstat.cpu_seconds(self.slapd_pid)
        sample = run_driver(self.python, self.module, self.job_file, self.result_file, seconds)
        sample.slapd_cpu = procstat.cpu_seconds(self.slapd_pid) - slapd_before
        sample.server_cpu = sample.load_cpu
        return sample


@dataclass(frozen=True)
class FixedRateRound:
    """One round of the fixed-rate client against a site."""

    site: Site
    requests_file: Path
    status: int
    rate: float
    max_connections: int
    job_file: Path
    result_file: Path
    slapd_pid: int

    def __call__(self, seconds: int) -> Sample:
        job = FixedRateJob(
            host=HOST,
            port=self.site.port,
            requests_file=str(self.requests_file),
            rate=self.rate,
            seconds=seconds,
            status=self.status,
            max_connections=self.max_connections,
        )
        self.job_file.write_text(json.dumps(job.__dict__), "utf-8")
        pids = self.site.pids()
        server_before = procstat.total_cpu_seconds(pids)
        slapd_before = procstat.cpu_seconds(self.slapd_pid)
        sample = run_driver(
            VENV_PYTHON, "bench.fixed_rate", self.job_file, self.result_file, seconds
        )
        sample.server_cpu = procstat.total_cpu_seconds(pids) - server_before
        sample.slapd_cpu = procstat.cpu_seconds(self.slapd_pid) - slapd_before
        return sample


# However long a rush takes, it is one round; a stuck one stops here.
RUSH_LIMIT_SECONDS = 300


@dataclass(frozen=True)
class RushRound:
    """One whole morning rush against a site (bench/rush.py); ``seconds`` is not used:
    a round lasts until every person is done."""

    site: Site
    requests_file: Path
    status: int
    job_file: Path
    result_file: Path
    slapd_pid: int

    def __call__(self, seconds: int) -> Sample:
        job = RushJob(
            host=HOST,
            port=self.site.port,
            requests_file=str(self.requests_file),
            status=self.status,
        )
        write_rush_job(self.job_file, job)
        pids = self.site.pids()
        server_before = procstat.total_cpu_seconds(pids)
        slapd_before = procstat.cpu_seconds(self.slapd_pid)
        sample = run_driver(
            VENV_PYTHON, "bench.rush", self.job_file, self.result_file, RUSH_LIMIT_SECONDS
        )
        sample.server_cpu = procstat.total_cpu_seconds(pids) - server_before
        sample.slapd_cpu = procstat.cpu_seconds(self.slapd_pid) - slapd_before
        return sample


def login_steps(config: Path) -> LoginSteps:
    """The LDAP steps of a login under this sidecar configuration (for python-ldap)."""
    ldap = load_settings(config, environ={}).ldap
    password = ldap.bind_password.reveal().decode("utf-8") if ldap.bind_password else None
    optional = [name for name in (ldap.group_attribute, ldap.avatar_attribute) if name]
    return LoginSteps(
        bind_dn=ldap.bind_dn,
        bind_password=password,
        user_base=ldap.user_base,
        user_filter=ldap.user_filter,
        user_dn_template=ldap.user_dn_template,
        group_mode=ldap.group_mode,
        group_base=ldap.group_base,
        group_filter=ldap.group_filter,
        id_attribute=ldap.id_attribute,
        # What sidecar/ldap/directory.py reads of an entry.
        attributes=[
            ldap.id_attribute,
            ldap.name_attribute,
            ldap.mail_attribute,
            *optional,
            "memberOf",
        ],
    )


@dataclass(frozen=True)
class Workload:
    """Everything the cases are built from."""

    servers: Servers
    admitted: Sequence[Admitted]
    csrf: CsrfPair
    workdir: Path
    load: Load
    ldap_concurrency: int


def _request_files(workload: Workload) -> dict[str, Path]:
    """The requests of each kind, one per person, prepared once."""
    directory = workload.workdir / "requests"
    directory.mkdir()
    people = workload.admitted

    def basic(admitted: Admitted, password: str | None = None) -> dict[str, str]:
        person = admitted.person
        return {"Authorization": basic_authorization(person.uid, password or person.password)}

    kinds = {
        "token-basic": [get(room_with_token(a.token), HOST, basic(a)) for a in people],
        "basic": [get(ROOM_PATH, HOST, basic(a)) for a in people],
        "token-session": [
            get(room_with_token(a.token), HOST, {"Cookie": a.session_cookie}) for a in people
        ],
        "wrong-basic": [
            get(ROOM_PATH, HOST, basic(a, "falsch-" + a.person.password)) for a in people
        ],
        "login-post": [
            post_form(
                LOGIN_PATH,
                HOST,
                {
                    CSRF_FIELD: workload.csrf.token,
                    "next": ROOM_PATH,
                    "username": a.person.uid,
                    "password": a.person.password,
                },
                {"Cookie": workload.csrf.cookie},
            )
            for a in people
        ],
    }
    return {
        kind: write_requests(directory / f"{kind}.http", requests)
        for kind, requests in kinds.items()
    }


def same_handling_baseline(servers: Servers) -> str:
    """The bare baseline whose nginx reaches its app as the include reaches the sidecar."""
    return BARE if servers.include_handling == NEW_CONNECTION else BARE_KEEPALIVE


def build_cases(workload: Workload) -> list[Case]:
    servers = workload.servers
    files = _request_files(workload)
    results = workload.workdir / "results"
    results.mkdir()
    slapd = servers.slapd_pid
    bare = same_handling_baseline(servers)

    def wrk(site: Site, kind: str, expected: Expected, name: str) -> WrkRound:
        return WrkRound(site, files[kind], expected, workload.load, slapd, results / f"{name}.txt")

    session_name = workload.admitted[0].session_cookie.partition("=")[0]
    logged_in = Expected(302, (("Location", ROOM_PATH), ("Set-Cookie", f"{session_name}=")))
    people = [JobPerson(a.person.uid, a.person.dn, a.person.password) for a in workload.admitted]

    def rush(site: Site, status: int, name: str) -> RushRound:
        return RushRound(
            site, files["basic"], status, results / f"{name}.job", results / f"{name}.json", slapd
        )

    peer = servers.peer_label

    def directory(python: str, module: str, name: str, steps: LoginSteps | None) -> DirectoryRound:
        job = DriverJob(
            ldap_url=servers.slapd.ldap_url,
            seconds=0,
            concurrency=workload.ldap_concurrency,
            people=people,
            login_steps=steps,
        )
        return DirectoryRound(
            python, module, job, results / f"{name}.job", results / f"{name}.json", slapd
        )

    return [
        Case(
            NGINX_ALONE,
            "nginx answering 200 itself",
            "baseline",
            "200",
            wrk(servers.nginx_alone, "token-basic", Expected(200), NGINX_ALONE),
        ),
        Case(
            BARE,
            "bare aiohttp 200 behind the include, new connection per subrequest",
            "baseline",
            ROOM_PAGE.describe(),
            wrk(servers.bare, "token-basic", ROOM_PAGE, BARE),
            baseline=NGINX_ALONE,
        ),
        Case(
            BARE_KEEPALIVE,
            "bare aiohttp 200 behind the include, upstream keepalive",
            "baseline",
            ROOM_PAGE.describe(),
            wrk(servers.bare_keepalive, "token-basic", ROOM_PAGE, BARE_KEEPALIVE),
            baseline=NGINX_ALONE,
        ),
        Case(
            BONSAI,
            f"raw bonsai asyncio connect+bind, {workload.ldap_concurrency} at once",
            "baseline",
            "bind succeeds",
            directory(VENV_PYTHON, "bench.bonsai_binds", BONSAI, None),
        ),
        Case(
            PYTHON_LDAP,
            "python-ldap, a login's LDAP steps, one thread",
            "baseline",
            "search, bind, groups succeed",
            directory(
                SYSTEM_PYTHON,
                "bench.python_ldap_logins",
                PYTHON_LDAP,
                login_steps(servers.cached_sidecar.config),
            ),
        ),
        Case(
            ADMITTED_BASIC,
            "(a) valid token + cached Basic",
            "sidecar",
            ROOM_PAGE.describe(),
            wrk(servers.cached, "token-basic", ROOM_PAGE, ADMITTED_BASIC),
            baseline=bare,
        ),
        Case(
            REDIRECTED_BASIC,
            "(b) cached Basic, no token: a new token",
            "sidecar",
            ROOM_REDIRECT.describe(),
            wrk(servers.cached, "basic", ROOM_REDIRECT, REDIRECTED_BASIC),
            baseline=bare,
        ),
        Case(
            ADMITTED_SESSION,
            "(c) session cookie + valid token",
            "sidecar",
            ROOM_PAGE.describe(),
            wrk(servers.cached, "token-session", ROOM_PAGE, ADMITTED_SESSION),
            baseline=bare,
        ),
        Case(
            BIND_EACH,
            "(d) Basic, cache off: a bind each",
            "sidecar",
            ROOM_REDIRECT.describe(),
            wrk(servers.uncached, "basic", ROOM_REDIRECT, BIND_EACH),
            baseline=PEER_BIND_EACH,
        ),
        Case(
            REFUSED_BASIC,
            "(e) wrong passwords (Basic)",
            "sidecar",
            BASIC_CHALLENGE.describe(),
            wrk(servers.uncached, "wrong-basic", BASIC_CHALLENGE, REFUSED_BASIC),
            baseline=PEER_REFUSED,
        ),
        Case(
            LOGIN_POST,
            "(f) login form POST (CSRF pair reused)",
            "sidecar",
            logged_in.describe(),
            wrk(servers.cached, "login-post", logged_in, LOGIN_POST),
            baseline=PEER_BIND_EACH,
        ),
        Case(
            RUSH,
            "morning rush, cache off: each person logs in (Basic) and reloads twice, 64 clients",
            "sidecar",
            f"{ROOM_REDIRECT.status}",
            rush(servers.uncached, ROOM_REDIRECT.status, RUSH),
            baseline=PEER_RUSH,
        ),
        Case(
            BIND_EACH_2W,
            "(d) with workers = 2 (and Redis)",
            "sidecar",
            ROOM_REDIRECT.describe(),
            wrk(servers.two_workers, "basic", ROOM_REDIRECT, BIND_EACH_2W),
            baseline=BIND_EACH,
        ),
        Case(
            REFUSED_BASIC_2W,
            "(e) with workers = 2 (and Redis)",
            "sidecar",
            BASIC_CHALLENGE.describe(),
            wrk(servers.two_workers, "wrong-basic", BASIC_CHALLENGE, REFUSED_BASIC_2W),
            baseline=REFUSED_BASIC,
        ),
        Case(
            RUSH_2W,
            "morning rush with workers = 2 (and Redis)",
            "sidecar",
            f"{ROOM_REDIRECT.status}",
            rush(servers.two_workers, ROOM_REDIRECT.status, RUSH_2W),
            baseline=RUSH,
        ),
        Case(
            PEER_BIND_EACH,
            f"peer: Basic, a bind each ({peer})",
            "peer",
            PEER_ADMITTED.describe(),
            wrk(servers.peer, "basic", PEER_ADMITTED, PEER_BIND_EACH),
        ),
        Case(
            PEER_REFUSED,
            f"peer: wrong passwords ({peer})",
            "peer",
            BASIC_CHALLENGE.describe(),
            wrk(servers.peer, "wrong-basic", BASIC_CHALLENGE, PEER_REFUSED),
        ),
        Case(
            PEER_RUSH,
            f"peer: morning rush, the same 64 clients ({peer})",
            "peer",
            f"{PEER_ADMITTED.status}",
            rush(servers.peer, PEER_ADMITTED.status, PEER_RUSH),
        ),
    ]


def fixed_rate_case(
    workload: Workload, source: Case, rate: float, *, baseline: str | None, title: str = ""
) -> Case:
    """``source``'s requests once more, at a fixed ``rate`` (half of what it managed)."""
    measure = source.measure
    assert isinstance(measure, WrkRound)
    name = source.name + HALF_LOAD
    results = workload.workdir / "results"
    return Case(
        name,
        title or f"{source.title}, at a fixed {rate:,.0f}/s (half)",
        "fixed rate",
        f"{measure.expected.status}",
        FixedRateRound(
            measure.site,
            measure.requests_file,
            measure.expected.status,
            rate,
            # Open loop: room for answers that come late without queueing behind them.
            workload.load.connections * 2,
            results / f"{name}.job",
            results / f"{name}.json",
            workload.servers.slapd_pid,
        ),
        baseline=baseline,
    )
