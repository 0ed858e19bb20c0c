"""Typed, frozen settings read once at start-up.

Sources, strongest first: an environment variable
``JITSI_AUTH_SIDECAR_<SECTION>_<KEY>`` (for example
``JITSI_AUTH_SIDECAR_LDAP_URLS``), the TOML file, the default. Secrets are
never values in the file or on the command line: a ``*_file`` key names the
file, and a systemd credential of the same name (``app_secret``,
``ldap_password``) is used when the key is absent.

Every problem is a :class:`ConfigError` whose text names the key, so a bad
file stops the start with one readable line.
"""

from __future__ import annotations

import grp
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, cast
from urllib.parse import urlsplit

from sidecar.dn import canonical_dn

ENV_PREFIX = "JITSI_AUTH_SIDECAR_"
DEFAULT_CONFIG_PATH = Path("/etc/jitsi-auth-sidecar/config.toml")
MIN_SECRET_BYTES = 32
# Below the include's proxy_read_timeout (15 s), with room for nginx itself.
MAX_DEADLINE_SECONDS = 12.0

Algorithm = Literal["HS256", "HS384", "HS512"]
ALGORITHMS = ("HS256", "HS384", "HS512")
GroupMode = Literal["memberof", "search"]
LoginMethod = Literal["form", "basic"]
Language = Literal["de", "en"]
LANGUAGES: tuple[Language, ...] = ("de", "en")


