"""The school's side as it runs in production: slapd, the sidecar behind nginx, Prosody behind it.

nginx serves a site shaped like Jitsi's (``demo.nginx``) whose ``/xmpp-websocket``
reaches the real Prosody; the sidecar is configured through its configuration
file only, as an admin does (the demo's, with the keys each check needs).
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from demo.nginx import Nginx
from demo.run import write_demo_config
from testbed.stack import Browser, SidecarProcess, Stack, XmppStandIn, basic_auth

SUBJECT_LINE = 'subject = "meet.school.example"\n'
TENANT = "schule-a"
# Many deliberate refusals come from 127.0.0.1 in one run.
LENIENT_REGULATION = """
[regulation]
max_failures_per_user = 10000
max_failures_per_user_overall = 10000
max_failures_per_address = 100000
"""


def token_of(location: str) -> str:
    """The ``jwt=`` of a room redirect ('' when there is none)."""
    tokens = parse_qs(urlsplit(location).query).get("jwt", [])
    return tokens[0] if len(tokens) == 1 else ""


def claims_of(token: str) -> dict[str, object]:
    """The token's payload, read (not verified: Prosody verifies it) for what to expect."""
    payload = token.split(".")[1]
    decoded = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert isinstance(decoded, dict)
    return decoded


def user_claim(token: str, name: str) -> str:
    context = claims_of(token).get("context")
    user = context.get("user") if isinstance(context, dict) else None
    value = user.get(name) if isinstance(user, dict) else None
    return value if isinstance(value, str) else ""


@dataclass(frozen=True)
class SidecarOptions:
    """What differs between the configurations the checks run against."""

    wait_for_teacher: bool = False
    room_size_url: str = ""
    rs256_key_id: str = ""


def rsa_private_pem() -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def write_sidecar_config(
    workdir: Path, *, port: int, ldap_url: str, options: SidecarOptions
) -> Path:
    extra = LENIENT_REGULATION
    if options.wait_for_teacher:
        extra += (
            f'\n[classroom]\nwait_for_teacher = true\nroom_size_url = "{options.room_size_url}"\n'
        )
    config = write_demo_config(workdir, port=port, ldap_url=ldap_url, extra=extra)
    jitsi = f'{SUBJECT_LINE}tenants = true\ntenant_names = ["{TENANT}"]\n'
    if options.rs256_key_id:
        signing = workdir / "signing.pem"
        signing.write_bytes(rsa_private_pem())
        signing.chmod(0o600)
        jitsi += (
            f'algorithm = "RS256"\nsigning_key_file = "{signing}"\n'
            f'key_id = "{options.rs256_key_id}"\n'
        )
    text = config.read_text("utf-8")
    assert SUBJECT_LINE in text
    config.write_text(text.replace(SUBJECT_LINE, jitsi, 1), "utf-8")
    return config


class SchoolSite:
    """The sidecar and nginx in front of one Prosody; ``stop`` ends both."""

    def __init__(
        self, workdir: Path, *, ldap_url: str, prosody_port: int, options: SidecarOptions, port: int
    ) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        config = write_sidecar_config(workdir, port=port, ldap_url=ldap_url, options=options)
        socket_path = workdir / "sidecar.sock"
        self.sidecar = SidecarProcess(config, socket_path, workdir / "sidecar.log")
        (workdir / "nginx").mkdir(exist_ok=True)
        nginx = Nginx(
            workdir / "nginx",
            port=port,
            sidecar_socket=socket_path,
            # The site's /http-bind and /xmpp-websocket reach the real Prosody.
            xmpp_port=prosody_port,
            tenants=f"({TENANT})",
        )
        # testbed.stack's Stack and Browser drive nginx; its Prosody stand-in is
        # never started here (the real one answers instead).
        self.stack = Stack(nginx, self.sidecar, XmppStandIn(workdir))

    @property
    def app_secret(self) -> str:
        return (self.sidecar.config.parent / "app_secret").read_text("utf-8")

    @property
    def port(self) -> int:
        return self.stack.nginx.port

    @property
    def websocket_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/xmpp-websocket"

    def start(self) -> None:
        try:
            self.sidecar.start()
            self.stack.nginx.start()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        self.stack.stop()

    def room_reply_with_basic(self, uid: str, password: str, path: str) -> tuple[int, str]:
        """A room page asked with Basic credentials: its status and the redirect's token."""
        reply = self.stack.get(path, basic_auth(uid, password))
        return reply.status, token_of(reply.header("Location") or "")

    def browser(self) -> Browser:
        return Browser(self.stack, "de")


def guest_link_path(teacher: Browser, room: str) -> str:
    """A guest link for ``room`` made on the start page by a logged-in teacher ('' if none)."""
    page = teacher.get(f"/auth/?room={quote(room, safe='')}")
    created = teacher.post(
        "/auth/guest-links",
        {"csrf_token": teacher.csrf_token(page), "room": room, "days": "1"},
    )
    listing = teacher.get(created.header("Location") or "/auth/")
    links = re.findall(r'value="(http[^"]+/auth/guest/[^"]+)"', listing.body)
    return urlsplit(links[-1]).path if links else ""
