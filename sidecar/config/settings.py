"""Typed, frozen settings read once at start-up.

Sources, strongest first: an environment variable
``JITSI_AUTH_SIDECAR_<SECTION>_<KEY>`` (for example
``JITSI_AUTH_SIDECAR_LDAP_URLS``), the TOML file, the default. Secrets are
never values in the file or on the command line: a ``*_file`` key names the
file, and a systemd credential of the same name (``app_secret``,
``ldap_password``, ``session_keys``) is used when the key is absent.

Each field declares its default and range where it is defined (``option``);
checks that involve several fields live in the dataclass's ``__post_init__``.
Every problem is a :class:`ConfigError` whose text names the key, so a bad
file stops the start with one readable line.
"""

from __future__ import annotations

import grp
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeVar
from urllib.parse import parse_qs, urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from sidecar.config.fields import ENV_PREFIX, Sources, known_env_names, option, read_table
from sidecar.config.fields import ConfigError as ConfigError
from sidecar.config.fields import Secret as Secret
from sidecar.ldap.dn import canonical_dn

DEFAULT_CONFIG_PATH = Path("/etc/jitsi-auth-sidecar/config.toml")
MIN_SECRET_BYTES = 32
# Below the include's proxy_read_timeout (15 s), with room for nginx itself.
MAX_DEADLINE_SECONDS = 12.0

Algorithm = Literal["HS256", "HS384", "HS512", "RS256", "RS384", "RS512"]
MIN_RSA_BITS = 2048
GroupMode = Literal["memberof", "search"]
LoginMethod = Literal["form", "basic"]
Language = Literal["de", "en"]
RoomSizeErrorPolicy = Literal["wait", "admit"]
LogFormat = Literal["plain", "json"]
Address = Literal["du", "Sie"]  # how the German pages speak to people
LANGUAGES: tuple[Language, ...] = ("de", "en")
# The role of a guest session: not a [[roles]] name, never a moderator.
GUEST_ROLE = "guest"
T = TypeVar("T")

LOGO_TYPES = {
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
}


@dataclass(frozen=True)
class UnixAddress:
    path: Path


@dataclass(frozen=True)
class TcpAddress:
    host: str
    port: int


ListenAddress = UnixAddress | TcpAddress


# -- how single values are parsed (key, plain value) -> value -------------------------


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


def _origin(key: str, value: str) -> str:
    origin = value.rstrip("/")
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path or parts.query:
        raise ConfigError(key, 'must be an origin like "https://meet.example"')
    return origin


def _octal_mode(key: str, value: str) -> int:
    try:
        return int(value, 8)
    except ValueError:
        raise ConfigError(key, "must be an octal mode like 0660") from None


def _group_or_none(key: str, value: str) -> str | None:
    if not value:
        return None
    try:
        grp.getgrnam(value)
    except KeyError:
        raise ConfigError(key, f"no group {value!r}") from None
    return value


def _text_or_none(key: str, value: str) -> str | None:
    return value or None


def _file_or_none(key: str, value: str) -> Path | None:
    if not value:
        return None
    path = Path(value)
    if not path.is_file():
        raise ConfigError(key, f"{path} is not a file")
    return path


def _path_or_none(key: str, value: str) -> Path | None:
    return Path(value) if value else None


def _ldap_urls(key: str, urls: tuple[str, ...]) -> tuple[str, ...]:
    for url in urls:
        if urlsplit(url).scheme not in ("ldap", "ldaps", "ldapi"):
            raise ConfigError(key, f"{url!r} is not an ldap(s):// or ldapi:// URL")
    return urls


def _dns(key: str, groups: tuple[str, ...]) -> frozenset[str]:
    canonical: set[str] = set()
    for group in groups:
        try:
            canonical.add(canonical_dn(group))
        except ValueError:
            raise ConfigError(key, f"{group!r} is not a DN") from None
    return frozenset(canonical)


def _http_url_or_empty(key: str, value: str) -> str:
    if value and (urlsplit(value).scheme not in ("http", "https") or not urlsplit(value).netloc):
        raise ConfigError(key, f"{value!r} is not an http(s):// URL")
    return value


