"""Invariant 3: credentials that cannot be a login are refused before any bind."""

from __future__ import annotations

import base64

import pytest

from sidecar.credentials import (
    MAX_PASSWORD_LENGTH,
    MAX_USERNAME_LENGTH,
    check_credentials,
    parse_basic_authorization,
)
from sidecar.refusals import UnacceptableCredentials


def basic(raw: bytes) -> str:
    return "Basic " + base64.b64encode(raw).decode()


def test_good_basic_header() -> None:
    credentials = parse_basic_authorization(basic("lea.wagner:Schüler:in 1".encode()))
    assert credentials.username == "lea.wagner"
    assert credentials.password == "Schüler:in 1"  # only the first colon splits
    assert "Schüler" not in repr(credentials)


def test_scheme_is_case_insensitive() -> None:
    assert parse_basic_authorization("basic " + basic(b"a:b")[6:]).username == "a"


@pytest.mark.parametrize(
    "header",
    [
        "Basic",
        "Basic ",
        "Bearer abc",
        "Basic !!!not-base64!!!",
        "Basic " + "QQ",  # bad padding
        basic(b"no-colon-here"),
        basic(b"\xff\xfe:\xff"),  # not UTF-8
        basic(b":password"),
        basic(b"user:"),
        basic(b"   :password"),
        basic(b"user:    "),
        basic(b"us\x00er:password"),
        basic(b"user:pass\x00word"),
        basic(b"user\n:password"),
        basic(b" user:password"),
        basic(b"u" * (MAX_USERNAME_LENGTH + 1) + b":password"),
        basic(b"user:" + b"p" * (MAX_PASSWORD_LENGTH + 1)),
        "Basic " + "A" * 100_000,
    ],
)
def test_bad_basic_headers_are_refused(header: str) -> None:
    with pytest.raises(UnacceptableCredentials):
        parse_basic_authorization(header)


@pytest.mark.parametrize(
    ("username", "password"),
    [("", "x"), ("x", ""), ("\t", "x"), ("x", " \u3000 "), ("a\x7fb", "x"), ("x", "a\x1bb")],
)
def test_check_credentials_refuses(username: str, password: str) -> None:
    with pytest.raises(UnacceptableCredentials):
        check_credentials(username, password)


def test_longest_acceptable_values_pass() -> None:
    username = "u" * MAX_USERNAME_LENGTH
    password = "p" * MAX_PASSWORD_LENGTH
    header = basic(f"{username}:{password}".encode())
    assert parse_basic_authorization(header).password == password


def test_a_lone_surrogate_is_no_credential() -> None:
    """An undecodable byte read from a pipe (test-login) never reaches the LDAP library."""
    for username, password in (("a", "\ud800"), ("\udcff", "secret")):
        with pytest.raises(UnacceptableCredentials):
            check_credentials(username, password)
