"""RS256/384/512: tokens signed with a private key, the public key served where
Prosody's asap_key_server fetches it (``<sha256 hex of kid>.pem``), through nginx."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from demo.school import SCHOOL
from demo.slapd import Slapd
from sidecar.config.settings import ConfigError, JitsiSettings, Secret, load_settings
from sidecar.jitsi.public_keys import PublicKeys, key_file_name
from sidecar.jitsi.tokens import RoomTokens
from testbed.configs import MINIMAL, write_config
from testbed.stack import Stack, basic_auth, token_in
from tests.jitsi_rules import JitsiSite, TokenRefused, admit

TEACHER = SCHOOL.teachers[0]
SIGNING_KEY = "jitsi.signing_key_file"


def private_pem(bits: int = 2048) -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def public_pem(private: bytes) -> bytes:
    key = serialization.load_pem_private_key(private, None)
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def rsa_stack(make_stack: Callable[..., Stack], slapd: Slapd, workdir: Path, kid: str) -> Stack:
    signing = workdir / "signing.pem"
    signing.write_bytes(private_pem())
    previous = workdir / "previous.pub.pem"
    previous.write_bytes(public_pem(private_pem()))
    extra = f'\n[[previous_keys]]\nkey_id = "school-meet-2025"\npublic_key_file = "{previous}"\n'
    return make_stack(
        slapd,
        extra=extra,
        replace={
            'subject = "meet.school.example"\n': (
                f'subject = "meet.school.example"\nalgorithm = "RS256"\n'
                f'signing_key_file = "{signing}"\nkey_id = "{kid}"\n'
            )
        },
    )


def key_server_of(stack: Stack) -> Callable[[str], bytes | None]:
    """Prosody's fetch: GET <asap_key_server>/<name> (here: the sidecar through nginx)."""

    def fetch(name: str) -> bytes | None:
        reply = stack.get(f"/auth/asap/{name}")
        return reply.body.encode() if reply.status == 200 else None

    return fetch


def test_an_rs256_token_verifies_with_the_key_the_sidecar_serves(
    slapd: Slapd, make_stack: Callable[..., Stack], tmp_path: Path
) -> None:
    stack = rsa_stack(make_stack, slapd, tmp_path, "school-meet-2026")
    reply = stack.get("/Mathe7b", basic_auth(TEACHER.uid, TEACHER.password))
    token = token_in(reply.header("Location") or "")
    site = JitsiSite(
        app_id="school-meet",
        app_secret=b"",
        subject="meet.school.example",
        algorithm="RS256",
        asap_key_server=key_server_of(stack),
    )
    assert admit(token, site, "Mathe7b").moderator is True
    # The path is what Prosody computes from the kid: lowercase hex sha256 + .pem.
    name = hashlib.sha256(b"school-meet-2026").hexdigest() + ".pem"
    assert key_file_name("school-meet-2026") == name
    served = stack.get(f"/auth/asap/{name}")
    assert served.status == 200
    assert "PUBLIC KEY" in served.body
    assert "PRIVATE" not in served.body
    # The previous key keeps being served during a rotation; unknown ids are 404s.
    assert stack.get(f"/auth/asap/{key_file_name('school-meet-2025')}").status == 200
    for unknown in (key_file_name("nope"), "../signing.pem", name.upper(), name[:-4]):
        assert stack.get(f"/auth/asap/{unknown}").status == 404
    # A token of the right shape, signed by another key with the same kid, is refused.
    other = JitsiSettings(
        app_id="school-meet",
        subject="meet.school.example",
        algorithm="RS256",
        signing_key=Secret(private_pem()),
        key_id="school-meet-2026",
    )

    forged = RoomTokens(other).mint(
        # Any person: the signature is what fails.
        __import__("sidecar.people", fromlist=["Person"]).Person("x", "X", "", frozenset()),
        __import__("sidecar.config.settings", fromlist=["RoleRule"]).RoleRule(
            name="teacher", groups=frozenset(), moderator=True, any_room=False
        ),
        "mathe7b",
    )
    with pytest.raises(TokenRefused, match="signature"):
        admit(forged, site, "Mathe7b")
    assert (
        stack.get(f"/Mathe7b?jwt={forged}", basic_auth(TEACHER.uid, TEACHER.password)).status == 302
    )


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ('algorithm = "RS256"\nkey_id = "k"\n', "jitsi.signing_key_file"),
        ('algorithm = "RS256"\nsigning_key_file = "SIGNING"\n', "jitsi.key_id"),
        (
            'algorithm = "RS256"\nsigning_key_file = "WEAK"\nkey_id = "k"\n',
            "jitsi.signing_key_file",
        ),
        (
            'algorithm = "RS256"\nsigning_key_file = "SECRET_FILE"\nkey_id = "k"\n',
            "jitsi.signing_key_file",
        ),
    ],
)
def test_rsa_configuration_problems_are_named(tmp_path: Path, change: str, key: str) -> None:
    (tmp_path / "signing.pem").write_bytes(private_pem())
    (tmp_path / "weak.pem").write_bytes(private_pem(1024))
    change = change.replace("SIGNING", str(tmp_path / "signing.pem")).replace(
        "WEAK", str(tmp_path / "weak.pem")
    )
    body = MINIMAL.replace("[jitsi]\n", "[jitsi]\n" + change, 1)
    with pytest.raises(ConfigError) as raised:
        load_settings(write_config(tmp_path, body), environ={})
    assert raised.value.key == key


def test_only_public_keys_are_served(tmp_path: Path) -> None:
    private = private_pem()
    (tmp_path / "signing.pem").write_bytes(private)
    body = MINIMAL.replace(
        "[jitsi]\n",
        f'[jitsi]\nalgorithm = "RS512"\nsigning_key_file = "{tmp_path / "signing.pem"}"\n'
        'key_id = "k1"\n',
        1,
    )
    settings = load_settings(write_config(tmp_path, body), environ={})
    keys = PublicKeys(settings)
    served = keys.pem(key_file_name("k1"))
    assert served == public_pem(private)
    assert keys.pem(key_file_name("k2")) is None


def test_a_previous_key_file_is_served_as_its_public_key_only(tmp_path: Path) -> None:
    """A file that bundles more than the public key (the private one, say) never leaks it."""
    old_private = private_pem()
    bundle = tmp_path / "old.pem"
    bundle.write_bytes(public_pem(old_private) + old_private + b"comments\n")
    body = MINIMAL + f'\n[[previous_keys]]\nkey_id = "old"\npublic_key_file = "{bundle}"\n'
    settings = load_settings(write_config(tmp_path, body), environ={})
    served = PublicKeys(settings).pem(key_file_name("old"))
    assert served == public_pem(old_private)
    twice = body + f'\n[[previous_keys]]\nkey_id = "old"\npublic_key_file = "{bundle}"\n'
    with pytest.raises(ConfigError) as raised:
        load_settings(write_config(tmp_path, twice), environ={})
    assert raised.value.key == "previous_keys[0].key_id"
