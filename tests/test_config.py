"""Configuration: defaults, environment overrides, secrets, one-line errors."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
from pathlib import Path

import pytest

from sidecar.config import (
    SECTIONS,
    AppLink,
    ConfigError,
    JitsiSettings,
    LdapSettings,
    PreviousKey,
    RegulationSettings,
    RoleRule,
    Secret,
    TcpAddress,
    UnixAddress,
    load_settings,
)
from sidecar.dn import canonical_dn
from sidecar.options import key_of

SECRET = "s" * 40


def write_config(tmp_path: Path, body: str, secret: str = SECRET) -> Path:
    (tmp_path / "app_secret").write_text(secret + "\n")
    (tmp_path / "session_keys").write_text("# newest first\n" + "n" * 40 + "\n" + "o" * 40 + "\n")
    path = tmp_path / "config.toml"
    body = body.replace("SECRET_FILE", str(tmp_path / "app_secret"))
    path.write_text(body.replace("KEYS_FILE", str(tmp_path / "session_keys")))
    return path


MINIMAL = """
[server]
public_url = "https://meet.school.example"

[jitsi]
app_id = "school-meet"
app_secret_file = "SECRET_FILE"
subject = "meet.school.example"

[ldap]
user_base = "ou=people,dc=school,dc=example"

[sessions]
keys_file = "KEYS_FILE"

[[roles]]
name = "teacher"
groups = ["CN=Teachers, ou=groups,dc=school,dc=example"]
moderator = true

