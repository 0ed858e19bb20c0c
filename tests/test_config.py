"""Configuration: defaults, environment overrides, secrets, one-line errors."""

from __future__ import annotations

import dataclasses
import grp
import re
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from sidecar.config.fields import key_of
from sidecar.config.settings import (
    JITSI_PATH_NAMES,
    MIN_SECRET_BYTES,
    SECTIONS,
    AppLink,
    ConfigError,
    JitsiSettings,
    LdapSettings,
    PreviousKey,
    RegulationSettings,
    RoleRule,
    Secret,
    Settings,
    TcpAddress,
    UnixAddress,
    in_language,
    load_settings,
)
from sidecar.ldap.dn import canonical_dn
from testbed.configs import MINIMAL, SECRET, write_config


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
        [sys.executable, "-m", "sidecar.cli", "check-config", "--offline", "--config", str(path)],
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
        [
            str(script),
            "check-config",
            "--offline",
            "--config",
            str(write_config(tmp_path, MINIMAL)),
        ],
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


ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "config.example.toml"
TABLES: dict[str, type] = {"roles": RoleRule, "apps": AppLink, "previous_keys": PreviousKey}
# A table's header, active or (for the example-only tables) commented out.
HEADER = re.compile(r"^(?:# )?\[\[?(\w+)\]\]?$")
# "#key = value" shows a default: removing the "#" must change nothing.
SHOWN_DEFAULT = re.compile(r"^#(\w+) = ", re.MULTILINE)


def example_tables(text: str) -> dict[str, str]:
    """Each [section] or [[table]] of the example, with its comments (all [[roles]] in one)."""
    tables: dict[str, list[str]] = {}
    lines: list[str] = []
    for line in text.splitlines():
        header = HEADER.match(line)
        if header:
            lines = tables.setdefault(header[1], [])
        lines.append(line)
    return {name: "\n".join(body) for name, body in tables.items()}


@pytest.mark.parametrize("name", [*SECTIONS, *TABLES])
def test_the_example_lists_every_key(name: str) -> None:
    """config.example.toml is the reference: a key missing there is a key nobody finds."""
    tables = example_tables(EXAMPLE.read_text("utf-8"))
    assert name in tables, f"config.example.toml has no [{name}]"
    cls = SECTIONS.get(name) or TABLES[name]
    for item in dataclasses.fields(cls):
        key = key_of(item)
        if name in TABLES:
            # Set, shown as a default or as an example ("# key = value").
            assert re.search(rf"^#? ?{key} = ", tables[name], re.MULTILINE), (name, key)
            continue
        is_set = re.search(rf"^{key} = ", tables[name], re.MULTILINE) is not None
        default_shown = re.search(rf"^#{key} = ", tables[name], re.MULTILINE) is not None
        assert is_set or default_shown, f"{name}.{key} is neither set nor shown with its default"
        if item.default is dataclasses.MISSING:
            assert is_set, f"{name}.{key} is required, so the example sets it"


def with_files(tmp_path: Path, text: str) -> str:
    """``text`` with its /etc and /var/lib paths moved into ``tmp_path``, where each
    ``*_file`` it sets exists and holds a secret (or keys) long enough for any use."""
    etc, var = tmp_path / "etc", tmp_path / "var"
    etc.mkdir(exist_ok=True)
    var.mkdir(exist_ok=True)
    text = text.replace("/etc/jitsi-auth-sidecar/", f"{etc}/")
    text = text.replace("/var/lib/jitsi-auth-sidecar/", f"{var}/")
    for name in re.findall(rf'^\w+_file = "{re.escape(str(etc))}/([^"]+)"', text, re.MULTILINE):
        write_secret_file(etc / name)
    return re.sub(r'^socket_group = "(.+)"$', _existing_group, text, flags=re.MULTILINE)


def write_secret_file(path: Path) -> None:
    if path.name.endswith("keys"):
        # Session and guest keys: one per line, newest first, # comments allowed.
        path.write_text(f"# newest first\n{'n' * MIN_SECRET_BYTES}\n{'o' * MIN_SECRET_BYTES}\n")
    else:
        # Twice the minimum: what HS512 needs.
        path.write_text("s" * (2 * MIN_SECRET_BYTES) + "\n")


def _existing_group(match: re.Match[str]) -> str:
    """The socket group as the example names it (nginx's) where it exists, else root's."""
    try:
        grp.getgrnam(match[1])
    except KeyError:
        return f'socket_group = "{grp.getgrgid(0).gr_name}"'
    return match[0]


def load_text(
    tmp_path: Path, name: str, text: str, environ: dict[str, str] | None = None
) -> Settings:
    path = tmp_path / name
    path.write_text(text)
    return load_settings(path, environ={} if environ is None else environ)


