"""Public keys for RS256/384/512 tokens, where Prosody's ``asap_key_server`` fetches them.

Prosody takes a token's ``kid``, and fetches
``<asap_key_server>/<lowercase hex sha256 of kid>.pem`` (token/util.lib.lua).
The sidecar serves the public half of its signing key there, and those of
``[[previous_keys]]`` so that tokens signed before a rotation keep working.
Only public keys are ever served.
"""

from __future__ import annotations

import hashlib
import re

from cryptography.hazmat.primitives import serialization

from sidecar.config.settings import Settings
from sidecar.jitsi.tokens import signing_keys

PATH_PREFIX = "/auth/asap/"
_FILE_NAME = re.compile(r"[0-9a-f]{64}\.pem")


def key_file_name(key_id: str) -> str:
    """The file Prosody asks for, for ``key_id``."""
    return hashlib.sha256(key_id.encode("utf-8")).hexdigest() + ".pem"


class PublicKeys:
    def __init__(self, settings: Settings) -> None:
        self._by_name: dict[str, bytes] = {}
        for previous in settings.previous_keys:
            self._by_name[key_file_name(previous.key_id)] = previous.public_key
        jitsi = settings.jitsi
        if jitsi.algorithm.startswith("RS"):
            _, public = signing_keys(jitsi)
            self._by_name[key_file_name(jitsi.key_id)] = public.public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )

    def pem(self, file_name: str) -> bytes | None:
        """The public key served under ``file_name``, or None (then: 404)."""
        if not _FILE_NAME.fullmatch(file_name):
            return None
        return self._by_name.get(file_name)
