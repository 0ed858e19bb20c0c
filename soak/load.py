"""The soak's load, in a process of its own (``python -m soak.load JOB RESULT``):
people with sessions, cached and new Basic logins, form logins, wrong
passwords, unknown names and waiting pupils, through nginx.

Open loop (``mode = "open"``): requests follow a schedule, ``rate`` per
second, whatever the answers do, so that a stall is paid for by every request
sent during it. Closed loop (``"closed"``): ``connections`` clients, each
sending its next request when the last is answered: how much the stack can
take. It stops after ``seconds`` or at SIGTERM, whichever comes first.

Every answer is counted by second (``time.monotonic()``, the clock the harness
shares), kind and status; latency by second and by whether the kind needs the
directory. A wrong password or an unknown name that gets a room (200, or a
redirect carrying a token) is a wrong admit.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import random
import re
import secrets
import signal
import sys
import time
from base64 import b64encode
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from soak.client import (
    ANSWER_TIMEOUT,
    QUEUE_TIMEOUT,
    Answer,
    NoConnection,
    Pool,
    ProtocolError,
    request_bytes,
    send_once,
)

SETUP_SECONDS = 60.0
TEACHER_ROOM = "/Mathe7b"
CLOSED_ROOM = "/Geschlossen"  # never open: pupils wait
SOURCES = tuple(f"127.0.1.{number}" for number in range(1, 17))
# Scheduled requests waiting for a connection, at most, per connection: beyond
# that the client would only pile up; what it did not send is counted.
BACKLOG_PER_CONNECTION = 20
LATENCY_STEPS_PER_E = 50  # histogram buckets 2 % apart
EXAMPLES = 20

SESSION_TOKEN = "session + token"  # noqa: S105 - a kind of request
SESSION = "session"
WAITING = "waiting pupil"
CACHED_BASIC = "cached basic"
NEW_BASIC = "new basic"
FORM_LOGIN = "form login"
WRONG_PASSWORD = "wrong password"  # noqa: S105 - a kind of request
UNKNOWN_NAME = "unknown name"
# Each rotating person from each of SOURCES in turn: after that many logins, every
# pair of person and address the load ever makes is a known place (see soak.phases).
USUAL_PLACE = "usual place"
# Kinds that need the directory (a bind or a search) to be answered.
DIRECTORY_KINDS = frozenset({NEW_BASIC, FORM_LOGIN, WRONG_PASSWORD, UNKNOWN_NAME, USUAL_PLACE})
MUST_NOT_ENTER = frozenset({WRONG_PASSWORD, UNKNOWN_NAME})

DEFAULT_WEIGHTS = {
    SESSION_TOKEN: 25,
    SESSION: 15,
    WAITING: 15,
    CACHED_BASIC: 15,
    NEW_BASIC: 6,
    FORM_LOGIN: 3,
    WRONG_PASSWORD: 8,
    UNKNOWN_NAME: 8,
}


@dataclass(frozen=True)
class LoadJob:
    port: int
    mode: str  # "open" or "closed"
    rate: float
    seconds: float
    connections: int
    teachers: list[tuple[str, str]]  # uid, password: sessions and cached Basic
    pupils: list[tuple[str, str]]  # sessions that wait
    rotating: list[tuple[str, str]]  # new Basic and form logins, in turn
    basic_ttl: float  # the sidecar's cache.basic_ttl: a login after that is new
    weights: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    seed: int = 1
    first_place: int = 0  # usual places: where the pairs go on from (one fill step to the next)
    host: str = "127.0.0.1"


def basic(uid: str, password: str) -> str:
    return "Basic " + b64encode(f"{uid}:{password}".encode()).decode()


def bucket(seconds: float) -> int:
    return round(math.log(max(seconds, 1e-6) * 1e6) * LATENCY_STEPS_PER_E)


def bucket_ms(key: int) -> float:
    return math.exp(key / LATENCY_STEPS_PER_E) / 1000


def admits(answer: Answer) -> bool:
    """Whether the answer lets the asker into a room: the page, or a token."""
    return answer.status == 200 or "jwt=" in answer.header("location")


@dataclass
class Recorder:
    answers: dict[int, Counter[str]] = field(default_factory=dict)  # "kind|status"
    latency: dict[int, dict[str, Counter[int]]] = field(default_factory=dict)
    longest: dict[int, dict[str, float]] = field(default_factory=dict)
    wrong_admits: Counter[int] = field(default_factory=Counter)
    not_sent: Counter[int] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)

    def count(self, kind: str, outcome: str, seconds: float) -> None:
        now = int(time.monotonic())
        self.answers.setdefault(now, Counter())[f"{kind}|{outcome}"] += 1
        group = "directory" if kind in DIRECTORY_KINDS else "no directory"
        self.latency.setdefault(now, {}).setdefault(group, Counter())[bucket(seconds)] += 1
        longest = self.longest.setdefault(now, {})
        longest[group] = max(longest.get(group, 0.0), round(seconds * 1000, 1))
        failed = not outcome.isdigit() or int(outcome) >= 500
        if failed and len(self.examples) < EXAMPLES:
            self.examples.append(f"{time.monotonic():.1f} {kind}: {outcome}")

    def as_json(self) -> dict[str, Any]:
        return {
            "answers": {str(k): dict(v) for k, v in self.answers.items()},
            "latency": {
                str(k): {g: {str(b): n for b, n in c.items()} for g, c in v.items()}
                for k, v in self.latency.items()
            },
            "longest_ms": {str(k): v for k, v in self.longest.items()},
            "wrong_admits": {str(k): v for k, v in self.wrong_admits.items()},
            "not_sent": {str(k): v for k, v in self.not_sent.items()},
            "examples": self.examples,
        }


class SetupError(RuntimeError):
    """The load could not log its people in."""


def cookies_from(answer: Answer, jar: dict[str, str]) -> None:
    for header in answer.all("set-cookie"):
        pair = header.split(";", 1)[0]
        name, _, value = pair.partition("=")
        if value and "max-age=0" not in header.lower():
            jar[name.strip()] = value
        else:
            jar.pop(name.strip(), None)


def cookie_header(jar: dict[str, str]) -> dict[str, str]:
    if not jar:
        return {}
    return {"Cookie": "; ".join(f"{name}={value}" for name, value in jar.items())}


class Load:
    def __init__(self, job: LoadJob) -> None:
        self.job = job
        self.record = Recorder()
        self.random = random.Random(job.seed)  # noqa: S311 - a load mix, not a secret
        # Two sets of connections, as two crowds of browsers: people whose
        # answer needs the directory, and the rest. When the directory hangs,
        # the first crowd waits; the second must not queue behind it here in
        # the client, or its latency would be the client's.
        self.pool = Pool(job.host, job.port, job.connections, SOURCES)
        self.directory_pool = Pool(job.host, job.port, job.connections, SOURCES)
        self.fresh = asyncio.Semaphore(job.connections)
        self.teacher_sessions: list[tuple[dict[str, str], str]] = []  # cookies, room with token
        self.pupil_sessions: list[dict[str, str]] = []
        self.cached = [basic(uid, password) for uid, password in job.teachers]
        self.rotation = deque(job.rotating)
        self.last_login: dict[str, float] = {}
        kinds = [kind for kind, weight in job.weights.items() if weight > 0]
        self.kinds = kinds
        self.weights = [job.weights[kind] for kind in kinds]
        self.actions: dict[str, Callable[[], Awaitable[None]]] = {
            SESSION_TOKEN: self.session_with_token,
            SESSION: self.session,
            WAITING: self.waiting,
            CACHED_BASIC: self.cached_basic,
            NEW_BASIC: self.new_basic,
            FORM_LOGIN: self.form_login,
            WRONG_PASSWORD: self.wrong_password,
            UNKNOWN_NAME: self.unknown_name,
            USUAL_PLACE: self.usual_place,
        }
        self.places_visited = 0

    # -- requests --------------------------------------------------------------

    def pool_for(self, kind: str) -> Pool:
        return self.directory_pool if kind in DIRECTORY_KINDS else self.pool

    async def get(self, kind: str, path: str, headers: dict[str, str]) -> Answer:
        return await self.pool_for(kind).send(request_bytes("GET", path, headers))

    async def timed(self, kind: str, send: Callable[[], Awaitable[Answer]]) -> Answer | None:
        started = time.monotonic()
        try:
            answer = await send()
        except NoConnection:
            self.record.not_sent[int(time.monotonic())] += 1
            return None
        except TimeoutError:
            self.record.count(kind, "timeout", time.monotonic() - started)
            return None
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ProtocolError):
            self.record.count(kind, "connection error", time.monotonic() - started)
            return None
        self.record.count(kind, str(answer.status), time.monotonic() - started)
        if kind in MUST_NOT_ENTER and admits(answer):
            self.record.wrong_admits[int(time.monotonic())] += 1
        return answer

    async def log_in(self, uid: str, password: str, room: str, kind: str) -> dict[str, str]:
        """The login form, then its POST: the cookies a browser keeps (empty if refused)."""
        jar: dict[str, str] = {}
        form_path = f"/auth/login?next={quote(room, safe='')}"
        form = await self.timed(kind, lambda: self.get(kind, form_path, {"Accept-Language": "en"}))
        if form is None or form.status != 200:
            return {}
        cookies_from(form, jar)
        found = re.search(rb'name="csrf_token" value="([^"]+)"', form.body)
        if found is None:
            return {}
        body = urlencode(
            {
                "csrf_token": found.group(1).decode(),
                "next": room,
                "username": uid,
                "password": password,
            }
        ).encode()
        headers = {
            "Accept-Language": "en",
            "Content-Type": "application/x-www-form-urlencoded",
            **cookie_header(jar),
        }
        raw = request_bytes("POST", "/auth/login", headers, body)
        posted = await self.timed(kind, lambda: self.pool_for(kind).send(raw))
        if posted is None or posted.status != 302:
            return {}
        cookies_from(posted, jar)
        return jar

    async def session_with_token(self) -> None:
        jar, room = self.random.choice(self.teacher_sessions)
        await self.timed(SESSION_TOKEN, lambda: self.get(SESSION_TOKEN, room, cookie_header(jar)))

    async def session(self) -> None:
        jar, _ = self.random.choice(self.teacher_sessions)
        await self.timed(SESSION, lambda: self.get(SESSION, TEACHER_ROOM, cookie_header(jar)))

    async def waiting(self) -> None:
        jar = self.random.choice(self.pupil_sessions)
        await self.timed(WAITING, lambda: self.get(WAITING, CLOSED_ROOM, cookie_header(jar)))

    async def cached_basic(self) -> None:
        header = {"Authorization": self.random.choice(self.cached)}
        await self.timed(CACHED_BASIC, lambda: self.get(CACHED_BASIC, TEACHER_ROOM, header))

    def _next_person(self) -> tuple[str, str, bool]:
        """The person whose last login is longest ago, and whether it is a new one."""
        uid, password = self.rotation[0]
        self.rotation.rotate(-1)
        now = time.monotonic()
        new = now - self.last_login.get(uid, -math.inf) > self.job.basic_ttl + 1
        self.last_login[uid] = now
        return uid, password, new

    async def new_basic(self) -> None:
        uid, password, new = self._next_person()
        header = {"Authorization": basic(uid, password)}
        kind = NEW_BASIC if new else CACHED_BASIC
        await self.timed(kind, lambda: self.get(kind, TEACHER_ROOM, header))

    async def form_login(self) -> None:
        uid, password = self.random.choice(self.job.rotating)
        await self.log_in(uid, password, TEACHER_ROOM, FORM_LOGIN)

    async def wrong_password(self) -> None:
        uid, _ = self.random.choice(self.job.rotating)
        header = {"Authorization": basic(uid, secrets.token_urlsafe(9))}
        await self.timed(WRONG_PASSWORD, lambda: self.get(WRONG_PASSWORD, TEACHER_ROOM, header))

    async def unknown_name(self) -> None:
        # From an address of its own, as people all over town would come.
        source = ".".join(["127", *(str(self.random.randrange(1, 255)) for _ in range(3))])
        name = f"niemand.{secrets.token_hex(5)}"
        raw = request_bytes("GET", TEACHER_ROOM, {"Authorization": basic(name, "geheim123")})
        async with self.fresh:
            await self.timed(
                UNKNOWN_NAME, lambda: send_once(self.job.host, self.job.port, raw, source)
            )

    async def usual_place(self) -> None:
        """The next pair of a rotating person and one of SOURCES, on a connection of
        its own from that address: a Basic login that the sidecar checks and learns."""
        index = self.job.first_place + self.places_visited
        self.places_visited += 1
        uid, password = self.job.rotating[index % len(self.job.rotating)]
        source = SOURCES[(index // len(self.job.rotating)) % len(SOURCES)]
        raw = request_bytes("GET", TEACHER_ROOM, {"Authorization": basic(uid, password)})
        async with self.fresh:
            await self.timed(
                USUAL_PLACE, lambda: send_once(self.job.host, self.job.port, raw, source)
            )

    # -- setup and the loops -----------------------------------------------------

    async def set_up(self) -> None:
        deadline = time.monotonic() + SETUP_SECONDS
        while time.monotonic() < deadline:
            try:
                await self._set_up_once()
                return
            except (SetupError, OSError) as error:
                problem = error
            await asyncio.sleep(0.5)
        raise SetupError(f"could not log the load's people in: {problem}")

    async def _set_up_once(self) -> None:
        self.teacher_sessions, self.pupil_sessions = [], []
        for uid, password in self.job.teachers[:4]:
            jar = await self.log_in(uid, password, TEACHER_ROOM, "setup")
            entered = await self.get(SESSION, TEACHER_ROOM, cookie_header(jar)) if jar else None
            location = entered.header("location") if entered else ""
            if "jwt=" not in location:
                raise SetupError(f"teacher {uid}: no token ({entered and entered.status})")
            self.teacher_sessions.append((jar, location.partition("#")[0]))
        for uid, password in self.job.pupils[:4]:
            jar = await self.log_in(uid, password, CLOSED_ROOM, "setup")
            if not jar:
                raise SetupError(f"pupil {uid}: login refused")
            self.pupil_sessions.append(jar)
        for header in self.cached:
            await self.get(CACHED_BASIC, TEACHER_ROOM, {"Authorization": header})
        self.record = Recorder()  # the setup's answers are not the load's

    async def one(self) -> None:
        kind = self.random.choices(self.kinds, self.weights)[0]
        await self.actions[kind]()

    async def open_loop(self, stop: asyncio.Event) -> None:
        in_flight: set[asyncio.Task[None]] = set()
        backlog = self.job.connections * BACKLOG_PER_CONNECTION
        started = time.monotonic()
        total = int(self.job.rate * self.job.seconds)
        for index in range(total):
            due = started + index / self.job.rate
            wait = due - time.monotonic()
            if wait > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), wait)
            if stop.is_set():
                break
            if len(in_flight) >= backlog:
                self.record.not_sent[int(time.monotonic())] += 1
                continue
            task = asyncio.create_task(self.one())
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
        if in_flight:
            await asyncio.wait(in_flight, timeout=QUEUE_TIMEOUT + ANSWER_TIMEOUT + 5)

    async def closed_loop(self, stop: asyncio.Event) -> None:
        deadline = time.monotonic() + self.job.seconds

        async def client() -> None:
            while not stop.is_set() and time.monotonic() < deadline:
                await self.one()

        await asyncio.gather(*(client() for _ in range(self.job.connections)))


async def run(job: LoadJob) -> dict[str, Any]:
    load = Load(job)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await load.set_up()
    started = time.monotonic()
    print("ready", started, flush=True)  # the harness times its faults from here
    if job.mode == "closed":
        await load.closed_loop(stop)
    else:
        await load.open_loop(stop)
    ended = time.monotonic()
    load.pool.close()
    load.directory_pool.close()
    return {"started": started, "ended": ended, **load.record.as_json()}


def main() -> int:
    job_path, result_path = sys.argv[1:3]
    raw = json.loads(Path(job_path).read_text("utf-8"))
    job = LoadJob(**raw)
    try:
        result = asyncio.run(run(job))
    except SetupError as error:
        print(f"soak load: {error}", file=sys.stderr)
        return 2
    Path(result_path).write_text(json.dumps(result), "utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
