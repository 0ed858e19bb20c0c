"""Minted tokens pass Jitsi's rules; only our current token for this person and room counts."""

from __future__ import annotations

import dataclasses
import tracemalloc
from urllib.parse import unquote

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from sidecar.config.settings import MODERATOR_FEATURES, JitsiSettings, RoleRule, Secret
from sidecar.jitsi.tokens import MIN_REMAINING_SECONDS, NOT_BEFORE_SLACK_SECONDS, RoomTokens
from sidecar.people import Person
from sidecar.rooms import backend_safe_room_name
from tests.jitsi_rules import JitsiSite, TokenRefused, admit

SECRET = b"k" * 64
NOW = 1_800_000_000
SETTINGS = JitsiSettings(
    app_id="school-meet",
    app_secret=Secret(SECRET),
    subject="meet.school.example",
    token_ttl=3600,
)
SITE = JitsiSite(
    app_id="school-meet",
    app_secret=SECRET,
    subject="meet.school.example",
    accepted_audiences=("school-meet",),
)
TEACHER_RULE = RoleRule(name="teacher", groups=frozenset({"cn=t"}), moderator=True, any_room=False)
PUPIL_RULE = RoleRule(name="pupil", groups=frozenset({"cn=p"}), moderator=False, any_room=False)
ANNA = Person("anna.mueller", "Anna Müller", "anna@school.example", frozenset({"cn=t"}))
MAX = Person("max.schmidt", "Max Schmidt", "", frozenset({"cn=p"}))


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def tokens(settings: JitsiSettings = SETTINGS, now: float = NOW) -> RoomTokens:
    return RoomTokens(settings, clock=Clock(now))


@pytest.mark.parametrize(
    "segment", ["Mathe7b", "Mathe%207b", "%C3%9Cbung", "100%25", "It's(1)", "%EF%AC%81zik"]
)
def test_minted_tokens_pass_jitsis_rules(segment: str) -> None:
    room = backend_safe_room_name(unquote(segment))
    token = tokens().mint(ANNA, TEACHER_RULE, room)
    admission = admit(token, SITE, segment, now=NOW)
    assert admission.moderator is True
    user = admission.claims["context"]["user"]
    assert user == {
        "id": "anna.mueller",
        "name": "Anna Müller",
        "email": "anna@school.example",
        "affiliation": "owner",
        "moderator": "true",
        # A JSON boolean: jitsi-contrib's token_lobby_bypass compares it with true.
        "lobby_bypass": True,
    }
    assert admission.claims["moderator"] is True


def test_pupil_token_is_member() -> None:
    token = tokens().mint(MAX, PUPIL_RULE, "mathe7b")
    admission = admit(token, SITE, "Mathe7b", now=NOW)
    assert admission.moderator is False
    assert admission.claims["context"]["user"]["email"] == ""


def test_header_and_times() -> None:
    token = tokens().mint(MAX, PUPIL_RULE, "mathe7b")
    header = jwt.get_unverified_header(token)
    assert header == {"alg": "HS256", "typ": "JWT"}
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["nbf"] == NOW - NOT_BEFORE_SLACK_SECONDS
    assert claims["exp"] == NOW + SETTINGS.token_ttl
    assert claims["sub"] == "meet.school.example"
    assert claims["aud"] == "school-meet"
    # Prosody allows no skew: valid from nbf until exp, not after.
    admit(token, SITE, "Mathe7b", now=NOW - NOT_BEFORE_SLACK_SECONDS)
    with pytest.raises(TokenRefused):
        admit(token, SITE, "Mathe7b", now=NOW + SETTINGS.token_ttl)


