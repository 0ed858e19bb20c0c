"""``make demo`` (``python -m demo``): the whole thing on this machine, nothing kept.

A throwaway directory holds a real slapd seeded with a demo school, a real
nginx with the project's include in front of a stand-in meet page, and the
sidecar itself. Ctrl-C stops all three and removes the directory.
"""

from __future__ import annotations

import asyncio
import secrets
import sys
import tempfile
from pathlib import Path

from demo.jitsi_http import JitsiHttp
from demo.nginx import STANDIN, Nginx
from demo.ports import port_is_taken, remote_access_lines, taken_port_message
from demo.school import SCHOOL
from demo.slapd import Slapd
from sidecar.config.settings import load_settings
from sidecar.web.server import serve

CONFIG = """\
# The demo's configuration: the same keys a school uses in production.
[server]
listen = "unix:{socket}"
public_url = "http://127.0.0.1:{port}"

[jitsi]
app_id = "school-meet"
app_secret_file = "{secret_file}"
subject = "{subject}"

[ldap]
urls = ["{ldap_url}"]
bind_dn = "{service_dn}"
bind_password_file = "{service_password_file}"
user_base = "ou=people,{base_dn}"
user_filter = "(uid={{username}})"
group_mode = "search"
group_base = "ou=groups,{base_dn}"

[[roles]]
name = "teacher"
groups = ["{teachers}"]
moderator = true
display_name = {{ de = "Lehrkraft", en = "teacher" }}

[[roles]]
name = "pupil"
groups = ["{pupils}", "{posix}"]
moderator = false
display_name = {{ de = "Schülerin oder Schüler", en = "pupil" }}

[login]
methods = {methods}
school_name = "Demo-Schule am See"
logo_file = "{logo_file}"

[sessions]
keys_file = "{session_keys_file}"
revocation_file = "{revocation_file}"

[guests]
keys_file = "{guest_keys_file}"
state_file = "{guest_state_file}"
{extra}"""


DEMO_METHODS = '["form", "basic"]'
SUBJECT = "meet.school.example"


def write_demo_config(
    workdir: Path, *, port: int, ldap_url: str, methods: str = DEMO_METHODS, extra: str = ""
) -> Path:
    """The demo's files in ``workdir``; ``extra`` is appended TOML (tests tune limits)."""
    secret_file = workdir / "app_secret"
    secret_file.write_text(secrets.token_urlsafe(48), "utf-8")
    service_password_file = workdir / "ldap_password"
    service_password_file.write_text(SCHOOL.service_password, "utf-8")
    session_keys_file = workdir / "session_keys"
    session_keys_file.write_text(secrets.token_urlsafe(48) + "\n", "utf-8")
    guest_keys_file = workdir / "guest_keys"
    guest_keys_file.write_text(secrets.token_urlsafe(48) + "\n", "utf-8")
    for path in (secret_file, service_password_file, session_keys_file, guest_keys_file):
        path.chmod(0o600)
    logo_file = workdir / "logo.svg"
    logo_file.write_bytes((STANDIN / "logo.svg").read_bytes())
    config = workdir / "config.toml"
    config.write_text(
        CONFIG.format(
            socket=workdir / "sidecar.sock",
            port=port,
            secret_file=secret_file,
            ldap_url=ldap_url,
            service_dn=SCHOOL.service_dn,
            service_password_file=service_password_file,
            base_dn=SCHOOL.base_dn,
            teachers=SCHOOL.teachers_group_dn,
            pupils=SCHOOL.pupils_group_dn,
            posix=SCHOOL.posix_group_dn,
            methods=methods,
            logo_file=logo_file,
            session_keys_file=session_keys_file,
            revocation_file=workdir / "revoked_sessions.json",
            subject=SUBJECT,
            guest_keys_file=guest_keys_file,
            guest_state_file=workdir / "guest_links.json",
            extra=extra,
        ),
        "utf-8",
    )
    return config


def classroom_config(jitsi: JitsiHttp) -> str:
    """The demo's [classroom]: pupils wait; the stand-ins answer for Prosody and the bridge."""
    return (
        "\n[classroom]\nwait_for_teacher = true\n"
        f'room_size_url = "{jitsi.room_size_url}"\n'
        f'bridge_stats_url = "{jitsi.bridge_stats_url}"\n'
    )


def _banner(url: str, config: Path, port: int) -> str:
    lines = [
        "",
        "jitsi-auth-sidecar demo is running.",
        f"  Open a room:   {url}/Mathe7b   (the login page; log out at {url}/auth/logout)",
        f"  Start page:    {url}/auth/   (app links; teachers create guest links there)",
        "  Pupils and guests wait until a teacher has the room open in another browser.",
        f"  Configuration: {config}",
        "",
        "  Logins (user name / password):",
    ]
    for label, people in (
        ("teacher (moderator)", SCHOOL.teachers),
        ("pupil", SCHOOL.pupils),
        ("no group (refused)", (SCHOOL.nobody,)),
    ):
        for person in people:
            lines.append(f"    {label:<20} {person.uid:<18} {person.password}")
    teacher = SCHOOL.teachers[0]
    lines += [
        "",
        f"  Try: curl -u '{teacher.uid}:{teacher.password}' -i {url}/Mathe7b",
        "",
        *remote_access_lines(port),
        "",
        "  Ctrl-C stops everything.",
        "",
    ]
    return "\n".join(lines)


async def _run(config: Path, nginx: Nginx) -> None:
    settings = load_settings(config)
    ready = asyncio.Event()
    server = asyncio.create_task(serve(settings, ready=ready))
    await ready.wait()
    try:
        nginx.start()
        print(_banner(nginx.url, config, nginx.port), flush=True)
        await server
    finally:
        nginx.stop()


def run_demo(*, port: int, include: Path | None) -> int:
    try:
        taken = port_is_taken(port)
    except OSError as error:  # a port below 1024 without root, for one
        print(f"demo: cannot listen on port {port}: {error.strerror}", file=sys.stderr)
        return 1
    if taken:
        print(taken_port_message(port), file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="jitsi-auth-sidecar-demo-") as tmp:
        workdir = Path(tmp)
        workdir.chmod(0o755)
        slapd = Slapd(workdir / "slapd")
        jitsi = JitsiHttp(domain=SUBJECT)
        (workdir / "nginx").mkdir()
        try:
            slapd.start()
            jitsi.start()
            config = write_demo_config(
                workdir, port=port, ldap_url=slapd.ldap_url, extra=classroom_config(jitsi)
            )
            nginx = Nginx(
                workdir / "nginx",
                port=port,
                sidecar_socket=workdir / "sidecar.sock",
                # Prosody's HTTP port: /http-bind, /xmpp-websocket, /room-size.
                xmpp_port=jitsi.port,
                include=include,
                demo_rooms_url=jitsi.demo_rooms_url,
            )
            asyncio.run(_run(config, nginx))
        except KeyboardInterrupt:
            pass
        except RuntimeError as error:
            print(f"demo failed: {error}", file=sys.stderr)
            return 1
        finally:
            jitsi.stop()
            slapd.stop()
    print("demo stopped; nothing left running.")
    return 0
