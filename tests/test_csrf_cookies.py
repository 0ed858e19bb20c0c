"""Cookie names and flags, and the double-submit CSRF token of the POST forms."""

from __future__ import annotations

import pytest

from sidecar.cookies import CookiePolicy
from sidecar.sessions import COOKIE_NAME as SESSION
from sidecar.web.csrf import COOKIE_MAX_AGE, CsrfTokens
from sidecar.web.csrf import COOKIE_NAME as CSRF

WELL_FORMED = "A" * 20 + "b" * 20 + "-_9"


def attributes(header: str) -> tuple[str, str, dict[str, str]]:
    """A Set-Cookie value as name, value and its attributes (names lowercased)."""
    pair, *rest = header.split("; ")
    name, _, value = pair.partition("=")
    parsed: dict[str, str] = {}
    for attribute in rest:
        key, _, attribute_value = attribute.partition("=")
        assert key.lower() not in parsed, f"{key} twice in {header!r}"
        parsed[key.lower()] = attribute_value
    return name, value, parsed


@pytest.mark.parametrize("secure", [True, False])
def test_cookie_names_get_the_host_prefix_only_when_secure(secure: bool) -> None:
    policy = CookiePolicy(secure=secure)
    prefix = "__Host-" if secure else ""
    assert policy.name(SESSION) == prefix + SESSION
    assert policy.name(CSRF) == prefix + CSRF
    assert CsrfTokens(policy).cookie_name == prefix + CSRF


def test_a_secure_cookie_has_every_flag_the_host_prefix_needs() -> None:
    name, value, flags = attributes(CookiePolicy(secure=True).set_cookie(SESSION, "v", max_age=60))
    assert (name, value) == ("__Host-" + SESSION, "v")
    assert flags == {"path": "/", "max-age": "60", "httponly": "", "samesite": "Lax", "secure": ""}


def test_a_plain_http_cookie_is_not_secure() -> None:
    name, _, flags = attributes(CookiePolicy(secure=False).set_cookie(SESSION, "v", max_age=60))
    assert name == SESSION
    assert flags == {"path": "/", "max-age": "60", "httponly": "", "samesite": "Lax"}


@pytest.mark.parametrize("secure", [True, False])
def test_same_site_can_be_strict(secure: bool) -> None:
    header = CookiePolicy(secure=secure).set_cookie(CSRF, "v", max_age=1, same_site="Strict")
    assert attributes(header)[2]["samesite"] == "Strict"


@pytest.mark.parametrize("secure", [True, False])
def test_clearing_a_cookie_empties_it_with_the_same_name_and_flags(secure: bool) -> None:
    policy = CookiePolicy(secure=secure)
    name, value, flags = attributes(policy.clear_cookie(SESSION))
    assert (name, value) == (policy.name(SESSION), "")
    assert flags["max-age"] == "0"
    assert flags["path"] == "/"
    assert "httponly" in flags
    assert ("secure" in flags) is secure
    assert "domain" not in flags


@pytest.mark.parametrize("secure", [True, False])
def test_a_new_token_comes_with_a_strict_cookie(secure: bool) -> None:
    tokens = CsrfTokens(CookiePolicy(secure=secure))
    token, header = tokens.token_for(None)
    assert header is not None
    name, value, flags = attributes(header)
    assert name == ("__Host-" if secure else "") + CSRF
    assert value == token
    assert flags["httponly"] == ""
    assert flags["samesite"] == "Strict"
    assert flags["path"] == "/"
    assert flags["max-age"] == str(COOKIE_MAX_AGE)
    assert ("secure" in flags) is secure
    assert "domain" not in flags
    assert tokens.valid(token, token)


@pytest.mark.parametrize("secure", [True, False])
def test_a_well_formed_cookie_is_kept(secure: bool) -> None:
    tokens = CsrfTokens(CookiePolicy(secure=secure))
    assert tokens.token_for(WELL_FORMED) == (WELL_FORMED, None)
    made, _ = tokens.token_for(None)
    assert tokens.token_for(made) == (made, None)


@pytest.mark.parametrize(
    "cookie",
    [
        None,
        "",
        "short",
        "A" * 31,
        "A" * 65,
        WELL_FORMED + "!",
        "ä" * 40,
        "A" * 40 + "\n",
        "A " * 20,
    ],
)
def test_a_missing_or_malformed_cookie_gets_a_new_token(cookie: str | None) -> None:
    tokens = CsrfTokens(CookiePolicy(secure=True))
    token, header = tokens.token_for(cookie)
    assert header is not None
    assert token != cookie
    assert len(token) >= 32
    assert tokens.valid(token, token)


def test_new_tokens_differ() -> None:
    tokens = CsrfTokens(CookiePolicy(secure=True))
    assert len({tokens.token_for(None)[0] for _ in range(100)}) == 100


def test_matching_well_formed_values_are_valid() -> None:
    assert CsrfTokens.valid(WELL_FORMED, WELL_FORMED)


@pytest.mark.parametrize(
    ("cookie", "form"),
    [
        (None, WELL_FORMED),
        ("", WELL_FORMED),
        (WELL_FORMED, None),
        (WELL_FORMED, ""),
        (None, None),
        ("", ""),
        (WELL_FORMED, WELL_FORMED[:-1]),
        (WELL_FORMED, WELL_FORMED + "A"),
        (WELL_FORMED, WELL_FORMED.lower()),
        (WELL_FORMED, " " + WELL_FORMED),
        (WELL_FORMED, "B" + WELL_FORMED[1:]),
        (WELL_FORMED, "ä" + WELL_FORMED[1:]),
        # Equal but not a token we could have made.
        ("short", "short"),
        ("A" * 65, "A" * 65),
        ("x" * 40 + "!", "x" * 40 + "!"),
        ("ä" * 40, "ä" * 40),
    ],
)
def test_missing_different_or_malformed_values_are_refused(
    cookie: str | None, form: str | None
) -> None:
    assert not CsrfTokens.valid(cookie, form)
