"""The admin commands of ``jitsi-auth-sidecar``, for an operator at a console.

``check-config --config FILE [--offline] [--quiet]``
    Read the configuration as the daemon does, print it as it resolved it
    (defaults and environment overrides included, secrets masked), then check
    that every LDAP server, Redis, the room-size API and the videobridge's
    statistics answer, that every [[roles]] group exists and has members, and
    that ldap.user_filter finds people (naming an attribute the directory's
    schema does not know). Each finding is one line with its fix.
    ``--offline`` leaves the live checks out: systemd's ExecStartPre uses
    it, as a directory that is down for a moment must not keep the daemon
    (which copes with that) from starting. ``--quiet`` leaves the
    configuration out: the summary line, and the live checks' lines.
``test-login USER --config FILE [--room ROOM]``
    Log USER in against LDAP as the login page would (the password from a
    prompt, or one line of standard input), and show who they are, their role
    and the token they would get for ROOM. Bans are not consulted and no
    failure is counted: this is the admin, not a guess at a password.
``mint --config FILE --user USER --room ROOM [--role ROLE] [--ttl SECONDS]``
    Print one room token and nothing else. The role comes from LDAP (through
    the service account), or with ``--role`` from that [[roles]] rule without
    asking LDAP at all.

Exit codes, the same for every command::

    0    ok
    1    refused: a live check failed, the password was wrong, or no such user
    2    configuration error, or wrong usage (not a room name, unknown role, ...)
    3    unreachable: LDAP, Redis or the room-size API did not answer
    4    no role: the person exists (and the password was right), but no
         [[roles]] rule names any of their groups
    130  interrupted (Ctrl-C), as shells count it
    141  whoever read the output stopped early (``| head``), as shells count it

When several live checks fail, 3 wins over 1.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import logging
import os
import sys
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import bonsai
import jwt

from sidecar.admin.directory_checks import base_exists
from sidecar.admin.live_checks import live_checks
from sidecar.admin.setup import add_command as add_setup_command
from sidecar.admin.setup import run_setup
from sidecar.config.effective import render_settings
from sidecar.config.settings import (
    DEFAULT_CONFIG_PATH,
    ConfigError,
    LdapSettings,
    RoleRule,
    Settings,
    load_settings,
)
from sidecar.credentials import Credentials, check_credentials
from sidecar.jitsi.tokens import RoomTokens
from sidecar.ldap.directory import Directory, ldap_client
from sidecar.people import Person
from sidecar.refusals import DirectoryUnavailable, InvalidCredentials, UnacceptableCredentials
from sidecar.roles import RoleRules
from sidecar.rooms import NotARoom, RoomRequest, room_named

EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_USAGE = 2  # argparse's own code for a wrong command line, too
EXIT_UNREACHABLE = 3
EXIT_NO_ROLE = 4
EXIT_INTERRUPTED = 130  # Ctrl-C, as shells report it
EXIT_BROKEN_PIPE = 141  # SIGPIPE, as shells report it

COMMANDS = ("check-config", "test-login", "mint", "setup")
DEFAULT_TEST_ROOM = "test-room"
# As for [jitsi] token_ttl at most; shorter ones are fine for load tests.
MIN_TTL_SECONDS = 60
MAX_TTL_SECONDS = 86400


class CommandFailed(Exception):
    """One line for the admin, and the exit code that goes with it."""

    def __init__(self, exit_code: int, message: str) -> None:
        super().__init__(message)
        self.exit_code = exit_code


# -- the command line ------------------------------------------------------------------


def _ttl(text: str) -> int:
    try:
        seconds = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of seconds") from None
    if not MIN_TTL_SECONDS <= seconds <= MAX_TTL_SECONDS:
        raise argparse.ArgumentTypeError(
            f"must be between {MIN_TTL_SECONDS} and {MAX_TTL_SECONDS} seconds"
        )
    return seconds


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The admin commands' parsers, next to ``serve``."""
    check = commands.add_parser(
        "check-config",
        help="show the configuration as read (secrets masked) and check LDAP, Redis, room size",
        description=(
            "Show the configuration as the daemon reads it (secrets masked), then check that "
            "the LDAP servers, Redis, the room-size API and the bridge statistics answer, that "
            "every [[roles]] group exists and has members and that ldap.user_filter finds "
            "people. Each finding is one line with its fix. Exit codes: 0 ok, 1 a check "
            "failed, 2 configuration error, 3 a service did not answer."
        ),
    )
    check.add_argument("--offline", action="store_true", help="no live checks")
    check.add_argument("--quiet", action="store_true", help="only the summary line")
    login = commands.add_parser(
        "test-login",
        help="log a person in against LDAP and show role and token (no bans)",
        description=(
            "Log USER in as the login page would (the password from a prompt, or one line of "
            "standard input) and show their entry, role and the token for the room. Exit "
            "codes: 0 ok, 1 refused, 2 usage, 3 LDAP did not answer, 4 no role."
        ),
    )
    login.add_argument("user", help="the name as typed on the login page")
    login.add_argument(
        "--room",
        default=DEFAULT_TEST_ROOM,
        help=f"the room's name as people type it (default: {DEFAULT_TEST_ROOM})",
    )
    mint = commands.add_parser(
        "mint",
        help="print one room token",
        description=(
            "Print one room token and nothing else; the role from LDAP through the service "
            "account, or with --role from that [[roles]] rule."
        ),
    )
    mint.add_argument("--user", required=True, help="the token's context.user.id")
    mint.add_argument("--room", required=True, help="the room's name as people type it")
    mint.add_argument(
        "--role", metavar="NAME", help="this [[roles]] rule, trusted without asking LDAP"
    )
    mint.add_argument(
        "--ttl", type=_ttl, metavar="SECONDS", help="how long it is valid (default: the role's)"
    )
    for command in (check, login, mint):
        command.add_argument(
            "--config", type=Path, default=DEFAULT_CONFIG_PATH, metavar="FILE", help="config.toml"
        )
    add_setup_command(commands)


