"""``make bench`` still runs: every case, on a tiny school, gets only the answers it expects.

What the numbers are is the bench's own business (never a timed test); this
only keeps the harness working while the sidecar changes under it, and checks
that the peer it compares with answers as nginx-ldap-auth's daemon does. The
daemon itself is never part of this repository: with
``BENCH_PEER=<path to nginx-ldap-auth-daemon.py>`` the tests run it too.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from bench.drivers import SYSTEM_PYTHON
from bench.nginx_sites import PEER_REALM, PeerLdap, peer_site
from bench.peer_launcher import BACKLOG
from bench.servers import PEER_DAEMON_LABEL, PEER_STAND_IN_LABEL, PeerProcess
from demo.nginx import Nginx
from demo.ports import free_port
from demo.school import SCHOOL
from demo.slapd import Slapd
from testbed.stack import basic_auth

REPOSITORY = Path(__file__).resolve().parents[1]
PEER_VARIABLE = "BENCH_PEER"
PEER_DAEMON = os.environ.get(PEER_VARIABLE)
needs_peer = pytest.mark.skipif(
    not PEER_DAEMON, reason=f"{PEER_VARIABLE}=<nginx-ldap-auth-daemon.py> not set"
)

CASES = {
    "nginx-200",
    "bare-new-connection",
    "bare-keepalive",
    "bonsai-connect-bind",
    "python-ldap-login",
    "token-cached-basic",
    "fresh-token",
    "token-session",
    "basic-bind-each",
    "wrong-password",
    "login-post",
    "token-cached-basic@half",
    "token-session@half",
    "bare-keepalive@half",
    "rush-bind-each",
    "peer-basic-bind-each",
    "peer-wrong-password",
    "peer-rush",
    "basic-bind-each-2w",
    "wrong-password-2w",
    "rush-bind-each-2w",
}
PEER_CASES = {"peer-basic-bind-each", "peer-wrong-password", "peer-rush"}
USERS = 20


def _quick_bench(out: Path, *extra: str) -> dict[str, Any]:
    finished = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--quick",
            f"--users={USERS}",
            "--rounds=1",
            "--seconds=1",
            "--no-chart",  # matplotlib is the bench extra's, not the tests'
            f"--out={out}",
            *extra,
        ],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr[-3000:]
    results: dict[str, Any] = json.loads((out / "latest.json").read_text("utf-8"))
    cases = {case["name"]: case for case in results["cases"]}
    assert set(cases) == CASES
    for name, case in cases.items():
        assert case["requests"] > 0, name
        wrong = (case["unexpected"], case["socket_errors"], case["timeouts"], case["examples"])
        assert wrong == (0, 0, 0, []), name
    # The rush: every person, a login and two reloads each, every answer counted.
    for rush in ("rush-bind-each", "rush-bind-each-2w", "peer-rush"):
        assert cases[rush]["requests"] == USERS * 3, rush
    return results


def _peers_named(results: dict[str, Any]) -> set[str]:
    """Which peer every peer case says it measured."""
    titles = [case["title"] for case in results["cases"] if case["name"] in PEER_CASES]
    return {
        label
        for label in (PEER_DAEMON_LABEL, PEER_STAND_IN_LABEL)
        if all(label in title for title in titles)
    }


def test_every_case_runs_and_every_answer_is_as_expected(tmp_path: Path) -> None:
    results = _quick_bench(tmp_path)
    assert _peers_named(results) == {PEER_STAND_IN_LABEL}
    targets = {(verdict["case"], verdict["target"]) for verdict in results["targets"]}
    assert targets >= {
        (None, "sidecar peak RSS < 80 MB, caches full"),
        ("token-cached-basic@half", "p99 < 10 ms at half load"),
        ("basic-bind-each", ">= 1.2x peer-basic-bind-each"),
        ("wrong-password", ">= 1.2x peer-wrong-password"),
        ("login-post", ">= 1.2x peer-basic-bind-each"),
        ("rush-bind-each", ">= 1.2x peer-rush"),
        ("wrong-password", ">= 1x basic-bind-each"),
        ("rush-bind-each", "p99 < 100 ms under saturation"),
        ("basic-bind-each", "p99 < 100 ms under saturation"),
        ("basic-bind-each-2w", ">= 1x basic-bind-each"),
        ("wrong-password-2w", ">= 1x wrong-password"),
        ("rush-bind-each-2w", ">= 1x rush-bind-each"),
    }
    table = (tmp_path / "latest.md").read_text("utf-8")
    assert "| case | every answer must be | req/s |" in table
    assert "| rush-bind-each: >= 1.2x peer-rush |" in table
    assert not (tmp_path / "latest.png").exists()


@needs_peer
def test_the_bench_runs_the_peer_daemon_when_given(tmp_path: Path) -> None:
    results = _quick_bench(tmp_path, f"--peer={PEER_DAEMON}")
    assert _peers_named(results) == {PEER_DAEMON_LABEL}


def test_a_peer_file_that_is_not_there_is_refused_before_anything_starts(tmp_path: Path) -> None:
    finished = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", f"--peer={tmp_path / 'missing.py'}"],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert finished.returncode == 2
    assert "no such file" in finished.stderr
    assert "starting slapd" not in finished.stdout


def test_the_launcher_runs_a_script_as_main_with_a_backlog_of_128(tmp_path: Path) -> None:
    script = tmp_path / "daemon.py"
    script.write_text(
        "import socketserver, sys\n"
        "from http.server import HTTPServer\n"
        "print(__name__, HTTPServer.request_queue_size, sys.argv[1:])\n",
        "utf-8",
    )
    finished = subprocess.run(
        [SYSTEM_PYTHON, "-m", "bench.peer_launcher", str(script), "--port", "8888"],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert finished.stdout.split("\n")[0] == f"__main__ {BACKLOG} ['--port', '8888']"


# What nginx-ldap-auth's daemon answers, the stand-in must answer alike.


@pytest.fixture(params=["stand-in", pytest.param("daemon", marks=needs_peer)])
def peer_url(request: pytest.FixtureRequest, slapd: Slapd, tmp_path: Path) -> Iterator[str]:
    """The peer behind the bench's nginx site for it, on the demo school."""
    daemon = Path(str(PEER_DAEMON)) if request.param == "daemon" else None
    with ExitStack() as stack:
        peer = PeerProcess(daemon, free_port(), tmp_path / "peer.log")
        stack.callback(peer.stop)
        peer.start()
        settings = PeerLdap(
            url=slapd.ldap_url,
            base_dn=SCHOOL.people_dn,
            bind_dn=SCHOOL.service_dn,
            bind_password=SCHOOL.service_password,
            template="(uid=%(username)s)",
        )
        nginx = Nginx(
            tmp_path / "nginx",
            port=free_port(),
            sidecar_socket=tmp_path / "unused.sock",
            xmpp_port=free_port(),
            site=peer_site(peer.port, settings),
        )
        stack.enter_context(nginx)
        yield f"127.0.0.1:{nginx.port}"


