"""Folders shaped like a Jitsi host, for ``setup --root``.

Written here from the documented shapes of the files Jitsi's Debian packages
install (the meet site's ``<domain>-config.js``, Prosody's host file in
``conf.avail`` with the main VirtualHost and the conference component, the
nginx site with its port-80 redirect and the meet server, jicofo's HOCON
file) and of docker-jitsi-meet's folder (``.env`` naming ``CONFIG``, and the
``web`` and ``prosody`` folders under it). Only the lines that matter to
setup and to ``nginx -t`` are there. Absolute paths in the nginx files point
into the tree, so that this host's nginx can test them as they are.
"""

from __future__ import annotations

import secrets
import shutil
from pathlib import Path

from demo.slapd import write_tls_files

REPOSITORY = Path(__file__).resolve().parents[1]
DOMAIN = "meet.school.example"

PROSODY_HOST = """\
plugin_paths = {{ "/usr/share/jitsi-meet/prosody-plugins/" }}

-- domain mapper options, must at least have domain base set to use the mapper
muc_mapper_domain_base = "{domain}";

external_service_secret = "turn-secret";
external_services = {{
     {{ type = "stun", host = "{domain}", port = 3478 }},
}};

cross_domain_bosh = false;
consider_bosh_secure = true;

VirtualHost "{domain}"
    authentication = "jitsi-anonymous" -- do not delete me
    -- Properties below are modified by jitsi-meet-tokens package config
    -- and authentication above is switched to "token"
    --app_id="example_app_id"
    --app_secret="example_app_secret"
    ssl = {{
        key = "/etc/prosody/certs/{domain}.key";
        certificate = "/etc/prosody/certs/{domain}.crt";
    }}
    av_moderation_component = "avmoderation.{domain}"
    speakerstats_component = "speakerstats.{domain}"
    modules_enabled = {{
        "bosh";
        "websocket";
        "smacks";
        "pubsub";
        "ping"; -- Enable mod_ping
        "speakerstats";
        "external_services";
        "conference_duration";
        "muc_lobby_rooms";
        "av_moderation";
    }}
    c2s_require_encryption = false
    lobby_muc = "lobby.{domain}"
    main_muc = "conference.{domain}"

Component "conference.{domain}" "muc"
    restrict_room_creation = true
    storage = "memory"
    modules_enabled = {{
        "muc_hide_all";
        "muc_meeting_id";
        "muc_domain_mapper";
        "polls";
        --"token_verification";
        "muc_rate_limit";
    }}
    admins = {{ "focus@auth.{domain}" }}
    muc_room_locking = false
    muc_room_default_public_jids = true

-- internal muc component
Component "internal.auth.{domain}" "muc"
    storage = "memory"
    modules_enabled = {{
        "muc_hide_all";
        "ping";
    }}
    admins = {{ "focus@auth.{domain}" }}
    muc_room_locking = false

VirtualHost "auth.{domain}"
    authentication = "internal_hashed"

Component "focus.{domain}" "client_proxy"
    target_address = "focus@auth.{domain}"
"""

