"""Cookie sessions: sealing, opening, expiry, key rotation and logout, without a server;
the revocation file on a real full, read-only or failing disk."""

from __future__ import annotations

import asyncio
import base64
import binascii
import errno
import json
import os
import shutil
import statistics
import string
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, replace
from pathlib import Path

import pytest

from sidecar import revocations
from sidecar.config.settings import Secret, SessionSettings
from sidecar.people import Person
from sidecar.revocations import BUCKET_SECONDS, HEADER, RevokedSessions
from sidecar.sessions import (
    MAX_COOKIE_LENGTH,
    ROLE_CHECK_SPREAD,
    TOUCH_INTERVAL_SECONDS,
    Session,
    SessionCookies,
    _fernet,
)
from sidecar.state_files import StateFileError
from tests.small_disk import small_disk

KEY_A = Secret(b"a" * 32)
KEY_B = Secret(b"b" * 48)
START = 1_700_000_000
LIFETIME = 1000
IDLE_TIMEOUT = 600
ROLE_REFRESH = 300

ANNA = Person(
    user_id="anna.beispiel",
    display_name="Anna Beispielfrau",
    email="anna.beispiel@school.example",
    groups=frozenset({"cn=pupils,ou=groups,dc=school,dc=example"}),
)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def settings(
    *keys: Secret, revocation_file: Path | None = None, lifetime: int = LIFETIME
) -> SessionSettings:
    return SessionSettings(
        keys=keys or (KEY_A,),
        idle_timeout=IDLE_TIMEOUT,
        lifetime=lifetime,
        role_refresh=ROLE_REFRESH,
        revocation_file=revocation_file,
    )


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def cookies(clock: Clock) -> SessionCookies:
    return SessionCookies(settings(KEY_A), clock=clock)


def test_a_sealed_session_opens_to_the_same_session(cookies: SessionCookies) -> None:
    session = cookies.new(ANNA, "pupil")
    assert cookies.open(cookies.seal(session)) == session


def test_a_new_session_holds_the_person_the_role_and_now(
    cookies: SessionCookies, clock: Clock
) -> None:
    session = cookies.new(ANNA, "teacher")
    assert (session.user_id, session.display_name, session.email, session.role) == (
        ANNA.user_id,
        ANNA.display_name,
        ANNA.email,
        "teacher",
    )
    assert session.issued_at == session.last_seen == session.role_checked == START
    assert session.person() == replace(ANNA, groups=frozenset())


def test_every_new_session_has_a_fresh_id(cookies: SessionCookies) -> None:
    ids = {cookies.new(ANNA, "pupil").session_id for _ in range(200)}
    assert len(ids) == 200
    assert all(len(session_id) >= 24 for session_id in ids)


def _decoded(cookie: str) -> bytes | None:
    try:
        return base64.urlsafe_b64decode(cookie)
    except (binascii.Error, ValueError):
        return None


def test_a_cookie_changed_in_any_character_is_refused(cookies: SessionCookies) -> None:
    cookie = cookies.seal(cookies.new(ANNA, "pupil"))
    original = _decoded(cookie)
    replacements = string.ascii_letters + string.digits + "-_=+/!. ~\x00"
    tried = 0
    for position, character in enumerate(cookie):
        for replacement in replacements:
            if replacement == character:
                continue
            tampered = cookie[:position] + replacement + cookie[position + 1 :]
            # Base64 has a few spellings of the same bytes ("-" and "+", the
            # unused low bits of the last character); those are not a change.
            if _decoded(tampered) == original:
                continue
            tried += 1
            assert cookies.open(tampered) is None, (position, character, replacement)
    assert tried > 50 * len(cookie)


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "garbage",
        "gAAAAA",
        "gAAAAABl" + "A" * 200,
        base64.urlsafe_b64encode(b"\x80" + bytes(200)).decode(),
        "=" * 64,
        "\x00",
        "a" * (MAX_COOKIE_LENGTH + 1),
        "Grüße, Anna",
        "🍪" * 100,
    ],
)
def test_garbage_is_no_session(cookies: SessionCookies, value: str | None) -> None:
    assert cookies.open(value) is None


