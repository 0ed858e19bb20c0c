"""The admin commands (check-config, test-login, mint), run as an admin runs them:
the installed console script in a process of its own, against the demo school's slapd.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import shutil
import subprocess
import sys
import termios
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import jwt
import pytest
import redis

from demo.jitsi_http import Fault, JitsiHttp
from demo.ports import free_port
from demo.run import SUBJECT, classroom_config, write_demo_config
from demo.school import SCHOOL
from demo.slapd import Slapd
from sidecar.config.settings import load_settings
from sidecar.jitsi.tokens import RoomTokens
from sidecar.people import Person
from testbed.redis_server import RedisServer
from tests.jitsi_rules import JitsiSite, admit

CLI = Path(sys.executable).parent / "jitsi-auth-sidecar"
TEACHER = SCHOOL.teachers[0]
PUPIL = SCHOOL.pupils[0]
NOBODY = SCHOOL.nobody  # in no group: no role
REDIS_PASSWORD = "Redis-Schluessel-0815-geheim"
# Files write_demo_config fills with secrets.
SECRET_FILES = ("app_secret", "ldap_password", "session_keys", "guest_keys")


# -- helpers -----------------------------------------------------------------------------


def clean_environment(**extra: str) -> dict[str, str]:
    """This process's environment without anything the configuration would read."""
    inherited = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("JITSI_AUTH_SIDECAR_") and name != "CREDENTIALS_DIRECTORY"
    }
    return {**inherited, **extra}


def cli(
    *args: str | Path, env: dict[str, str] | None = None, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CLI), *(str(arg) for arg in args)],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_environment(**(env or {})),
        check=False,
    )


def school_config(workdir: Path, slapd: Slapd, extra: str = "") -> Path:
    """The demo's configuration (service account, group search) for ``slapd``."""
    return write_demo_config(workdir, port=free_port(), ldap_url=slapd.ldap_url, extra=extra)


def secrets_in(workdir: Path) -> list[str]:
    """Every secret value write_demo_config wrote, line by line."""
    return [
        line.strip()
        for name in SECRET_FILES
        for line in (workdir / name).read_text("utf-8").splitlines()
        if line.strip()
    ]


def assert_shows_no_secret(result: subprocess.CompletedProcess[str], secrets: list[str]) -> None:
    for secret in secrets:
        assert secret not in result.stdout, secret
        assert secret not in result.stderr, secret


def dead_ldap_url() -> str:
    return f"ldap://127.0.0.1:{free_port()}"


def check_lines(output: str) -> dict[str, str]:
    """The live check lines: what was checked -> "ok" or "FAILED"."""
    found = re.findall(r"^  (ok|FAILED)\s+(.+?): ", output, re.MULTILINE)
    return {name: state for state, name in found}


