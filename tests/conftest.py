"""Fixtures for the real components the tests run against."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sidecar.demo.nginx import free_port
from sidecar.demo.run import write_demo_config
from sidecar.demo.slapd import Slapd
from tests.jitsi_rules import JitsiSite
from tests.stack import Stack, start_stack


@pytest.fixture(scope="session")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slapd]:
    """One slapd holding the demo school for the whole run: read it, do not change it.

    A test that stops, restarts or writes starts its own ``Slapd(tmp_path / "slapd")``.
    """
    with Slapd(tmp_path_factory.mktemp("slapd")) as server:
        yield server


@pytest.fixture(scope="session")
def stack(slapd: Slapd, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """nginx (a Jitsi-shaped site with the include) -> the sidecar -> the shared slapd.

    Configured exactly as ``make demo`` is.
    """
    workdir = tmp_path_factory.mktemp("stack")
    port = free_port()
    config = write_demo_config(workdir, port=port, ldap_url=slapd.ldap_url, methods='["basic"]')
    running = start_stack(workdir, config, workdir / "sidecar.sock", port)
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