def _realm(key: str, value: str) -> str:
    if '"' in value or "\\" in value:
        raise ConfigError(key, "must not contain quotes or backslashes")
    return value


# A text per language, as (language, text) pairs in LANGUAGES' order.
PerLanguage = tuple[tuple[Language, str], ...]
MAX_SHOWN_TEXT = 500


def _per_language(key: str, value: object) -> PerLanguage:
    """``{ de = "...", en = "..." }``; one plain string (the environment's form) serves both."""
    table = dict.fromkeys(LANGUAGES, value) if isinstance(value, str) else value
    if not isinstance(table, dict):
        raise ConfigError(key, 'must be a table, like { de = "...", en = "..." }')
    for language, text in table.items():
        if language not in LANGUAGES:
            raise ConfigError(key, f"{language!r} is not a language ({', '.join(LANGUAGES)})")
        if not isinstance(text, str) or not text.strip():
            raise ConfigError(f"{key}.{language}", "must be a text that is not empty")
        if any(ord(ch) < 0x20 for ch in text):
            raise ConfigError(f"{key}.{language}", "contains a control character")
        if len(text) > MAX_SHOWN_TEXT:
            raise ConfigError(f"{key}.{language}", f"longer than {MAX_SHOWN_TEXT} characters")
    return tuple((language, table[language]) for language in LANGUAGES if language in table)


def in_language(texts: PerLanguage, language: Language) -> str | None:
    """The text for ``language``, else the one there is, else None."""
    chosen = dict(texts)
    return chosen.get(language) or next(iter(chosen.values()), None)


def _redis_url_or_empty(key: str, value: str) -> str:
    if not value:
        return value
    parts = urlsplit(value)
    if parts.scheme not in ("redis", "rediss", "unix"):
        raise ConfigError(key, f"{value!r} is not a redis://, rediss:// or unix:// URL")
    query = parse_qs(parts.query)
    if parts.password or any(name.endswith("password") for name in query):
        # Secrets are never values in the file: the password has a file of its own.
        raise ConfigError(key, "must not hold a password (use state.redis_password_file)")
    try:
        parts.port  # noqa: B018 - urlsplit checks the port only when asked
    except ValueError:
        raise ConfigError(key, f"{value!r} has no valid port") from None
    return value


def _utf8_secret(key: str, secret: Secret | None) -> Secret | None:
    if secret is not None:
        try:
            secret.reveal().decode("utf-8")
        except UnicodeDecodeError:
            raise ConfigError(key, "is not UTF-8 text") from None
    return secret


def _listen_or_none(key: str, value: str) -> ListenAddress | None:
    return parse_listen(key, value) if value else None


def _logo(key: str, value: str) -> Path | None:
    if value and Path(value).suffix.lower() not in LOGO_TYPES:
        raise ConfigError(key, "must be a .png, .svg, .jpg or .webp file")
    return _file_or_none(key, value)


def _session_keys(key: str, secret: Secret | None) -> tuple[Secret, ...]:
    """One key per line, newest first; blank lines and # comments are skipped."""
    if secret is None:
        return ()
    keys: list[Secret] = []
    for number, line in enumerate(secret.reveal().splitlines(), start=1):
        value = line.strip()
        if not value or value.startswith(b"#"):
            continue
        if len(value) < MIN_SECRET_BYTES:
            raise ConfigError(
                key,
                f"key on line {number} is {len(value)} bytes, "
                f"at least {MIN_SECRET_BYTES} are required",
            )
        keys.append(Secret(value))
    if not keys:
        raise ConfigError(key, "holds no key")
    return tuple(keys)


