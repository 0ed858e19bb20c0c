"""A stand-in for nginx-ldap-auth's daemon, for runs without ``--peer``.

It does what that daemon does per request, so that the bench always has the
baseline the sidecar would replace:

- a ``ThreadingMixIn`` HTTP server on 127.0.0.1: a new thread per request,
  listen backlog 128 (as the bench launches the real one);
- the LDAP settings from the headers nginx sets on the ``auth_request``
  subrequest (``X-Ldap-URL``, ``X-Ldap-BaseDN``, ``X-Ldap-BindDN``,
  ``X-Ldap-BindPass``, ``X-Ldap-Template`` with ``%(username)s``,
  ``X-Ldap-Realm``);
- the Basic credentials from ``Authorization``; none, or not Basic: 401
  with a Basic challenge;
- ONE new python-ldap connection per request: bind as the service account,
  search the subtree for the template with the user name escaped (attribute
  names only), bind as the entry found with the password, close;
- 200 when the last bind succeeds, otherwise 401 with the challenge.

What it leaves out: the daemon's log lines (three or four per request to
stdout), its cookie and STARTTLS options (unused by the bench).

``/usr/bin/python3 -m bench.peer_stand_in PORT`` (standard library and
Debian's python3-ldap only).
"""

from __future__ import annotations

import base64
import binascii
import importlib
import socketserver
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

ldap: Any = importlib.import_module("ldap")
ldap_filter: Any = importlib.import_module("ldap.filter")

BACKLOG = 128
DEFAULT_REALM = "Restricted"


class Refused(Exception):
    """The request carries no usable Basic credentials."""


def _credentials(header: str | None) -> tuple[str, str]:
    if header is None or not header.lower().startswith("basic "):
        raise Refused("no Basic credentials")
    try:
        decoded = base64.b64decode(header[6:], validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise Refused("credentials not decodable") from None
    user, separator, password = decoded.partition(":")
    if not separator or not password:
        raise Refused("no password")
    return user, password


def _password_accepted(headers: Any, user: str, password: str) -> bool:
    """The daemon's LDAP steps, all on one connection; a wrong password is False."""
    connection = ldap.initialize(headers["X-Ldap-URL"])
    connection.protocol_version = ldap.VERSION3
    try:
        connection.simple_bind_s(
            headers.get("X-Ldap-BindDN", ""), headers.get("X-Ldap-BindPass", "")
        )
        search_filter = headers["X-Ldap-Template"] % {
            "username": ldap_filter.escape_filter_chars(user)
        }
        found = connection.search_s(
            headers["X-Ldap-BaseDN"], ldap.SCOPE_SUBTREE, search_filter, ["objectclass"], 1
        )
        if not found or found[0][0] is None:
            return False
        connection.simple_bind_s(found[0][0], password)
        return True
    except ldap.INVALID_CREDENTIALS:
        return False
    finally:
        connection.unbind_s()


class StandInHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        try:
            user, password = _credentials(self.headers.get("Authorization"))
            accepted = _password_accepted(self.headers, user, password)
        except (Refused, ldap.LDAPError, KeyError, ValueError, TypeError):
            # As the daemon: whatever went wrong (a header missing, a template that
            # does not format, the directory away) is a refusal, never an error page.
            accepted = False
        self.send_response(200 if accepted else 401)
        if not accepted:
            realm = self.headers.get("X-Ldap-Realm", DEFAULT_REALM)
            self.send_header("WWW-Authenticate", f'Basic realm="{realm}"')
            self.send_header("Cache-Control", "no-cache")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        """No access log: the bench reads nothing of it."""


class StandInServer(socketserver.ThreadingMixIn, HTTPServer):
    request_queue_size = BACKLOG
    daemon_threads = True


def main() -> int:
    port = int(sys.argv[1])
    with StandInServer(("127.0.0.1", port), StandInHandler) as server:
        server.serve_forever()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
