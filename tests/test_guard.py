"""The guard's decision table, in process: every verdict, one row each.

The collaborators are the real ones (sessions, regulation, the credential
cache, role rules, tokens, guest links, room sizes); the directory is a
stand-in that keeps the real one's contract (``authenticate`` reports the
entry it found before the bind, raises InvalidCredentials or
DirectoryUnavailable; ``look_up`` answers None for somebody gone), and
Prosody's room-size API is the demo's stand-in on loopback. What nginx makes
of each verdict is tested through nginx (tests/test_flows.py and others).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest

from demo.jitsi_http import JitsiHttp
from demo.run import SUBJECT, write_demo_config
from demo.school import SCHOOL
from sidecar.authentication import Authenticator
from sidecar.config.settings import Settings, load_settings
from sidecar.credential_cache import CredentialCache
from sidecar.credentials import Credentials
from sidecar.guard import (
    Allow,
    Challenge,
    DecisionRecord,
    Guard,
    Page,
    Redirect,
    RoomAccessRequest,
    Verdict,
)
from sidecar.guest_links import GuestLinks
from sidecar.jitsi.room_budget import RoomBudget
from sidecar.jitsi.room_size import ANSWER_SECONDS, Asker, RoomSize
from sidecar.jitsi.tokens import RoomTokens
from sidecar.ldap.directory import Directory, EntryFound, UsualEntry
from sidecar.ldap.dn import canonical_dn
from sidecar.people import Person
from sidecar.refusals import DirectoryUnavailable, InvalidCredentials
from sidecar.regulation import Regulator
from sidecar.roles import RoleRules
from sidecar.rooms import room_named
from sidecar.sessions import COOKIE_NAME, SECURE_COOKIES, Session, SessionCookies
from sidecar.visits import Visits
from testbed.stack import basic_auth, followed, token_in
from tests.jitsi_rules import JitsiSite, admit

ADDRESS = "192.0.2.7"
TEACHER = SCHOOL.teachers[0]
PUPIL = SCHOOL.pupils[0]


def _person(uid: str, *groups: str) -> Person:
    known = SCHOOL.person(uid)
    return Person(
        user_id=uid,
        display_name=known.display_name,
        email="",
        groups=frozenset(canonical_dn(group) for group in groups),
    )


class StandInDirectory(Directory):
    """The school as a table; ``available`` False: every request fails as in an outage."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings.ldap)
        self.people = {
            TEACHER.uid: _person(TEACHER.uid, SCHOOL.teachers_group_dn),
            PUPIL.uid: _person(PUPIL.uid, SCHOOL.pupils_group_dn),
        }
        self.passwords = {TEACHER.uid: TEACHER.password, PUPIL.uid: PUPIL.password}
        self.available = True
        self.binds = 0
        self.look_ups = 0
        # Searches that take long: the directory asks which entry a bind may start with.
        self.slow = False
        self.usual_entries: list[str | None] = []

    async def authenticate(
        self,
        credentials: Credentials,
        *,
        found: EntryFound | None = None,
        usual: UsualEntry | None = None,
    ) -> Person:
        if not self.available:
            raise DirectoryUnavailable("ConnectionError")
        if self.slow and usual is not None:
            self.usual_entries.append(await usual())
        person = self.people.get(credentials.username)
        if person is None:
            raise InvalidCredentials
        if found is not None:
            await found(canonical_dn(f"uid={person.user_id},{SCHOOL.people_dn}"))
        self.binds += 1
        if credentials.password != self.passwords[person.user_id]:
            raise InvalidCredentials
        return person

    async def look_up(self, user_id: str) -> Person | None:
        self.look_ups += 1
        if not self.available:
            raise DirectoryUnavailable("ConnectionError")
        return self.people.get(user_id)