# Path segments that Jitsi's nginx sites (Debian's and docker-jitsi-meet's)
# give a meaning of their own, at the top or under a tenant, and the sidecar's
# "auth": none of them can be a tenant. The one list: the include's patterns
# name a part of it (tests/test_config.py holds them to it).
_JITSI_FOLDERS = ("libs", "css", "static", "images", "fonts", "lang", "sounds", ".well-known")
_JITSI_DOCKER_FOLDERS = ("connection_optimization", "transcripts")
# Prosody's BOSH and websocket, the videobridges' websockets, jicofo, the web app's API.
_JITSI_ENDPOINTS = ("http-bind", "xmpp-websocket", "colibri-ws", "colibri-relay-ws")
_JITSI_REQUESTS = ("conference-request", "_api", "_unlock")
_JITSI_FILES = ("config.js", "interface_config.js", "external_api.js", "manifest.json")
JITSI_PATH_NAMES = frozenset(
    {
        *_JITSI_FOLDERS,
        *_JITSI_DOCKER_FOLDERS,
        *_JITSI_ENDPOINTS,
        *_JITSI_REQUESTS,
        *_JITSI_FILES,
        "pwa-worker.js",
        "auth",  # the sidecar's own pages
    }
)


def _tenant_names(key: str, names: tuple[str, ...]) -> tuple[str, ...]:
    for name in names:
        if name.lower() in JITSI_PATH_NAMES:
            raise ConfigError(key, f"{name!r} is one of Jitsi's own paths, not a tenant")
        if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,62}", name):
            raise ConfigError(key, f"{name!r} is not a tenant name (lower case, a-z 0-9 _ -)")
    return names


def _rsa_private_key(key: str, secret: Secret | None) -> Secret | None:
    """A PEM RSA private key of at least 2048 bits (checked here, loaded by the tokens)."""
    if secret is None:
        return None
    try:
        loaded = serialization.load_pem_private_key(secret.reveal(), password=None)
    except (ValueError, TypeError):
        raise ConfigError(key, "is not an unencrypted PEM private key") from None
    if not isinstance(loaded, rsa.RSAPrivateKey):
        raise ConfigError(key, "must be an RSA key (RS256/384/512)")
    if loaded.key_size < MIN_RSA_BITS:
        raise ConfigError(key, f"RSA key of {loaded.key_size} bits, at least {MIN_RSA_BITS}")
    return secret


def _rsa_public_key_file(key: str, value: str) -> bytes:
    path = Path(value)
    try:
        data = path.read_bytes()
        loaded = serialization.load_pem_public_key(data)
    except OSError as error:
        raise ConfigError(key, f"cannot read {path}: {error.strerror}") from None
    except (ValueError, TypeError):
        raise ConfigError(key, f"{path} is not a PEM public key") from None
    if not isinstance(loaded, rsa.RSAPublicKey):
        raise ConfigError(key, f"{path} is not an RSA public key")
    # Served as written here, never as the file is: it may hold more than the key.
    return loaded.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@dataclass(frozen=True)
class PreviousKey:
    """A public key still served after a rotation, so that tokens it signed keep working."""

    key_id: str = option(nonempty=True)
    public_key: bytes = option(key="public_key_file", parse=_rsa_public_key_file)


def _check_placeholders(key: str, template: str, allowed: set[str]) -> None:
    try:
        template.format(**{name: "" for name in allowed})
    except (KeyError, IndexError, ValueError) as error:
        names = ", ".join("{" + name + "}" for name in sorted(allowed))
        raise ConfigError(key, f"may only use the placeholders {names} ({error})") from None


# -- the sections ------------------------------------------------------------------------


@dataclass(frozen=True)
class ServerSettings:
    public_url: str = option(nonempty=True, parse=_origin)
    listen: ListenAddress = option(
        UnixAddress(Path("/run/jitsi-auth-sidecar/http.sock")), nonempty=True, parse=parse_listen
    )
    socket_mode: int = option(0o660, parse=_octal_mode)
    socket_group: str | None = option(None, parse=_group_or_none)
    # Prometheus metrics on a listener of their own (never through the include); empty: off.
    metrics_listen: ListenAddress | None = option(None, parse=_listen_or_none)
    log_format: LogFormat = option("plain")  # decision lines for journald: plain or json
    # Processes serving the socket; more than one needs [state] redis_url.
    workers: int = option(1, minimum=1, maximum=64)

    def __post_init__(self) -> None:
        if self.metrics_listen == self.listen:
            # It would take the socket nginx talks to: every room a 500.
            raise ConfigError("metrics_listen", "must not be server.listen")


