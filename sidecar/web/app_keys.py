"""The resources an application holds, made at start-up and read by handlers."""

from __future__ import annotations

import jinja2
from aiohttp import web
from cachetools import LRUCache

from sidecar.authentication import Authenticator
from sidecar.config.settings import Settings
from sidecar.guard import Guard
from sidecar.guest_links import GuestLinks
from sidecar.jitsi.bridge_stats import BridgeStatistics
from sidecar.jitsi.room_size import RoomSize
from sidecar.jitsi.tokens import RoomTokens
from sidecar.metrics import Metrics
from sidecar.regulation import Regulator
from sidecar.roles import RoleRules
from sidecar.sessions import SessionCookies
from sidecar.site_limits import SiteLimit
from sidecar.visits import Visits
from sidecar.web.csrf import CsrfTokens
from sidecar.web.logs import DecisionLog
from sidecar.web.waiting import WaitingPace

SETTINGS = web.AppKey("settings", Settings)
METRICS = web.AppKey("metrics", Metrics)
DECISION_LOG = web.AppKey("decision_log", DecisionLog)
TEMPLATES = web.AppKey("templates", jinja2.Environment)
# Message pages as rendered, by everything they show (sidecar.web.pages.message).
RENDERED: web.AppKey[LRUCache[tuple[object, ...], str]] = web.AppKey("rendered")
CSRF_TOKENS = web.AppKey("csrf_tokens", CsrfTokens)
REGULATOR = web.AppKey("regulator", Regulator)
# None when form login is off (no sessions.keys_file).
SESSIONS: web.AppKey[SessionCookies | None] = web.AppKey("sessions")
AUTHENTICATOR = web.AppKey("authenticator", Authenticator)
GUARD = web.AppKey("guard", Guard)
# Who is asking: one visit per request (sidecar.web.visitors).
VISITS = web.AppKey("visits", Visits)
ROLES = web.AppKey("roles", RoleRules)
TOKENS = web.AppKey("tokens", RoomTokens)
# None when [classroom] wait_for_teacher is off.
ROOM_SIZE: web.AppKey[RoomSize | None] = web.AppKey("room_size")
# None when [guests] keys_file is not set.
GUEST_LINKS: web.AppKey[GuestLinks | None] = web.AppKey("guest_links")
# Guest names entered, per address; guest links created, per teacher.
GUEST_LIMIT = web.AppKey("guest_limit", SiteLimit)
LINK_LIMIT = web.AppKey("link_limit", SiteLimit)
# None when [classroom] bridge_stats_url is not set.
BRIDGE: web.AppKey[BridgeStatistics | None] = web.AppKey("bridge")
WAITING = web.AppKey("waiting", WaitingPace)