NGINX_SITE = """\
server_names_hash_bucket_size 64;

types {{
    application/wasm     wasm;
    audio/wav            wav;
}}

upstream prosody {{
    zone upstreams 64K;
    server 127.0.0.1:5280;
    keepalive 2;
}}

server {{
    listen 127.0.0.1:{http_port};
    server_name {domain};

    location ^~ /.well-known/acme-challenge/ {{
        default_type "text/plain";
        root         /usr/share/jitsi-meet;
    }}
    location = /.well-known/acme-challenge/ {{
        return 404;
    }}
    location / {{
        return 301 https://$host$request_uri;
    }}
}}

server {{
    listen 127.0.0.1:{https_port} ssl;
    server_name {domain};

    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_certificate {root}/etc/jitsi/meet/{domain}.crt;
    ssl_certificate_key {root}/etc/jitsi/meet/{domain}.key;

    add_header Strict-Transport-Security "max-age=63072000" always;
    set $prefix "";
    set $custom_index "";

    root /usr/share/jitsi-meet;

    # ssi on with javascript for multidomain variables in config.js
    ssi on;
    ssi_types application/x-javascript application/javascript;

    index index.html index.htm;
    error_page 404 /static/404.html;

    include {root}/etc/jitsi/meet/jaas/*.conf;

    location = /config.js {{
        alias /etc/jitsi/meet/{domain}-config.js;
    }}

    location = /external_api.js {{
        alias /usr/share/jitsi-meet/libs/external_api.min.js;
    }}

    # ensure all static content can always be found first
    location ~ ^/(libs|css|static|images|fonts|lang|sounds|.well-known)/(.*)$ {{
        add_header 'Access-Control-Allow-Origin' '*';
        alias /usr/share/jitsi-meet/$1/$2;
    }}

    # BOSH
    location = /http-bind {{
        proxy_pass http://prosody/http-bind?prefix=$prefix&$args;
        proxy_http_version 1.1;
        proxy_set_header X-Forwarded-For $remote_addr;
        proxy_set_header Host $http_host;
        proxy_set_header Connection "";
    }}

    # xmpp websockets
    location = /xmpp-websocket {{
        proxy_pass http://prosody/xmpp-websocket?prefix=$prefix&$args;
        proxy_http_version 1.1;
        proxy_set_header Upgrade $http_upgrade;
        proxy_set_header Connection "upgrade";
        proxy_set_header Host $http_host;
        tcp_nodelay on;
    }}

    location ~ ^/([^/?&:'"]+)$ {{
        try_files $uri @root_path;
    }}

    location @root_path {{
        rewrite ^/(.*)$ / break;
    }}

    location ~ ^/([^/?&:'"]+)/config.js$ {{
        set $subdomain "$1.";
        set $subdir "$1/";
        alias /etc/jitsi/meet/{domain}-config.js;
    }}
}}
"""

# Debian's nginx.conf, with what a user other than root needs for nginx -t
# (pid and temporary files in the tree) and the tree's sites-enabled.
NGINX_CONF = """\
user www-data;
worker_processes auto;
pid {root}/run/nginx.pid;
error_log stderr;

events {{
    worker_connections 768;
}}

http {{
    sendfile on;
    tcp_nopush on;
    types_hash_max_size 2048;
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    ssl_prefer_server_ciphers on;
    access_log {root}/var/log/nginx/access.log;
    client_body_temp_path {root}/var/lib/nginx/body;
    proxy_temp_path {root}/var/lib/nginx/proxy;
    fastcgi_temp_path {root}/var/lib/nginx/fastcgi;
    uwsgi_temp_path {root}/var/lib/nginx/uwsgi;
    scgi_temp_path {root}/var/lib/nginx/scgi;
    gzip on;
    include {root}/etc/nginx/conf.d/*.conf;
    include {root}/etc/nginx/sites-enabled/*;
}}
"""

JICOFO_CONF = """\
jicofo {{
  xmpp: {{
    client: {{
      client-proxy: focus.{domain}
      xmpp-domain: {domain}
      domain: auth.{domain}
      username: focus
      password: "focus-password"
    }}
    trusted-domains: [ "recorder.{domain}" ]
  }}
  bridge: {{
    brewery-jid: "JvbBrewery@internal.auth.{domain}"
  }}
}}
"""

MEET_CONFIG = """\
var config = {{
    hosts: {{
        domain: '{domain}',
        muc: 'conference.<!--# echo var="subdomain" default="" -->{domain}'
    }},
    bosh: 'https://{domain}/' + subdir + 'http-bind',
}};
"""

