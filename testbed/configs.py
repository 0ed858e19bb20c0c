"""Configurations the tests start sidecars with, and the pieces they vary."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from demo.school import SCHOOL
from demo.slapd import Slapd
from sidecar.config.settings import LdapSettings, Secret

# The secret files a second sidecar copies to share a site with the first.
SHARED_SECRETS = ("app_secret", "session_keys", "guest_keys")

# Shared stacks see many deliberate failures from 127.0.0.1; regulation has
# its own tests with its own stack.
LENIENT_REGULATION = """
[regulation]
max_failures_per_user = 10000
max_failures_per_user_overall = 10000
max_failures_per_address = 100000
"""

SECRET = "s" * 40


def write_config(tmp_path: Path, body: str, secret: str = SECRET) -> Path:
    (tmp_path / "app_secret").write_text(secret + "\n")
    (tmp_path / "session_keys").write_text("# newest first\n" + "n" * 40 + "\n" + "o" * 40 + "\n")
    path = tmp_path / "config.toml"
    body = body.replace("SECRET_FILE", str(tmp_path / "app_secret"))
    path.write_text(body.replace("KEYS_FILE", str(tmp_path / "session_keys")))
    return path


# What a school must set, no more: every other key has its default.
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


def ldap_settings(slapd: Slapd, **changes: object) -> LdapSettings:
    settings = LdapSettings(
        urls=(slapd.ldap_url,),
        bind_dn=SCHOOL.service_dn,
        bind_password=Secret(SCHOOL.service_password.encode()),
        user_base=f"ou=people,{SCHOOL.base_dn}",
        group_base=f"ou=groups,{SCHOOL.base_dn}",
        timeout=3.0,
        pool_size=2,
    )
    return dataclasses.replace(settings, **changes)  # type: ignore[arg-type]