@pytest.mark.parametrize("algorithm", ["HS256", "HS384", "HS512", "RS256"])
def test_a_token_is_the_one_pyjwt_would_make(algorithm: str) -> None:
    """Minted from a header encoded once: byte for byte what jwt.encode gives
    (PKCS#1 v1.5 signatures are deterministic too)."""
    key: object = SECRET
    extra: dict[str, object] = {}
    header = None
    if algorithm.startswith("RS"):
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        extra = {"signing_key": Secret(pem), "key_id": "meet/2026"}
        header = {"kid": "meet/2026"}
    settings = dataclasses.replace(SETTINGS, algorithm=algorithm, **extra)  # type: ignore[arg-type]
    token = tokens(settings).mint(ANNA, TEACHER_RULE, "mathe7b")
    claims = jwt.decode(token, options={"verify_signature": False})
    assert token == jwt.encode(claims, key, algorithm=algorithm, headers=header)  # type: ignore[arg-type]


@pytest.mark.parametrize("algorithm", ["HS384", "HS512"])
def test_configured_algorithm_is_used(algorithm: str) -> None:
    settings = dataclasses.replace(SETTINGS, algorithm=algorithm)  # type: ignore[arg-type]
    token = tokens(settings).mint(ANNA, TEACHER_RULE, "mathe7b")
    admit(token, dataclasses.replace(SITE, algorithm=algorithm), "Mathe7b", now=NOW)
    with pytest.raises(TokenRefused):
        admit(token, SITE, "Mathe7b", now=NOW)


def test_any_room_rule_mints_star() -> None:
    rule = dataclasses.replace(TEACHER_RULE, any_room=True)
    token = tokens().mint(ANNA, rule, "mathe7b")
    assert admit(token, SITE, "Physik", now=NOW).claims["room"] == "*"
    assert tokens().is_current(token, ANNA, rule, "physik")


@pytest.mark.parametrize("backend_room", ["*", "a*b", "%2a*"])
@pytest.mark.parametrize("rule", [TEACHER_RULE, PUPIL_RULE])
def test_no_wildcard_claim_without_any_room(rule: RoleRule, backend_room: str) -> None:
    """Prosody reads room "*" as every room: only an any_room role may ever get it."""
    with pytest.raises(ValueError, match="wildcard"):
        tokens().mint(ANNA, rule, backend_room)


def test_current_token_is_recognised() -> None:
    minted = tokens().mint(ANNA, TEACHER_RULE, "mathe7b")
    assert tokens(now=NOW + 10).is_current(minted, ANNA, TEACHER_RULE, "mathe7b")


def test_not_current() -> None:
    minted = tokens().mint(ANNA, TEACHER_RULE, "mathe7b")
    later = NOW + SETTINGS.token_ttl - MIN_REMAINING_SECONDS + 1
    assert not tokens(now=later).is_current(minted, ANNA, TEACHER_RULE, "mathe7b")
    assert not tokens().is_current(minted, ANNA, TEACHER_RULE, "physik")
    assert not tokens().is_current(minted, MAX, TEACHER_RULE, "mathe7b")
    # A role change (teacher removed from the group) means a new token.
    assert not tokens().is_current(minted, ANNA, PUPIL_RULE, "mathe7b")
    other_secret = dataclasses.replace(SETTINGS, app_secret=Secret(b"o" * 64))
    assert not tokens(other_secret).is_current(minted, ANNA, TEACHER_RULE, "mathe7b")
    other_app = dataclasses.replace(SETTINGS, app_id="other-app")
    assert not tokens(other_app).is_current(minted, ANNA, TEACHER_RULE, "mathe7b")