def _get(address: str, headers: dict[str, str]) -> tuple[int, str | None]:
    connection = http.client.HTTPConnection(address, timeout=10)
    try:
        connection.request("GET", "/Mathe7b", headers=headers)
        response = connection.getresponse()
        response.read()
        return response.status, response.getheader("WWW-Authenticate")
    finally:
        connection.close()


CHALLENGE = f'Basic realm="{PEER_REALM}"'


def test_the_peer_admits_the_right_password_only(peer_url: str) -> None:
    person = SCHOOL.people[0]
    assert _get(peer_url, basic_auth(person.uid, person.password)) == (200, None)
    wrong = basic_auth(person.uid, "falsch-" + person.password)
    assert _get(peer_url, wrong) == (401, CHALLENGE)


def test_the_stand_in_refuses_a_request_without_the_ldap_settings(tmp_path: Path) -> None:
    """Asked directly, not through nginx: no directory to ask, a refusal, never a 500.
    (The daemon closes the connection without an answer here: nginx makes that a 500.)"""
    stand_in = PeerProcess(None, free_port(), tmp_path / "peer.log")
    try:
        stand_in.start()
        person = SCHOOL.people[0]
        credentials = basic_auth(person.uid, person.password)
        assert _get(f"127.0.0.1:{stand_in.port}", credentials) == (401, CHALLENGE)
    finally:
        stand_in.stop()


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer abc"},
        basic_auth(SCHOOL.people[0].uid, ""),
        basic_auth("niemand", "irgendwas"),
        basic_auth("*", SCHOOL.people[0].password),
        {"Authorization": "Basic %%%"},
    ],
    ids=["none", "not-basic", "empty-password", "unknown", "filter-star", "undecodable"],
)
def test_the_peer_challenges_what_is_no_login(peer_url: str, headers: dict[str, str]) -> None:
    assert _get(peer_url, headers) == (401, CHALLENGE)
