"""Prometheus metrics: one registry per application, handed to whoever counts.

Served by :mod:`sidecar.web.metrics_app` on a listener of their own
(``server.metrics_listen``), never through nginx's include. Names start with
``jitsi_auth_``; labels carry kinds and outcomes, never a user or a room
(one series per pupil would grow without bound).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# LDAP answers on a school network take milliseconds; a hung server, seconds.
LDAP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        registry = self.registry
        self.decisions = Counter(
            "jitsi_auth_decisions",
            "Room requests answered, by outcome, how the person came (session, basic, "
            "guest, none) and role.",
            ["outcome", "method", "role"],
            registry=registry,
        )
        self.logins = Counter(
            "jitsi_auth_logins",
            "Login form submissions, by outcome.",
            ["outcome"],
            registry=registry,
        )
        self.ldap_operations = Counter(
            "jitsi_auth_ldap_operations",
            "LDAP operations by kind (bind, search, groups) and result (ok, invalid, unavailable).",
            ["operation", "result"],
            registry=registry,
        )
        self.ldap_seconds = Histogram(
            "jitsi_auth_ldap_seconds",
            "How long LDAP operations took, by kind.",
            ["operation"],
            buckets=LDAP_BUCKETS,
            registry=registry,
        )
        self.cache = Counter(
            "jitsi_auth_credential_cache",
            "Basic credentials looked up in the cache, by result (hit, miss).",
            ["result"],
            registry=registry,
        )
        self.bans = Counter(
            "jitsi_auth_bans",
            "Logins refused before any bind because of a ban, by scope (user, address).",
            ["scope"],
            registry=registry,
        )
        self.pool_in_use = Gauge(
            "jitsi_auth_ldap_pool_in_use",
            "Pooled LDAP connections in use (service account searches).",
            registry=registry,
        )
        self.pool_idle = Gauge(
            "jitsi_auth_ldap_pool_idle",
            "Pooled LDAP connections open and idle (closed after ldap.pool_idle_timeout).",
            registry=registry,
        )
        self.tokens = Counter(
            "jitsi_auth_tokens_minted",
            "Room tokens minted, by role.",
            ["role"],
            registry=registry,
        )
        self.room_size = Counter(
            "jitsi_auth_room_size_checks",
            "Questions to Prosody's room-size API, by result (open, closed, error).",
            ["result"],
            registry=registry,
        )
        self.room_size_held = Counter(
            "jitsi_auth_room_size_held",
            "Room checks not sent to the room-size API because a budget was spent, by budget "
            "(person, address, site).",
            ["budget"],
            registry=registry,
        )
        self.room_size_errors = Counter(
            "jitsi_auth_room_size_errors",
            "Answers of the room-size API that were neither open nor closed, by reason "
            "(unreachable, unknown-host, other-404, refused, status, unreadable).",
            ["reason"],
            registry=registry,
        )
        self.state_errors = Counter(
            "jitsi_auth_state_errors",
            "Redis commands that failed ([state] redis_url), by operation.",
            ["operation"],
            registry=registry,
        )