def test_a_token_checked_once_is_judged_again_every_time() -> None:
    """Verified tokens are remembered (signature work is done once): what they are
    compared with, and the clock, still count at every page load."""
    clock = Clock(NOW)
    checker = RoomTokens(SETTINGS, clock=clock)
    minted = checker.mint(ANNA, TEACHER_RULE, "mathe7b")
    assert checker.is_current(minted, ANNA, TEACHER_RULE, "mathe7b")
    assert not checker.is_current(minted, MAX, TEACHER_RULE, "mathe7b")
    assert not checker.is_current(minted, ANNA, PUPIL_RULE, "mathe7b")
    assert not checker.is_current(minted, ANNA, TEACHER_RULE, "physik")
    assert not checker.is_current(minted, ANNA, TEACHER_RULE, "mathe7b", tenant="other")
    emailless = dataclasses.replace(TEACHER_RULE, email=False)
    assert not checker.is_current(minted, ANNA, emailless, "mathe7b")
    # One character changed is another token, checked afresh.
    head, payload, signature = minted.split(".")
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    assert not checker.is_current(f"{head}.{payload}.{flipped}", ANNA, TEACHER_RULE, "mathe7b")
    assert checker.is_current(minted, ANNA, TEACHER_RULE, "mathe7b")
    clock.now = NOW + SETTINGS.token_ttl - MIN_REMAINING_SECONDS + 1
    assert not checker.is_current(minted, ANNA, TEACHER_RULE, "mathe7b")


@pytest.mark.parametrize(
    "forged",
    [
        "not.a.token",
        "",
        jwt.encode({"room": "mathe7b"}, SECRET, algorithm="HS256"),
        # alg "none": PyJWT must refuse it because the algorithm is pinned.
        jwt.encode(
            {
                "iss": "school-meet",
                "aud": "school-meet",
                "sub": "meet.school.example",
                "room": "mathe7b",
                "nbf": NOW - 60,
                "exp": NOW + 3600,
                "moderator": True,
                "context": {"user": {"id": "anna.mueller"}},
            },
            "",
            algorithm="none",
        ),
    ],
)
def test_forged_tokens_are_not_current(forged: str) -> None:
    assert not tokens().is_current(forged, ANNA, TEACHER_RULE, "mathe7b")


# -- per-role options ------------------------------------------------------------

LEA = Person(
    "lea.wagner", "Lea Wagner", "lea@school.example", frozenset({"cn=p"}), context_group="7b"
)


def test_every_token_locks_the_name_by_default() -> None:
    for person, rule in ((ANNA, TEACHER_RULE), (LEA, PUPIL_RULE)):
        assert admit(tokens().mint(person, rule, "mathe7b"), SITE, "Mathe7b", now=NOW).name_locked


def test_moderators_keep_what_jitsi_gave_them_without_features() -> None:
    """A token with context.features gets only what it lists (mod_jitsi_permissions):
    teachers keep Jitsi's moderator defaults, pupils get none of them."""
    teacher = admit(tokens().mint(ANNA, TEACHER_RULE, "m"), SITE, "m", now=NOW).features
    assert all(teacher[name] is True for name in MODERATOR_FEATURES)
    # A teacher reloading must not land in her own lobby.
    assert admit(tokens().mint(ANNA, TEACHER_RULE, "m"), SITE, "m", now=NOW).passes_the_lobby
    kept_out = dataclasses.replace(TEACHER_RULE, lobby_bypass=False)
    assert not admit(tokens().mint(ANNA, kept_out, "m"), SITE, "m", now=NOW).passes_the_lobby
    pupil = admit(tokens().mint(LEA, PUPIL_RULE, "m"), SITE, "m", now=NOW).features
    assert pupil == {"name-readonly": True}


def test_the_name_lock_can_be_turned_off() -> None:
    rule = dataclasses.replace(PUPIL_RULE, features=(("name-readonly", False),))
    assert not admit(tokens().mint(LEA, rule, "mathe7b"), SITE, "Mathe7b", now=NOW).name_locked


