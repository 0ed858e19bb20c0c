"""Flow 6 and invariant 8: an LDAP outage is never "wrong password" and never "allowed".

slapd is stopped mid-test and started again; the sidecar recovers without a restart.
"""

from __future__ import annotations

import os
import signal
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from demo.school import SCHOOL
from demo.slapd import Slapd
from sidecar.sessions import COOKIE_NAME as SESSION
from testbed.kept_connections import let_go
from testbed.poll import poll_until
from testbed.stack import Browser, Stack, basic_auth

TEACHER = SCHOOL.teachers[0]
PUPIL = SCHOOL.pupils[0]
OTHER_PUPIL = SCHOOL.pupils[2]

# One failure would ban: proves that outage answers count no failure.
STRICT_REGULATION = """
[regulation]
max_failures_per_user = 1
max_failures_per_address = 1
"""


def test_outage_keeps_people_in_and_never_lets_anyone_new_in(
    own_slapd: Slapd, make_stack: Callable[..., Stack]
) -> None:
    stack = make_stack(own_slapd, extra=STRICT_REGULATION)
    session_browser = Browser(stack)
    assert session_browser.log_in(TEACHER.uid, TEACHER.password).status == 302
    cached = basic_auth(PUPIL.uid, PUPIL.password)
    assert (stack.get("/Mathe7b", cached).header("Location") or "").startswith("/Mathe7b?jwt=")

    own_slapd.stop()

    # A valid session and cached Basic credentials keep working.
    reply = session_browser.get("/Mathe7b")
    assert (reply.header("Location") or "").startswith("/Mathe7b?jwt=")
    assert session_browser.get(reply.header("Location") or "").status == 200
    assert (stack.get("/Mathe7b", cached).header("Location") or "").startswith("/Mathe7b?jwt=")

    # Everyone else: 503 "the login service does not answer", never a password loop, never a 200.
    uncached = stack.get(
        "/Mathe7b", {**basic_auth(OTHER_PUPIL.uid, OTHER_PUPIL.password), "Accept-Language": "en"}
    )
    assert uncached.status == 503
    assert "login service does not answer" in uncached.body
    assert uncached.header("WWW-Authenticate") is None
    wrong = stack.get("/Mathe7b", basic_auth(OTHER_PUPIL.uid, "wrong"))
    assert wrong.status == 503
    form = Browser(stack).log_in(OTHER_PUPIL.uid, OTHER_PUPIL.password)
    assert form.status == 503
    assert "login service does not answer" in form.body
    assert SESSION not in form.headers.get("Set-Cookie", "")

    own_slapd.start()

    # Recovered without restarting the sidecar, and no failure was counted
    # (one would have banned both the name and the address).
    reply = stack.get("/Mathe7b", basic_auth(OTHER_PUPIL.uid, OTHER_PUPIL.password))
    assert (reply.header("Location") or "").startswith("/Mathe7b?jwt=")
    assert Browser(stack).log_in(OTHER_PUPIL.uid, OTHER_PUPIL.password).status == 302


# -- an outage under load -------------------------------------------------------------


@pytest.fixture
def restartable_slapd(tmp_path: Path) -> Iterator[Slapd]:
    """A slapd of this test's own that can be killed and started again under load."""
    # Its ports lie below the ephemeral range (demo.ports): while it is down,
    # the load's connections cannot take them as their source ports.
    server = Slapd(tmp_path / "restartable-slapd")
    with server:
        yield server


def kill(slapd: Slapd) -> None:
    """SIGKILL: no goodbye to its clients, and its port refuses connections at once."""
    os.kill(int((slapd.workdir / "slapd.pid").read_text().strip()), signal.SIGKILL)
    until(lambda: not slapd.running)


def until(condition: Callable[[], bool], seconds: float = 20.0) -> None:
    assert poll_until(condition, seconds=seconds), "condition not reached in time"