def test_the_example_loads_and_its_shown_defaults_are_the_defaults(tmp_path: Path) -> None:
    """Each "#key = value", uncommented, gives what leaving the key out gives: the
    default declared on the field (after its checks, as the audience becomes app_id)."""
    text = with_files(tmp_path, EXAMPLE.read_text("utf-8"))
    as_is = load_text(tmp_path, "as_is.toml", text)
    shown = SHOWN_DEFAULT.sub(r"\1 = ", text)
    assert shown != text
    uncommented = load_text(tmp_path, "uncommented.toml", shown)
    # Key by key first, for a message that names the wrong one.
    table, seen = "", dict[str, int]()  # the table a line is in; [[tables]] so far
    for line in text.splitlines():
        header = HEADER.match(line)
        if header and not line.startswith("#"):
            table = header[1]
            seen[table] = seen.get(table, 0) + 1
        default = SHOWN_DEFAULT.match(line)
        if default is None:
            continue
        cls = SECTIONS.get(table) or TABLES[table]
        item = next(item for item in dataclasses.fields(cls) if key_of(item) == default[1])
        objects = [
            getattr(settings, table)[seen[table] - 1]
            if table in TABLES
            else getattr(settings, table)
            for settings in (as_is, uncommented)
        ]
        declared, shown_value = (getattr(found, item.name) for found in objects)
        assert shown_value == declared, f"{table}.{default[1]}: {line!r}, default {declared!r}"
    assert uncommented == as_is