def test_features_and_lobby_bypass_are_what_jitsi_reads() -> None:
    rule = dataclasses.replace(
        TEACHER_RULE, features=(("recording", True), ("livestreaming", False)), lobby_bypass=True
    )
    admission = admit(tokens().mint(ANNA, rule, "mathe7b"), SITE, "Mathe7b", now=NOW)
    assert admission.features == {
        **MODERATOR_FEATURES,
        "name-readonly": True,
        "recording": True,
        "livestreaming": False,
    }
    # jitsi-contrib's token_lobby_bypass: context.user.lobby_bypass == true, a JSON boolean.
    assert admission.claims["context"]["user"]["lobby_bypass"] is True
    assert "lobby_bypass" not in admission.features
    assert admission.passes_the_lobby
    assert not admit(
        tokens().mint(LEA, PUPIL_RULE, "mathe7b"), SITE, "Mathe7b", now=NOW
    ).passes_the_lobby


def test_email_only_for_moderators_unless_the_role_says() -> None:
    assert admit(tokens().mint(ANNA, TEACHER_RULE, "m"), SITE, "m", now=NOW).email == ANNA.email
    assert admit(tokens().mint(LEA, PUPIL_RULE, "m"), SITE, "m", now=NOW).email == ""
    sending = dataclasses.replace(PUPIL_RULE, email=True)
    assert admit(tokens().mint(LEA, sending, "m"), SITE, "m", now=NOW).email == LEA.email
    silent = dataclasses.replace(TEACHER_RULE, email=False)
    assert admit(tokens().mint(ANNA, silent, "m"), SITE, "m", now=NOW).email == ""


def test_a_role_has_its_own_token_lifetime() -> None:
    rule = dataclasses.replace(PUPIL_RULE, token_ttl=900)
    claims = admit(tokens().mint(LEA, rule, "m"), SITE, "m", now=NOW).claims
    assert claims["exp"] == NOW + 900


def test_group_and_avatar_travel_in_the_context() -> None:
    pictured = dataclasses.replace(ANNA, avatar="https://school.example/a.png")
    admission = admit(tokens().mint(pictured, TEACHER_RULE, "m"), SITE, "m", now=NOW)
    assert admission.claims["context"]["user"]["avatar"] == "https://school.example/a.png"
    assert admission.group is None
    assert admit(tokens().mint(LEA, PUPIL_RULE, "m"), SITE, "m", now=NOW).group == "7b"


def test_a_token_made_under_other_role_options_is_not_current() -> None:
    old = tokens().mint(LEA, PUPIL_RULE, "mathe7b")
    assert tokens(now=NOW + 10).is_current(old, LEA, PUPIL_RULE, "mathe7b")
    for changed in (
        dataclasses.replace(PUPIL_RULE, lobby_bypass=True),
        dataclasses.replace(PUPIL_RULE, email=True),
        dataclasses.replace(PUPIL_RULE, features=(("name-readonly", False),)),
    ):
        assert not tokens(now=NOW + 10).is_current(old, LEA, changed, "mathe7b")


@pytest.mark.parametrize("extra", ["!!!!", "$$", "~", "=", "%21"])
def test_a_token_is_read_in_its_one_spelling(extra: str) -> None:
    """Older PyJWT skipped stray characters in a signature; one token must not
    have many spellings (each would be a cache entry of its own)."""
    checker = tokens()
    minted = checker.mint(ANNA, TEACHER_RULE, "mathe7b")
    assert checker.is_current(minted, ANNA, TEACHER_RULE, "mathe7b")
    assert not checker.is_current(minted + extra, ANNA, TEACHER_RULE, "mathe7b")


def test_thousands_of_verified_tokens_are_kept_in_little_memory() -> None:
    """Every token checked stays known until it expires, up to VERIFIED_TOKENS of
    them: each kept as a digest of its claims, not as its text and claims."""
    minter = tokens()
    minted = [minter.mint(ANNA, TEACHER_RULE, f"room{number}") for number in range(1000)]
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        for number, token in enumerate(minted):
            assert minter.is_current(token, ANNA, TEACHER_RULE, f"room{number}")
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    grown = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    # The token's claims as dicts took about 2,600 bytes a token.
    assert grown / len(minted) < 800