@dataclass
class Clock:
    now: float = 1_900_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Site:
    """A guard with everything it asks, and ways to ask it."""

    settings: Settings
    guard: Guard
    directory: StandInDirectory
    sessions: SessionCookies
    visits: Visits
    guest_links: GuestLinks
    tokens: RoomTokens
    jitsi: JitsiHttp
    clock: Clock
    jitsi_site: JitsiSite
    sent: list[Session | None] = field(default_factory=list)

    def open_room(self, name: str) -> None:
        """Somebody joins ``name``; the answer the guard had heard before grows old."""
        self.jitsi.open(room_named(name).backend_name)
        self.clock.now += ANSWER_SECONDS

    def session_of(self, uid: str, role: str) -> dict[str, str]:
        person = self.directory.people[uid]
        return self.cookies(self.sessions.new(person, role))

    def cookies(self, session: Session) -> dict[str, str]:
        return {SECURE_COOKIES.name(COOKIE_NAME): self.sessions.seal(session)}

    async def decide(
        self,
        uri: str,
        *,
        cookies: dict[str, str] | None = None,
        basic: tuple[str, str] | None = None,
        method: str = "GET",
        decision: DecisionRecord | None = None,
        address: str = ADDRESS,
    ) -> Verdict:
        authorization = basic_auth(*basic)["Authorization"] if basic is not None else None
        visit = self.visits.of(cookies or {})
        verdict = await self.guard.decide(
            RoomAccessRequest(
                uri=uri,
                visit=visit,
                method=method,
                authorization=authorization,
                client_address=address,
            ),
            decision,
        )
        self.sent.append(visit.cookie_to_send)
        return verdict


def _settings(tmp_path: Path, jitsi: JitsiHttp, methods: str) -> Settings:
    classroom = f'\n[classroom]\nwait_for_teacher = true\nroom_size_url = "{jitsi.room_size_url}"\n'
    return load_settings(
        write_demo_config(
            tmp_path,
            port=8080,
            # Never asked: the directory is a stand-in.
            ldap_url="ldap://127.0.0.1:9",
            methods=methods,
            extra=classroom,
        )
    )


@pytest.fixture(scope="module")
def prosody() -> Iterator[JitsiHttp]:
    # One for the module: each stop waits out the server's half-second poll.
    running = JitsiHttp(domain=SUBJECT).start()
    yield running
    running.stop()


@pytest.fixture
def jitsi(prosody: JitsiHttp) -> Iterator[JitsiHttp]:
    """Prosody with every room closed and nothing asked yet."""
    prosody.requests.clear()
    yield prosody
    for room in ("Mathe7b", "Physik8a"):
        prosody.close(room_named(room).backend_name)


async def _site(tmp_path: Path, jitsi: JitsiHttp, methods: str) -> AsyncIterator[Site]:
    settings = _settings(tmp_path, jitsi, methods)
    clock = Clock()
    directory = StandInDirectory(settings)
    roles = RoleRules(settings.roles)
    authenticator = Authenticator(
        directory,
        CredentialCache(settings.cache, keys=settings.sessions.keys),
        Regulator(settings.regulation),
        roles,
    )
    sessions = SessionCookies(settings.sessions, clock=clock)
    tokens = RoomTokens(settings.jitsi)
    guest_links = GuestLinks(settings.guests, clock=clock)
    async with aiohttp.ClientSession() as client:
        room_size = RoomSize(
            settings.classroom,
            domain=settings.xmpp_domain,
            client=client,
            token_for=None,
            clock=clock,
            budget=RoomBudget(),
        )
        guard = Guard(
            authenticator=authenticator,
            roles=roles,
            tokens=tokens,
            sessions=sessions,
            methods=settings.login.methods,
            room_size=room_size,
            guest_links=guest_links,
            tenants=settings.jitsi.tenant_set,
        )
        visits = Visits(
            sessions=sessions, directory=directory, roles=roles, methods=settings.login.methods
        )
        secret = (tmp_path / "app_secret").read_bytes()
        jitsi_site = JitsiSite(
            app_id="school-meet",
            app_secret=secret,
            subject=SUBJECT,
            accepted_audiences=("school-meet",),
        )
        yield Site(
            settings,
            guard,
            directory,
            sessions,
            visits,
            guest_links,
            tokens,
            jitsi,
            clock,
            jitsi_site,
        )
    directory.close()


@pytest.fixture
async def site(tmp_path: Path, jitsi: JitsiHttp) -> AsyncIterator[Site]:
    """Configured as ``make demo`` is (the form first, Basic accepted), pupils waiting."""
    async for made in _site(tmp_path, jitsi, '["form", "basic"]'):
        yield made


@pytest.fixture
async def basic_site(tmp_path: Path, jitsi: JitsiHttp) -> AsyncIterator[Site]:
    async for made in _site(tmp_path, jitsi, '["basic"]'):
        yield made


