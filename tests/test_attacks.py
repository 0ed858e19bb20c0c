"""Attacks on the running stack (nginx with the include, the sidecar, slapd):
special room names, token parameters Jitsi reads differently, other methods,
display names in the directory made to mislead."""

from __future__ import annotations

import base64
import http.client
import subprocess
from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

import pytest

from demo.school import SCHOOL, Person
from demo.slapd import Slapd
from sidecar.names import MAX_DISPLAY_NAME
from testbed.stack import Browser, Reply, Stack, basic_auth, followed, request, token_in
from tests.jitsi_rules import JitsiSite, admit

TEACHER = SCHOOL.teachers[0]
PUPIL = SCHOOL.pupils[0]


@pytest.mark.parametrize(
    "segment",
    ["*", "%2A", "%2a", "%EF%BC%8A", "%EF%B9%A1", "Mathe*", "__jicofo-health-check-1"],
)
@pytest.mark.parametrize("person", [TEACHER, PUPIL])
def test_no_room_name_gives_a_wildcard_token(stack: Stack, segment: str, person: Person) -> None:
    reply = stack.get(f"/{segment}", basic_auth(person.uid, person.password))
    assert reply.status == 404
    assert reply.header("Location") is None
    assert "jwt" not in reply.body


def test_every_minted_room_claim_names_exactly_the_room(
    stack: Stack, jitsi_site: JitsiSite
) -> None:
    for segment in ("Mathe7b", "a%2Bb", "%C3%9Cbung", "x(1)!", "~tilde"):
        reply = stack.get(f"/{segment}", basic_auth(PUPIL.uid, PUPIL.password))
        assert reply.status == 302, segment
        claims = admit(token_in(reply.header("Location") or ""), jitsi_site, segment).claims
        assert "*" not in claims["room"]


@pytest.mark.parametrize("name", ["%6Awt", "%6awt", "JWT", "jwt[]", "jwt%00", "Jwt"])
def test_token_under_a_name_jitsi_does_not_read_gets_a_fresh_redirect(
    stack: Stack, name: str
) -> None:
    """Jitsi's web app never decodes parameter names: ``%6Awt=`` is no token for it,
    so the sidecar must not serve the page as if it were."""
    credentials = basic_auth(TEACHER.uid, TEACHER.password)
    own = token_in(stack.get("/Mathe7b", credentials).header("Location") or "")
    assert stack.get(f"/Mathe7b?jwt={own}", credentials).status == 200
    reply = stack.get(f"/Mathe7b?lang=de&{name}={own}", credentials)
    assert reply.status == 302
    location = reply.header("Location") or ""
    # The look-alike parameter is dropped, not carried along beside the new token.
    assert name not in location
    assert parse_qs(urlsplit(location).query)["lang"] == ["de"]
    token_in(location)


@pytest.mark.parametrize("suffix", ["%20", "%2E", "=x", "&jwt="])
def test_a_token_jitsi_would_read_differently_is_not_current(stack: Stack, suffix: str) -> None:
    credentials = basic_auth(TEACHER.uid, TEACHER.password)
    own = token_in(stack.get("/Mathe7b", credentials).header("Location") or "")
    if suffix == "=x":
        # Jitsi reads the value up to the next "=": still the same token.
        assert stack.get(f"/Mathe7b?jwt={own}{suffix}", credentials).status == 200
        return
    assert stack.get(f"/Mathe7b?jwt={own}{suffix}", credentials).status == 302


METHODS = ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "PROPFIND"]


def send(stack: Stack, method: str, path: str, headers: dict[str, str] | None = None) -> Reply:
    connection = http.client.HTTPConnection("127.0.0.1", stack.nginx.port, timeout=20)
    return request(connection, followed(path), headers, method=method, body=b"a=b")


