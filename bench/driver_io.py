"""What the LDAP baselines are told and what they answer: two JSON files.

The baselines run as processes of their own, so that their CPU time is
theirs alone; python-ldap's runs under Debian's ``/usr/bin/python3``, outside
the virtualenv. This module therefore uses the standard library only.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class JobPerson:
    uid: str
    dn: str
    password: str


@dataclass(frozen=True)
class LoginSteps:
    """The sidecar's [ldap] settings that decide which LDAP steps a login takes."""

    bind_dn: str | None
    bind_password: str | None
    user_base: str
    user_filter: str
    user_dn_template: str
    group_mode: str
    group_base: str
    group_filter: str
    id_attribute: str
    attributes: list[str]  # what the sidecar reads of a person's entry


@dataclass(frozen=True)
class DriverJob:
    ldap_url: str
    seconds: float
    concurrency: int
    people: list[JobPerson]
    login_steps: LoginSteps | None = None


def write_job(path: Path, job: DriverJob) -> None:
    # It holds passwords: readable by this user only.
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        json.dump(asdict(job), file)


def read_job(path: str | Path) -> DriverJob:
    raw = json.loads(Path(path).read_text("utf-8"))
    steps = raw.get("login_steps")
    return DriverJob(
        ldap_url=raw["ldap_url"],
        seconds=float(raw["seconds"]),
        concurrency=int(raw["concurrency"]),
        people=[JobPerson(**person) for person in raw["people"]],
        login_steps=LoginSteps(**steps) if steps is not None else None,
    )


def write_result(path: str | Path, result: Mapping[str, Any]) -> None:
    """``operations``, ``seconds``, ``latency_us`` (a histogram), ``failures``,
    ``cpu_seconds`` (the driver's own) and ``examples`` of failures."""
    Path(path).write_text(json.dumps(result), "utf-8")