# docker-jitsi-meet's .env: the lines setup reads or changes, and some it must keep.
DOCKER_ENV = """\
# Security
JICOFO_AUTH_PASSWORD=jicofo-password
JVB_AUTH_PASSWORD=jvb-password

# Basic configuration options
CONFIG={config}
HTTP_PORT=8000
HTTPS_PORT=8443
TZ=UTC
PUBLIC_URL=https://{domain}
XMPP_MODULES=
ENABLE_AUTH=0
"""


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, "utf-8")
    return path


def debian_tree(root: Path, *, http_port: int = 8080, https_port: int = 8443) -> Path:
    """A Debian host with jitsi-meet and the sidecar's package installed, under ``root``."""
    values = {"domain": DOMAIN, "root": root, "http_port": http_port, "https_port": https_port}
    _write(root / f"etc/jitsi/meet/{DOMAIN}-config.js", MEET_CONFIG.format(**values))
    (root / "etc/jitsi/meet/jaas").mkdir(parents=True)
    write_tls_files(
        ca_file=root / "etc/jitsi/meet/ca.crt",
        cert_file=root / f"etc/jitsi/meet/{DOMAIN}.crt",
        key_file=root / f"etc/jitsi/meet/{DOMAIN}.key",
    )
    _write(root / f"etc/prosody/conf.avail/{DOMAIN}.cfg.lua", PROSODY_HOST.format(**values))
    _write(root / "etc/jitsi/jicofo/jicofo.conf", JICOFO_CONF.format(**values))
    site = _write(root / f"etc/nginx/sites-available/{DOMAIN}.conf", NGINX_SITE.format(**values))
    (root / "etc/nginx/sites-enabled").mkdir(parents=True)
    (root / f"etc/nginx/sites-enabled/{DOMAIN}.conf").symlink_to(site)
    _write(root / "etc/nginx/nginx.conf", NGINX_CONF.format(**values))
    (root / "etc/nginx/conf.d").mkdir(parents=True)
    for folder in ("run", "var/log/nginx", "var/lib/nginx"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    # What the sidecar's package installs: the include and its upstream, and the
    # secrets its postinst makes.
    snippets = root / "etc/nginx/snippets"
    snippets.mkdir(parents=True)
    shutil.copyfile(
        REPOSITORY / "nginx" / "jitsi-auth-sidecar.conf", snippets / "jitsi-auth-sidecar.conf"
    )
    shutil.copyfile(
        REPOSITORY / "nginx" / "jitsi-auth-sidecar-upstream.conf",
        root / "etc/nginx/conf.d/jitsi-auth-sidecar-upstream.conf",
    )
    (root / "var/lib/jitsi-auth-sidecar").mkdir(parents=True)
    etc = root / "etc/jitsi-auth-sidecar"
    etc.mkdir(parents=True)
    shutil.copyfile(REPOSITORY / "config.example.toml", etc / "config.toml")
    for name in ("app_secret", "session_keys", "guest_keys"):
        (etc / name).write_bytes(secrets.token_urlsafe(48).encode() + b"\n")
        (etc / name).chmod(0o600)
    return root


def docker_tree(root: Path) -> Path:
    """docker-jitsi-meet checked out in ``root``/srv/docker-jitsi-meet, CONFIG beside it.

    Returns the checkout folder (as ``--docker`` names it, inside ``root``).
    """
    checkout = root / "srv/docker-jitsi-meet"
    config = "/srv/jitsi-meet-cfg"
    _write(checkout / ".env", DOCKER_ENV.format(config=config, domain=DOMAIN))
    _write(checkout / "docker-compose.yml", "services:\n  web:\n    image: jitsi/web\n")
    # The sidecar's package on the host: its state folder.
    (root / "var/lib/jitsi-auth-sidecar").mkdir(parents=True)
    for folder in ("web", "prosody/config", "prosody/prosody-plugins-custom", "jicofo", "jvb"):
        (root / config.lstrip("/") / folder).mkdir(parents=True)
    return checkout
