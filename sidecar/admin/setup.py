"""``jitsi-auth-sidecar setup``: wire the sidecar into the Jitsi installation on this host.

It finds Jitsi's files (the Debian packages' or docker-jitsi-meet's), asks
for the school's directory what it cannot find (each answer checked live),
then writes the sidecar's configuration and secrets and adds what Jitsi
needs in marked blocks: the include line in nginx's site, token
authentication and the modules in Prosody, auto-owner off in jicofo. Each
file's change is shown as a diff and asked about (``--yes``: not asked;
``--dry-run``: nothing written). nginx's configuration is tested before
anything is reloaded; a failed test puts back every file of the run.
``--undo`` brings back every file as it was before the first run.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TextIO

from sidecar.admin.file_changes import Change, StateFolder, apply, undo
from sidecar.admin.jitsi_edits import (
    NGINX_UPSTREAM,
    CannotEdit,
    TokenSettings,
    docker_env,
    jicofo_conf,
    nginx_site,
    prosody_host_file,
    without_upstream,
)
from sidecar.admin.jitsi_layout import (
    INCLUDE,
    SIDECAR_ETC,
    STATE,
    UPSTREAM,
    DebianJitsi,
    DockerJitsi,
    NotFound,
    find_debian,
    find_docker,
    under,
)
from sidecar.admin.marked_blocks import UnclosedBlock
from sidecar.admin.setup_answers import (
    Asker,
    DirectoryAnswers,
    NoAnswer,
    gather,
    previous_answers,
    written_by_setup,
)
from sidecar.admin.setup_config import SiteAnswers, config_toml, secret_file, secret_text

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
DEFAULT_APP_ID = "jitsi-auth-sidecar"
# What to run after a change, by the file changed (Prosody and jicofo read
# their configuration at start only; a restart ends the meetings running).
SIDECAR_RELOAD = (
    ("systemctl", "enable", "--now", "jitsi-auth-sidecar.socket"),
    ("systemctl", "try-restart", "jitsi-auth-sidecar.service"),
)
NGINX_RELOAD = (("systemctl", "reload", "nginx"),)
PROSODY_RELOAD = (("systemctl", "restart", "prosody"),)
JICOFO_RELOAD = (("systemctl", "restart", "jicofo"),)
DOCKER_RELOAD = (("docker", "compose", "up", "-d"),)
# A server block shaped like docker-jitsi-meet's meet.conf around its custom include.
DOCKER_HARNESS = """\
pid {folder}/nginx.pid;
error_log stderr;
events {{}}
http {{
    client_body_temp_path {folder}/body;
    proxy_temp_path {folder}/proxy;
    fastcgi_temp_path {folder}/fastcgi;
    uwsgi_temp_path {folder}/uwsgi;
    scgi_temp_path {folder}/scgi;
    server {{
        listen 127.0.0.1:8443;
        root /usr/share/jitsi-meet;
        ssi on;
        set $prefix "";
        include {custom};
        location = /config.js {{ alias /config/config.js; }}
        location ~ ^/([^/?&:'"]+)$ {{ try_files $uri @root_path; }}
        location @root_path {{ rewrite ^/(.*)$ / break; }}
    }}
}}
"""


def add_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    setup = commands.add_parser(
        "setup",
        help="wire the sidecar into this host's Jitsi (nginx, Prosody, jicofo), asking first",
        description=(
            "Find Jitsi's files, ask for the school's directory (each answer checked live), "
            "write config.toml and the secrets, and add what Jitsi needs in marked blocks: the "
            "include in nginx's site, token authentication and modules in Prosody, auto-owner "
            "off in jicofo. Shows each change and asks; tests nginx's configuration before "
            "reloading anything; --undo restores every file. Exit codes: 0 ok, 1 a check or "
            "the nginx test failed, 2 usage or a file setup cannot read."
        ),
    )
    where = setup.add_argument_group("where Jitsi is")
    where.add_argument("--root", type=Path, default=Path("/"), help="a folder that stands for /")
    where.add_argument("--domain", help="the meet domain, when several sites are installed")
    where.add_argument(
        "--docker", type=Path, metavar="DIR", help="docker-jitsi-meet's folder (with .env)"
    )
    directory = setup.add_argument_group("the school's directory (asked when not given)")
    directory.add_argument("--ldap-url", help="ldap://... or ldaps://...")
    directory.add_argument("--bind-dn", help="the service account's DN")
    directory.add_argument(
        "--bind-password-file", type=Path, metavar="FILE", help="holds the account's password"
    )
    directory.add_argument("--user-base", help="the entry people are under")
    directory.add_argument("--user-filter", help="default: (uid={username})")
    directory.add_argument("--teachers-group", metavar="DN")
    directory.add_argument("--pupils-group", metavar="DN")
    setup.add_argument("--app-id", help=f"the tokens' app id (default: {DEFAULT_APP_ID})")
    how = setup.add_argument_group("how")
    how.add_argument("--yes", action="store_true", help="change every file without asking")
    how.add_argument("--dry-run", action="store_true", help="show the changes, write nothing")
    how.add_argument("--undo", action="store_true", help="restore every file setup changed")
    how.add_argument("--nginx", default="nginx", metavar="BINARY", help="for nginx -t")
    how.add_argument(
        "--nginx-conf", type=Path, metavar="FILE", help="default: ROOT/etc/nginx/nginx.conf"
    )
    how.add_argument(
        "--include", type=Path, metavar="FILE", help="the nginx include (default: the package's)"
    )
    how.add_argument(
        "--reload-command",
        metavar="COMMAND",
        help="run this instead of restarting nginx, Prosody, jicofo and the sidecar",
    )
    how.add_argument("--no-reload", action="store_true", help="reload and restart nothing")


@dataclass
class Plan:
    """The files of one run, and what to run once they changed."""

    changes: list[Change] = field(default_factory=list)
    reloads: dict[Path, Sequence[Sequence[str]]] = field(default_factory=dict)
    nginx_files: set[Path] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)

    def add(
        self, change: Change, reload: Sequence[Sequence[str]] = (), *, nginx: bool = False
    ) -> None:
        self.changes.append(change)
        self.reloads[change.path] = reload
        if nginx:
            self.nginx_files.add(change.path)


class SetupFailed(Exception):
    def __init__(self, exit_code: int, message: str) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def run_setup(
    args: argparse.Namespace, *, stdin: TextIO | None = None, out: TextIO | None = None
) -> int:
    stdin = stdin or sys.stdin
    out = out or sys.stdout
    root: Path = args.root.resolve()
    state = StateFolder(under(root, STATE))
    try:
        if args.undo:
            return _undo(args, root, state, out)
        return _setup(args, root, state, stdin, out)
    except (NotFound, CannotEdit, UnclosedBlock, NoAnswer) as error:
        print(f"jitsi-auth-sidecar: setup: {error}", file=sys.stderr)
        return EXIT_USAGE if not isinstance(error, NoAnswer) else EXIT_FAILED
    except SetupFailed as failure:
        print(f"jitsi-auth-sidecar: setup: {failure}", file=sys.stderr)
        return failure.exit_code
    except UnicodeDecodeError as error:
        print(f"jitsi-auth-sidecar: setup: a file is not UTF-8 text: {error}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as error:
        # Most often: not run as root on the real host.
        where = f" {error.filename}" if error.filename else ""
        print(f"jitsi-auth-sidecar: setup:{where}: {error.strerror}", file=sys.stderr)
        return EXIT_USAGE


def _given(args: argparse.Namespace, previous: DirectoryAnswers) -> DirectoryAnswers:
    """The options over what an earlier run wrote."""
    password = previous.password
    if args.bind_password_file is not None:
        try:
            password = args.bind_password_file.read_text("utf-8").rstrip("\r\n")
        except OSError as error:
            raise SetupFailed(EXIT_USAGE, f"--bind-password-file: {error.strerror}") from None
    options = {
        "url": args.ldap_url,
        "bind_dn": args.bind_dn,
        "password": password,
        "user_base": args.user_base,
        "user_filter": args.user_filter,
        "teachers": args.teachers_group,
        "pupils": args.pupils_group,
    }
    return replace(previous, **{key: value for key, value in options.items() if value is not None})


def _previous_app_id(config: Path) -> str | None:
    value = written_by_setup(config).get("jitsi", {}).get("app_id")
    return value if isinstance(value, str) else None


def _sidecar_files(
    plan: Plan, root: Path, site: SiteAnswers, answers: DirectoryAnswers
) -> TokenSettings:
    """config.toml and the secrets; the token settings Jitsi's side needs."""
    etc = under(root, SIDECAR_ETC)
    config = etc / "config.toml"
    plan.add(
        Change(config, config_toml(site, answers), "the sidecar's configuration"), SIDECAR_RELOAD
    )
    app_secret = secret_file(etc / "app_secret")
    plan.add(
        Change(etc / "app_secret", app_secret, "the tokens' secret", secret=True), SIDECAR_RELOAD
    )
    for name in ("session_keys", "guest_keys"):
        plan.add(
            Change(etc / name, secret_file(etc / name), f"the {name}", secret=True), SIDECAR_RELOAD
        )
    if answers.bind_dn:
        password = answers.password.encode()
        plan.add(
            Change(etc / "ldap_password", password, "the service account's password", secret=True),
            SIDECAR_RELOAD,
        )
    else:
        plan.notes.append(
            "no service account: the unit must not load ldap_password (systemctl edit "
            "jitsi-auth-sidecar.service: an empty LoadCredential= line, then the others)"
        )
    return TokenSettings(site.app_id, secret_text(app_secret))


def _debian_plan(args: argparse.Namespace, root: Path, asker: Asker, out: TextIO) -> Plan:
    jitsi: DebianJitsi = find_debian(root, args.domain)
    if not jitsi.include.is_file():
        raise NotFound(
            f"the nginx include is not at /{INCLUDE}: install the jitsi-auth-sidecar package "
            "(or copy nginx/jitsi-auth-sidecar.conf there)"
        )
    names_upstream = f"http://{NGINX_UPSTREAM}/" in jitsi.include.read_text("utf-8")
    if names_upstream and not jitsi.upstream.is_file():
        raise NotFound(
            f"the nginx upstream the include names is not at /{UPSTREAM}: install the "
            "jitsi-auth-sidecar package (or copy nginx/jitsi-auth-sidecar-upstream.conf there)"
        )
    print(f"Jitsi Meet (Debian packages) for {jitsi.domain}", file=out)
    plan = Plan()
    token = _common(plan, root, args, asker, out, f"https://{jitsi.domain}", jitsi.domain)
    prosody = jitsi.prosody_host.read_text("utf-8")
    secret = [token.app_secret]
    plan.add(
        Change(
            jitsi.prosody_host,
            prosody_host_file(prosody, domain=jitsi.domain, token=token).encode(),
            "Prosody: token authentication and the modules the tokens need",
            masked=secret,
        ),
        PROSODY_RELOAD,
    )
    plan.add(
        Change(
            jitsi.jicofo_conf,
            jicofo_conf(jitsi.jicofo_conf.read_text("utf-8")).encode(),
            "jicofo: moderator rights from the token alone",
        ),
        JICOFO_RELOAD,
    )
    plan.add(
        Change(
            jitsi.nginx_site,
            nginx_site(jitsi.nginx_site.read_text("utf-8")).encode(),
            "nginx: the include that asks the sidecar",
        ),
        NGINX_RELOAD,
        nginx=True,
    )
    missing = jitsi.missing_plugins()
    if missing:
        plan.notes.append(
            f"Prosody needs {', '.join(f'mod_{m}.lua' for m in missing)} from jitsi-contrib's "
            "prosody-plugins in /usr/share/jitsi-meet/prosody-plugins/ (docs/jitsi.md)"
        )
    plan.notes.append(
        "token authentication needs jitsi-meet-tokens' Lua libraries: apt-get install "
        "jitsi-meet-tokens (before setup: its questions may be left empty)"
    )
    return plan


def _docker_plan(args: argparse.Namespace, root: Path, asker: Asker, out: TextIO) -> Plan:
    docker: DockerJitsi = find_docker(root, args.docker)
    include = args.include or under(root, INCLUDE)
    if not include.is_file():
        raise NotFound(f"the nginx include is not at {include}: name it with --include")
    print(f"docker-jitsi-meet in {docker.folder} ({docker.domain})", file=out)
    plan = Plan()
    token = _common(plan, root, args, asker, out, docker.public_url, docker.domain)
    plan.add(
        Change(
            docker.env_file,
            docker_env(docker.env_file.read_text("utf-8"), token=token).encode(),
            "docker-jitsi-meet: JWT authentication (Prosody and jicofo read .env)",
            masked=[token.app_secret],
        ),
        DOCKER_RELOAD,
    )
    plan.add(
        Change(
            docker.nginx_custom,
            without_upstream(include.read_text("utf-8")).encode(),
            "the web container's nginx: the include that asks the sidecar",
        ),
        DOCKER_RELOAD,
        nginx=True,
    )
    missing = docker.missing_plugins()
    if missing:
        plan.notes.append(
            f"Prosody needs {', '.join(f'mod_{m}.lua' for m in missing)} from jitsi-contrib's "
            f"prosody-plugins in {docker.config_folder / 'prosody' / 'prosody-plugins-custom'}"
        )
    plan.notes.append(
        "the web container reaches the sidecar's socket only if /run/jitsi-auth-sidecar is "
        "mounted into it (docs/jitsi.md, docker-jitsi-meet)"
    )
    return plan


def _common(
    plan: Plan,
    root: Path,
    args: argparse.Namespace,
    asker: Asker,
    out: TextIO,
    public_url: str,
    subject: str,
) -> TokenSettings:
    etc = under(root, SIDECAR_ETC)
    previous = previous_answers(etc / "config.toml", etc / "ldap_password")
    print("The school's directory:", file=out)
    answers = gather(_given(args, previous), asker, out=out)
    app_id = args.app_id or _previous_app_id(etc / "config.toml") or DEFAULT_APP_ID
    site = SiteAnswers(public_url=public_url, subject=subject, app_id=app_id)
    return _sidecar_files(plan, root, site, answers)


def _consent(
    args: argparse.Namespace, asker: Asker, root: Path, out: TextIO
) -> Callable[[Change], bool]:
    def consent(change: Change) -> bool:
        shown = "/" + str(change.path.relative_to(root))
        print(f"\n== {change.what}: {shown}", file=out)
        print(change.diff(shown), end="", file=out)
        if args.dry_run:
            return False
        if args.yes:
            return True
        print(f"change {shown}? [y/N] ", end="", file=out, flush=True)
        return asker.stdin.readline().strip().lower() in ("y", "yes")

    return consent


def _setup(
    args: argparse.Namespace, root: Path, state: StateFolder, stdin: TextIO, out: TextIO
) -> int:
    asker = Asker(stdin, out, interactive=not args.yes)
    plan = (_docker_plan if args.docker else _debian_plan)(args, root, asker, out)
    if not any(change.needed for change in plan.changes):
        print("\nnothing to change: Jitsi and the sidecar are set up as asked", file=out)
        _print_notes(plan, out)
        return EXIT_OK
    applied = apply(plan.changes, state, consent=_consent(args, asker, root, out))
    if args.dry_run:
        print("\n--dry-run: nothing written", file=out)
        _print_notes(plan, out)
        return EXIT_OK
    if plan.nginx_files & set(applied.before):
        problem = _nginx_test(args, root, plan)
        if problem is not None:
            applied.roll_back()
            raise SetupFailed(
                EXIT_FAILED, f"nginx -t failed, every file of this run put back:\n{problem}"
            )
        print("\nnginx -t: the configuration is fine", file=out)
    _reload(args, [plan.reloads[path] for path in applied.before], args.docker, out)
    print(f"\nchanged {len(applied.before)} files; setup --undo restores them", file=out)
    _print_notes(plan, out)
    return EXIT_OK


def _print_notes(plan: Plan, out: TextIO) -> None:
    for note in plan.notes:
        print(f"note: {note}", file=out)


def _nginx_test(args: argparse.Namespace, root: Path, plan: Plan) -> str | None:
    """None when nginx accepts the configuration, or what it said."""
    with tempfile.TemporaryDirectory(prefix="jitsi-auth-sidecar-setup-") as folder:
        if args.docker:
            (custom,) = plan.nginx_files
            conf = Path(folder) / "nginx.conf"
            conf.write_text(DOCKER_HARNESS.format(folder=folder, custom=custom), "utf-8")
        else:
            conf = args.nginx_conf or under(root, "etc/nginx/nginx.conf")
        try:
            result = subprocess.run(  # noqa: S603 - the admin's own nginx binary
                [args.nginx, "-t", "-q", "-c", str(conf)],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
        except OSError as error:
            return f"{args.nginx}: {error.strerror}"
    if result.returncode != 0:
        return (result.stderr or result.stdout).strip()
    return None


def _reload(
    args: argparse.Namespace,
    wanted: Sequence[Sequence[Sequence[str]]],
    docker: Path | None,
    out: TextIO,
) -> None:
    if args.no_reload:
        print("--no-reload: nothing reloaded or restarted", file=out)
        return
    commands: list[Sequence[str]] = []
    if args.reload_command:
        commands = [shlex.split(args.reload_command)]
    else:
        for group in wanted:
            for command in group:
                if command not in commands:
                    commands.append(command)
    for command in commands:
        print(f"running: {shlex.join(command)}", file=out)
        # The admin's own command line, or the fixed reloads above.
        result = subprocess.run(list(command), cwd=docker, check=False)  # noqa: S603
        if result.returncode != 0:
            raise SetupFailed(
                EXIT_FAILED,
                f"{shlex.join(command)} exited with {result.returncode}: run it by hand",
            )


def _undo(args: argparse.Namespace, root: Path, state: StateFolder, out: TextIO) -> int:
    if not state.manifest.exists():
        print("nothing to undo: setup has changed no file here", file=out)
        return EXIT_OK
    records = state.records()
    if args.dry_run:
        for name in records:
            print(f"would restore {name}", file=out)
        return EXIT_OK
    result = undo(state)
    for path in result.restored:
        print(f"restored {path}", file=out)
    for path in result.removed:
        print(f"removed {path} (setup had created it)", file=out)
    for path in result.left:
        print(
            f"left alone {path}: changed since setup wrote it; its first copy is in {state.folder}",
            file=out,
        )
    if (not args.docker and under(root, "etc/nginx/nginx.conf").exists()) or args.nginx_conf:
        problem = _nginx_test(args, root, Plan())
        if problem is not None:
            raise SetupFailed(EXIT_FAILED, f"nginx -t fails after the undo:\n{problem}")
    everything = [SIDECAR_RELOAD, NGINX_RELOAD, PROSODY_RELOAD, JICOFO_RELOAD]
    _reload(args, [DOCKER_RELOAD] if args.docker else everything, args.docker, out)
    return EXIT_FAILED if result.left else EXIT_OK