def run_command(args: argparse.Namespace) -> int:
    """Run the admin command ``args`` names; its exit code."""
    # Each command says what failed itself, in one line with the fix; the modules'
    # warnings and errors (written for the daemon's log) would say it twice.
    logging.basicConfig(
        level=logging.CRITICAL, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    try:
        if args.command == "check-config":
            return check_configuration(args.config, offline=args.offline, quiet=args.quiet)
        if args.command == "test-login":
            return try_login(args.config, args.user, room_name=args.room)
        if args.command == "setup":
            return run_setup(args)
        if args.command == "mint":
            return mint_token(
                args.config, user=args.user, room_name=args.room, role=args.role, ttl=args.ttl
            )
    except CommandFailed as failure:
        print(f"jitsi-auth-sidecar: {failure}", file=sys.stderr)
        return failure.exit_code
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # Python would complain once more flushing stdout at exit: send that nowhere.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    raise AssertionError(args.command)


def _load(path: Path) -> Settings:
    try:
        return load_settings(path)
    except ConfigError as error:
        # The same one line as serve's: it names the key.
        raise CommandFailed(EXIT_USAGE, f"configuration error: {error}") from None


def _room(name: str) -> RoomRequest:
    try:
        return room_named(name)
    except NotARoom as error:
        raise CommandFailed(EXIT_USAGE, f"{name!r} is not a room name ({error})") from None


# -- check-config ------------------------------------------------------------------------


def check_configuration(path: Path, *, offline: bool, quiet: bool) -> int:
    settings = _load(path)
    print(
        f"configuration ok: {len(settings.roles)} role rules, LDAP {', '.join(settings.ldap.urls)}"
    )
    if not quiet:
        print("\n# As the daemon reads it: the file, environment overrides and defaults.")
        print("\n".join(render_settings(settings, _document(path), os.environ)))
    if offline:
        if not quiet:
            print("live checks: left out (--offline)")
        return EXIT_OK
    return asyncio.run(_report_live_checks(settings))


def _document(path: Path) -> Mapping[str, object]:
    """The file as TOML reads it, to tell the file's values from defaults and overrides."""
    try:
        with path.open("rb") as file:
            return tomllib.load(file)
    except (OSError, tomllib.TOMLDecodeError):
        # Read a moment ago by the loader; changed since, it only loses the "# default" notes.
        return {}


async def _report_live_checks(settings: Settings) -> int:
    print("live checks:", flush=True)
    exit_code, done, failed = EXIT_OK, 0, 0
    async for result in live_checks(settings):
        done += 1
        print(f"  {'ok' if result.ok else 'FAILED':<6}  {result.name}: {result.detail}", flush=True)
        if not result.ok:
            failed += 1
            # A service that does not answer at all outweighs one that answers wrongly.
            exit_code = max(exit_code, EXIT_UNREACHABLE if result.unreachable else EXIT_REFUSED)
    print(f"live checks: {failed} of {done} FAILED" if failed else f"live checks: all {done} ok")
    return exit_code


# -- test-login ------------------------------------------------------------------------


def _read_password(username: str) -> str:
    """From a prompt that does not echo, or one line of a pipe; never from the command line."""
    stdin = sys.stdin
    if stdin is None:
        raise CommandFailed(EXIT_USAGE, "no standard input to read the password from")
    if stdin.isatty():
        try:
            return getpass.getpass(f"password for {username}: ")
        except EOFError:
            raise CommandFailed(EXIT_USAGE, "no password given") from None
        except UnicodeDecodeError:
            raise CommandFailed(EXIT_REFUSED, "login refused before any bind: not UTF-8") from None
    # Bytes, decoded leniently: an undecodable byte is refused by the credential
    # checks (as a lone surrogate), not by a traceback, whatever the locale.
    raw = stdin.buffer.readline() if hasattr(stdin, "buffer") else stdin.readline().encode()
    line = raw.decode("utf-8", "surrogateescape")
    if not line:
        raise CommandFailed(EXIT_USAGE, "no password on standard input (one line is read)")
    return line.removesuffix("\n").removesuffix("\r")


def try_login(path: Path, username: str, *, room_name: str) -> int:
    settings = _load(path)
    room = _room(room_name)
    try:
        credentials = check_credentials(username, _read_password(username))
    except UnacceptableCredentials as refused:
        # The login page refuses these too, before any bind.
        raise CommandFailed(EXIT_REFUSED, f"login refused before any bind: {refused}") from None
    person, dn = asyncio.run(_authenticate(settings, credentials))
    _print_person(person, dn)
    rule = RoleRules(settings.roles).role_for(person)
    if rule is None:
        raise CommandFailed(EXIT_NO_ROLE, _no_role(person))
    print(f"role:      {rule.name}")
    print(f"moderator: {'yes' if rule.moderator else 'no'}")
    print(f"room:      {room.room} (in the token: {room.backend_name})")
    token = RoomTokens(settings.jitsi).mint(person, rule, room.backend_name)
    print("token header:")
    print(_json(jwt.get_unverified_header(token)))
    print("token claims:")
    print(_json(jwt.decode(token, options={"verify_signature": False})))
    return EXIT_OK


async def _authenticate(settings: Settings, credentials: Credentials) -> tuple[Person, str]:
    """The person and their entry's DN, straight from the Directory: no Regulator, no cache."""
    directory = Directory(settings.ldap)
    found: list[str] = []

    async def remember(dn: str) -> None:
        found.append(dn)

    try:
        try:
            person = await directory.authenticate(credentials, found=remember)
        except InvalidCredentials:
            raise CommandFailed(
                EXIT_REFUSED, await _why_refused(settings, directory, credentials)
            ) from None
        except DirectoryUnavailable as error:
            raise _unavailable(settings, error) from None
    finally:
        directory.close()
    template = settings.ldap.user_dn_template
    if template:
        # A direct bind: the DN is the template's, no search told it.
        found.append(template.format(username=bonsai.escape_attribute_value(credentials.username)))
    return person, found[-1] if found else "(unknown)"


def _unavailable(settings: Settings, error: DirectoryUnavailable) -> CommandFailed:
    """The directory down, or (the server answered) the service account refused."""
    if isinstance(error.__cause__, bonsai.AuthenticationError):
        return CommandFailed(
            EXIT_REFUSED,
            f"the directory refused the service account's password ({settings.ldap.bind_dn}): "
            "fix ldap.bind_password_file (or ldap.bind_dn)",
        )
    return CommandFailed(EXIT_UNREACHABLE, f"LDAP unavailable: {error}")


async def _user_base_missing(settings: LdapSettings) -> bool:
    """Whether ``ldap.user_base`` names no entry; False when no server tells."""
    for url in settings.urls:
        client = ldap_client(settings, url, settings.bind_dn, settings.bind_password)
        try:
            async with asyncio.timeout(settings.timeout):
                conn = await client.connect(is_async=True, timeout=settings.timeout)
        except (TimeoutError, bonsai.LDAPError, OSError):
            continue
        try:
            return not await base_exists(settings, conn, settings.user_base)
        except (TimeoutError, bonsai.LDAPError):
            continue
        finally:
            conn.close()
    return False


async def _why_refused(settings: Settings, directory: Directory, credentials: Credentials) -> str:
    """Wrong password or unknown user: the daemon never tells, the admin may know."""
    name = credentials.username
    if not directory.can_look_up:
        return (
            f"login refused: wrong password or no such user {name!r} (no service account to tell)"
        )
    try:
        person = await directory.look_up(name)
    except DirectoryUnavailable:
        return f"login refused: wrong password or no such user {name!r}"
    if person is None:
        ldap = settings.ldap
        if not ldap.user_dn_template and await _user_base_missing(ldap):
            return (
                f"login refused: the base {ldap.user_base} does not exist: "
                "fix ldap.user_base (no user can be found under it)"
            )
        return f"login refused: no such user {name!r} (ldap.user_filter finds no single entry)"
    return f"login refused: wrong password for {name!r}"


def _print_person(person: Person, dn: str) -> None:
    print(f"dn:        {dn}")
    print(f"id:        {person.user_id}")
    print(f"name:      {person.display_name}")
    print(f"email:     {person.email or '(none)'}")
    groups = sorted(person.groups) or ["(none)"]
    print(f"groups:    {groups[0]}")
    for group in groups[1:]:
        print(f"           {group}")


def _no_role(person: Person) -> str:
    return (
        f"{person.user_id!r} has no role: none of their groups is in a [[roles]] rule "
        "(the daemon shows them the 403 page)"
    )


def _json(value: Mapping[str, Any]) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)