@dataclass(frozen=True)
class JitsiSettings:
    app_id: str = option(nonempty=True)
    subject: str = option(nonempty=True)
    # HS*: Prosody's app_secret. RS*: a PEM private key and its kid, whose
    # public key the sidecar serves where Prosody's asap_key_server fetches it.
    app_secret: Secret | None = option(None, key="app_secret_file", credential="app_secret")
    signing_key: Secret | None = option(
        None, key="signing_key_file", credential="signing_key", parse=_rsa_private_key
    )
    key_id: str = option("")
    audience: str = option("")  # empty: the app id
    # A reconnect after exp fails, so the default covers a long school morning.
    token_ttl: int = option(10800, minimum=600, maximum=86400)
    algorithm: Algorithm = option("HS256")
    # /<tenant>/<room> on a multi-tenant site: the token's sub is the tenant.
    tenants: bool = option(False)
    tenant_names: tuple[str, ...] = option((), parse=_tenant_names, read_as=tuple[str, ...])

    @property
    def tenant_set(self) -> frozenset[str]:
        """The tenants whose rooms are guarded (none unless ``tenants``)."""
        return frozenset(self.tenant_names) if self.tenants else frozenset()

    def __post_init__(self) -> None:
        if self.tenants and not self.tenant_names:
            raise ConfigError("tenant_names", "missing (needed with tenants = true)")
        if not self.audience:
            object.__setattr__(self, "audience", self.app_id)
        if self.algorithm.startswith("RS"):
            if self.signing_key is None:
                raise ConfigError("signing_key_file", f"missing (needed with {self.algorithm})")
            if not self.key_id.strip():
                raise ConfigError("key_id", f"missing (needed with {self.algorithm})")
            return
        if self.app_secret is None:
            raise ConfigError("app_secret_file", "missing (a file holding the secret)")
        # An HMAC key shorter than its hash is weaker than the hash (RFC 7518, 3.2).
        minimum = max(MIN_SECRET_BYTES, int(self.algorithm.removeprefix("HS")) // 8)
        length = len(self.app_secret.reveal())
        if length < minimum:
            raise ConfigError(
                "app_secret_file",
                f"secret is {length} bytes, at least {minimum} are required"
                + ("" if minimum == MIN_SECRET_BYTES else f" for {self.algorithm}"),
            )


@dataclass(frozen=True)
class LdapSettings:
    urls: tuple[str, ...] = option(
        ("ldap://127.0.0.1:389",), nonempty=True, parse=_ldap_urls, read_as=tuple[str, ...]
    )
    start_tls: bool = option(False)
    ca_file: Path | None = option(None, parse=_file_or_none)
    verify_certificates: bool = option(True)
    bind_dn: str | None = option(None, parse=_text_or_none)
    bind_password: Secret | None = option(
        None, key="bind_password_file", credential="ldap_password"
    )
    user_base: str = option("")
    user_filter: str = option("(uid={username})")
    user_dn_template: str = option("")
    group_mode: GroupMode = option("memberof")
    group_base: str = option("")
    group_filter: str = option("(|(member={user_dn})(memberUid={username}))")
    id_attribute: str = option("uid", nonempty=True)
    name_attribute: str = option("cn", nonempty=True)
    mail_attribute: str = option("mail", nonempty=True)
    group_attribute: str = option("")  # context.group (the class, say); empty: none
    avatar_attribute: str = option("")  # context.user.avatar, when it holds an https URL
    timeout: float = option(5.0, minimum=0.1, maximum=60.0)  # every LDAP operation
    # Searches at once; libldap through bonsai answers one operation per connection at a time.
    pool_size: int = option(128, minimum=1, maximum=512)
    # A pooled connection unused this long is closed: a burst's connections go
    # back once it is over (slapd's own idletimeout, if set, should be longer).
    pool_idle_timeout: float = option(15.0, minimum=1.0, maximum=3600.0)
    # One login or role refresh in all, every server and step included. nginx
    # gives up after proxy_read_timeout (15 s in the include) with a 500.
    deadline: float = option(10.0, minimum=0.5, maximum=MAX_DEADLINE_SECONDS)
    # A failed server is asked last and probed this often.
    retry_interval: float = option(30.0, minimum=1.0, maximum=3600.0)
    # A server that has not answered a connection in this long: the next is asked too.
    hedge_delay: float = option(0.5, minimum=0.05, maximum=10.0)

    def __post_init__(self) -> None:
        if self.bind_dn is not None and self.bind_password is None:
            raise ConfigError("bind_password_file", "missing (a file holding the secret)")
        if self.user_dn_template and "{username}" not in self.user_dn_template:
            raise ConfigError("user_dn_template", "must contain {username}")
        if not self.user_dn_template:
            if not self.user_base:
                raise ConfigError("user_base", "missing (or set ldap.user_dn_template)")
            if "{username}" not in self.user_filter:
                raise ConfigError("user_filter", "must contain {username}")
        _check_placeholders("user_filter", self.user_filter, {"username"})
        _check_placeholders("group_filter", self.group_filter, {"username", "user_dn"})
        if self.group_mode == "search" and not self.group_base:
            raise ConfigError("group_base", 'missing (needed with group_mode = "search")')


FeatureValue = bool
# Jitsi locks the display name only with name-readonly = true (mod_muc_displayname):
# names come from the directory, so by default nobody can take another's.
DEFAULT_FEATURES: dict[str, FeatureValue] = {"name-readonly": True}
# A token with context.features gets only the features it lists. Without any,
# Prosody gave moderators these (mod_jitsi_permissions' jitsi_default_permissions,
# util.lib.lua's is_feature_allowed): teachers keep them unless their role says.
MODERATOR_FEATURES: dict[str, FeatureValue] = {
    "livestreaming": True,
    "recording": True,
    "transcription": True,
    "outbound-call": True,
    "create-polls": True,
    "send-groupchat": True,
    "flip": True,
    "live-translation": True,
    "live-translation-subscribe": True,
}


def _features(key: str, table: object) -> tuple[tuple[str, FeatureValue], ...]:
    """A ``features`` table as Prosody reads ``context.features``: names to true or false.

    Only booleans: Prosody's modules compare with ``true`` itself, so a
    ``"true"`` or a ``1`` would look set and do nothing.
    """
    if not isinstance(table, dict):
        raise ConfigError(key, "must be a table, like { recording = true }")
    for name, value in table.items():
        if not isinstance(name, str) or not name or any(ord(ch) < 0x20 for ch in name):
            raise ConfigError(key, f"{name!r} is not a feature name")
        if not isinstance(value, bool):
            raise ConfigError(key, f"{name}: must be true or false")
        if name == "lobby_bypass":
            # token_lobby_bypass reads context.user.lobby_bypass; nothing reads it here.
            raise ConfigError(key, "lobby_bypass is a role option (lobby_bypass = true)")
    return tuple(sorted(table.items()))


@dataclass(frozen=True)
class RoleRule:
    name: str = option(nonempty=True)
    groups: frozenset[str] = option(parse=_dns, read_as=tuple[str, ...])  # canonical DNs
    moderator: bool = option(False)
    any_room: bool = option(False)
    token_ttl: int | None = option(None, minimum=600, maximum=86400)  # None: [jitsi] token_ttl
    # Copied into context.features, over DEFAULT_FEATURES (name-readonly = true).
    features: tuple[tuple[str, FeatureValue], ...] = option((), parse=_features, read_as=object)
    # context.user.lobby_bypass: past the lobby; None: moderators do (a
    # teacher reloading must not land in her own lobby).
    lobby_bypass: bool | None = option(None)
    email: bool | None = option(None)  # send the address; None: only for moderators
    # What the pages call the role, per language; unset: its name.
    display_name: PerLanguage = option((), parse=_per_language, read_as=object)

    def shown_name(self, language: Language) -> str:
        return in_language(self.display_name, language) or self.name

    @property
    def token_features(self) -> dict[str, FeatureValue]:
        defaults = {**DEFAULT_FEATURES, **(MODERATOR_FEATURES if self.moderator else {})}
        return {**defaults, **dict(self.features)}

    @property
    def bypasses_lobby(self) -> bool:
        return self.moderator if self.lobby_bypass is None else self.lobby_bypass

    @property
    def sends_email(self) -> bool:
        # Prosody's presence_identity shows it to the whole room: off for pupils.
        return self.moderator if self.email is None else self.email


@dataclass(frozen=True)
class LoginSettings:
    methods: tuple[LoginMethod, ...] = option(("form", "basic"), nonempty=True)
    realm: str = option("Jitsi Meet", nonempty=True, parse=_realm)
    default_language: Language = option("de")
    school_name: str = option("")
    logo_file: Path | None = option(None, parse=_logo)


@dataclass(frozen=True)
class SiteSettings:
    """What the pages say beyond their fixed words."""

    address: Address = option("Sie")  # German: "Sie" for parents and teachers, or "du"
    # Whom to ask, on the login and refusal pages; unset: no such paragraph.
    help_text: PerLanguage = option((), parse=_per_language, read_as=object)


@dataclass(frozen=True)
class SessionSettings:
    keys: tuple[Secret, ...] = option(
        (), key="keys_file", credential="session_keys", parse=_session_keys
    )  # newest first: the first encrypts, all decrypt
    idle_timeout: int = option(4 * 3600, minimum=60, maximum=7 * 86400)
    lifetime: int = option(12 * 3600, minimum=300, maximum=30 * 86400)
    role_refresh: int = option(600, minimum=30, maximum=86400)
    revocation_file: Path | None = option(None, parse=_path_or_none)

    def __post_init__(self) -> None:
        if self.idle_timeout > self.lifetime:
            raise ConfigError("idle_timeout", "must not be longer than sessions.lifetime")


@dataclass(frozen=True)
class CacheSettings:
    basic_ttl: int = option(300, minimum=0, maximum=86400)
    basic_size: int = option(10000, minimum=1, maximum=1_000_000)
    # Kept across restarts, sealed with the session keys (sidecar.credential_cache).
    basic_state_file: Path | None = option(None, parse=_path_or_none)


@dataclass(frozen=True)
class RegulationSettings:
    max_failures_per_user: int = option(5, minimum=1, maximum=10_000)  # a person, one address
    max_failures_per_address: int = option(30, minimum=1, maximum=100_000)  # all names
    window: int = option(600, minimum=1, maximum=86400)
    ban_time: int = option(900, minimum=1, maximum=7 * 86400)
    # A person from all addresses together.
    max_failures_per_user_overall: int = option(50, minimum=1, maximum=1_000_000)
    # How long an address a person logged in from stays one of hers.
    known_address_lifetime: int = option(30 * 86400, minimum=0, maximum=365 * 86400)

    def __post_init__(self) -> None:
        if self.max_failures_per_user_overall < self.max_failures_per_user:
            raise ConfigError(
                "max_failures_per_user_overall", "must not be below max_failures_per_user"
            )


def _url_scheme(key: str, value: str) -> str:
    web_schemes = ("http", "https", "javascript", "data", "file")
    if not re.fullmatch(r"[a-z][a-z0-9+.-]{0,63}", value) or value in web_schemes:
        raise ConfigError(key, "must be an app's own URL scheme, like org.jitsi.meet")
    return value


def _android_package(key: str, value: str) -> str:
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)+", value):
        raise ConfigError(key, "must be an Android package name, like org.jitsi.meet")
    return value