def _followed(redirect: Verdict) -> str:
    assert isinstance(redirect, Redirect)
    return followed(redirect.location)


# -- not a room ---------------------------------------------------------------


@pytest.mark.parametrize("uri", ["/auth/login", "/a/b/c", "/", ""])
async def test_what_is_no_room_gets_the_not_a_room_page(site: Site, uri: str) -> None:
    decision = DecisionRecord()
    verdict = await site.decide(uri, cookies=site.session_of(TEACHER.uid, "teacher"))
    assert verdict == Page("not-a-room")
    verdict = await site.decide(uri, decision=decision)
    assert verdict == Page("not-a-room")
    assert decision.reason.startswith("not a room")


# -- nobody known yet ---------------------------------------------------------------


async def test_nobody_is_sent_to_the_login_form_with_the_room_to_come_back_to(
    site: Site,
) -> None:
    decision = DecisionRecord()
    verdict = await site.decide("/Mathe7b?lang=de", decision=decision)
    assert verdict == Redirect("/auth/login?next=%2FMathe7b%3Flang%3Dde")
    assert decision.method == "none"


async def test_nobody_is_challenged_where_basic_comes_first(basic_site: Site) -> None:
    assert await basic_site.decide("/Mathe7b") == Challenge()


async def test_a_wrong_password_is_challenged_again(site: Site) -> None:
    decision = DecisionRecord()
    verdict = await site.decide("/Mathe7b", basic=(TEACHER.uid, "wrong"), decision=decision)
    assert verdict == Challenge()
    assert decision.method == "basic"
    assert decision.reason == InvalidCredentials.summary


async def test_a_session_of_a_school_person_does_not_count_where_only_basic_is(
    basic_site: Site,
) -> None:
    cookies = basic_site.session_of(TEACHER.uid, "teacher")
    assert await basic_site.decide("/Mathe7b", cookies=cookies) == Challenge()


# -- tokens -------------------------------------------------------------------------


async def test_a_session_without_a_token_gets_a_fresh_one_for_the_room(site: Site) -> None:
    decision = DecisionRecord()
    verdict = await site.decide(
        "/Mathe7b", cookies=site.session_of(TEACHER.uid, "teacher"), decision=decision
    )
    assert isinstance(verdict, Redirect)
    assert verdict.location.startswith("/Mathe7b?jwt=")
    admission = admit(token_in(verdict.location), site.jitsi_site, "Mathe7b")
    assert admission.user_id == TEACHER.uid
    assert admission.moderator
    assert decision.minted
    assert (decision.method, decision.user, decision.role) == ("session", TEACHER.uid, "teacher")


async def test_a_current_token_serves_the_page(site: Site) -> None:
    cookies = site.session_of(TEACHER.uid, "teacher")
    first = await site.decide("/Mathe7b", cookies=cookies)
    decision = DecisionRecord()
    verdict = await site.decide(_followed(first), cookies=cookies, decision=decision)
    assert verdict == Allow(TEACHER.uid)
    assert not decision.minted


async def test_another_method_with_a_current_token_goes_to_the_same_address(site: Site) -> None:
    cookies = site.session_of(TEACHER.uid, "teacher")
    first = await site.decide("/Mathe7b", cookies=cookies)
    decision = DecisionRecord()
    verdict = await site.decide(_followed(first), cookies=cookies, method="POST", decision=decision)
    assert verdict == first
    assert not decision.minted
    assert await site.decide(_followed(first), cookies=cookies, method="HEAD") == Allow(TEACHER.uid)


async def test_a_token_for_another_room_or_person_is_replaced(site: Site) -> None:
    teacher = await site.decide("/Mathe7b", cookies=site.session_of(TEACHER.uid, "teacher"))
    other_room = _followed(teacher).replace("/Mathe7b?", "/Physik8a?")
    verdict = await site.decide(other_room, cookies=site.session_of(TEACHER.uid, "teacher"))
    assert isinstance(verdict, Redirect)
    assert admit(token_in(verdict.location), site.jitsi_site, "Physik8a").user_id == TEACHER.uid
    site.open_room("Mathe7b")
    pupil = await site.decide(_followed(teacher), cookies=site.session_of(PUPIL.uid, "pupil"))
    assert isinstance(pupil, Redirect)
    admission = admit(token_in(pupil.location), site.jitsi_site, "Mathe7b")
    assert admission.user_id == PUPIL.uid
    assert not admission.moderator