# -- mint ------------------------------------------------------------------------------


def mint_token(path: Path, *, user: str, room_name: str, role: str | None, ttl: int | None) -> int:
    settings = _load(path)
    room = _room(room_name)
    if not user.strip() or user != user.strip() or not user.isprintable():
        raise CommandFailed(EXIT_USAGE, f"{user!r} is not a user name")
    if role is None:
        person, rule = asyncio.run(_looked_up(settings, user))
    else:
        person, rule = _trusted(settings, user, role)
    print(RoomTokens(settings.jitsi).mint(person, rule, room.backend_name, ttl=ttl))
    return EXIT_OK


def _trusted(settings: Settings, user: str, role: str) -> tuple[Person, RoleRule]:
    """``--role``: the rule as named, and the user as given (no name or address known)."""
    rule = RoleRules(settings.roles).rule_named(role)
    if rule is None:
        known = ", ".join(rule.name for rule in settings.roles)
        raise CommandFailed(EXIT_USAGE, f"no [[roles]] rule named {role!r} (there are: {known})")
    return Person(user_id=user, display_name=user, email="", groups=frozenset()), rule


async def _looked_up(settings: Settings, user: str) -> tuple[Person, RoleRule]:
    directory = Directory(settings.ldap)
    try:
        if not directory.can_look_up:
            raise CommandFailed(
                EXIT_USAGE,
                "without --role the user is looked up through the service account, "
                "and ldap.bind_dn is not set: pass --role NAME",
            )
        person = await directory.look_up(user)
    except DirectoryUnavailable as error:
        raise _unavailable(settings, error) from None
    finally:
        directory.close()
    if person is None:
        raise CommandFailed(
            EXIT_REFUSED, f"no such user {user!r} (ldap.user_filter finds no single entry)"
        )
    rule = RoleRules(settings.roles).role_for(person)
    if rule is None:
        raise CommandFailed(EXIT_NO_ROLE, _no_role(person))
    return person, rule