@dataclass(frozen=True)
class AppLink:
    """A Jitsi Meet app the start page offers deep links for (a rebranded one, say)."""

    name: str = option(nonempty=True)
    scheme: str = option(parse=_url_scheme)
    android_package: str = option(parse=_android_package)


# What a guest session may do: be a participant in its one room.
GUEST_RULE = RoleRule(name=GUEST_ROLE, groups=frozenset(), moderator=False, any_room=False)

JITSI_MEET_APP = AppLink(
    name="Jitsi Meet", scheme="org.jitsi.meet", android_package="org.jitsi.meet"
)


@dataclass(frozen=True)
class GuestSettings:
    # Signs guest links (one key per line, newest first); none: no guest links.
    keys: tuple[Secret, ...] = option(
        (), key="keys_file", credential="guest_keys", parse=_session_keys
    )
    max_days: int = option(7, minimum=1, maximum=90)  # the longest a link is valid
    session_lifetime: int = option(12 * 3600, minimum=300, maximum=7 * 86400)
    state_file: Path | None = option(None, parse=_path_or_none)  # created and withdrawn links
    # Links created and guest names entered from one address, per hour.
    max_per_address: int = option(30, minimum=1, maximum=10_000)


@dataclass(frozen=True)
class ClassroomSettings:
    # Roles without moderator rights wait until a teacher has opened the room.
    wait_for_teacher: bool = option(False)
    room_size_url: str = option("", parse=_http_url_or_empty)  # Prosody's mod_muc_size
    room_size_token: bool = option(False)  # send a token for the room, as Prosody may want
    # When the room-size API is down or answers garbage: keep pupils waiting
    # (no pupil ever alone in an empty room) or let them in.
    on_room_size_error: RoomSizeErrorPolicy = option("wait")
    xmpp_domain: str = option("")  # the room-size API's domain; empty: jitsi.subject
    # jicofo's user (focus@auth.<domain>): a room with only the focus in it is not open.
    focus_user: str = option("focus", nonempty=True)
    bridge_stats_url: str = option("", parse=_http_url_or_empty)  # the videobridge's statistics

    def __post_init__(self) -> None:
        if self.wait_for_teacher and not self.room_size_url:
            raise ConfigError("room_size_url", "missing (needed with wait_for_teacher = true)")