async def test_basic_credentials_get_a_token_without_a_session(site: Site) -> None:
    decision = DecisionRecord()
    verdict = await site.decide(
        "/Mathe7b", basic=(TEACHER.uid, TEACHER.password), decision=decision
    )
    assert isinstance(verdict, Redirect)
    assert admit(token_in(verdict.location), site.jitsi_site, "Mathe7b").user_id == TEACHER.uid
    assert (decision.method, decision.role) == ("basic", "teacher")
    assert site.sent == [None]


# -- waiting --------------------------------------------------------------------------


async def test_a_pupil_waits_while_the_room_is_closed_and_a_teacher_never_does(
    site: Site,
) -> None:
    pupil = site.session_of(PUPIL.uid, "pupil")
    decision = DecisionRecord()
    assert await site.decide("/Mathe7b", cookies=pupil, decision=decision) == Page("waiting")
    assert decision.reason == "room not open yet"
    teacher = await site.decide("/Mathe7b", cookies=site.session_of(TEACHER.uid, "teacher"))
    # Even with the teacher's token, the page is not served while the room is closed.
    assert await site.decide(_followed(teacher), cookies=pupil) == Page("waiting")
    site.open_room("Mathe7b")
    assert isinstance(await site.decide("/Mathe7b", cookies=pupil), Redirect)