def test_a_non_ascii_character_in_a_real_cookie_is_refused(cookies: SessionCookies) -> None:
    cookie = cookies.seal(cookies.new(ANNA, "pupil"))
    assert cookies.open(cookie[:10] + "ü" + cookie[11:]) is None
    assert cookies.open(cookie + "ü") is None


def test_only_the_sealed_spelling_opens(cookies: SessionCookies) -> None:
    """Fernet alone would skip stray padding, "+" for "-" and the like."""
    cookie = cookies.seal(cookies.new(ANNA, "pupil"))
    assert cookies.open(cookie) is not None
    for changed in (
        cookie + "=",
        cookie + "=" * (MAX_COOKIE_LENGTH - len(cookie)),
        cookie + "=" * (MAX_COOKIE_LENGTH + 1 - len(cookie)),
        cookie[:20] + "\\" + cookie[20:],
        cookie.replace("-", "+").replace("_", "/"),
    ):
        if changed != cookie:
            assert cookies.open(changed) is None, changed


def _sealed_with_key_a(payload: object) -> str:
    """A cookie our key opens, holding anything at all (another version, a bug, a forger)."""
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return _fernet(KEY_A).encrypt_at_time(raw, START).decode()


def _fields(**changes: object) -> dict[str, object]:
    fields: dict[str, object] = {
        "session_id": "abc",
        "user_id": ANNA.user_id,
        "display_name": ANNA.display_name,
        "email": ANNA.email,
        "role": "pupil",
        "issued_at": START,
        "last_seen": START,
        "role_checked": START,
    }
    fields.update(changes)
    return fields


def test_a_well_shaped_payload_under_our_key_opens(cookies: SessionCookies) -> None:
    opened = cookies.open(_sealed_with_key_a(_fields()))
    assert opened is not None
    # A cookie sealed before guest sessions existed opens, with no guest fields set.
    defaults = {"group": "", "avatar": "", "room": "", "link_id": "", "expires_at": 0}
    assert asdict(opened) == {**_fields(), **defaults}
    assert not opened.is_guest


@pytest.mark.parametrize(
    "payload",
    [
        b"not json",
        b"\xff\xfe",
        [],
        "a string",
        None,
        {},
        {key: value for key, value in _fields().items() if key != "role"},
        _fields(extra="field"),
        _fields(issued_at=str(START)),
        _fields(last_seen=float(START)),
        _fields(role_checked=None),
    ],
)
def test_a_payload_of_the_wrong_shape_is_no_session(
    cookies: SessionCookies, payload: object
) -> None:
    assert cookies.open(_sealed_with_key_a(payload)) is None


@pytest.mark.parametrize(
    "payload",
    [
        _fields(session_id=["a", "list"]),
        _fields(session_id={"a": "dict"}),
        _fields(session_id=5),
        _fields(user_id={"a": "dict"}),
        _fields(role=None),
        _fields(issued_at=True),
    ],
)
def test_a_payload_with_non_string_fields_is_no_session(
    cookies: SessionCookies, payload: object
) -> None:
    assert cookies.open(_sealed_with_key_a(payload)) is None


def test_the_cookie_shows_no_name_id_or_email(cookies: SessionCookies) -> None:
    cookie = cookies.seal(cookies.new(ANNA, "teacher"))
    raw = base64.urlsafe_b64decode(cookie)
    for clear in (ANNA.user_id, ANNA.display_name, ANNA.email, "Beispiel"):
        assert clear not in cookie
        assert clear.encode() not in raw