def decoded_token(output: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """test-login's token: its header and its claims, as printed."""
    header_text = output.split("token header:\n", 1)[1].split("token claims:\n", 1)[0]
    claims_text = output.split("token claims:\n", 1)[1]
    header: dict[str, Any] = json.loads(header_text)
    claims: dict[str, Any] = json.loads(claims_text)
    return header, claims


def jitsi_site(workdir: Path) -> JitsiSite:
    """Prosody as the demo configuration's [jitsi] would have it configured."""
    return JitsiSite(
        app_id="school-meet",
        app_secret=(workdir / "app_secret").read_bytes().rstrip(b"\r\n"),
        subject=SUBJECT,
        accepted_audiences=("school-meet",),
    )


def without_service_account(config: Path) -> None:
    text = config.read_text("utf-8")
    text = re.sub(r"^bind_(dn|password_file) = .*\n", "", text, flags=re.MULTILINE)
    config.write_text(text, "utf-8")


@pytest.fixture
def config(tmp_path: Path, slapd: Slapd) -> Path:
    return school_config(tmp_path, slapd)


@pytest.fixture
def redis_with_password(redis_server: RedisServer) -> RedisServer:
    """The shared redis-server fixture, wanting REDIS_PASSWORD from now on."""
    client = redis.Redis(unix_socket_path=str(redis_server.socket_path))
    try:
        client.config_set("requirepass", REDIS_PASSWORD)
    finally:
        client.close()
    return redis_server


def redis_state(url: str, password_file: Path | None = None, password: str = "") -> str:
    """A [state] table for the Redis at ``url``; with a password, in ``password_file``."""
    state = f'\n[state]\nredis_url = "{url}"\n'
    if password_file is None:
        return state
    password_file.write_text(password + "\n", "utf-8")
    return state + f'redis_password_file = "{password_file}"\n'


# -- check-config: the effective configuration -------------------------------------


def test_check_config_shows_defaults_overrides_and_no_secret(tmp_path: Path, slapd: Slapd) -> None:
    config = school_config(tmp_path, slapd)
    result = cli(
        "check-config",
        "--offline",
        "--config",
        config,
        env={
            "JITSI_AUTH_SIDECAR_LDAP_TIMEOUT": "2.5",
            "JITSI_AUTH_SIDECAR_JITSI_TOKEN_TTL": "7200",
        },
    )
    assert result.returncode == 0, result.stderr
    shown = result.stdout
    assert shown.startswith("configuration ok: 2 role rules")
    # Environment overrides, marked as such.
    assert "timeout = 2.5  # from $JITSI_AUTH_SIDECAR_LDAP_TIMEOUT\n" in shown
    assert "token_ttl = 7200  # from $JITSI_AUTH_SIDECAR_JITSI_TOKEN_TTL\n" in shown
    # Defaults, of keys the file leaves out and of sections it does not have.
    assert "pool_size = 128  # default\n" in shown
    assert 'socket_mode = "0660"  # default\n' in shown
    assert "[regulation]\n" in shown
    assert "ban_time = 900  # default\n" in shown
    assert 'audience = "school-meet"  # default\n' in shown
    # The file's own values, paths and lists included.
    assert f'urls = ["{slapd.ldap_url}"]\n' in shown
    assert f'logo_file = "{tmp_path / "logo.svg"}"\n' in shown
    assert 'methods = ["form", "basic"]\n' in shown
    # Secrets: where they come from, never what they are.
    assert f"app_secret_file = <secret from {tmp_path / 'app_secret'}>\n" in shown
    assert f"bind_password_file = <secret from {tmp_path / 'ldap_password'}>\n" in shown
    assert f"keys_file = <secret from {tmp_path / 'session_keys'}>\n" in shown
    assert_shows_no_secret(result, secrets_in(tmp_path))
    # Every role rule, groups as they are compared.
    assert shown.count("[[roles]]\n") == 2
    assert 'name = "teacher"\n' in shown
    assert f'groups = ["{SCHOOL.teachers_group_dn}"]\n' in shown
    assert "live checks: left out (--offline)" in shown


def test_check_config_names_systemd_credentials_without_showing_them(
    tmp_path: Path, slapd: Slapd
) -> None:
    config = school_config(tmp_path, slapd)
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    for name in ("app_secret", "ldap_password"):
        shutil.copy(tmp_path / name, credentials / name)
    text = config.read_text("utf-8")
    text = re.sub(r"^(app_secret_file|bind_password_file) = .*\n", "", text, flags=re.MULTILINE)
    config.write_text(text, "utf-8")
    result = cli(
        "check-config",
        "--offline",
        "--config",
        config,
        env={"CREDENTIALS_DIRECTORY": str(credentials)},
    )
    assert result.returncode == 0, result.stderr
    assert "app_secret_file = <secret from credential app_secret>\n" in result.stdout
    assert "bind_password_file = <secret from credential ldap_password>\n" in result.stdout
    assert_shows_no_secret(result, secrets_in(tmp_path))


def test_check_config_refuses_a_bad_file_in_one_line(tmp_path: Path, slapd: Slapd) -> None:
    config = school_config(tmp_path, slapd)
    (tmp_path / "app_secret").write_text("too-short-secret", "utf-8")
    result = cli("check-config", "--config", config)
    assert result.returncode == 2
    assert result.stdout == ""
    (line,) = result.stderr.strip().splitlines()
    assert "configuration error: jitsi.app_secret_file" in line
    assert "too-short-secret" not in result.stderr


def test_offline_and_quiet_is_one_line_even_with_ldap_down(config: Path) -> None:
    """What ExecStartPre runs: the daemon starts while the directory is down, and copes."""
    result = cli(
        "check-config",
        "--offline",
        "--quiet",
        "--config",
        config,
        env={"JITSI_AUTH_SIDECAR_LDAP_URLS": dead_ldap_url()},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("\n") == 1
    assert result.stdout.startswith("configuration ok:")


# -- check-config: live checks -------------------------------------------------------


def test_ldap_check_binds_and_searches(config: Path, slapd: Slapd) -> None:
    result = cli("check-config", "--quiet", "--config", config)
    assert result.returncode == 0, result.stdout + result.stderr
    assert check_lines(result.stdout) == {
        f"LDAP {slapd.ldap_url}": "ok",
        "ldap.user_filter": "ok",
        "[[roles]]": "ok",
    }
    assert f"bound as {SCHOOL.service_dn}, read ou=people,{SCHOOL.base_dn}" in result.stdout
    assert "[[roles]]: all 3 groups exist and have members" in result.stdout
    assert "live checks: all 3 ok" in result.stdout


def test_ldap_check_names_the_server_nobody_listens_on(config: Path, slapd: Slapd) -> None:
    dead = dead_ldap_url()
    result = cli(
        "check-config",
        "--quiet",
        "--config",
        config,
        env={"JITSI_AUTH_SIDECAR_LDAP_URLS": f"{slapd.ldap_url},{dead}"},
    )
    assert result.returncode == 3
    assert check_lines(result.stdout) == {
        f"LDAP {slapd.ldap_url}": "ok",
        f"LDAP {dead}": "FAILED",
        # What the directory holds: read on the server that answered.
        "ldap.user_filter": "ok",
        "[[roles]]": "ok",
    }
    assert re.search(rf"FAILED  LDAP {re.escape(dead)}: cannot connect: ", result.stdout)
    assert "live checks: 1 of 4 FAILED" in result.stdout


def test_ldap_check_tells_a_refused_service_account(tmp_path: Path, config: Path) -> None:
    (tmp_path / "ldap_password").write_text("Falsches-Dienst-Passwort-77", "utf-8")
    result = cli("check-config", "--quiet", "--config", config)
    assert result.returncode == 1  # the server answered: not an outage
    assert f"refused the bind as {SCHOOL.service_dn}" in result.stdout
    assert_shows_no_secret(result, ["Falsches-Dienst-Passwort-77", *secrets_in(tmp_path)])


def test_ldap_check_tells_a_base_that_does_not_exist(config: Path) -> None:
    missing = f"ou=gruppen,{SCHOOL.base_dn}"
    result = cli(
        "check-config",
        "--quiet",
        "--config",
        config,
        env={"JITSI_AUTH_SIDECAR_LDAP_GROUP_BASE": missing},
    )
    assert result.returncode == 1
    assert f"ldap.group_base: '{missing}' does not exist" in result.stdout


def test_redis_check_fails_when_nothing_listens(tmp_path: Path, slapd: Slapd) -> None:
    nothing = tmp_path / "no-redis.sock"
    state = redis_state(f"unix://{nothing}", tmp_path / "redis_password", REDIS_PASSWORD)
    config = school_config(tmp_path, slapd, extra=state)
    result = cli("check-config", "--config", config)
    assert result.returncode == 3
    assert check_lines(result.stdout)[f"Redis unix://{nothing}"] == "FAILED"
    assert f"Redis unix://{nothing}: cannot connect" in result.stdout
    assert "redis_password_file = <secret from" in result.stdout
    assert_shows_no_secret(result, [REDIS_PASSWORD, *secrets_in(tmp_path)])


@pytest.mark.parametrize(
    ("password", "exit_code", "state"),
    [(REDIS_PASSWORD, 0, "ok"), ("Nicht-das-Redis-Passwort-1", 1, "FAILED")],
    ids=["right password", "wrong password"],
)
def test_redis_check_pings(
    tmp_path: Path,
    slapd: Slapd,
    redis_with_password: RedisServer,
    password: str,
    exit_code: int,
    state: str,
) -> None:
    url = redis_with_password.url
    config = school_config(tmp_path, slapd, redis_state(url, tmp_path / "pw", password))
    result = cli("check-config", "--quiet", "--config", config)
    assert result.returncode == exit_code, result.stdout
    assert check_lines(result.stdout)[f"Redis {url}"] == state
    assert_shows_no_secret(result, [password])


@pytest.mark.parametrize(
    ("fault", "exit_code", "detail"),
    [
        ("none", 0, "mod_muc_size's empty 404 for a room nobody is in"),
        ("server-error", 1, "status 500"),
        ("garbage", 1, "no usable answer"),
    ],
)
def test_room_size_check(
    tmp_path: Path, slapd: Slapd, jitsi: JitsiHttp, fault: Fault, exit_code: int, detail: str
) -> None:
    jitsi.fault = fault
    config = school_config(
        tmp_path, slapd, extra=f'\n[classroom]\nroom_size_url = "{jitsi.room_size_url}"\n'
    )
    result = cli("check-config", "--quiet", "--config", config)
    assert result.returncode == exit_code, result.stdout
    assert f"room-size API {jitsi.room_size_url}: {detail}" in result.stdout
    # Asked as the daemon asks: the occupants, the site's XMPP domain (as Host too), a
    # room nobody uses, whose node has a "%" so that both spellings of room= are tried.
    assert len(jitsi.requests) == (2 if fault == "none" else 1)
    for asked in jitsi.requests:
        assert (asked.domain, asked.host, asked.path) == (SUBJECT, SUBJECT, "/room")
        assert asked.room.startswith("jitsi-auth-sidecar-check-")
    assert "%20" in jitsi.requests[0].room


@pytest.mark.parametrize(
    ("served_host", "path", "detail"),
    [
        ("meet.other.example", "/room-size", "404 'Unknown host' from Prosody itself"),
        (SUBJECT, "/elsewhere/room-size", "a 404 page that is not mod_muc_size's"),
    ],
    ids=["Prosody serves another host", "no mod_muc_size there"],
)
def test_room_size_check_tells_prosodys_404_page_from_mod_muc_size(
    tmp_path: Path, slapd: Slapd, jitsi: JitsiHttp, served_host: str, path: str, detail: str
) -> None:
    jitsi.domain = served_host
    url = f"http://127.0.0.1:{jitsi.port}{path}"
    config = school_config(tmp_path, slapd, extra=f'\n[classroom]\nroom_size_url = "{url}"\n')
    result = cli("check-config", "--quiet", "--config", config)
    assert result.returncode == 1, result.stdout
    assert f"FAILED  room-size API {url}: {detail}" in result.stdout


@pytest.mark.parametrize(
    ("send_token", "exit_code", "detail"),
    [
        (True, 0, "mod_muc_size's empty 404 for a room nobody is in"),
        (False, 1, "status 403: wants a token"),
    ],
    ids=["with a token", "without"],
)
def test_room_size_check_with_token_verification(
    tmp_path: Path, slapd: Slapd, send_token: bool, exit_code: int, detail: str
) -> None:
    """Prosody's enable_roomsize_token_verification: a token for the very room asked about."""

    def valid_for(token: str, room: str) -> bool:
        site = jitsi_site(tmp_path)  # the configuration's secret, written below
        claims = jwt.decode(token, site.app_secret, algorithms=["HS256"], audience=site.app_id)
        return bool(claims["room"] == room)

    api = JitsiHttp(domain=SUBJECT, token_check=valid_for).start()
    try:
        flag = "true" if send_token else "false"
        classroom = f'room_size_url = "{api.room_size_url}"\nroom_size_token = {flag}\n'
        config = school_config(tmp_path, slapd, extra=f"\n[classroom]\n{classroom}")
        result = cli("check-config", "--quiet", "--config", config)
    finally:
        api.stop()
    assert result.returncode == exit_code, result.stdout
    assert f"room-size API {api.room_size_url}: {detail}" in result.stdout


def test_room_size_check_fails_when_nothing_listens(tmp_path: Path, slapd: Slapd) -> None:
    url = f"http://127.0.0.1:{free_port()}/room-size"
    config = school_config(tmp_path, slapd, extra=f'\n[classroom]\nroom_size_url = "{url}"\n')
    result = cli("check-config", "--quiet", "--config", config)
    assert result.returncode == 3
    assert f"FAILED  room-size API {url}: cannot connect" in result.stdout


# -- check-config: the admin's likely mistakes -----------------------------------------


def failed_lines(output: str) -> list[str]:
    return [line.strip() for line in output.splitlines() if line.startswith("  FAILED")]


def planted(config: Path, old: str, new: str) -> None:
    text = config.read_text("utf-8")
    assert old in text, old
    config.write_text(text.replace(old, new), "utf-8")


def test_check_config_passes_the_demos_correct_configuration(
    tmp_path: Path, slapd: Slapd, jitsi: JitsiHttp
) -> None:
    config = school_config(tmp_path, slapd, extra=classroom_config(jitsi))
    result = cli("check-config", "--quiet", "--config", config)
    assert result.returncode == 0, result.stdout + result.stderr
    assert check_lines(result.stdout) == {
        f"LDAP {slapd.ldap_url}": "ok",
        "ldap.user_filter": "ok",
        "[[roles]]": "ok",
        f"room-size API {jitsi.room_size_url}": "ok",
        f"bridge statistics {jitsi.bridge_stats_url}": "ok",
    }
    assert "live checks: all 5 ok" in result.stdout


TEACHERS = SCHOOL.teachers_group_dn
TYPO = TEACHERS.replace("cn=teachers", "cn=teachrs")
PEOPLE = f"ou=people,{SCHOOL.base_dn}"


@pytest.mark.parametrize(
    ("old", "new", "exit_code", "line"),
    [
        (
            TEACHERS,
            TYPO,
            1,
            f"[[roles]] teacher: the group '{TYPO}' does not exist "
            "(or the service account may not read it): fix the DN in its groups",
        ),
        (
            "(uid={username})",
            "(uidd={username})",
            1,
            "ldap.user_filter: the directory's schema has no attribute 'uidd': "
            "fix 'uidd' in '(uidd={username})'",
        ),
        (
            # The other branch finds people: the typo never matches anybody itself.
            "(uid={username})",
            "(|(uid={username})(mial={username}))",
            1,
            "ldap.user_filter: the directory's schema has no attribute 'mial'",
        ),
        (
            "(uid={username})",
            "(&(objectClass=posixAccount)(uid={username}))",
            1,
            f"ldap.user_filter: (&(objectClass=posixAccount)(uid=*)) finds nobody under {PEOPLE}",
        ),
        (
            f'user_base = "{PEOPLE}"',
            f'user_base = "ou=leute,{SCHOOL.base_dn}"',
            1,
            f"ldap.user_base: 'ou=leute,{SCHOOL.base_dn}' does not exist, or the service "
            "account may not read it: fix the DN in ldap.user_base",
        ),
    ],
    ids=[
        "typo in a group DN",
        "unknown attribute",
        "unknown attribute in one branch",
        "filter finds nobody",
        "wrong base",
    ],
)
def test_check_config_names_each_planted_mistake_in_one_line(
    tmp_path: Path, slapd: Slapd, old: str, new: str, exit_code: int, line: str
) -> None:
    config = school_config(tmp_path, slapd)
    planted(config, old, new)
    result = cli("check-config", "--quiet", "--config", config)
    assert result.returncode == exit_code, result.stdout + result.stderr
    (failed,) = failed_lines(result.stdout)
    assert line in failed, failed
    assert result.stderr == ""


def test_check_config_names_a_wrong_service_password_with_the_fix(
    tmp_path: Path, config: Path
) -> None:
    (tmp_path / "ldap_password").write_text("Falsches-Dienst-Passwort-78", "utf-8")
    result = cli("check-config", "--quiet", "--config", config)
    assert result.returncode == 1
    (failed,) = failed_lines(result.stdout)
    assert f"refused the bind as {SCHOOL.service_dn}" in failed
    assert failed.endswith("fix ldap.bind_password_file (or ldap.bind_dn)")


def test_check_config_names_a_group_without_members(tmp_path: Path) -> None:
    """class7b, a posixGroup (its memberUid may be left out), with nobody in it."""
    school = replace(SCHOOL, posix_group_members=())
    with Slapd(tmp_path / "slapd", school=school) as empty_class:
        config = school_config(tmp_path, empty_class)
        result = cli("check-config", "--quiet", "--config", config)
    assert result.returncode == 1, result.stdout
    (failed,) = failed_lines(result.stdout)
    assert (
        f"[[roles]] pupil: the group '{SCHOOL.posix_group_dn}' has no members "
        "the service account can read" in failed
    )


def test_check_config_fails_when_the_bridge_statistics_do_not_answer(
    tmp_path: Path, slapd: Slapd
) -> None:
    url = f"http://127.0.0.1:{free_port()}/colibri/stats"
    config = school_config(tmp_path, slapd, extra=f'\n[classroom]\nbridge_stats_url = "{url}"\n')
    result = cli("check-config", "--quiet", "--config", config)
    assert result.returncode == 3, result.stdout
    (failed,) = failed_lines(result.stdout)
    assert failed.startswith(f"FAILED  bridge statistics {url}: cannot connect: ")
    assert failed.endswith("fix the URL, or start the videobridge's REST API")


def test_check_config_fails_when_the_bridge_statistics_are_not_the_bridges(
    tmp_path: Path, slapd: Slapd, jitsi: JitsiHttp
) -> None:
    url = jitsi.room_size_url  # answers, but no statistics there
    config = school_config(tmp_path, slapd, extra=f'\n[classroom]\nbridge_stats_url = "{url}"\n')
    result = cli("check-config", "--quiet", "--config", config)
    assert result.returncode == 1, result.stdout
    (failed,) = failed_lines(result.stdout)
    assert failed.startswith(f"FAILED  bridge statistics {url}: status 404: fix the URL")


# -- test-login ------------------------------------------------------------------------


def test_test_login_shows_the_person_role_and_token(tmp_path: Path, config: Path) -> None:
    result = cli(
        "test-login", TEACHER.uid, "--config", config, "--room", "Mathe 7b", stdin=TEACHER.password
    )
    assert result.returncode == 0, result.stderr
    shown = result.stdout
    assert f"dn:        {TEACHER.dn}\n" in shown
    assert f"name:      {TEACHER.display_name}\n" in shown
    assert f"email:     {TEACHER.mail}\n" in shown
    assert f"groups:    {SCHOOL.teachers_group_dn}\n" in shown
    assert "role:      teacher\nmoderator: yes\n" in shown
    header, claims = decoded_token(shown)
    assert header == {"alg": "HS256", "typ": "JWT"}
    assert claims["room"] == "mathe%207b"  # the name Jitsi's web app sends Prosody
    assert claims["moderator"] is True
    assert claims["context"]["user"]["moderator"] == "true"
    assert claims["context"]["user"]["affiliation"] == "owner"
    assert claims["context"]["user"]["id"] == TEACHER.uid
    assert_shows_no_secret(result, [TEACHER.password, *secrets_in(tmp_path)])


def test_test_login_of_a_pupil_for_the_default_room(config: Path) -> None:
    result = cli("test-login", PUPIL.uid, "--config", config, stdin=PUPIL.password + "\n")
    assert result.returncode == 0, result.stderr
    assert "role:      pupil\nmoderator: no\n" in result.stdout
    _, claims = decoded_token(result.stdout)
    assert claims["room"] == "test-room"
    assert claims["moderator"] is False
    assert claims["context"]["user"]["moderator"] == "false"
    assert PUPIL.password not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("user", "password", "exit_code", "message"),
    [
        (TEACHER.uid, "Falsches-Passwort-1", 1, f"wrong password for '{TEACHER.uid}'"),
        ("niemand.hier", "Irgendein-Passwort-2", 1, "no such user 'niemand.hier'"),
        (NOBODY.uid, NOBODY.password, 4, f"'{NOBODY.uid}' has no role"),
    ],
    ids=["wrong password", "unknown user", "no role"],
)
def test_test_login_refusals(
    config: Path, user: str, password: str, exit_code: int, message: str
) -> None:
    result = cli("test-login", user, "--config", config, stdin=password)
    assert result.returncode == exit_code
    (line,) = result.stderr.strip().splitlines()
    assert message in line
    assert "token" not in result.stdout
    assert password not in result.stdout + result.stderr


def test_test_login_names_a_wrong_service_password(tmp_path: Path, config: Path) -> None:
    (tmp_path / "ldap_password").write_text("Falsches-Dienst-Passwort-79", "utf-8")
    result = cli("test-login", TEACHER.uid, "--config", config, stdin=TEACHER.password)
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert line == (
        "jitsi-auth-sidecar: the directory refused the service account's password "
        f"({SCHOOL.service_dn}): fix ldap.bind_password_file (or ldap.bind_dn)"
    )
    assert "Falsches-Dienst-Passwort-79" not in result.stdout + result.stderr


def test_test_login_tells_a_wrong_base_from_no_such_user(config: Path) -> None:
    wrong = f"ou=leute,{SCHOOL.base_dn}"
    result = cli(
        "test-login",
        TEACHER.uid,
        "--config",
        config,
        stdin=TEACHER.password,
        env={"JITSI_AUTH_SIDECAR_LDAP_USER_BASE": wrong},
    )
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert f"the base {wrong} does not exist: fix ldap.user_base" in line
    assert "no such user" not in line


def test_test_login_with_the_directory_down(config: Path) -> None:
    result = cli(
        "test-login",
        TEACHER.uid,
        "--config",
        config,
        stdin=TEACHER.password,
        env={"JITSI_AUTH_SIDECAR_LDAP_URLS": dead_ldap_url()},
    )
    assert result.returncode == 3
    assert "LDAP unavailable" in result.stderr
    assert TEACHER.password not in result.stdout + result.stderr


def test_test_login_refuses_what_is_not_a_room_before_asking_a_password(config: Path) -> None:
    result = cli("test-login", TEACHER.uid, "--config", config, "--room", "../etc")
    assert result.returncode == 2
    assert "'../etc' is not a room name" in result.stderr


def test_test_login_without_a_password_is_a_usage_error(config: Path) -> None:
    result = cli("test-login", TEACHER.uid, "--config", config, stdin="")
    assert result.returncode == 2
    assert "no password" in result.stderr


def test_test_login_is_no_login_attempt_for_the_bans(
    tmp_path: Path, slapd: Slapd, redis_server: RedisServer
) -> None:
    """Failures at the console are not counted: not here, not in the shared Redis."""
    state = redis_state(redis_server.url)
    strict = "\n[regulation]\nmax_failures_per_user = 1\nmax_failures_per_address = 1\n"
    config = school_config(tmp_path, slapd, extra=state + strict)
    for _ in range(3):
        assert cli("test-login", TEACHER.uid, "--config", config, stdin="Falsch-1").returncode == 1
    result = cli("test-login", TEACHER.uid, "--config", config, stdin=TEACHER.password)
    assert result.returncode == 0, result.stderr
    assert redis_server.keys() == []


def _take_the_terminal() -> None:
    """In the child: stdin, a pty, becomes the controlling terminal, which getpass opens."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def _read_from(fd: int, *, until: bytes | None, timeout: float = 30.0) -> bytes:
    """What arrives on ``fd`` until ``until`` is seen, or (None) until the other side closes."""
    seen = b""
    deadline = time.monotonic() + timeout
    while until is None or until not in seen:
        remaining = deadline - time.monotonic()
        assert remaining > 0, seen
        ready, _, _ = select.select([fd], [], [], remaining)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: every process on the other side is gone
            chunk = b""
        if not chunk:
            assert until is None, seen
            break
        seen += chunk
    return seen


def test_test_login_asks_on_a_terminal_without_echo(config: Path) -> None:
    primary, secondary = pty.openpty()
    process = subprocess.Popen(
        [str(CLI), "test-login", TEACHER.uid, "--config", str(config)],
        stdin=secondary,
        stdout=secondary,
        stderr=secondary,
        env=clean_environment(),
        start_new_session=True,
        preexec_fn=_take_the_terminal,
    )
    os.close(secondary)
    try:
        seen = _read_from(primary, until=f"password for {TEACHER.uid}: ".encode())
        os.write(primary, TEACHER.password.encode() + b"\n")
        seen += _read_from(primary, until=None)
    finally:
        os.close(primary)
        process.wait(timeout=30)
    assert process.returncode == 0, seen
    assert b"role:      teacher" in seen
    assert TEACHER.password.encode() not in seen


# -- mint ---------------------------------------------------------------------------------


def test_mint_with_a_role_prints_one_token_jitsi_accepts(tmp_path: Path, config: Path) -> None:
    result = cli(
        "mint",
        "--config",
        config,
        "--user",
        "lasttest-01",
        "--room",
        "Mathe7b",
        "--role",
        "teacher",
    )
    assert result.returncode == 0, result.stderr
    (token,) = result.stdout.splitlines()
    assert result.stdout == token + "\n"  # what $(...) takes, whole
    settings = load_settings(config, environ={})
    rule = next(rule for rule in settings.roles if rule.name == "teacher")
    # --role knows nobody's name or address: the user id stands for both.
    person = Person(user_id="lasttest-01", display_name="lasttest-01", email="", groups=frozenset())
    assert RoomTokens(settings.jitsi).is_current(token, person, rule, "mathe7b")
    admission = admit(token, jitsi_site(tmp_path), "Mathe7b")
    assert admission.moderator
    assert admission.user_id == "lasttest-01"


def test_mint_looks_the_role_up_in_ldap(tmp_path: Path, config: Path) -> None:
    result = cli("mint", "--config", config, "--user", PUPIL.uid, "--room", "Mathe7b")
    assert result.returncode == 0, result.stderr
    admission = admit(result.stdout.strip(), jitsi_site(tmp_path), "Mathe7b")
    assert not admission.moderator
    assert admission.user_id == PUPIL.uid
    assert admission.user_name == PUPIL.display_name


def test_mint_with_a_ttl(tmp_path: Path, config: Path) -> None:
    args = ("mint", "--config", config, "--user", "u1", "--room", "r", "--role", "pupil")
    result = cli(*args, "--ttl", "600")
    assert result.returncode == 0, result.stderr
    claims = admit(result.stdout.strip(), jitsi_site(tmp_path), "r").claims
    assert claims["exp"] - claims["iat"] == 600
    assert cli(*args, "--ttl", "5").returncode == 2


@pytest.mark.parametrize(
    ("args", "exit_code", "message"),
    [
        (("--user", "u1", "--room", "Mathe7b", "--role", "admin"), 2, "no [[roles]] rule named"),
        (("--user", "u1", "--room", "..", "--role", "pupil"), 2, "'..' is not a room name"),
        (("--user", "u1", "--room", "a/b", "--role", "pupil"), 2, "'a/b' is not a room name"),
        (("--user", "u1", "--room", "*", "--role", "pupil"), 2, "'*' is not a room name"),
        (("--user", "niemand.hier", "--room", "Mathe7b"), 1, "no such user 'niemand.hier'"),
        (("--user", NOBODY.uid, "--room", "Mathe7b"), 4, "has no role"),
    ],
    ids=["unknown role", "dots", "slash", "wildcard", "unknown user", "no role"],
)
def test_mint_refusals(config: Path, args: tuple[str, ...], exit_code: int, message: str) -> None:
    result = cli("mint", "--config", config, *args)
    assert result.returncode == exit_code
    assert result.stdout == ""
    assert message in result.stderr


def test_mint_with_the_directory_down(config: Path) -> None:
    result = cli(
        "mint",
        "--config",
        config,
        "--user",
        PUPIL.uid,
        "--room",
        "Mathe7b",
        env={"JITSI_AUTH_SIDECAR_LDAP_URLS": dead_ldap_url()},
    )
    assert result.returncode == 3
    assert result.stdout == ""
    assert "LDAP unavailable" in result.stderr


def test_mint_names_a_wrong_service_password(tmp_path: Path, config: Path) -> None:
    (tmp_path / "ldap_password").write_text("Falsches-Dienst-Passwort-80", "utf-8")
    result = cli("mint", "--config", config, "--user", PUPIL.uid, "--room", "Mathe7b")
    assert result.returncode == 1
    assert result.stdout == ""
    (line,) = result.stderr.strip().splitlines()
    assert "the directory refused the service account's password" in line


def test_mint_without_a_service_account_needs_a_role(config: Path) -> None:
    without_service_account(config)
    result = cli("mint", "--config", config, "--user", PUPIL.uid, "--room", "Mathe7b")
    assert result.returncode == 2
    assert "pass --role NAME" in result.stderr
    with_role = cli(
        "mint", "--config", config, "--user", PUPIL.uid, "--room", "Mathe7b", "--role", "pupil"
    )
    assert with_role.returncode == 0, with_role.stderr


def test_undecodable_passwords_and_room_names_get_a_clean_refusal(config: Path) -> None:
    """A byte that is no UTF-8 (a Latin-1 password file, a stray key) in a strict
    locale: refused with one line, never a traceback."""
    piped = subprocess.run(
        [str(CLI), "test-login", PUPIL.uid, "--config", str(config)],
        input=b"Sch\xfcler\n",
        capture_output=True,
        timeout=60,
        env=clean_environment(PYTHONIOENCODING="utf-8:strict", LC_ALL="C.UTF-8"),
        check=False,
    )
    assert piped.returncode == 1, piped.stderr
    assert b"Traceback" not in piped.stderr
    room = subprocess.run(
        [
            str(CLI),
            "mint",
            "--config",
            str(config),
            "--user",
            "x",
            "--room",
            b"\xff",
            "--role",
            "pupil",
        ],
        capture_output=True,
        timeout=60,
        env=clean_environment(),
        check=False,
    )
    assert room.returncode == 2, room.stderr
    assert b"Traceback" not in room.stderr


# -- --help ---------------------------------------------------------------------------------

RST_MARKUP = re.compile(r"``|:[a-z]+:`")


def test_help_has_no_restructuredtext_markup() -> None:
    """What argparse prints is read at a console: no ``literals``, no :roles:."""
    for command in ((), ("serve",), ("check-config",), ("test-login",), ("mint",)):
        result = cli(*command, "--help")
        assert result.returncode == 0, result.stderr
        assert "usage: jitsi-auth-sidecar" in result.stdout
        assert not RST_MARKUP.search(result.stdout), (command, result.stdout)
