"""Flow 7: too many failures -> "try again in N minutes", checked before any bind."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from demo.school import SCHOOL
from demo.slapd import Slapd
from testbed.poll import poll_until
from testbed.stack import Browser, Stack, basic_auth, binds_of

# Only the address limit matters here.
ADDRESS_ONLY = """
[regulation]
max_failures_per_user = 100
max_failures_per_user_overall = 100
max_failures_per_address = {per_address}
"""

TEACHER = SCHOOL.teachers[1]
PUPIL = SCHOOL.pupils[0]

REGULATION = """
[regulation]
max_failures_per_user = 3
max_failures_per_address = 1000
window = 600
ban_time = {ban_time}
"""


def test_form_ban_blocks_even_the_right_password_without_a_bind(
    slapd: Slapd, make_stack: Callable[..., Stack]
) -> None:
    stack = make_stack(slapd, extra=REGULATION.format(ban_time=900))
    for _ in range(3):
        assert Browser(stack).log_in(TEACHER.uid, "guess").status == 401
    before = binds_of(slapd, TEACHER.uid)
    banned = Browser(stack).log_in(TEACHER.uid, TEACHER.password)
    assert banned.status == 429
    assert "Please try again in 15 minutes." in banned.body
    assert banned.header("Retry-After") == "900"
    german = Browser(stack, "de").log_in(TEACHER.uid, TEACHER.password)
    assert "Bitte in 15 Minuten noch einmal versuchen." in german.body
    # Basic is banned alike, and shows the same page (429) through nginx.
    reply = stack.get(
        "/Mathe7b", {**basic_auth(TEACHER.uid, TEACHER.password), "Accept-Language": "en"}
    )
    assert reply.status == 429
    assert "try again in 15 minutes" in reply.body
    assert binds_of(slapd, TEACHER.uid) == before
    # Another person is not affected.
    assert Browser(stack).log_in(PUPIL.uid, PUPIL.password).status == 302


def test_unknown_user_counts_like_a_wrong_password(
    slapd: Slapd, make_stack: Callable[..., Stack]
) -> None:
    stack = make_stack(slapd, extra=REGULATION.format(ban_time=900))
    for _ in range(3):
        assert Browser(stack).log_in("no.such.user", "guess").status == 401
    assert Browser(stack).log_in("no.such.user", "guess").status == 429


def test_address_ban(slapd: Slapd, make_stack: Callable[..., Stack]) -> None:
    extra = ADDRESS_ONLY.format(per_address=4)
    stack = make_stack(slapd, extra=extra)
    for number in range(4):
        assert Browser(stack).log_in(f"sprayed.name{number}", "guess").status == 401
    # From the same address (127.0.0.1, as nginx's X-Real-IP says), even a
    # right password waits.
    assert Browser(stack).log_in(PUPIL.uid, PUPIL.password).status == 429


def test_ban_expires(slapd: Slapd, make_stack: Callable[..., Stack]) -> None:
    stack = make_stack(slapd, extra=REGULATION.format(ban_time=2))
    for _ in range(3):
        stack.get("/Mathe7b", basic_auth(TEACHER.uid, "guess"))
    assert stack.get("/Mathe7b", basic_auth(TEACHER.uid, TEACHER.password)).status == 429
    reply = poll_until(
        lambda: stack.get("/Mathe7b", basic_auth(TEACHER.uid, TEACHER.password)),
        lambda reply: reply.status != 429,
        seconds=20,
        interval=0.2,
    )
    assert (reply.header("Location") or "").startswith("/Mathe7b?jwt=")


def test_failures_are_never_cached(slapd: Slapd, make_stack: Callable[..., Stack]) -> None:
    stack = make_stack(slapd)
    before = binds_of(slapd, PUPIL.uid)
    for _ in range(3):
        assert stack.get("/Mathe7b", basic_auth(PUPIL.uid, "wrong")).status == 401
    assert binds_of(slapd, PUPIL.uid) == before + 3


def test_good_basic_credentials_are_cached(slapd: Slapd, make_stack: Callable[..., Stack]) -> None:
    stack = make_stack(slapd)
    before = binds_of(slapd, PUPIL.uid)
    for _ in range(5):
        reply = stack.get("/Mathe7b", basic_auth(PUPIL.uid, PUPIL.password))
        assert (reply.header("Location") or "").startswith("/Mathe7b?jwt=")
    assert binds_of(slapd, PUPIL.uid) == before + 1


def test_parallel_guesses_cannot_pass_the_limit(
    slapd: Slapd, make_stack: Callable[..., Stack]
) -> None:
    stack = make_stack(slapd, extra=REGULATION.format(ban_time=900))
    victim = SCHOOL.pupils[2]
    before = binds_of(slapd, victim.uid)

    def guess(number: int) -> int:
        return stack.get("/Mathe7b", basic_auth(victim.uid, f"guess-{number}")).status

    with ThreadPoolExecutor(max_workers=16) as pool:
        statuses = list(pool.map(guess, range(40)))
    assert 500 not in statuses
    assert binds_of(slapd, victim.uid) - before <= 3  # max_failures_per_user
    assert statuses.count(429) >= 37


def test_address_ban_through_basic(slapd: Slapd, make_stack: Callable[..., Stack]) -> None:
    extra = ADDRESS_ONLY.format(per_address=3)
    stack = make_stack(slapd, extra=extra)
    for number in range(3):
        assert stack.get("/Mathe7b", basic_auth(f"sprayed{number}", "guess")).status == 401
    assert stack.get("/Mathe7b", basic_auth(PUPIL.uid, PUPIL.password)).status == 429


# -- who is kept out, and who is not (failures elsewhere, shared addresses) ----

ATTACKER = "127.0.0.2"
ELSEWHERE = ("127.0.0.3", "127.0.0.4", "127.0.0.5")
SCHOOL_ADDRESS = "127.0.0.1"


def test_failures_from_elsewhere_do_not_lock_her_out(
    slapd: Slapd, make_stack: Callable[..., Stack]
) -> None:
    stack = make_stack(slapd, extra=REGULATION.format(ban_time=900))
    for _ in range(3):
        assert Browser(stack, source=ATTACKER).log_in(TEACHER.uid, "guess").status == 401
    # The attacker's address is out of guesses for her name, even the right one ...
    assert Browser(stack, source=ATTACKER).log_in(TEACHER.uid, TEACHER.password).status == 429
    assert stack.get("/Mathe7b", basic_auth(TEACHER.uid, "x"), source=ATTACKER).status == 429
    # ... while she logs in from her own place, by form and by Basic.
    assert Browser(stack, source=SCHOOL_ADDRESS).log_in(TEACHER.uid, TEACHER.password).status == 302
    basic = stack.get("/Mathe7b", basic_auth(TEACHER.uid, TEACHER.password))
    assert (basic.header("Location") or "").startswith("/Mathe7b?jwt=")


def test_a_name_under_attack_from_everywhere_stays_open_where_she_is_known(
    slapd: Slapd, make_stack: Callable[..., Stack]
) -> None:
    extra = (
        "[regulation]\nmax_failures_per_user = 2\nmax_failures_per_user_overall = 4\n"
        "max_failures_per_address = 1000\n"
    )
    stack = make_stack(slapd, extra=extra)
    assert Browser(stack, source=SCHOOL_ADDRESS).log_in(TEACHER.uid, TEACHER.password).status == 302
    for source in (ATTACKER, ELSEWHERE[0]):
        for _ in range(2):
            assert Browser(stack, source=source).log_in(TEACHER.uid, "guess").status == 401
    before = binds_of(slapd, TEACHER.uid)
    # Four failures in all: from a place she never logged in from, the name is banned ...
    new_place = Browser(stack, source=ELSEWHERE[1]).log_in(TEACHER.uid, TEACHER.password)
    assert new_place.status == 429
    assert binds_of(slapd, TEACHER.uid) == before
    # ... from her usual place it is not.
    assert Browser(stack, source=SCHOOL_ADDRESS).log_in(TEACHER.uid, TEACHER.password).status == 302


def test_a_shared_address_ban_spares_the_people_known_there(
    slapd: Slapd, make_stack: Callable[..., Stack]
) -> None:
    extra = ADDRESS_ONLY.format(per_address=3)
    stack = make_stack(slapd, extra=extra)
    assert Browser(stack, source=SCHOOL_ADDRESS).log_in(TEACHER.uid, TEACHER.password).status == 302
    for number in range(3):
        reply = Browser(stack, source=SCHOOL_ADDRESS).log_in(f"sprayed{number}", "guess")
        assert reply.status == 401
    # Somebody new behind the school's address waits; the teacher known there does not.
    assert Browser(stack, source=SCHOOL_ADDRESS).log_in(PUPIL.uid, PUPIL.password).status == 429
    assert Browser(stack, source=SCHOOL_ADDRESS).log_in(TEACHER.uid, TEACHER.password).status == 302
    assert Browser(stack, source=ATTACKER).log_in(PUPIL.uid, PUPIL.password).status == 302


def test_ipv6_addresses_count_by_their_64(slapd: Slapd, make_stack: Callable[..., Stack]) -> None:
    """nginx hands the client's address over as X-Real-IP; one /64 is one place."""
    stack = make_stack(slapd, extra=REGULATION.format(ban_time=900))
    for host in (1, 2, 0xABCD):
        reply = stack.sidecar.verify(
            "/Mathe7b",
            {**basic_auth(TEACHER.uid, "guess"), "X-Real-IP": f"2001:db8:0:1::{host:x}"},
        )
        assert reply.status == 401
    same_64 = {**basic_auth(TEACHER.uid, TEACHER.password), "X-Real-IP": "2001:db8:0:1:ff::9"}
    assert stack.sidecar.verify("/Mathe7b", same_64).header("X-Jitsi-Auth-Page") == "banned"
    other_64 = {**basic_auth(TEACHER.uid, TEACHER.password), "X-Real-IP": "2001:db8:0:2::1"}
    assert (
        stack.sidecar.verify("/Mathe7b", other_64).header("X-Jitsi-Auth-Redirect") or ""
    ).startswith("/Mathe7b?jwt=")


