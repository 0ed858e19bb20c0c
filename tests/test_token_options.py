"""Per-role token options through nginx: what the role allows is what the token says."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from demo.school import SCHOOL
from demo.slapd import Slapd
from sidecar.config.settings import ConfigError, load_settings
from testbed.configs import MINIMAL, write_config
from testbed.stack import Stack, basic_auth, token_in
from tests.jitsi_rules import JitsiSite, admit

TEACHER = SCHOOL.teachers[0]
OTHER_TEACHER = SCHOOL.teachers[1]
PUPIL = SCHOOL.pupils[0]
OPTIONS = {
    "moderator = true\n": (
        "moderator = true\nlobby_bypass = true\n"
        "features = { recording = true, livestreaming = true }\n"
    ),
    "moderator = false\n": "moderator = false\ntoken_ttl = 900\n",
}
LDAP_EXTRA = {
    'group_mode = "search"\n': (
        'group_mode = "search"\ngroup_attribute = "departmentNumber"\n'
        'avatar_attribute = "labeledURI"\n'
    )
}


def site_of(stack: Stack) -> JitsiSite:
    secret = (stack.sidecar.config.parent / "app_secret").read_bytes()
    return JitsiSite(app_id="school-meet", app_secret=secret, subject="meet.school.example")


def token_for(stack: Stack, person: object, path: str = "/Mathe7b") -> str:
    uid, password = person.uid, person.password  # type: ignore[attr-defined]
    reply = stack.get(path, basic_auth(uid, password))
    assert reply.status == 302, reply
    return token_in(reply.header("Location") or "")


def test_roles_decide_features_lobby_email_and_lifetime(
    slapd: Slapd, make_stack: Callable[..., Stack]
) -> None:
    stack = make_stack(slapd, replace={**OPTIONS, **LDAP_EXTRA})
    site = site_of(stack)
    teacher = admit(token_for(stack, TEACHER), site, "Mathe7b")
    assert teacher.passes_the_lobby
    assert teacher.name_locked
    assert teacher.features["recording"] is True
    assert teacher.email == TEACHER.mail
    assert teacher.claims["context"]["user"]["avatar"] == TEACHER.photo_url
    # Not https: never sent.
    assert (
        "avatar"
        not in admit(token_for(stack, OTHER_TEACHER), site, "Mathe7b").claims["context"]["user"]
    )
    pupil = admit(token_for(stack, PUPIL), site, "Mathe7b")
    assert pupil.name_locked
    assert not pupil.passes_the_lobby
    assert "recording" not in pupil.features
    assert pupil.email == ""
    assert pupil.group == PUPIL.department
    assert pupil.claims["exp"] - pupil.claims["iat"] == 900


def test_new_role_options_take_effect_for_new_tokens_after_a_restart(
    slapd: Slapd, make_stack: Callable[..., Stack]
) -> None:
    stack = make_stack(slapd)
    credentials = basic_auth(PUPIL.uid, PUPIL.password)
    location = stack.get("/Mathe7b", credentials).header("Location") or ""
    assert stack.get(location, credentials).status == 200
    assert not admit(token_in(location), site_of(stack), "Mathe7b").passes_the_lobby
    config = stack.sidecar.config
    config.write_text(
        config.read_text("utf-8").replace(
            "moderator = false\n", "moderator = false\nlobby_bypass = true\n"
        ),
        "utf-8",
    )
    stack.sidecar.stop()
    stack.sidecar.start()
    # The old token no longer counts as current: a fresh one with the new option.
    renewed = stack.get(location, credentials)
    assert renewed.status == 302
    assert admit(
        token_in(renewed.header("Location") or ""), site_of(stack), "Mathe7b"
    ).passes_the_lobby


@pytest.mark.parametrize(
    ("line", "key"),
    [
        ('features = "recording"', "roles[0].features"),
        ("features = { recording = 1.5 }", "roles[0].features"),
        ("features = { recording = 1 }", "roles[0].features"),
        ('features = { "name-readonly" = "true" }', "roles[0].features"),
        ("token_ttl = 60", "roles[0].token_ttl"),
        ('lobby_bypass = "yes"', "roles[0].lobby_bypass"),
        # Nothing reads it in context.features: it is a role option of its own.
        ("features = { lobby_bypass = true }", "roles[0].features"),
        ('email = "no"', "roles[0].email"),
    ],
)
def test_bad_role_options_are_named(tmp_path: Path, line: str, key: str) -> None:
    body = MINIMAL.replace("moderator = true", f"moderator = true\n{line}", 1)
    with pytest.raises(ConfigError) as raised:
        load_settings(write_config(tmp_path, body), environ={})
    assert raised.value.key == key