[[roles]]
name = "pupil"
groups = ["cn=pupils,ou=groups,dc=school,dc=example"]
"""


def test_minimal_file_gets_documented_defaults(tmp_path: Path) -> None:
    settings = load_settings(write_config(tmp_path, MINIMAL), environ={})
    assert settings.server.listen == UnixAddress(Path("/run/jitsi-auth-sidecar/http.sock"))
    assert settings.jitsi.audience == "school-meet"
    assert settings.jitsi.token_ttl == 10800
    assert settings.jitsi.algorithm == "HS256"
    assert settings.jitsi.app_secret == Secret(SECRET.encode())
    assert settings.ldap.urls == ("ldap://127.0.0.1:389",)
    assert settings.ldap.user_filter == "(uid={username})"
    assert settings.ldap.group_mode == "memberof"
    assert settings.ldap.verify_certificates is True
    assert settings.login.methods == ("form", "basic")
    assert [rule.name for rule in settings.roles] == ["teacher", "pupil"]
    assert settings.roles[0].moderator is True
    assert settings.roles[1].moderator is False
    assert settings.roles[0].groups == {canonical_dn("cn=teachers,ou=groups,dc=school,dc=example")}


def test_environment_overrides_file(tmp_path: Path) -> None:
    env = {
        "JITSI_AUTH_SIDECAR_LDAP_URLS": "ldaps://a.example:636, ldaps://b.example:636",
        "JITSI_AUTH_SIDECAR_JITSI_TOKEN_TTL": "7200",
        "JITSI_AUTH_SIDECAR_SERVER_LISTEN": "127.0.0.1:5111",
        "JITSI_AUTH_SIDECAR_LDAP_START_TLS": "true",
    }
    settings = load_settings(write_config(tmp_path, MINIMAL), environ=env)
    assert settings.ldap.urls == ("ldaps://a.example:636", "ldaps://b.example:636")
    assert settings.jitsi.token_ttl == 7200
    assert settings.server.listen == TcpAddress("127.0.0.1", 5111)
    assert settings.ldap.start_tls is True


def test_secret_from_systemd_credentials(tmp_path: Path) -> None:
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "app_secret").write_text("c" * 32)
    body = MINIMAL.replace('app_secret_file = "SECRET_FILE"\n', "")
    settings = load_settings(
        write_config(tmp_path, body), environ={"CREDENTIALS_DIRECTORY": str(credentials)}
    )
    assert settings.jitsi.app_secret == Secret(b"c" * 32)


def test_secret_is_masked() -> None:
    assert "hunter" not in repr(Secret(b"hunter2" * 5))


@pytest.mark.parametrize(
    ("change", "key"),
    [
        (('app_id = "school-meet"\n', ""), "jitsi.app_id"),
        (('subject = "meet.school.example"\n', ""), "jitsi.subject"),
        (("[ldap]\n", '[ldap]\ntimeout = "soon"\n'), "ldap.timeout"),
        (("[ldap]\n", '[ldap]\nstart_tls = "yes"\n'), "ldap.start_tls"),
        (("[ldap]\n", '[ldap]\ngroup_mode = "magic"\n'), "ldap.group_mode"),
        (("[ldap]\n", '[ldap]\ngroup_mode = "search"\n'), "ldap.group_base"),
        (("[ldap]\n", '[ldap]\nuser_filter = "(uid=*)"\n'), "ldap.user_filter"),
        (("[ldap]\n", '[ldap]\nuser_filter = "(uid={user})"\n'), "ldap.user_filter"),
        (("[ldap]\n", '[ldap]\nbind_dn = "cn=sidecar,dc=x"\n'), "ldap.bind_password_file"),
        (("[ldap]\n", '[ldap]\nurls = ["http://x"]\n'), "ldap.urls"),
        (("[ldap]\n", '[ldap]\nuser_bas = "typo"\n'), "ldap.user_bas"),
        (("[server]\n", '[server]\nlisten = "0.0.0.0:5111"\n'), "server.listen"),
        (("[server]\n", '[server]\nlisten = "unix:relative.sock"\n'), "server.listen"),
        (("https://meet.school.example", "meet.school.example"), "server.public_url"),
        (("token_ttl", "token_ttl"), "config"),
        (('groups = ["CN=', 'groups = ["not a dn", "CN='), "roles[0].groups"),
        (("moderator = true", 'moderator = "true"'), "roles[0].moderator"),
        (("[jitsi]\n", '[jitsi]\nalgorithm = "none"\n'), "jitsi.algorithm"),
        (("[jitsi]\n", '[jitsi]\nalgorithm = "ES256"\n'), "jitsi.algorithm"),
        (("[jitsi]\n", '[jitsi]\nalgorithm = "RS256"\n'), "jitsi.signing_key_file"),
        (("[server]\n", "[sever]\n"), "sever"),
    ],
)
def test_bad_key_is_named(tmp_path: Path, change: tuple[str, str], key: str) -> None:
    old, new = change
    body = MINIMAL.replace(old, new, 1)
    if key == "config":
        body = "this is [ not toml"
    with pytest.raises(ConfigError) as raised:
        load_settings(write_config(tmp_path, body), environ={})
    assert raised.value.key == key


def test_missing_roles_is_an_error(tmp_path: Path) -> None:
    body = MINIMAL.split("[[roles]]")[0]
    with pytest.raises(ConfigError, match="roles"):
        load_settings(write_config(tmp_path, body), environ={})


@pytest.mark.parametrize("secret", ["", "short-secret", "x" * 31])
def test_short_or_empty_secret_is_refused(tmp_path: Path, secret: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(write_config(tmp_path, MINIMAL, secret=secret), environ={})
    assert raised.value.key == "jitsi.app_secret_file"


def test_secret_must_be_as_long_as_the_hash(tmp_path: Path) -> None:
    body = MINIMAL.replace("[jitsi]\n", '[jitsi]\nalgorithm = "HS512"\n')
    with pytest.raises(ConfigError, match="at least 64"):
        load_settings(write_config(tmp_path, body, secret="x" * 63), environ={})
    settings = load_settings(write_config(tmp_path, body, secret="x" * 64), environ={})
    assert settings.jitsi.algorithm == "HS512"


def test_missing_secret_file_is_refused(tmp_path: Path) -> None:
    path = write_config(tmp_path, MINIMAL)
    (tmp_path / "app_secret").unlink()
    with pytest.raises(ConfigError) as raised:
        load_settings(path, environ={})
    assert raised.value.key == "jitsi.app_secret_file"


def test_missing_file() -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(Path("/nonexistent/config.toml"), environ={})


def test_serve_stops_with_one_line_naming_the_key(tmp_path: Path) -> None:
    path = write_config(tmp_path, MINIMAL, secret="too-short")
    result = subprocess.run(
        [sys.executable, "-m", "sidecar.cli", "serve", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "jitsi.app_secret_file" in lines[0]
    assert "too-short" not in result.stderr


def test_check_config_accepts_a_good_file(tmp_path: Path) -> None:
    path = write_config(tmp_path, MINIMAL)
    result = subprocess.run(
        [sys.executable, "-m", "sidecar.cli", "check-config", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "configuration ok" in result.stdout


def test_console_script_is_installed(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "jitsi-auth-sidecar"
    result = subprocess.run(
        [str(script), "check-config", "--config", str(write_config(tmp_path, MINIMAL))],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("change", "key"),
    [
        (("[jitsi]\n", '[jitsi]\ntoken_ttl = "7200"\n'), "jitsi.token_ttl"),
        (("[ldap]\n", '[ldap]\nurls = "ldap://127.0.0.1:389"\n'), "ldap.urls"),
        (("[ldap]\n", "[ldap]\nurls = []\n"), "ldap.urls"),
        (("[ldap]\n", '[ldap]\npool_size = "4"\n'), "ldap.pool_size"),
        (("[ldap]\n", "[ldap]\ntimeout = true\n"), "ldap.timeout"),
        (("[regulation]\n", "[regulation]\nwindow = 1.5\n"), "regulation.window"),
        (("moderator = true", 'moderator = true\nany_room = "false"'), "roles[0].any_room"),
        (
            (
                'groups = ["CN=Teachers, ou=groups,dc=school,dc=example"]',
                'groups = "CN=Teachers, ou=groups,dc=school,dc=example"',
            ),
            "roles[0].groups",
        ),
        (("[server]\n", "[server]\nsocket_mode = 660\n"), "server.socket_mode"),
        (("[server]\n", "[server]\nlisten = 5111\n"), "server.listen"),
    ],
)
def test_toml_values_of_the_wrong_type_are_refused(
    tmp_path: Path, change: tuple[str, str], key: str
) -> None:
    """The environment is text and parsed by type; the file says what type it means."""
    old, new = change
    body = (MINIMAL + "\n[regulation]\n").replace(old, new, 1)
    with pytest.raises(ConfigError) as raised:
        load_settings(write_config(tmp_path, body), environ={})
    assert raised.value.key == key


@pytest.mark.parametrize(
    "variable",
    [
        "JITSI_AUTH_SIDECAR_LDAP_URL",  # URLS
        "JITSI_AUTH_SIDECAR_JITSI_TOKENTTL",
        "JITSI_AUTH_SIDECAR_ROLES_NAME",
        "JITSI_AUTH_SIDECAR_JITSI_APP_SECRET",  # secrets come from files only
    ],
)
def test_misspelt_environment_variables_are_refused(tmp_path: Path, variable: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(write_config(tmp_path, MINIMAL), environ={variable: "x"})
    assert raised.value.key == variable
    assert "unknown environment variable" in str(raised.value)


def test_every_declared_key_can_come_from_the_environment(tmp_path: Path) -> None:
    env = {
        "JITSI_AUTH_SIDECAR_REGULATION_KNOWN_ADDRESS_LIFETIME": "60",
        "JITSI_AUTH_SIDECAR_LDAP_DEADLINE": "2.5",
        "JITSI_AUTH_SIDECAR_SERVER_SOCKET_MODE": "0600",
        "JITSI_AUTH_SIDECAR_LOGIN_METHODS": "basic",
        "JITSI_AUTH_SIDECAR_JITSI_APP_SECRET_FILE": str(write_secret(tmp_path, "e" * 40)),
    }
    settings = load_settings(write_config(tmp_path, MINIMAL), environ=env)
    assert settings.regulation.known_address_lifetime == 60
    assert settings.ldap.deadline == 2.5
    assert settings.server.socket_mode == 0o600
    assert settings.login.methods == ("basic",)
    assert settings.jitsi.app_secret == Secret(b"e" * 40)


def write_secret(tmp_path: Path, value: str) -> Path:
    path = tmp_path / "other_secret"
    path.write_text(value)
    return path


def test_settings_built_in_code_get_the_declared_defaults() -> None:
    """What tests and callers build by hand is checked and defaulted like a file."""
    jitsi = JitsiSettings(app_id="a", app_secret=Secret(b"k" * 32), subject="s")
    assert (jitsi.audience, jitsi.token_ttl, jitsi.algorithm) == ("a", 10800, "HS256")
    assert RegulationSettings().max_failures_per_user_overall == 50
    assert LdapSettings(user_base="ou=p").deadline == 10.0
    with pytest.raises(ConfigError) as raised:
        LdapSettings(group_mode="search", user_base="ou=p")
    assert raised.value.key == "group_base"


README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.mark.parametrize("section", [*SECTIONS, "roles", "apps", "previous_keys"])
def test_the_readme_documents_every_key(section: str) -> None:
    block = README.read_text("utf-8").split("## Configuration", 1)[1].split("### ", 1)[0]
    tables = {"roles": RoleRule, "apps": AppLink, "previous_keys": PreviousKey}
    cls = tables.get(section) or SECTIONS[section]
    documented = block.split(f"[{section}]", 1)[1]
    for item in dataclasses.fields(cls):
        assert re.search(rf"^{key_of(item)} = ", documented, re.MULTILINE), (section, item.name)


def test_the_ceiling_from_everywhere_is_not_below_the_one_per_address(tmp_path: Path) -> None:
    body = (
        MINIMAL + "\n[regulation]\nmax_failures_per_user = 5\nmax_failures_per_user_overall = 4\n"
    )
    with pytest.raises(ConfigError) as raised:
        load_settings(write_config(tmp_path, body), environ={})
    assert raised.value.key == "regulation.max_failures_per_user_overall"