def test_idle_timeout_is_judged_from_the_sealed_last_seen(
    cookies: SessionCookies, clock: Clock
) -> None:
    cookie = cookies.seal(cookies.new(ANNA, "pupil"))
    clock.advance(IDLE_TIMEOUT - 1)
    assert cookies.open(cookie) is not None
    clock.advance(1)
    assert cookies.open(cookie) is None


def test_lifetime_is_judged_from_issued_at_not_from_the_last_sealing(
    cookies: SessionCookies, clock: Clock
) -> None:
    session = cookies.new(ANNA, "pupil")
    clock.advance(LIFETIME // 2)
    touched = cookies.touch(session)
    assert touched is not None
    cookie = cookies.seal(touched)  # sealed later, still issued at START
    clock.now = START + LIFETIME - 1
    assert cookies.open(cookie) == touched
    clock.now = START + LIFETIME
    assert cookies.open(cookie) is None


def test_a_session_kept_busy_still_ends_at_its_lifetime(clock: Clock) -> None:
    # Lifetime a day, idle ten minutes: touching keeps it alive until the day is over.
    cookies = SessionCookies(settings(KEY_A, lifetime=86400), clock=clock)
    session = cookies.new(ANNA, "pupil")
    while clock.now + 500 < START + 86400:
        clock.advance(500)
        opened = cookies.open(cookies.seal(session))
        assert opened is not None
        touched = cookies.touch(opened)
        assert touched is not None
        session = touched
    clock.now = START + 86400
    assert cookies.open(cookies.seal(session)) is None


def test_a_cookie_sealed_with_a_retired_key_is_refused(clock: Clock) -> None:
    old = SessionCookies(settings(KEY_A), clock=clock)
    cookie = old.seal(old.new(ANNA, "pupil"))
    assert SessionCookies(settings(KEY_B), clock=clock).open(cookie) is None


def test_a_new_key_in_front_keeps_old_cookies_and_seals_new_ones(clock: Clock) -> None:
    only_a = SessionCookies(settings(KEY_A), clock=clock)
    old_session = only_a.new(ANNA, "pupil")
    old_cookie = only_a.seal(old_session)

    rotated = SessionCookies(settings(KEY_B, KEY_A), clock=clock)
    assert rotated.open(old_cookie) == old_session

    new_session = rotated.new(ANNA, "pupil")
    new_cookie = rotated.seal(new_session)
    assert SessionCookies(settings(KEY_B), clock=clock).open(new_cookie) == new_session
    assert only_a.open(new_cookie) is None


def test_no_keys_is_an_error(clock: Clock) -> None:
    empty = replace(settings(KEY_A), keys=())
    with pytest.raises(ValueError, match="no session keys"):
        SessionCookies(empty, clock=clock)


async def test_an_ended_session_no_longer_opens(cookies: SessionCookies) -> None:
    session = cookies.new(ANNA, "pupil")
    cookie = cookies.seal(session)
    other = cookies.seal(cookies.new(ANNA, "pupil"))
    await cookies.log_out(session)
    assert cookies.open(cookie) is None
    # Only that session ended, not every session of the person.
    assert cookies.open(other) is not None


async def test_an_ended_session_stays_ended_after_a_restart(tmp_path: Path, clock: Clock) -> None:
    revocation_file = tmp_path / "revoked.json"
    before = SessionCookies(settings(KEY_A, revocation_file=revocation_file), clock=clock)
    session = before.new(ANNA, "pupil")
    cookie = before.seal(session)
    await before.log_out(session)
    assert revocation_file.exists()

    after = SessionCookies(settings(KEY_A, revocation_file=revocation_file), clock=clock)
    assert after.open(cookie) is None
    # Without the file a restart would bring it back: the file is what keeps it ended.
    assert SessionCookies(settings(KEY_A), clock=clock).open(cookie) == session


def test_revocations_are_remembered_until_the_lifetime_is_over(clock: Clock) -> None:
    revoked = RevokedSessions(None, clock=clock)
    revoked.revoke("one", START + 100)
    clock.advance(99)
    assert "one" in revoked
    clock.advance(1)
    assert "one" not in revoked


def test_revocations_expire_from_memory_as_well(clock: Clock) -> None:
    revoked = RevokedSessions(None, clock=clock)
    for number in range(1000):
        revoked.revoke(f"s{number}", START + 100 + number)
    assert len(revoked) == 1000
    clock.advance(100 + 1000 + BUCKET_SECONDS)
    revoked.revoke("later", int(clock()) + 100)
    assert len(revoked) == 1


def test_past_the_cap_the_soonest_to_end_is_dropped_first(clock: Clock) -> None:
    revoked = RevokedSessions(None, clock=clock, max_entries=3)
    revoked.revoke("late", START + 5 * BUCKET_SECONDS)
    revoked.revoke("soon", START + 10)
    revoked.revoke("middle", START + 2 * BUCKET_SECONDS)
    revoked.revoke("latest", START + 9 * BUCKET_SECONDS)
    assert [sid in revoked for sid in ("soon", "middle", "late", "latest")] == [
        False,
        True,
        True,
        True,
    ]


def test_past_the_cap_the_logout_being_made_still_holds(clock: Clock) -> None:
    revoked = RevokedSessions(None, clock=clock, max_entries=3)
    for name in ("a", "b", "c", "newest"):
        revoked.revoke(name, START + 100)
    assert "newest" in revoked
    assert len(revoked) == 3


def test_a_file_is_read_with_the_cap_and_the_latest_time_of_each_id(
    tmp_path: Path, clock: Clock
) -> None:
    path = tmp_path / "revoked"
    lines = [
        (START + 3 * BUCKET_SECONDS, "twice"),
        (START + 10, "soon"),
        (START - 1, "over"),
        (START + 2 * BUCKET_SECONDS, "middle"),
        (START + 9 * BUCKET_SECONDS, "late"),
        (START + 5, "twice"),
    ]
    path.write_bytes(HEADER + b"".join(b"%d %s\n" % (t, i.encode()) for t, i in lines))
    revoked = RevokedSessions(path, clock=clock, max_entries=3)
    assert [sid in revoked for sid in ("soon", "over", "middle", "twice", "late")] == [
        False,
        False,
        True,
        True,
        True,
    ]
    clock.advance(3 * BUCKET_SECONDS)
    assert "twice" not in revoked
    assert "late" in revoked


def _lines(path: Path) -> list[str]:
    return path.read_text("ascii").splitlines()


def test_each_logout_appends_one_line_and_a_restart_reads_them(
    tmp_path: Path, clock: Clock
) -> None:
    path = tmp_path / "revoked"
    revoked = RevokedSessions(path, clock=clock)
    assert revoked.revoke("first", START + 50)
    inode = path.stat().st_ino
    assert revoked.revoke("second", START + 60)
    assert _lines(path) == [HEADER.decode().strip(), f"{START + 50} first", f"{START + 60} second"]
    # Appended to, not replaced: the file is the same one.
    assert path.stat().st_ino == inode
    again = RevokedSessions(path, clock=clock)
    assert "first" in again
    assert "second" in again
    assert "third" not in again


def test_the_file_is_compacted_now_and_then_and_forgets_what_is_over(
    tmp_path: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(revocations, "COMPACT_AT_LEAST", 4)
    path = tmp_path / "revoked"
    revoked = RevokedSessions(path, clock=clock)
    for number in range(4):
        revoked.revoke(f"old{number}", START + 10)
    assert len(_lines(path)) == 1 + 4
    clock.advance(BUCKET_SECONDS + 20)
    revoked.revoke("new", int(clock()) + 100)
    # Four lines on disk, none current: rewritten with the one that is.
    assert _lines(path) == [HEADER.decode().strip(), f"{int(clock()) + 100} new"]
    assert sorted(os.listdir(tmp_path)) == ["revoked"]


def test_a_file_of_the_earlier_form_is_read_and_rewritten(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "revoked.json"
    path.write_text(json.dumps({"old": START - 1, "current": START + 50}))
    revoked = RevokedSessions(path, clock=clock)
    assert "old" not in revoked
    assert "current" in revoked
    revoked.revoke("new", START + 500)
    assert _lines(path) == [HEADER.decode().strip(), f"{START + 50} current", f"{START + 500} new"]


def test_a_missing_or_empty_revocation_file_means_nothing_is_revoked(
    tmp_path: Path, clock: Clock
) -> None:
    cookies = SessionCookies(settings(KEY_A, revocation_file=tmp_path / "absent"), clock=clock)
    session = cookies.new(ANNA, "pupil")
    assert cookies.open(cookies.seal(session)) == session
    (tmp_path / "empty").write_bytes(b"")
    assert len(RevokedSessions(tmp_path / "empty", clock=clock)) == 0


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"{not json", "not valid JSON"),
        (b'{"abc": "soon"}', "not an object of session ids"),
        (b"[]", "not a list of revoked sessions"),
        (HEADER + b"1700000050 abc\n1700000", "last line is incomplete"),
        (HEADER + b"1700000050 abc\nsoon def\n", "line 3"),
        (HEADER + b"1700000050 a b\n", "line 2"),
        (b"\0" * 100, "not a list of revoked sessions"),
    ],
)
def test_an_unreadable_revocation_file_stops_the_start(
    tmp_path: Path, clock: Clock, content: bytes, problem: str
) -> None:
    """Starting without it would let every logged-out cookie in again."""
    path = tmp_path / "revoked"
    path.write_bytes(content)
    with pytest.raises(StateFileError) as refused:
        SessionCookies(settings(KEY_A, revocation_file=path), clock=clock)
    message = str(refused.value)
    assert message.startswith(f"sessions.revocation_file: cannot read {path}")
    assert problem in message
    assert "\n" not in message
    assert "move it away" in message