async def test_one_decision_asks_whether_the_room_is_open_once(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    site.open_room("Mathe7b")
    asked: list[str] = []
    is_open = RoomSize.is_open

    async def counted(room_size: RoomSize, backend_room: str, tenant: str, asker: Asker) -> bool:
        asked.append(backend_room)
        return await is_open(room_size, backend_room, tenant, asker)

    monkeypatch.setattr(RoomSize, "is_open", counted)
    pupil = site.session_of(PUPIL.uid, "pupil")
    site.clock.now += site.settings.sessions.role_refresh  # the role is re-read in between
    assert isinstance(await site.decide("/Mathe7b", cookies=pupil), Redirect)
    assert asked == [room_named("Mathe7b").backend_name]


async def test_a_waiting_class_costs_no_directory_look_ups(site: Site) -> None:
    """The waiting page checks again every few seconds: with the role check due, no
    check may cost a directory request (the room is closed: no token is minted)."""
    pupils = [site.session_of(PUPIL.uid, "pupil") for _ in range(5)]
    site.clock.now += site.settings.sessions.role_refresh
    for _ in range(3):
        for pupil in pupils:
            assert await site.decide("/Mathe7b", cookies=pupil) == Page("waiting")
        site.clock.now += ANSWER_SECONDS  # each check asks Prosody again
    assert (site.directory.look_ups, site.directory.binds) == (0, 0)
    assert set(site.sent) == {None}


# -- roles ----------------------------------------------------------------------------


async def test_a_session_whose_person_lost_every_role_is_forbidden_and_ended(site: Site) -> None:
    cookies = site.session_of(TEACHER.uid, "teacher")
    site.directory.people[TEACHER.uid] = _person(TEACHER.uid)
    assert isinstance(await site.decide("/Mathe7b", cookies=cookies), Redirect)  # not due yet
    site.clock.now += site.settings.sessions.role_refresh
    decision = DecisionRecord()
    assert await site.decide("/Mathe7b", cookies=cookies, decision=decision) == Page("forbidden")
    assert decision.reason == "no role any more"
    # Ended: the same cookie is nobody now.
    assert isinstance(await site.decide("/Mathe7b", cookies=cookies), Redirect)
    assert site.sent[-1] is None
    assert (await site.visits.of(cookies).session()) is None


async def test_a_role_re_read_is_sent_back_with_the_token(site: Site) -> None:
    cookies = site.session_of(PUPIL.uid, "pupil")
    site.directory.people[PUPIL.uid] = _person(PUPIL.uid, SCHOOL.teachers_group_dn)
    site.clock.now += site.settings.sessions.role_refresh
    decision = DecisionRecord()
    # Waiting is judged from the role the session has, then the new one counts.
    verdict = await site.decide("/Mathe7b", cookies=cookies, decision=decision)
    assert verdict == Page("waiting")
    site.open_room("Mathe7b")
    verdict = await site.decide("/Mathe7b", cookies=cookies, decision=decision)
    assert isinstance(verdict, Redirect)
    assert decision.role == "teacher"
    renewed = site.sent[-1]
    assert renewed is not None
    assert renewed.role == "teacher"
    assert admit(token_in(verdict.location), site.jitsi_site, "Mathe7b").moderator


async def test_basic_credentials_without_a_role_are_forbidden(site: Site) -> None:
    site.directory.people[PUPIL.uid] = _person(PUPIL.uid)
    verdict = await site.decide("/Mathe7b", basic=(PUPIL.uid, PUPIL.password))
    assert verdict == Page("forbidden")


# -- bans and outages ---------------------------------------------------------------------


async def test_too_many_wrong_passwords_get_the_banned_page_before_any_bind(site: Site) -> None:
    for _ in range(site.settings.regulation.max_failures_per_user):
        assert await site.decide("/Mathe7b", basic=(PUPIL.uid, "wrong")) == Challenge()
    binds = site.directory.binds
    decision = DecisionRecord()
    verdict = await site.decide("/Mathe7b", basic=(PUPIL.uid, PUPIL.password), decision=decision)
    assert verdict == Page("banned")
    assert site.directory.binds == binds
    assert decision.reason.startswith("banned")


async def test_cached_basic_credentials_make_a_new_address_one_of_her_usual_places(
    site: Site,
) -> None:
    """Her browser sends the Basic header it was given at home from school as well: the
    cache answers there without a bind, and school becomes a usual place, which
    an attacker's failures from elsewhere do not close."""
    teacher = (TEACHER.uid, TEACHER.password)
    assert isinstance(await site.decide("/Mathe7b", basic=teacher), Redirect)
    binds = site.directory.binds
    school = "198.51.100.20"
    assert isinstance(await site.decide("/Mathe7b", basic=teacher, address=school), Redirect)
    assert site.directory.binds == binds
    regulation = site.settings.regulation
    assert regulation.max_failures_per_user_overall < 250
    for number in range(regulation.max_failures_per_user_overall):
        await site.decide("/Mathe7b", basic=(TEACHER.uid, "wrong"), address=f"203.0.113.{number}")
    assert await site.decide("/Mathe7b", basic=teacher, address="203.0.113.251") == Page("banned")
    assert isinstance(await site.decide("/Mathe7b", basic=teacher, address=school), Redirect)


async def test_a_bind_may_start_before_a_slow_search_only_at_her_usual_place(
    site: Site,
) -> None:
    """A slow directory may be sent the bind to her entry beside its search: at
    her usual place only. Elsewhere, or for a name never admitted, the answer must
    not come sooner than a stranger's would."""
    teacher = (TEACHER.uid, TEACHER.password)
    assert isinstance(await site.decide("/Mathe7b", basic=teacher), Redirect)
    site.directory.slow = True
    entries = site.directory.usual_entries
    await site.decide("/Mathe7b", basic=(TEACHER.uid, "wrong"))
    assert entries == [canonical_dn(TEACHER.dn)]
    await site.decide("/Mathe7b", basic=(TEACHER.uid, "wrong"), address="203.0.113.7")
    await site.decide("/Mathe7b", basic=(PUPIL.uid, "wrong"))
    assert entries[1:] == [None, None]


async def test_an_unavailable_directory_gets_its_page(site: Site) -> None:
    site.directory.available = False
    decision = DecisionRecord()
    verdict = await site.decide(
        "/Mathe7b", basic=(TEACHER.uid, TEACHER.password), decision=decision
    )
    assert verdict == Page("unavailable")
    assert decision.reason == DirectoryUnavailable.summary


async def test_an_outage_keeps_a_session_s_role(site: Site) -> None:
    cookies = site.session_of(TEACHER.uid, "teacher")
    site.directory.available = False
    site.clock.now += site.settings.sessions.role_refresh
    verdict = await site.decide("/Mathe7b", cookies=cookies)
    assert isinstance(verdict, Redirect)
    assert admit(token_in(verdict.location), site.jitsi_site, "Mathe7b").moderator
    # Asked again one refresh interval later, not at the next request.
    kept = site.sent[-1]
    assert kept is not None
    await site.decide("/Mathe7b", cookies=site.cookies(kept))
    assert site.directory.look_ups == 1


async def test_loads_with_the_cookie_of_before_a_role_check_cost_one_look_up(
    site: Site,
) -> None:
    """A browser's loads already under way (or a client that keeps no cookies) send
    the cookie whose role check is due: the directory is asked once for all of them."""
    cookies = site.session_of(TEACHER.uid, "teacher")
    site.clock.now += site.settings.sessions.role_refresh
    verdicts = await asyncio.gather(*(site.decide("/Mathe7b", cookies=cookies) for _ in range(5)))
    verdicts.append(await site.decide("/Mathe7b", cookies=cookies))
    assert site.directory.look_ups == 1
    for verdict in verdicts:
        assert isinstance(verdict, Redirect)
        assert admit(token_in(verdict.location), site.jitsi_site, "Mathe7b").moderator
    # Each answer carries the rechecked session, so the browser stops sending the old one.
    assert all(sent is not None and sent.role_checked == site.clock.now for sent in site.sent)


# -- guests ---------------------------------------------------------------------------------


async def _guest(site: Site, room: str) -> tuple[dict[str, str], str]:
    path = await site.guest_links.create(room_named(room), 1, TEACHER.uid, "Teacher")
    link = await site.guest_links.open(path.removeprefix("/auth/guest/"))
    session = site.sessions.new_guest(
        display_name="Gast",
        room=link.room,
        link_id=link.link_id,
        link_expires_at=link.expires_at,
        lifetime=site.settings.guests.session_lifetime,
    )
    return site.cookies(session), link.link_id


async def test_a_guest_enters_the_one_room_of_the_invitation(site: Site) -> None:
    cookies, _ = await _guest(site, "Mathe7b")
    decision = DecisionRecord()
    assert await site.decide("/Mathe7b", cookies=cookies, decision=decision) == Page("waiting")
    assert decision.method == "guest"
    site.open_room("Mathe7b")
    verdict = await site.decide("/Mathe7b", cookies=cookies)
    assert isinstance(verdict, Redirect)
    assert not admit(token_in(verdict.location), site.jitsi_site, "Mathe7b").moderator
    assert site.directory.look_ups == 0


async def test_a_guest_in_another_room_gets_the_wrong_room_page(site: Site) -> None:
    cookies, _ = await _guest(site, "Mathe7b")
    decision = DecisionRecord()
    assert await site.decide("/Physik8a", cookies=cookies, decision=decision) == Page("wrong-room")
    assert decision.reason == "a guest in another room"


async def test_a_guest_whose_link_was_withdrawn_is_out(site: Site) -> None:
    cookies, link_id = await _guest(site, "Mathe7b")
    assert await site.guest_links.withdraw(link_id, TEACHER.uid)
    assert await site.decide("/Mathe7b", cookies=cookies) == Page("guest-invalid")
    assert (await site.visits.of(cookies).session()) is None


# -- the session cookie ---------------------------------------------------------------------


async def test_a_session_is_sent_back_only_once_a_minute_has_passed(site: Site) -> None:
    cookies = site.session_of(TEACHER.uid, "teacher")
    await site.decide("/Mathe7b", cookies=cookies)
    assert site.sent == [None]
    site.clock.now += 61
    await site.decide("/Mathe7b", cookies=cookies)
    touched = site.sent[-1]
    assert touched is not None
    assert touched.last_seen == int(site.clock.now)


async def test_a_token_that_cannot_be_made_sends_no_session_back(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The web layer turns the error into its error page: a renewed session
    must not ride on that page."""
    cookies = site.session_of(TEACHER.uid, "teacher")
    site.clock.now += 61  # due to be touched: a renewed cookie would go with a token

    def cannot_mint(*args: object, **kwargs: object) -> str:
        raise RuntimeError("a bug")

    monkeypatch.setattr(site.guard._tokens, "mint", cannot_mint)
    visit = site.visits.of(cookies)
    request = RoomAccessRequest(
        uri="/Mathe7b", visit=visit, method="GET", authorization=None, client_address=ADDRESS
    )
    with pytest.raises(RuntimeError):
        await site.guard.decide(request, None)
    assert visit.cookie_to_send is None
