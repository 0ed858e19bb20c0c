"""One line per decision, plain or JSON, and never a secret in the log."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from urllib.parse import quote

import pytest

from demo.school import SCHOOL
from demo.slapd import Slapd
from testbed.configs import SHARED_SECRETS
from testbed.guests import create_link, enter_as_guest, teacher_browser
from testbed.poll import poll_until
from testbed.stack import Browser, Stack, basic_auth, token_in

TEACHER = SCHOOL.teachers[0]
PUPIL = SCHOOL.pupils[0]
NOBODY = SCHOOL.nobody
WRONG_PASSWORD = "Falsch-und-geheim-42"
DECISION_FIELDS = ["outcome", "user", "role", "room", "method", "reason", "ms", "address"]
# A bare value, or a JSON-quoted one (with spaces, quotes or control characters).
VALUE = r'(?:"(?:[^"\\]|\\.)*"|[^\s"]+)'
REGULATION = """
[regulation]
max_failures_per_user = 2
max_failures_per_address = 1000
"""


def log_format(name: str) -> dict[str, str]:
    return {'public_url = "': f'log_format = "{name}"\npublic_url = "'}


def every_flow(stack: Stack) -> list[str]:
    """Log in, enter, fail, get banned, invite a guest, log out; the secrets it used."""
    used = [TEACHER.password, PUPIL.password, NOBODY.password, WRONG_PASSWORD]
    locations: list[str] = []
    teacher = teacher_browser(stack)
    locations.append(teacher.get("/Mathe7b").header("Location") or "")
    used += teacher.cookies.values()
    pupil = Browser(stack)
    pupil.log_in(PUPIL.uid, PUPIL.password)
    entered = pupil.get("/Physik9a")
    locations.append(entered.header("Location") or "")
    assert pupil.get(locations[-1].partition("#")[0]).status == 200  # the token is current
    used += pupil.cookies.values()
    basic = stack.get("/Mathe7b", basic_auth(PUPIL.uid, PUPIL.password))
    locations.append(basic.header("Location") or "")
    assert Browser(stack).log_in(NOBODY.uid, NOBODY.password).status == 403
    for _ in range(3):
        stack.get("/Mathe7b", basic_auth(TEACHER.uid, WRONG_PASSWORD))
    assert Browser(stack).log_in(TEACHER.uid, WRONG_PASSWORD).status == 429
    path = create_link(teacher, "Mathe7b")
    used.append(path.removeprefix("/auth/guest/"))
    guest, _ = enter_as_guest(stack, path, "Gast")
    locations.append(guest.get("/Mathe7b").header("Location") or "")
    used += guest.cookies.values()
    page = pupil.get("/auth/logout")
    pupil.post("/auth/logout", {"csrf_token": pupil.csrf_token(page)})
    used += [token_in(location) for location in locations]
    directory = stack.sidecar.config.parent
    for name in (*SHARED_SECRETS, "ldap_password"):
        used += (directory / name).read_text("utf-8").split()
    return used


def assert_no_secret_in(log: str, secrets: list[str]) -> None:
    for secret in secrets:
        assert len(secret) >= 8, secret  # a short one would match by chance
        for part in (secret, secret[:16], secret[-16:]):
            assert part not in log, part


def test_plain_lines_name_the_decision_and_hold_no_secret(
    slapd: Slapd, make_stack: Callable[..., Stack]
) -> None:
    stack = make_stack(slapd, extra=REGULATION)
    secrets = every_flow(stack)
    log = stack.sidecar.log()
    assert_no_secret_in(log, secrets)
    decisions = [line for line in log.splitlines() if "sidecar.decisions: decision " in line]
    pattern = r"^\S+Z INFO sidecar\.decisions: decision " + " ".join(
        rf"{name}={VALUE}" for name in DECISION_FIELDS
    )
    for line in decisions:
        assert re.match(pattern, line), line
    assert any(
        f"outcome=token user={TEACHER.uid} role=teacher room=mathe7b method=session" in line
        for line in decisions
    ), decisions
    assert any("outcome=banned" in line and "reason=" in line for line in decisions)
    assert any('reason="wrong user name or password"' in line for line in decisions)
    assert any("outcome=allowed" in line for line in decisions)
    logins = [line for line in log.splitlines() if "sidecar.decisions: login " in line]
    assert any(f"outcome=refused user={NOBODY.uid}" in line for line in logins), logins


def test_json_lines_carry_the_same_fields(slapd: Slapd, make_stack: Callable[..., Stack]) -> None:
    stack = make_stack(slapd, extra=REGULATION, replace=log_format("json"))
    secrets = every_flow(stack)
    log = stack.sidecar.log()
    assert_no_secret_in(log, secrets)
    documents = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert len(documents) == len([line for line in log.splitlines() if line.strip()])
    decisions = [doc for doc in documents if doc["message"] == "decision"]
    assert decisions
    for document in decisions:
        assert set(DECISION_FIELDS) | {"time", "level", "logger", "message"} == set(document)
        assert isinstance(document["ms"], float)
        assert document["address"] == "127.0.0.1"
    guest = [doc for doc in decisions if doc["method"] == "guest"]
    assert guest
    assert guest[0]["outcome"] == "token"
    assert guest[0]["role"] == "guest"


@pytest.mark.parametrize("name", ["anna\nINFO sidecar.decisions: forged", 'x" outcome=allowed'])
def test_a_typed_name_cannot_forge_a_line(stack: Stack, name: str) -> None:
    Browser(stack).log_in(name, WRONG_PASSWORD)
    stack.get("/Mathe7b", basic_auth(name, WRONG_PASSWORD))
    lines = stack.sidecar.log().splitlines()
    assert not [line for line in lines if line.startswith("INFO sidecar.decisions: forged")]
    assert not [
        line for line in lines if re.search(r'^\S+Z INFO \S+: \S+ outcome=allowed user=x"', line)
    ]


def test_unprintable_names_are_escaped_and_long_ones_cut(stack: Stack) -> None:
    """Line separators and direction overrides (which pass the credential checks,
    unlike control characters) reach no log viewer; a long name costs the log 128."""
    for name in ("x\u2028y", "\u202eevil", "n" * 200):
        stack.get("/Mathe7b", basic_auth(name, WRONG_PASSWORD))
    log = stack.sidecar.log()
    for raw in ("\u2028", "\u202e", "n" * 129):
        assert raw not in log
    assert 'user="x\\u2028y"' in log
    assert 'user="\\u202eevil"' in log
    assert "user=" + "n" * 128 + "..." in log


def test_the_login_form_logs_no_name_it_did_not_accept(stack: Stack) -> None:
    """A password typed into the name field, refused before any check, is not written."""
    Browser(stack).log_in("Geheim-Passwort ", "")
    form = Browser(stack)
    form.post(
        "/auth/login", {"csrf_token": "forged", "username": "Noch-ein-Geheimnis", "password": "x"}
    )
    log = stack.sidecar.log()
    assert "Geheim-Passwort" not in log
    assert "Noch-ein-Geheimnis" not in log


# A complete decision line, as an outsider would like the log to hold it.
FORGED = (
    "2026-11-30T07:58:02.114Z INFO sidecar.decisions: decision outcome=token "
    "user=anna.mueller role=teacher room=mathe7b method=session reason=- ms=1.9"
)
# Line feed, carriage return (a terminal draws what follows over the line's
# start), and terminal escapes: clear the line, colour it.
LINE_BREAKS = ["%0a", "%0d", "%0d%0a", "%1b%5b2K%0d", "%1b%5b31m", "%e2%80%a8", "%c2%85"]


def log_once_it_holds(stack: Stack, marker: str, count: int) -> str:
    """The sidecar writes a line after it answered: wait (bounded) for ``count`` of them."""
    return poll_until(
        stack.sidecar.log, lambda log: log.count(marker) >= count, seconds=10, interval=0.02
    )


PLAIN_START = r"^\S+Z (INFO|WARNING) [\w.]+: "
JSON_START = r'^\{"time": "\S+Z", "level": "(INFO|WARNING)", "logger": "[\w.]+", '


def assert_nobody_wrote_a_line(log: str, marker: str, start: str = PLAIN_START) -> None:
    for character in ("\r", "\x1b", "\u2028", "\x85"):
        assert character not in log, repr(character)
    mine = [line for line in log.split("\n") if marker in line]
    assert mine, marker
    for line in log.split("\n"):
        assert not line.startswith("2026-11-30T07:58:02.114Z"), line
        assert not line.startswith("INFO sidecar.decisions"), line
    for line in mine:
        assert re.match(start, line), line


def test_a_request_path_cannot_forge_a_line(stack: Stack) -> None:
    """Through nginx: the sidecar's pages (their access line), a room (its decision
    line, which names no room it refused)."""
    marker = f"forge{uuid.uuid4().hex[:12]}"
    for line_break in LINE_BREAKS:
        assert stack.get(f"/auth/{marker}{line_break}{quote(FORGED)}").status == 404
        # A room address holds no ":" or "/" (nginx's room location), the rest it may.
        stack.get(f"/{marker}{line_break}INFO%20sidecar.decisions%20decision%20outcome=token")
    log = log_once_it_holds(stack, marker, len(LINE_BREAKS))
    assert log.count(marker) == len(LINE_BREAKS), log[-3000:]
    assert_nobody_wrote_a_line(log, marker)


def test_a_request_cannot_forge_a_json_line(slapd: Slapd, make_stack: Callable[..., Stack]) -> None:
    stack = make_stack(slapd, replace=log_format("json"))
    marker = f"forge{uuid.uuid4().hex[:12]}"
    for line_break in LINE_BREAKS:
        stack.get(f"/auth/{marker}{line_break}{quote(FORGED)}")
        stack.get(f"/{marker}{line_break}INFO%20sidecar.decisions%20decision%20outcome=token")
        stack.get("/Mathe7b", basic_auth(f"{marker}\u2028{FORGED}", WRONG_PASSWORD))
    log = log_once_it_holds(stack, marker, 2 * len(LINE_BREAKS))
    assert log.count(marker) == 2 * len(LINE_BREAKS), log[-3000:]
    assert_nobody_wrote_a_line(log, marker, JSON_START)
    documents = [json.loads(line) for line in log.split("\n") if line]
    assert [doc for doc in documents if marker in json.dumps(doc)]
    forged = [doc for doc in documents if doc.get("user") == "anna.mueller"]
    assert not forged