@pytest.mark.parametrize("method", METHODS)
def test_other_methods_on_a_room_are_answered_as_get(
    stack: Stack, basic_stack: Stack, method: str
) -> None:
    # Nobody logged in: the login page, or a Basic challenge.
    assert send(stack, method, "/Mathe7b").header("Location") == "/auth/login?next=%2FMathe7b"
    challenge = send(basic_stack, method, "/Mathe7b")
    assert challenge.status == 401
    assert (challenge.header("WWW-Authenticate") or "").startswith("Basic ")
    # Logged in: a fresh token, and with a current one the same address again
    # (nginx serves the page to GET only; the browser follows with GET).
    credentials = basic_auth(TEACHER.uid, TEACHER.password)
    fresh = send(stack, method, "/Mathe7b", credentials)
    assert fresh.status == 302
    own = token_in(fresh.header("Location") or "")
    again = send(stack, method, f"/Mathe7b?jwt={own}", credentials)
    assert again.status == 302
    assert token_in(again.header("Location") or "") == own
    assert stack.get(again.header("Location") or "", credentials).status == 200
    # The sidecar's other answers keep their status and page.
    nobody = basic_auth(SCHOOL.nobody.uid, SCHOOL.nobody.password)
    assert send(stack, method, "/Mathe7b", nobody).status == 403
    assert send(stack, method, "/a%2Fb", credentials).status == 404
    # A browser with a session is treated alike.
    browser = Browser(stack)
    assert browser.log_in(PUPIL.uid, PUPIL.password).status == 302
    cookie = "; ".join(f"{name}={value}" for name, value in browser.cookies.items())
    assert send(stack, method, "/Mathe7b", {"Cookie": cookie}).status == 302


def set_name(slapd: Slapd, person: Person, name: str) -> None:
    """Give ``person`` the display name ``name`` (``cn``), as the directory's admin."""
    value = base64.b64encode(name.encode("utf-8")).decode("ascii")
    ldif = f"dn: {person.dn}\nchangetype: modify\nreplace: cn\ncn:: {value}\n"
    subprocess.run(
        [
            "ldapmodify",
            "-x",
            "-H",
            slapd.ldap_url,
            "-D",
            slapd.admin_dn,
            "-y",
            str(slapd.workdir / "admin.password"),
        ],
        input=ldif,
        text=True,
        check=True,
        capture_output=True,
        env={"LDAPNOINIT": "1"},
    )


def names_in_tokens(stack: Stack, person: Person) -> list[str]:
    """The name Jitsi is given for ``person``, by Basic and by a session."""
    site = JitsiSite(
        app_id="school-meet",
        app_secret=(stack.sidecar.config.parent / "app_secret").read_bytes(),
        subject="meet.school.example",
    )
    basic = stack.get("/Mathe7b", basic_auth(person.uid, person.password))
    assert basic.status == 302, basic
    browser = Browser(stack)
    assert browser.log_in(person.uid, person.password).status == 302
    form = browser.get("/Mathe7b")
    assert form.status == 302, form
    return [
        admit(token_in(reply.header("Location") or ""), site, "Mathe7b").claims["context"]["user"][
            "name"
        ]
        for reply in (basic, form)
    ]


def test_directory_names_are_cleaned_on_every_path(
    own_slapd: Slapd, make_stack: Callable[..., Stack]
) -> None:
    """A directory name turned around (U+202E), broken over lines, padded with fillers,
    piled with marks, or 13,000 characters long (once a 500 from nginx on a Basic
    login: "upstream sent too big header") reaches Jitsi cleaned, by Basic and by form."""
    turned, long, padded = SCHOOL.pupils[0], SCHOOL.pupils[1], SCHOOL.pupils[2]
    set_name(own_slapd, turned, "Max\u202e Schmidt\nINFO forged\u200b\u2066")
    set_name(own_slapd, long, "Lea " + "Wagner" * 2200)
    set_name(own_slapd, padded, "\u3164\u2800 Z" + "\u0301" * 40 + "oe\u00a0\u00a0\u00a0\u00a0Ko")
    stack = make_stack(own_slapd)
    for name in names_in_tokens(stack, long):
        assert name.startswith("Lea WagnerWagner")
        assert len(name) <= MAX_DISPLAY_NAME
    assert names_in_tokens(stack, turned) == ["Max Schmidt INFO forged"] * 2
    # Three marks on a letter at most: the first composes with it (NFC).
    assert names_in_tokens(stack, padded) == ["\u0179\u0301\u0301oe Ko"] * 2