@dataclass(frozen=True)
class StateSettings:
    """Where bans, logouts and withdrawn guest links live when several sidecars share them."""

    redis_url: str = option("", parse=_redis_url_or_empty)  # empty: in this process only
    redis_password: Secret | None = option(
        None, key="redis_password_file", credential="redis_password", parse=_utf8_secret
    )
    key_prefix: str = option("jitsi-auth-sidecar:", nonempty=True)  # for a shared Redis
    timeout: float = option(0.5, minimum=0.05, maximum=5.0)  # per Redis command, in seconds


@dataclass(frozen=True)
class Settings:
    server: ServerSettings
    jitsi: JitsiSettings
    ldap: LdapSettings
    roles: tuple[RoleRule, ...]
    login: LoginSettings
    sessions: SessionSettings
    cache: CacheSettings = CacheSettings()
    regulation: RegulationSettings = RegulationSettings()
    classroom: ClassroomSettings = ClassroomSettings()
    apps: tuple[AppLink, ...] = ()  # offered besides Jitsi Meet's own app
    guests: GuestSettings = GuestSettings()
    previous_keys: tuple[PreviousKey, ...] = ()  # public keys served after a rotation
    state: StateSettings = StateSettings()
    site: SiteSettings = SiteSettings()

    @property
    def xmpp_domain(self) -> str:
        """The meet site's XMPP domain, as Prosody's HTTP modules take it."""
        return self.classroom.xmpp_domain or self.jitsi.subject

    def __post_init__(self) -> None:
        if self.server.workers > 1:
            if not self.state.redis_url:
                # Each worker would count failures and remember logouts on its own.
                raise ConfigError("state.redis_url", "missing (needed with server.workers > 1)")
            for name, path in (
                ("sessions.revocation_file", self.sessions.revocation_file),
                ("guests.state_file", self.guests.state_file),
            ):
                if path is not None:
                    # Every worker would write the file with only its own part.
                    raise ConfigError(
                        name, "must not be set with server.workers > 1 (Redis keeps it)"
                    )
        if self.classroom.wait_for_teacher and self.xmpp_domain == "*":
            raise ConfigError("classroom.xmpp_domain", 'missing (jitsi.subject is "*")')
        if not self.roles:
            raise ConfigError("roles", "missing: at least one [[roles]] table")
        if "form" in self.login.methods and not self.sessions.keys:
            raise ConfigError("sessions.keys_file", "missing (a file holding the secret)")
        if self.cache.basic_state_file is not None and not self.sessions.keys:
            raise ConfigError(
                "sessions.keys_file", "missing (cache.basic_state_file is sealed with it)"
            )
        if self.guests.keys and not self.sessions.keys:
            raise ConfigError("sessions.keys_file", "missing (guest links need sessions)")
        key_ids = [key.key_id for key in self.previous_keys]
        if self.jitsi.algorithm.startswith("RS"):
            key_ids.append(self.jitsi.key_id)
        for index, key in enumerate(self.previous_keys):
            if key_ids.count(key.key_id) > 1:
                raise ConfigError(f"previous_keys[{index}].key_id", "is used twice")
        if self.guests.keys and self.guests.state_file is None and not self.state.redis_url:
            # Without it (or Redis) a restart forgets every withdrawal, and links live for days.
            raise ConfigError("guests.state_file", "missing (needed with guests.keys_file)")
        for index, rule in enumerate(self.roles):
            if rule.name == GUEST_ROLE:
                raise ConfigError(f"roles[{index}].name", f'"{GUEST_ROLE}" is for guest links')


