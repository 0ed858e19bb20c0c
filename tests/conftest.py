"""Fixtures for the real components the tests run against."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Playwright, sync_playwright

from demo.jitsi_http import JitsiHttp
from demo.ports import free_port
from demo.run import DEMO_METHODS, SUBJECT, write_demo_config
from demo.slapd import Slapd
from testbed.configs import LENIENT_REGULATION, SHARED_SECRETS
from testbed.redis_server import RedisServer
from testbed.stack import Stack, start_stack
from tests.jitsi_rules import JitsiSite


@pytest.fixture(scope="session")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slapd]:
    """One slapd holding the demo school for the whole run: read it, do not change it.

    A test that stops, restarts or writes starts its own ``Slapd(tmp_path / "slapd")``.
    """
    with Slapd(tmp_path_factory.mktemp("slapd")) as server:
        yield server


# The files that make two sidecars nodes of one site (demo/run.py writes them).

# Shared stacks see many deliberate failures from 127.0.0.1; regulation has
# its own tests with its own stack.


def _stack(
    slapd: Slapd,
    workdir: Path,
    *,
    methods: str = DEMO_METHODS,
    extra: str = LENIENT_REGULATION,
    replace: dict[str, str] | None = None,
    tenants: str | None = None,
    secrets_of: Stack | None = None,
) -> Stack:
    port = free_port()
    config = write_demo_config(
        workdir, port=port, ldap_url=slapd.ldap_url, methods=methods, extra=extra
    )
    if secrets_of is not None:
        # Another node of the same site: the same keys for tokens, cookies and links.
        for name in SHARED_SECRETS:
            shutil.copyfile(secrets_of.sidecar.config.parent / name, workdir / name)
    text = config.read_text("utf-8")
    for old, new in (replace or {}).items():
        assert old in text, old
        text = text.replace(old, new)
    config.write_text(text, "utf-8")
    return start_stack(workdir, config, workdir / "sidecar.sock", port, tenants=tenants)


@pytest.fixture(scope="session")
def stack(slapd: Slapd, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """nginx (a Jitsi-shaped site with the include) -> the sidecar -> the shared slapd.

    Configured as ``make demo`` is: the login form first, Basic accepted.
    """
    running = _stack(slapd, tmp_path_factory.mktemp("stack"))
    yield running
    running.stop()


@pytest.fixture(scope="session")
def basic_stack(slapd: Slapd, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Like ``stack``, with ``methods = ["basic"]``: anonymous browsers get a Basic challenge."""
    running = _stack(slapd, tmp_path_factory.mktemp("basic"), methods='["basic"]')
    yield running
    running.stop()


@pytest.fixture(scope="session")
def jitsi_site(stack: Stack) -> JitsiSite:
    """The Prosody side that matches the stack's configuration."""
    secret = (stack.sidecar.config.parent / "app_secret").read_bytes()
    return JitsiSite(
        app_id="school-meet",
        app_secret=secret,
        subject="meet.school.example",
        accepted_audiences=("school-meet",),
    )


@pytest.fixture
def make_stack(tmp_path: Path) -> Iterator[Callable[..., Stack]]:
    """Start a stack of one's own (own settings, own slapd if given); all stop afterwards."""
    started: list[Stack] = []

    def make(
        slapd: Slapd,
        *,
        methods: str = DEMO_METHODS,
        extra: str = LENIENT_REGULATION,
        replace: dict[str, str] | None = None,
        tenants: str | None = None,
        secrets_of: Stack | None = None,
    ) -> Stack:
        """``replace`` edits the demo configuration's text: {old line: new line};
        ``tenants`` is what the include's tenant name becomes (a regex); ``secrets_of``
        makes this stack another node of that one's site (the same keys)."""
        workdir = tmp_path / f"stack{len(started)}"
        workdir.mkdir()
        running = _stack(
            slapd,
            workdir,
            methods=methods,
            extra=extra,
            replace=replace,
            tenants=tenants,
            secrets_of=secrets_of,
        )
        started.append(running)
        return running

    yield make
    for running in started:
        running.stop()


@pytest.fixture
def jitsi() -> Iterator[JitsiHttp]:
    """Prosody's room-size API and the bridge's statistics, as the demo runs them."""
    running = JitsiHttp(domain=SUBJECT).start()
    yield running
    running.stop()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """Debian's redis-server on a unix socket, for the sidecars that share state."""
    with RedisServer(tmp_path / "redis") as server:
        yield server


@pytest.fixture
def own_slapd(tmp_path: Path) -> Iterator[Slapd]:
    """A slapd for one test that stops it, restarts it or changes its data."""
    with Slapd(tmp_path / "own-slapd") as server:
        yield server


# -- the browser: Debian's Chromium, headless, driven by Playwright ------------------

CHROMIUM = Path("/usr/bin/chromium")
# Chromium reaches for Google's services at start; this machine (and a school
# server) has no business doing that.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--metrics-recording-only",
]


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as running:
        yield running


@pytest.fixture(scope="module")
def chromium(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(
        executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
    )
    yield browser
    browser.close()