# -- bans hold for credentials the sidecar has cached --------------------------

ATTACKER = "127.0.0.2"
HER_PLACE = "127.0.0.1"
# A ban of the attacker's address after three failures from it, whoever they named.
ADDRESS_BAN_AFTER_THREE = """
[regulation]
max_failures_per_user = 100
max_failures_per_user_overall = 100
max_failures_per_address = 3
ban_time = 900
"""


def basic_reply(stack: Stack, uid: str, password: str, source: str) -> Reply:
    return stack.get("/Mathe7b", basic_auth(uid, password), source=source)


def test_a_banned_address_learns_nothing_from_cached_credentials(
    slapd: Slapd, make_stack: Callable[..., Stack]
) -> None:
    """While her Basic credentials are cached, a guess from a banned address is
    answered with the ban, right or wrong: no oracle (429 = wrong, 302 = right)."""
    stack = make_stack(slapd, extra=ADDRESS_BAN_AFTER_THREE)
    # She logs in with Basic from her own place: cached, and a known place.
    assert token_in(
        basic_reply(stack, TEACHER.uid, TEACHER.password, HER_PLACE).header("Location") or ""
    )
    for number in range(3):
        assert basic_reply(stack, f"sprayed{number}", "guess", ATTACKER).status == 401
    assert basic_reply(stack, TEACHER.uid, "wrong", ATTACKER).status == 429
    right = basic_reply(stack, TEACHER.uid, TEACHER.password, ATTACKER)
    assert right.status == 429
    assert right.header("Location") is None
    # Her own place is not banned, and the cache still answers her there.
    again = basic_reply(stack, TEACHER.uid, TEACHER.password, HER_PLACE)
    assert token_in(again.header("Location") or "")


def test_a_ban_of_her_own_place_spares_her_cached_login_there(
    slapd: Slapd, make_stack: Callable[..., Stack]
) -> None:
    """A shared address (the school's) banned by somebody's spraying: the people
    known there keep coming in, with cached credentials too; newcomers wait."""
    stack = make_stack(slapd, extra=ADDRESS_BAN_AFTER_THREE)
    assert token_in(
        basic_reply(stack, TEACHER.uid, TEACHER.password, HER_PLACE).header("Location") or ""
    )
    # A pupil's cached credentials, from elsewhere: she is not known at the school's address.
    assert token_in(
        basic_reply(stack, PUPIL.uid, PUPIL.password, ATTACKER).header("Location") or ""
    )
    for number in range(3):
        assert basic_reply(stack, f"sprayed{number}", "guess", HER_PLACE).status == 401
    assert basic_reply(stack, PUPIL.uid, PUPIL.password, HER_PLACE).status == 429
    known = basic_reply(stack, TEACHER.uid, TEACHER.password, HER_PLACE)
    assert token_in(known.header("Location") or "")


def test_a_banned_name_learns_nothing_from_cached_credentials(
    slapd: Slapd, make_stack: Callable[..., Stack]
) -> None:
    """Guesses at one name from one address ban that name there: her cached
    password from that address gets the ban too."""
    extra = ADDRESS_BAN_AFTER_THREE.replace(
        "max_failures_per_user = 100", "max_failures_per_user = 3"
    )
    extra = extra.replace("max_failures_per_address = 3", "max_failures_per_address = 1000")
    stack = make_stack(slapd, extra=extra)
    assert token_in(
        basic_reply(stack, TEACHER.uid, TEACHER.password, HER_PLACE).header("Location") or ""
    )
    for number in range(3):
        assert basic_reply(stack, TEACHER.uid, f"guess-{number}", ATTACKER).status == 401
    assert basic_reply(stack, TEACHER.uid, TEACHER.password, ATTACKER).status == 429
    assert token_in(
        basic_reply(stack, TEACHER.uid, TEACHER.password, HER_PLACE).header("Location") or ""
    )