# The [section]s of the file, in the order they are read; [[roles]] is a list.
SECTIONS: dict[str, type] = {
    "server": ServerSettings,
    "jitsi": JitsiSettings,
    "ldap": LdapSettings,
    "login": LoginSettings,
    "sessions": SessionSettings,
    "cache": CacheSettings,
    "regulation": RegulationSettings,
    "classroom": ClassroomSettings,
    "guests": GuestSettings,
    "state": StateSettings,
    "site": SiteSettings,
}


# -- reading -----------------------------------------------------------------------------


def load_settings(path: Path, environ: Mapping[str, str] | None = None) -> Settings:
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
    for name in document:
        if name not in SECTIONS and name not in ("roles", "apps", "previous_keys"):
            raise ConfigError(name, "unknown section")
    known = known_env_names(SECTIONS)
    for variable in sorted(environ):
        if variable.startswith(ENV_PREFIX) and variable not in known:
            raise ConfigError(variable, "unknown environment variable (a typo?)")
    sources = Sources.of(environ)

    def section(cls: type[T], name: str) -> T:
        return read_table(cls, name, _table(document, name), sources)

    return Settings(
        server=section(ServerSettings, "server"),
        jitsi=section(JitsiSettings, "jitsi"),
        ldap=section(LdapSettings, "ldap"),
        roles=_tables(RoleRule, "roles", document.get("roles"), required=True),
        login=section(LoginSettings, "login"),
        sessions=section(SessionSettings, "sessions"),
        cache=section(CacheSettings, "cache"),
        regulation=section(RegulationSettings, "regulation"),
        classroom=section(ClassroomSettings, "classroom"),
        apps=_tables(AppLink, "apps", document.get("apps"), required=False),
        guests=section(GuestSettings, "guests"),
        previous_keys=_tables(
            PreviousKey, "previous_keys", document.get("previous_keys"), required=False
        ),
        state=section(StateSettings, "state"),
        site=section(SiteSettings, "site"),
    )


def _table(document: Mapping[str, object], name: str) -> Mapping[str, object]:
    table = document.get(name, {})
    if not isinstance(table, dict):
        raise ConfigError(name, "must be a table")
    return table


def _tables(cls: type[T], name: str, value: object, *, required: bool) -> tuple[T, ...]:
    """A ``[[name]]`` list of tables; not overridable from the environment (no names for it)."""
    if value is None:
        if required:
            raise ConfigError(name, f"missing: at least one [[{name}]] table")
        return ()
    if not isinstance(value, list) or (required and not value):
        raise ConfigError(name, f"must be a list of [[{name}]] tables")
    items: list[T] = []
    for index, table in enumerate(value):
        if not isinstance(table, dict):
            raise ConfigError(f"{name}[{index}]", "must be a table")
        items.append(read_table(cls, f"{name}[{index}]", table, None))
    return tuple(items)