def test_a_revocation_file_that_is_a_directory_stops_the_start(
    tmp_path: Path, clock: Clock
) -> None:
    (tmp_path / "revoked").mkdir()
    with pytest.raises(StateFileError, match=r"sessions\.revocation_file: cannot read"):
        RevokedSessions(tmp_path / "revoked", clock=clock)


async def test_a_logout_on_a_full_disk_says_so_holds_here_and_is_written_later(
    tmp_path: Path, clock: Clock
) -> None:
    with small_disk(tmp_path / "disk") as disk:
        path = disk.path / "revoked"
        cookies = SessionCookies(settings(KEY_A, revocation_file=path), clock=clock)
        first = cookies.new(ANNA, "pupil")
        disk.fill()
        assert not await cookies.log_out(first)
        # Not on disk, and nothing half-written or temporary left there.
        assert disk.files() == set()
        # It holds in this process all the same.
        assert cookies.open(cookies.seal(first)) is None
        disk.free()
        second = cookies.new(ANNA, "pupil")
        assert await cookies.log_out(second)
        after = SessionCookies(settings(KEY_A, revocation_file=path), clock=clock)
        # The one that failed was written with the next.
        assert after.open(cookies.seal(first)) is None
        assert after.open(cookies.seal(second)) is None
        assert disk.files() == {"revoked"}