def open_descriptors(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


class LoginStream:
    """Threads sending people's requests through nginx until told to stop (bounded
    in count): new Basic logins with wrong passwords, form logins, a session's and
    cached Basic credentials' room requests. Answers are counted by kind and status."""

    THREADS = 6
    MAX_REQUESTS = 3000  # per thread

    def __init__(self, stack: Stack, session: Browser, cached: dict[str, str]) -> None:
        self._stack = stack
        self._session = session
        self._cached = cached
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self.answers: Counter[tuple[str, int]] = Counter()
        self.errors: list[str] = []
        self._threads = [
            threading.Thread(target=self._run, args=(n,), daemon=True) for n in range(self.THREADS)
        ]

    def __enter__(self) -> LoginStream:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stopping.set()
        for thread in self._threads:
            thread.join(60)

    def count(self, kind: str) -> int:
        with self._lock:
            return sum(n for (k, _), n in self.answers.items() if k == kind)

    def counted(self, kind: str, at_least: int) -> Callable[[], bool]:
        return lambda: self.count(kind) >= at_least

    def _run(self, number: int) -> None:
        people = [*SCHOOL.pupils, *SCHOOL.teachers]
        # Each thread its own address, so that no ban hides what the directory answers.
        source = f"127.0.0.{10 + number}"
        for step in range(self.MAX_REQUESTS):
            if self._stopping.is_set():
                return
            person = people[(number + step) % len(people)]
            kind = ("wrong", "form", "session", "cached")[step % 4]
            try:
                if kind == "wrong":
                    wrong = basic_auth(person.uid, f"wrong-{number}-{step}")
                    status = self._stack.get("/Mathe7b", wrong, source=source).status
                elif kind == "form":
                    status = (
                        Browser(self._stack, source=source)
                        .log_in(person.uid, person.password)
                        .status
                    )
                elif kind == "session":
                    status = self._session.get("/Mathe7b").status
                else:
                    status = self._stack.get("/Mathe7b", self._cached, source=source).status
            # A timeout (nginx never answered), or a login form that did not come.
            except (OSError, AssertionError) as error:
                with self._lock:
                    self.errors.append(f"{kind}: {error!r}")
                continue
            with self._lock:
                self.answers[kind, status] += 1


def test_a_killed_directory_under_load_leaves_no_descriptor_and_no_500(
    restartable_slapd: Slapd, make_stack: Callable[..., Stack]
) -> None:
    """slapd is killed and started again, twice, while people keep logging in.

    libldap closes a failed connection's descriptor; a registration left on its
    number took the next socket the sidecar accepted (never answered: nginx's
    504), and removing it later raised (a 500, for people with a session too),
    while failed connections kept their sockets open.
    """
    slapd = restartable_slapd
    # One pooled connection: the count of descriptors is the same whenever it is open.
    stack = make_stack(
        slapd, replace={f'urls = ["{slapd.ldap_url}"]': one_pooled_connection(slapd)}
    )
    assert stack.sidecar.process is not None
    pid = stack.sidecar.process.pid
    session = Browser(stack)
    assert session.log_in(TEACHER.uid, TEACHER.password).status == 302
    cached = basic_auth(PUPIL.uid, PUPIL.password)
    assert stack.get("/Mathe7b", cached).status == 302
    # nginx's kept connections are not the sidecar's to count.
    socket_path = stack.sidecar.socket_path
    assert let_go(stack.nginx, pid, socket_path)
    at_start = open_descriptors(pid)

    with LoginStream(stack, session, cached) as stream:
        until(lambda: stream.count("form") >= 5)
        for stop in (kill, Slapd.stop):
            stop(slapd)
            sessions, forms = stream.count("session"), stream.count("form")
            # The outage lasts while people keep coming: a few of each kind.
            until(stream.counted("session", sessions + 10))
            until(stream.counted("form", forms + 5))
            slapd.start()
            # Back: a new login works again without restarting the sidecar.
            until(lambda: Browser(stack).log_in(PUPIL.uid, PUPIL.password).status == 302)

    assert not stream.errors, stream.errors[:5]
    statuses = {status for _, status in stream.answers}
    assert statuses <= {302, 401, 503}, stream.answers
    # Sessions and cached credentials went on through both outages.
    assert {status for (kind, status) in stream.answers if kind in ("session", "cached")} == {302}
    assert ("wrong", 503) in stream.answers
    assert ("form", 503) in stream.answers
    # A login works, so the pooled connection is open again, as at the start.
    assert Browser(stack).log_in(PUPIL.uid, PUPIL.password).status == 302
    assert let_go(stack.nginx, pid, socket_path)
    until(lambda: open_descriptors(pid) <= at_start, 10)
    log = stack.sidecar.log()
    assert "Traceback" not in log, log[-3000:]


def one_pooled_connection(slapd: Slapd) -> str:
    """The demo configuration's urls line, with a pool of one connection."""
    return f'urls = ["{slapd.ldap_url}"]\npool_size = 1'