# -- every spelling of a name that reaches one entry ---------------------------

LOOK_ALIKE_PUPIL = next(p for p in SCHOOL.pupils if "i" in p.uid)


def test_a_look_alike_spelling_the_directory_folds_is_banned_too(
    slapd: Slapd, make_stack: Callable[..., Stack]
) -> None:
    """``İ`` (U+0130): slapd finds the same entry, so the ban must hold for it."""
    pupil = LOOK_ALIKE_PUPIL
    look_alike = pupil.uid.replace("i", "\u0130", 1)
    stack = make_stack(slapd, extra=REGULATION.format(ban_time=900))
    # The directory does take it for the same person.
    assert Browser(stack, source=ATTACKER).log_in(look_alike, pupil.password).status == 302
    for _ in range(3):
        assert Browser(stack).log_in(pupil.uid, "guess").status == 401
    before = binds_of(slapd, pupil.uid)
    for spelling in (look_alike, pupil.uid.upper(), pupil.uid.replace("i", "\u0130")):
        assert Browser(stack).log_in(spelling, pupil.password).status == 429, spelling
    assert binds_of(slapd, pupil.uid) == before


def test_every_spelling_a_filter_leads_to_one_entry_shares_its_ban(
    slapd: Slapd, make_stack: Callable[..., Stack]
) -> None:
    """A filter that takes uid or mail: both reach one entry, which is what is banned."""
    stack = make_stack(
        slapd,
        extra=REGULATION.format(ban_time=900),
        replace={
            'user_filter = "(uid={username})"': (
                'user_filter = "(|(uid={username})(mail={username}))"'
            )
        },
    )
    for _ in range(3):
        assert Browser(stack).log_in(TEACHER.mail, "guess").status == 401
    before = binds_of(slapd, TEACHER.uid)
    assert Browser(stack).log_in(TEACHER.uid, TEACHER.password).status == 429
    basic = stack.get(
        "/Mathe7b", {**basic_auth(TEACHER.uid, TEACHER.password), "Accept-Language": "en"}
    )
    assert basic.status == 429
    assert "try again in 15 minutes" in basic.body
    assert binds_of(slapd, TEACHER.uid) == before
    # Another person is not affected.
    assert Browser(stack).log_in(PUPIL.mail, PUPIL.password).status == 302


def test_parallel_requests_with_the_same_credentials_are_one_check(
    slapd: Slapd, make_stack: Callable[..., Stack]
) -> None:
    """A browser's parallel loads: one bind, counted once, never "try again later"."""
    stack = make_stack(slapd, extra=REGULATION.format(ban_time=900))
    before = binds_of(slapd, PUPIL.uid)
    pupil = basic_auth(PUPIL.uid, PUPIL.password)
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda _: stack.get("/Mathe7b", pupil).status, range(8)))
    assert statuses == [302] * 8
    assert binds_of(slapd, PUPIL.uid) - before == 1