def test_the_example_tables_load(tmp_path: Path) -> None:
    """The commented-out [[apps]] and [[previous_keys]] work once uncommented."""
    lines: list[str] = []
    in_table = False
    for line in with_files(tmp_path, EXAMPLE.read_text("utf-8")).splitlines():
        if re.fullmatch(r"# \[\[\w+\]\]", line):
            in_table = True
        elif not re.fullmatch(r"# \w+ = .*", line):
            in_table = False
        lines.append(line.removeprefix("# ") if in_table else line)
    text = "\n".join(lines)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    for name in re.findall(r'^public_key_file = "([^"]+)"$', text, re.MULTILINE):
        Path(name).write_bytes(
            key.public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
    settings = load_text(tmp_path, "tables.toml", text)
    assert len(settings.apps) == 1
    assert len(settings.previous_keys) == 1


def test_the_readme_example_works_with_the_shipped_unit(tmp_path: Path) -> None:
    """The configuration guide's smallest file, with the credentials the systemd unit passes in."""
    section = (ROOT / "docs" / "configuration.md").read_text("utf-8").split("\n## ", 1)[0]
    (example,) = re.findall(r"^```toml\n(.*?)^```$", section, re.MULTILINE | re.DOTALL)
    unit = (ROOT / "systemd" / "jitsi-auth-sidecar.service").read_text("utf-8")
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    names = re.findall(r"^LoadCredential=(\w+):", unit, re.MULTILINE)
    assert "app_secret" in names
    for name in names:
        write_secret_file(credentials / name)
    settings = load_text(
        tmp_path,
        "readme.toml",
        with_files(tmp_path, example),
        environ={"CREDENTIALS_DIRECTORY": str(credentials)},
    )
    assert [rule.name for rule in settings.roles] == ["teacher", "pupil"]


def test_the_ceiling_from_everywhere_is_not_below_the_one_per_address(tmp_path: Path) -> None:
    body = (
        MINIMAL + "\n[regulation]\nmax_failures_per_user = 5\nmax_failures_per_user_overall = 4\n"
    )
    with pytest.raises(ConfigError) as raised:
        load_settings(write_config(tmp_path, body), environ={})
    assert raised.value.key == "regulation.max_failures_per_user_overall"


def test_metrics_may_not_take_the_socket_nginx_talks_to(tmp_path: Path) -> None:
    body = MINIMAL.replace(
        "[server]\n", '[server]\nlisten = "127.0.0.1:5111"\nmetrics_listen = "127.0.0.1:5111"\n', 1
    )
    assert body != MINIMAL
    with pytest.raises(ConfigError) as raised:
        load_settings(write_config(tmp_path, body), environ={})
    assert raised.value.key == "server.metrics_listen"


@pytest.mark.parametrize(
    "url",
    [
        "redis://127.0.0.1:6379/0?password=geheim",
        "redis://:geheim@127.0.0.1:6379/0",
        "redis://127.0.0.1:notaport/0",
    ],
)
def test_a_redis_url_holds_no_password_and_a_real_port(tmp_path: Path, url: str) -> None:
    body = MINIMAL + f'\n[state]\nredis_url = "{url}"\n'
    with pytest.raises(ConfigError) as raised:
        load_settings(write_config(tmp_path, body), environ={})
    assert raised.value.key == "state.redis_url"
    assert "geheim" not in str(raised.value)


def test_a_redis_password_is_utf8_text(tmp_path: Path) -> None:
    password = tmp_path / "redis_password"
    password.write_bytes(b"Sch\xfcssel\n")
    body = MINIMAL + (
        f'\n[state]\nredis_url = "redis://127.0.0.1:6379/0"\nredis_password_file = "{password}"\n'
    )
    with pytest.raises(ConfigError) as raised:
        load_settings(write_config(tmp_path, body), environ={})
    assert raised.value.key == "state.redis_password_file"


INCLUDE = Path(__file__).parent.parent / "nginx" / "jitsi-auth-sidecar.conf"


def with_tenants(*names: str) -> str:
    listed = ", ".join(f'"{name}"' for name in names)
    return MINIMAL.replace("[jitsi]\n", f"[jitsi]\ntenants = true\ntenant_names = [{listed}]\n")


def test_the_include_names_no_jitsi_path_the_config_would_take_as_a_tenant() -> None:
    """One list: every name the include keeps for Jitsi (at the top, or under a tenant)."""
    include = INCLUDE.read_text("utf-8")
    kept = re.findall(r"\(\?!\(\?:([^)]+)\)(?:/|\$)\)", include)
    assert len(kept) >= 2, kept
    names = {name.replace("\\.", ".") for group in kept for name in group.split("|")}
    assert names <= JITSI_PATH_NAMES, names - JITSI_PATH_NAMES
    for name in ("http-bind", "xmpp-websocket", "colibri-ws", "config.js", "libs", "auth"):
        assert name in JITSI_PATH_NAMES


@pytest.mark.parametrize("name", [*sorted(JITSI_PATH_NAMES), "HTTP-Bind"])
def test_jitsi_paths_are_not_tenants(tmp_path: Path, name: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(write_config(tmp_path, with_tenants("schule-a", name)), environ={})
    assert raised.value.key == "jitsi.tenant_names"
    assert raised.value.problem == f"{name!r} is one of Jitsi's own paths, not a tenant"


@pytest.mark.parametrize("command", ["check-config", "serve"])
def test_check_config_and_the_start_refuse_a_jitsi_path_as_tenant(
    tmp_path: Path, command: str
) -> None:
    path = write_config(tmp_path, with_tenants("schule-a", "colibri-ws"))
    extra = ["--offline"] if command == "check-config" else []
    result = subprocess.run(
        [sys.executable, "-m", "sidecar.cli", command, *extra, "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert "jitsi.tenant_names" in lines[0]
    assert "'colibri-ws' is one of Jitsi's own paths" in lines[0]


def test_real_tenant_names_still_load(tmp_path: Path) -> None:
    settings = load_settings(write_config(tmp_path, with_tenants("schule-a", "bs_2")), environ={})
    assert settings.jitsi.tenant_set == {"schule-a", "bs_2"}


def test_roles_name_themselves_per_language_and_the_site_speaks_as_chosen(tmp_path: Path) -> None:
    body = MINIMAL.replace(
        "moderator = true\n",
        'moderator = true\ndisplay_name = { de = "Lehrkraft", en = "teacher" }\n',
    )
    body += '\n[site]\naddress = "du"\nhelp_text = { de = "Frag im Sekretariat." }\n'
    settings = load_settings(write_config(tmp_path, body), environ={})
    teacher, pupil = settings.roles
    assert teacher.shown_name("de") == "Lehrkraft"
    assert teacher.shown_name("en") == "teacher"
    assert pupil.shown_name("de") == "pupil"  # not set: its name
    assert settings.site.address == "du"
    # One language given: it serves the other too, rather than nothing.
    assert in_language(settings.site.help_text, "en") == "Frag im Sekretariat."
    # The environment's form is one text, for both languages.
    environ = {"JITSI_AUTH_SIDECAR_SITE_HELP_TEXT": "Ask the office."}
    from_env = load_settings(write_config(tmp_path, body), environ=environ)
    assert dict(from_env.site.help_text) == {"de": "Ask the office.", "en": "Ask the office."}
    assert load_settings(write_config(tmp_path, MINIMAL), environ={}).site.address == "Sie"


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ('address = "ihr"', "site.address: must be one of du, Sie"),
        ("help_text = [1]", "site.help_text: must be a table"),
        ('help_text = { fr = "Demandez." }', "site.help_text: 'fr' is not a language"),
        ('help_text = { de = "" }', "site.help_text.de: must be a text that is not empty"),
        ("help_text = { de = 3 }", "site.help_text.de: must be a text that is not empty"),
        (f'help_text = {{ de = "{"x" * 501}" }}', "site.help_text.de: longer than 500"),
        ('help_text = { de = "a\\u0007b" }', "site.help_text.de: contains a control character"),
    ],
)
def test_a_wrong_site_setting_names_its_key(tmp_path: Path, line: str, problem: str) -> None:
    path = write_config(tmp_path, MINIMAL + f"\n[site]\n{line}\n")
    with pytest.raises(ConfigError) as raised:
        load_settings(path, environ={})
    assert str(raised.value).startswith(problem), str(raised.value)
