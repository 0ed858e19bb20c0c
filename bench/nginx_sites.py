"""The nginx configurations of the baselines, made from the project's own include.

Every nginx here is ``demo.nginx.Nginx`` (one worker, the Jitsi-shaped site);
what differs is the include and what sits at http level:

- the sidecar's nginx and the keep-alive baseline's nginx use the include
  as it is, with its upstream (``nginx/jitsi-auth-sidecar-upstream.conf``),
  pointed at their socket: verify subrequests on kept connections;
- the new-connection baseline uses the include as ``setup --docker`` writes
  it (``without_upstream``): one new connection per verify subrequest;
- "nginx answering 200" is a site of its own with one ``return 200``;
- the peer's site is nginx-ldap-auth's own shape: ``auth_request`` to a
  location that proxies to the daemon with the LDAP settings as headers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from demo.nginx import SOCKET_LITERAL

NEW_CONNECTION = "new connection per subrequest"
KEEPALIVE = "upstream keepalive"

# Named by demo.nginx.Nginx's formatting like its own site; only {port} is used.
STATIC_SITE = """\
server {{
    listen 127.0.0.1:{port};
    server_name localhost;
    location / {{
        # As the include's room locations: no access log line per request.
        access_log off;
        return 200;
    }}
}}
"""

_SOCKET_PROXY_PASS = re.compile(
    r"proxy_pass http://" + re.escape(SOCKET_LITERAL) + r"(?::(?P<uri>/[^;\s]*))?;"
)
_VERIFY_LOCATION = re.compile(
    r"location = /_jitsi_auth_sidecar/verify \{(?P<body>.*?)\n\}", re.DOTALL
)


class IncludeNotUnderstood(RuntimeError):
    """The include no longer looks as this bench expects: bench/nginx_sites.py needs a look."""


def include_connection_handling(include_text: str) -> str:
    """How the include reaches the sidecar for a verify subrequest."""
    verify = _VERIFY_LOCATION.search(include_text)
    if verify is None:
        raise IncludeNotUnderstood("no `location = /_jitsi_auth_sidecar/verify` in the include")
    if _SOCKET_PROXY_PASS.search(verify.group("body")):
        return NEW_CONNECTION
    return KEEPALIVE


# Formatted twice: first here with the peer's settings (doubled braces stay
# braces), then by demo.nginx.Nginx with {port} and {webroot}. try_files, not
# return: return would answer before auth_request's access phase.
_PEER_SITE = """\
server {{{{
    listen 127.0.0.1:{{port}};
    server_name localhost;
    location / {{{{
        access_log off;
        auth_request /auth-proxy;
        root {{webroot}};
        try_files /index.html =404;
    }}}}
    location = /auth-proxy {{{{
        internal;
        access_log off;
        proxy_pass http://127.0.0.1:{daemon_port};
        proxy_pass_request_body off;
        proxy_set_header Content-Length "";
        proxy_set_header X-Ldap-URL "{url}";
        proxy_set_header X-Ldap-BaseDN "{base_dn}";
        proxy_set_header X-Ldap-BindDN "{bind_dn}";
        proxy_set_header X-Ldap-BindPass "{bind_password}";
        proxy_set_header X-Ldap-Template "{template}";
        proxy_set_header X-Ldap-Realm "{realm}";
    }}}}
}}}}
"""
PEER_REALM = "Restricted"


@dataclass(frozen=True)
class PeerLdap:
    """What nginx tells nginx-ldap-auth's daemon in headers, per subrequest."""

    url: str
    base_dn: str
    bind_dn: str
    bind_password: str
    template: str  # a search filter with %(username)s


def peer_template(user_filter: str) -> str:
    """The sidecar's ``user_filter`` (``{username}``) as the daemon's template."""
    return user_filter.replace("%", "%%").replace("{username}", "%(username)s")


def peer_site(daemon_port: int, settings: PeerLdap) -> str:
    """nginx's site in front of the daemon, for ``demo.nginx.Nginx(site=...)``."""
    values = {
        "url": settings.url,
        "base_dn": settings.base_dn,
        "bind_dn": settings.bind_dn,
        "bind_password": settings.bind_password,
        "template": settings.template,
        "realm": PEER_REALM,
    }
    for name, value in values.items():
        # Inside a double-quoted nginx string; braces would be read as fields below.
        if any(character in value for character in '"\\{}$;\n'):
            raise ValueError(f"the peer's {name} holds a character nginx's header line cannot")
    return _PEER_SITE.format(daemon_port=daemon_port, **values)