class ConfigError(ValueError):
    """A setting is missing or wrong; ``key`` is its dotted name."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key
        self.problem = problem


class Secret:
    """Bytes that never show up in a repr, a log line or a traceback."""

    __slots__ = ("_value",)

    def __init__(self, value: bytes) -> None:
        self._value = value

    def reveal(self) -> bytes:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class UnixAddress:
    path: Path


@dataclass(frozen=True)
class TcpAddress:
    host: str
    port: int


ListenAddress = UnixAddress | TcpAddress


@dataclass(frozen=True)
class ServerSettings:
    listen: ListenAddress
    public_url: str
    socket_mode: int
    socket_group: str | None


@dataclass(frozen=True)
class JitsiSettings:
    app_id: str
    app_secret: Secret
    audience: str
    subject: str
    token_ttl: int
    algorithm: Algorithm


@dataclass(frozen=True)
class LdapSettings:
    urls: tuple[str, ...]
    start_tls: bool
    ca_file: Path | None
    verify_certificates: bool
    bind_dn: str | None
    bind_password: Secret | None
    user_base: str
    user_filter: str
    user_dn_template: str
    group_mode: GroupMode
    group_base: str
    group_filter: str
    id_attribute: str
    name_attribute: str
    mail_attribute: str
    timeout: float
    pool_size: int
    deadline: float  # for one login or role refresh in all, every server and step included
    retry_interval: float  # a failed server is asked last and probed this often


@dataclass(frozen=True)
class RoleRule:
    name: str
    groups: frozenset[str]  # canonical DNs
    moderator: bool
    any_room: bool


@dataclass(frozen=True)
class LoginSettings:
    methods: tuple[LoginMethod, ...]
    realm: str
    default_language: Language
    school_name: str
    logo_file: Path | None


@dataclass(frozen=True)
class SessionSettings:
    keys: tuple[Secret, ...]  # newest first: the first encrypts, all decrypt
    idle_timeout: int
    lifetime: int
    role_refresh: int
    revocation_file: Path | None


@dataclass(frozen=True)
class CacheSettings:
    basic_ttl: int
    basic_size: int


@dataclass(frozen=True)
class RegulationSettings:
    max_failures_per_user: int  # one person from one place
    max_failures_per_address: int  # one place, all names
    window: int
    ban_time: int
    max_failures_per_user_overall: int  # one person from all places together
    known_address_lifetime: int  # how long a good login's place stays one of her usual ones


@dataclass(frozen=True)
class Settings:
    server: ServerSettings
    jitsi: JitsiSettings
    ldap: LdapSettings
    roles: tuple[RoleRule, ...]
    login: LoginSettings
    sessions: SessionSettings
    cache: CacheSettings
    regulation: RegulationSettings


class _Section:
    """One TOML table plus its environment overrides, read key by key."""

    def __init__(
        self,
        name: str,
        table: Mapping[str, object],
        environ: Mapping[str, str],
        credentials_dir: Path | None,
    ) -> None:
        self.name = name
        self._table = table
        self._environ = environ
        self._credentials_dir = credentials_dir
        self._read: set[str] = set()

    def key(self, key: str) -> str:
        return f"{self.name}.{key}"

    def _env_name(self, key: str) -> str:
        return f"{ENV_PREFIX}{self.name}_{key}".upper()

    def _raw(self, key: str) -> object | None:
        self._read.add(key)
        env_value = self._environ.get(self._env_name(key))
        if env_value is not None:
            return env_value
        return self._table.get(key)

    def from_environment(self, key: str) -> bool:
        return self._env_name(key) in self._environ

    def string(self, key: str, default: str | None = None) -> str:
        value = self._raw(key)
        if value is None:
            if default is None:
                raise ConfigError(self.key(key), "missing")
            return default
        if not isinstance(value, str):
            raise ConfigError(self.key(key), "must be a string")
        if any(ord(ch) < 0x20 for ch in value):
            raise ConfigError(self.key(key), "contains a control character")
        return value

    def required_string(self, key: str, default: str | None = None) -> str:
        value = self.string(key, default)
        if not value.strip():
            raise ConfigError(self.key(key), "must not be empty")
        return value

    def choice(self, key: str, allowed: tuple[str, ...], default: str) -> str:
        value = self.string(key, default)
        if value not in allowed:
            raise ConfigError(self.key(key), f"must be one of {', '.join(allowed)}")
        return value

    def integer(self, key: str, default: int, minimum: int, maximum: int) -> int:
        value = self._raw(key)
        if value is None:
            return default
        if isinstance(value, str):
            try:
                value = int(value.strip(), 10)
            except ValueError:
                raise ConfigError(self.key(key), "must be a whole number") from None
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(self.key(key), "must be a whole number")
        if not minimum <= value <= maximum:
            raise ConfigError(self.key(key), f"must be between {minimum} and {maximum}")
        return value

    def number(self, key: str, default: float, minimum: float, maximum: float) -> float:
        value = self._raw(key)
        if value is None:
            return default
        if isinstance(value, str):
            try:
                value = float(value.strip())
            except ValueError:
                raise ConfigError(self.key(key), "must be a number") from None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(self.key(key), "must be a number")
        if not minimum <= value <= maximum:
            raise ConfigError(self.key(key), f"must be between {minimum} and {maximum}")
        return float(value)

    def boolean(self, key: str, default: bool) -> bool:
        value = self._raw(key)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        # Strict on purpose: "yes", "1" or "on" are typos as often as intent,
        # and in the file a boolean is written as one.
        if not self.from_environment(key):
            raise ConfigError(self.key(key), "must be true or false")
        if value == "true":
            return True
        if value == "false":
            return False
        raise ConfigError(self.key(key), "must be true or false")

    def strings(self, key: str, default: tuple[str, ...] | None = None) -> tuple[str, ...]:
        value = self._raw(key)
        if value is None:
            if default is None:
                raise ConfigError(self.key(key), "missing")
            return default
        if isinstance(value, str):
            # From the environment: a comma-separated list.
            items: list[object] = [item.strip() for item in value.split(",") if item.strip()]
        elif isinstance(value, list):
            items = list(value)
        else:
            raise ConfigError(self.key(key), "must be a list of strings")
        if not all(isinstance(item, str) and item for item in items):
            raise ConfigError(self.key(key), "must be a list of non-empty strings")
        return tuple(cast(list[str], items))

    def secret_file(self, key: str, credential: str, required: bool) -> Secret | None:
        """Read ``<key>`` (a path), else the systemd credential ``credential``."""
        path_value = self._raw(key)
        if path_value is None or path_value == "":
            if self._credentials_dir is None or not (self._credentials_dir / credential).exists():
                if required:
                    raise ConfigError(self.key(key), "missing (a file holding the secret)")
                return None
            path = self._credentials_dir / credential
        elif isinstance(path_value, str):
            path = Path(path_value)
        else:
            raise ConfigError(self.key(key), "must be a file path")
        try:
            data = path.read_bytes()
        except OSError as error:
            raise ConfigError(self.key(key), f"cannot read {path}: {error.strerror}") from None
        # Editors add a final newline; it is never part of the secret.
        data = data.rstrip(b"\r\n")
        if not data:
            raise ConfigError(self.key(key), f"{path} is empty")
        return Secret(data)

    def reject_unknown(self) -> None:
        unknown = sorted(set(self._table) - self._read)
        if unknown:
            raise ConfigError(self.key(unknown[0]), "unknown key")


def load_settings(
    path: Path,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Read and check the configuration; raise :class:`ConfigError` on any problem."""
    env = os.environ if environ is None else environ
    try:
        with path.open("rb") as file:
            document = tomllib.load(file)
    except FileNotFoundError:
        raise ConfigError("config", f"{path} does not exist") from None
    except OSError as error:
        raise ConfigError("config", f"cannot read {path}: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError("config", f"{path} is not valid TOML: {error}") from None
    return settings_from_document(document, env)


def settings_from_document(document: Mapping[str, object], environ: Mapping[str, str]) -> Settings:
    credentials = environ.get("CREDENTIALS_DIRECTORY")
    credentials_dir = Path(credentials) if credentials else None
    known = {"server", "jitsi", "ldap", "roles", "login", "sessions", "cache", "regulation"}
    for name in document:
        if name not in known:
            raise ConfigError(name, "unknown section")

    def section(name: str) -> _Section:
        table = document.get(name, {})
        if not isinstance(table, dict):
            raise ConfigError(name, "must be a table")
        return _Section(name, table, environ, credentials_dir)

    server = _server(section("server"))
    jitsi = _jitsi(section("jitsi"))
    ldap = _ldap(section("ldap"))
    roles = _roles(document.get("roles"))
    login = _login(section("login"))
    sessions = _sessions(section("sessions"), required="form" in login.methods)
    cache = _cache(section("cache"))
    regulation = _regulation(section("regulation"))
    return Settings(
        server=server,
        jitsi=jitsi,
        ldap=ldap,
        roles=roles,
        login=login,
        sessions=sessions,
        cache=cache,
        regulation=regulation,
    )


def parse_listen(key: str, value: str) -> ListenAddress:
    if value.startswith("unix:"):
        path = Path(value.removeprefix("unix:"))
        if not path.is_absolute():
            raise ConfigError(key, "a unix socket path must be absolute")
        return UnixAddress(path)
    host, sep, port_text = value.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ConfigError(key, 'must be "unix:/path/to.sock" or "HOST:PORT"')
    if host not in ("127.0.0.1", "::1", "localhost"):
        # The sidecar trusts the headers nginx sets; only nginx may reach it.
        raise ConfigError(key, "must be a unix socket or a loopback address")
    return TcpAddress(host, int(port_text))


def _server(section: _Section) -> ServerSettings:
    listen = parse_listen(
        section.key("listen"),
        section.required_string("listen", "unix:/run/jitsi-auth-sidecar/http.sock"),
    )
    public_url = section.required_string("public_url").rstrip("/")
    parts = urlsplit(public_url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path or parts.query:
        raise ConfigError(
            section.key("public_url"), 'must be an origin like "https://meet.example"'
        )
    mode_text = section.string("socket_mode", "0660")
    try:
        socket_mode = int(mode_text, 8)
    except ValueError:
        raise ConfigError(section.key("socket_mode"), "must be an octal mode like 0660") from None
    socket_group = section.string("socket_group", "") or None
    if socket_group is not None:
        try:
            grp.getgrnam(socket_group)
        except KeyError:
            raise ConfigError(section.key("socket_group"), f"no group {socket_group!r}") from None
    section.reject_unknown()
    return ServerSettings(
        listen=listen, public_url=public_url, socket_mode=socket_mode, socket_group=socket_group
    )


def _jitsi(section: _Section) -> JitsiSettings:
    app_id = section.required_string("app_id")
    algorithm = cast(Algorithm, section.choice("algorithm", ALGORITHMS, "HS256"))
    secret = section.secret_file("app_secret_file", "app_secret", required=True)
    assert secret is not None
    # An HMAC key shorter than its hash is weaker than the hash (RFC 7518, 3.2).
    minimum = max(MIN_SECRET_BYTES, int(algorithm.removeprefix("HS")) // 8)
    if len(secret.reveal()) < minimum:
        raise ConfigError(
            section.key("app_secret_file"),
            f"secret is {len(secret.reveal())} bytes, at least {minimum} are required"
            + ("" if minimum == MIN_SECRET_BYTES else f" for {algorithm}"),
        )
    settings = JitsiSettings(
        app_id=app_id,
        app_secret=secret,
        audience=section.required_string("audience", app_id),
        subject=section.required_string("subject"),
        # A reconnect after exp fails, so the default covers a long school morning.
        token_ttl=section.integer("token_ttl", 10800, minimum=600, maximum=86400),
        algorithm=algorithm,
    )
    section.reject_unknown()
    return settings


def _ldap(section: _Section) -> LdapSettings:
    urls = section.strings("urls", ("ldap://127.0.0.1:389",))
    if not urls:
        raise ConfigError(section.key("urls"), "needs at least one URL")
    for url in urls:
        if urlsplit(url).scheme not in ("ldap", "ldaps", "ldapi"):
            raise ConfigError(section.key("urls"), f"{url!r} is not an ldap(s):// or ldapi:// URL")
    start_tls = section.boolean("start_tls", False)
    ca_text = section.string("ca_file", "")
    ca_file = Path(ca_text) if ca_text else None
    if ca_file is not None and not ca_file.is_file():
        raise ConfigError(section.key("ca_file"), f"{ca_file} is not a file")
    bind_dn = section.string("bind_dn", "") or None
    bind_password = section.secret_file(
        "bind_password_file", "ldap_password", required=bind_dn is not None
    )
    user_dn_template = section.string("user_dn_template", "")
    if user_dn_template and "{username}" not in user_dn_template:
        raise ConfigError(section.key("user_dn_template"), "must contain {username}")
    user_base = section.string("user_base", "")
    user_filter = section.string("user_filter", "(uid={username})")
    if not user_dn_template:
        if not user_base:
            raise ConfigError(section.key("user_base"), "missing (or set ldap.user_dn_template)")
        if "{username}" not in user_filter:
            raise ConfigError(section.key("user_filter"), "must contain {username}")
    _check_placeholders(section.key("user_filter"), user_filter, {"username"})
    group_mode = cast(GroupMode, section.choice("group_mode", ("memberof", "search"), "memberof"))
    group_base = section.string("group_base", "")
    group_filter = section.string("group_filter", "(|(member={user_dn})(memberUid={username}))")
    _check_placeholders(section.key("group_filter"), group_filter, {"username", "user_dn"})
    if group_mode == "search" and not group_base:
        raise ConfigError(section.key("group_base"), 'missing (needed with group_mode = "search")')
    settings = LdapSettings(
        urls=urls,
        start_tls=start_tls,
        ca_file=ca_file,
        verify_certificates=section.boolean("verify_certificates", True),
        bind_dn=bind_dn,
        bind_password=bind_password,
        user_base=user_base,
        user_filter=user_filter,
        user_dn_template=user_dn_template,
        group_mode=group_mode,
        group_base=group_base,
        group_filter=group_filter,
        id_attribute=section.required_string("id_attribute", "uid"),
        name_attribute=section.required_string("name_attribute", "cn"),
        mail_attribute=section.required_string("mail_attribute", "mail"),
        timeout=section.number("timeout", 5.0, minimum=0.1, maximum=60.0),
        pool_size=section.integer("pool_size", 4, minimum=1, maximum=64),
        # nginx gives up on the sidecar after proxy_read_timeout (15 s in the
        # include) and shows a 500: the sidecar must have answered before.
        deadline=section.number("deadline", 10.0, minimum=0.5, maximum=MAX_DEADLINE_SECONDS),
        retry_interval=section.number("retry_interval", 30.0, minimum=1.0, maximum=3600.0),
    )
    section.reject_unknown()
    return settings


def _check_placeholders(key: str, template: str, allowed: set[str]) -> None:
    try:
        template.format(**{name: "" for name in allowed})
    except (KeyError, IndexError, ValueError) as error:
        names = ", ".join("{" + name + "}" for name in sorted(allowed))
        raise ConfigError(key, f"may only use the placeholders {names} ({error})") from None


def _roles(value: object) -> tuple[RoleRule, ...]:
    if value is None:
        raise ConfigError("roles", "missing: at least one [[roles]] table")
    if not isinstance(value, list) or not value:
        raise ConfigError("roles", "must be a list of [[roles]] tables")
    rules: list[RoleRule] = []
    for index, table in enumerate(value):
        name = f"roles[{index}]"
        if not isinstance(table, dict):
            raise ConfigError(name, "must be a table")
        section = _Section(name, table, {}, None)
        groups = section.strings("groups")
        canonical: set[str] = set()
        for group in groups:
            try:
                canonical.add(canonical_dn(group))
            except ValueError:
                raise ConfigError(section.key("groups"), f"{group!r} is not a DN") from None
        rules.append(
            RoleRule(
                name=section.required_string("name"),
                groups=frozenset(canonical),
                moderator=section.boolean("moderator", False),
                any_room=section.boolean("any_room", False),
            )
        )
        section.reject_unknown()
    return tuple(rules)


def _login(section: _Section) -> LoginSettings:
    methods = section.strings("methods", ("form", "basic"))
    for method in methods:
        if method not in ("form", "basic"):
            raise ConfigError(section.key("methods"), f"{method!r} is not one of form, basic")
    if not methods:
        raise ConfigError(section.key("methods"), "needs at least one method")
    realm = section.required_string("realm", "Jitsi Meet")
    if '"' in realm or "\\" in realm:
        raise ConfigError(section.key("realm"), "must not contain quotes or backslashes")
    logo_text = section.string("logo_file", "")
    logo_file = Path(logo_text) if logo_text else None
    if logo_file is not None and logo_file.suffix.lower() not in LOGO_TYPES:
        raise ConfigError(section.key("logo_file"), "must be a .png, .svg, .jpg or .webp file")
    if logo_file is not None and not logo_file.is_file():
        raise ConfigError(section.key("logo_file"), f"{logo_file} is not a file")
    settings = LoginSettings(
        methods=cast(tuple[LoginMethod, ...], methods),
        realm=realm,
        default_language=cast(Language, section.choice("default_language", LANGUAGES, "de")),
        school_name=section.string("school_name", ""),
        logo_file=logo_file,
    )
    section.reject_unknown()
    return settings


LOGO_TYPES = {
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
}


def _sessions(section: _Section, *, required: bool) -> SessionSettings:
    keys_secret = section.secret_file("keys_file", "session_keys", required=required)
    keys: list[Secret] = []
    if keys_secret is not None:
        for number, line in enumerate(keys_secret.reveal().splitlines(), start=1):
            key = line.strip()
            if not key or key.startswith(b"#"):
                continue
            if len(key) < MIN_SECRET_BYTES:
                raise ConfigError(
                    section.key("keys_file"),
                    f"key on line {number} is {len(key)} bytes, "
                    f"at least {MIN_SECRET_BYTES} are required",
                )
            keys.append(Secret(key))
        if not keys:
            raise ConfigError(section.key("keys_file"), "holds no key")
    idle_timeout = section.integer("idle_timeout", 4 * 3600, minimum=60, maximum=7 * 86400)
    lifetime = section.integer("lifetime", 12 * 3600, minimum=300, maximum=30 * 86400)
    if idle_timeout > lifetime:
        raise ConfigError(section.key("idle_timeout"), "must not be longer than sessions.lifetime")
    revocation_text = section.string("revocation_file", "")
    settings = SessionSettings(
        keys=tuple(keys),
        idle_timeout=idle_timeout,
        lifetime=lifetime,
        role_refresh=section.integer("role_refresh", 600, minimum=30, maximum=86400),
        revocation_file=Path(revocation_text) if revocation_text else None,
    )
    section.reject_unknown()
    return settings


def _cache(section: _Section) -> CacheSettings:
    settings = CacheSettings(
        basic_ttl=section.integer("basic_ttl", 300, minimum=0, maximum=86400),
        basic_size=section.integer("basic_size", 10000, minimum=1, maximum=1_000_000),
    )
    section.reject_unknown()
    return settings


def _regulation(section: _Section) -> RegulationSettings:
    settings = RegulationSettings(
        max_failures_per_user=section.integer(
            "max_failures_per_user", 5, minimum=1, maximum=10_000
        ),
        max_failures_per_address=section.integer(
            "max_failures_per_address", 30, minimum=1, maximum=100_000
        ),
        window=section.integer("window", 600, minimum=1, maximum=86400),
        ban_time=section.integer("ban_time", 900, minimum=1, maximum=7 * 86400),
        max_failures_per_user_overall=section.integer(
            "max_failures_per_user_overall", 50, minimum=1, maximum=1_000_000
        ),
        known_address_lifetime=section.integer(
            "known_address_lifetime", 30 * 86400, minimum=0, maximum=365 * 86400
        ),
    )
    section.reject_unknown()
    return settings
