"""Flow 6 and invariant 8: an LDAP outage is never "wrong password" and never "allowed".

slapd is stopped mid-test and started again; the sidecar recovers without a restart.
"""

from __future__ import annotations

from collections.abc import Callable

from demo.school import SCHOOL
from demo.slapd import Slapd
from sidecar.sessions import COOKIE_NAME as SESSION
from tests.stack import Browser, Stack, basic_auth

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

    # Everyone else: 503 "directory unreachable", never a password loop, never a 200.
    uncached = stack.get(
        "/Mathe7b", {**basic_auth(OTHER_PUPIL.uid, OTHER_PUPIL.password), "Accept-Language": "en"}
    )
    assert uncached.status == 503
    assert "unreachable" in uncached.body
    assert uncached.header("WWW-Authenticate") is None
    wrong = stack.get("/Mathe7b", basic_auth(OTHER_PUPIL.uid, "wrong"))
    assert wrong.status == 503
    form = Browser(stack).log_in(OTHER_PUPIL.uid, OTHER_PUPIL.password)
    assert form.status == 503
    assert "unreachable" in form.body
    assert SESSION not in form.headers.get("Set-Cookie", "")

    own_slapd.start()

    # Recovered without restarting the sidecar, and no failure was counted
    # (one would have banned both the name and the address).
    reply = stack.get("/Mathe7b", basic_auth(OTHER_PUPIL.uid, OTHER_PUPIL.password))
    assert (reply.header("Location") or "").startswith("/Mathe7b?jwt=")
    assert Browser(stack).log_in(OTHER_PUPIL.uid, OTHER_PUPIL.password).status == 302