async def test_a_logout_on_a_read_only_disk_says_so(tmp_path: Path, clock: Clock) -> None:
    with small_disk(tmp_path / "disk") as disk:
        path = disk.path / "revoked"
        cookies = SessionCookies(settings(KEY_A, revocation_file=path), clock=clock)
        assert await cookies.log_out(cookies.new(ANNA, "pupil"))
        before = path.read_bytes()
        disk.read_only()
        assert not await cookies.log_out(cookies.new(ANNA, "pupil"))
        assert path.read_bytes() == before
        disk.writable()


async def test_a_failed_fsync_is_a_failed_logout_and_leaves_no_half_line(
    tmp_path: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a disk that reports an I/O error at fsync does: injected at the helper."""
    path = tmp_path / "revoked"
    cookies = SessionCookies(settings(KEY_A, revocation_file=path), clock=clock)
    assert await cookies.log_out(cookies.new(ANNA, "pupil"))
    before = path.read_bytes()

    def failing_fsync(descriptor: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    assert not await cookies.log_out(cookies.new(ANNA, "pupil"))
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["revoked"]


def _median_seconds(action: Callable[[], object], repetitions: int) -> float:
    times = []
    for _ in range(repetitions):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


@pytest.fixture
def memory_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory in memory where there is one: an fsync costs the same on every
    logout, and on a shared disk its noise would hide what is measured."""
    shm = Path("/dev/shm")
    if not shm.is_dir():
        yield tmp_path
        return
    directory = Path(tempfile.mkdtemp(dir=shm))
    yield directory
    shutil.rmtree(directory)


def test_a_logout_and_a_page_load_cost_the_same_with_50000_revocations(
    memory_dir: Path, clock: Clock
) -> None:
    """Nothing is walked per request and the file is not rewritten per logout."""
    many_path = memory_dir / "many"
    many_path.write_bytes(
        HEADER + b"".join(b"%d ended%d\n" % (START + 500, n) for n in range(50_000))
    )
    few_path = memory_dir / "few"
    few_path.write_bytes(HEADER + b"".join(b"%d ended%d\n" % (START + 500, n) for n in range(10)))
    many = SessionCookies(settings(KEY_A, revocation_file=many_path), clock=clock)
    few = SessionCookies(settings(KEY_A, revocation_file=few_path), clock=clock)
    assert many.open(many.seal(replace(many.new(ANNA, "pupil"), session_id="ended49999"))) is None

    def logout(cookies: SessionCookies) -> Callable[[], object]:
        return lambda: asyncio.run(cookies.log_out(cookies.new(ANNA, "pupil")))

    def page_load(cookies: SessionCookies) -> Callable[[], object]:
        cookie = cookies.seal(cookies.new(ANNA, "pupil"))
        return lambda: cookies.open(cookie)

    ratios = {}
    for name, make, repetitions in (("logout", logout, 300), ("page load", page_load, 20_000)):
        # Interleaved rounds, so that the machine's other work falls on both alike.
        rounds = [
            (
                _median_seconds(make(many), repetitions // 5),
                _median_seconds(make(few), repetitions // 5),
            )
            for _ in range(5)
        ]
        ratios[name] = statistics.median(m for m, _ in rounds) / statistics.median(
            f for _, f in rounds
        )
    assert ratios["logout"] < 3, ratios
    assert ratios["page load"] < 3, ratios
    # 300 logouts appended 300 lines; not one rewrite (COMPACT_AT_LEAST is far).
    assert len(_lines(many_path)) == 1 + 50_000 + 300


def test_touch_rewrites_only_after_the_touch_interval(
    cookies: SessionCookies, clock: Clock
) -> None:
    session = cookies.new(ANNA, "pupil")
    clock.advance(TOUCH_INTERVAL_SECONDS - 1)
    assert cookies.touch(session) is None
    clock.advance(1)
    touched = cookies.touch(session)
    assert touched == replace(session, last_seen=START + TOUCH_INTERVAL_SECONDS)


def test_role_check_is_due_after_role_refresh(cookies: SessionCookies, clock: Clock) -> None:
    session = cookies.new(ANNA, "teacher")
    assert not cookies.role_check_due(session)
    clock.advance(ROLE_REFRESH - ROLE_REFRESH // ROLE_CHECK_SPREAD - 1)
    assert not cookies.role_check_due(session)
    clock.advance(ROLE_REFRESH // ROLE_CHECK_SPREAD + 1)
    assert cookies.role_check_due(session)


def test_sessions_begun_together_come_due_over_the_last_fifth(
    cookies: SessionCookies, clock: Clock
) -> None:
    """A class logging in at once is not re-checked at once (each load would wait for
    the directory); a session is due from its moment on, whoever asks."""
    sessions = [cookies.new(ANNA, "pupil") for _ in range(200)]
    first_due: dict[str, int] = {}
    for second in range(ROLE_REFRESH + 1):
        for session in sessions:
            due = cookies.role_check_due(session)
            if session.session_id in first_due:
                assert due  # once due, due until checked
            elif due:
                first_due[session.session_id] = second
        clock.advance(1)
    assert len(first_due) == len(sessions)
    earliest = ROLE_REFRESH - ROLE_REFRESH // ROLE_CHECK_SPREAD
    assert min(first_due.values()) >= earliest
    # Spread: no second has more than a few of the class (200 over 61 s; at once
    # they would all be due in one).
    busiest = max(Counter(first_due.values()).values())
    assert busiest <= 15, busiest
    # The same moment for another process with the same settings.
    other = SessionCookies(settings(KEY_A), clock=clock)
    clock.advance(-(ROLE_REFRESH + 1) + first_due[sessions[0].session_id])
    assert other.role_check_due(sessions[0])
    clock.advance(-1)
    assert not other.role_check_due(sessions[0])


def test_a_recheck_takes_the_new_role_and_name_and_restarts_the_refresh(
    cookies: SessionCookies, clock: Clock
) -> None:
    session = cookies.new(ANNA, "teacher")
    clock.advance(ROLE_REFRESH)
    renamed = replace(ANNA, display_name="Anna Neu", email="anna.neu@school.example")
    rechecked = cookies.rechecked(session, renamed, "pupil")
    assert rechecked == Session(
        session_id=session.session_id,
        user_id=session.user_id,
        display_name="Anna Neu",
        email="anna.neu@school.example",
        role="pupil",
        issued_at=START,
        last_seen=START + ROLE_REFRESH,
        role_checked=START + ROLE_REFRESH,
    )
    assert not cookies.role_check_due(rechecked)


async def test_the_cookie_lasts_one_lifetime_and_is_cleared_by_name(
    cookies: SessionCookies,
) -> None:
    session = cookies.new(Person("anna", "Anna", "", frozenset()), "pupil")
    header = cookies.set_cookie(session)
    name, _, rest = header.partition("=")
    assert name == "__Host-jitsi_auth_session"
    assert f"Max-Age={LIFETIME}" in rest.split("; ")
    assert await cookies.load({name: rest.split(";")[0]}) == session
    assert await cookies.load({"jitsi_auth_session": rest.split(";")[0]}) is None
    assert cookies.clear_cookie().startswith("__Host-jitsi_auth_session=;")
    assert "Max-Age=0" in cookies.clear_cookie()


def test_very_long_names_still_fit_in_a_cookie(cookies: SessionCookies) -> None:
    long_person = Person("x", "Ü" * 5000, "é" * 5000 + "@school.example", frozenset())
    cookie = cookies.seal(cookies.new(long_person, "pupil"))
    opened = cookies.open(cookie)
    assert opened is not None
    assert opened.display_name.startswith("ÜÜÜ")


def test_the_largest_session_still_fits_in_a_cookie(cookies: SessionCookies) -> None:
    """Names, addresses and classes in any script: the sealed cookie stays under 4 KiB."""
    person = Person(
        "x" * 200,
        "😀" * 5000,
        "ü" * 5000,
        frozenset(),
        context_group="ä" * 64,
        avatar="https://school.example/" + "a" * 170,
    )
    cookie = cookies.seal(cookies.new(person, "pupil"))
    assert len(cookie) < MAX_COOKIE_LENGTH
    assert cookies.open(cookie) is not None
