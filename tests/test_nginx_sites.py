"""The include in the other common Jitsi site: docker-jitsi-meet's ``meet.conf``.

The server block below follows the shape of that file (written here from its
structure: server-level ``add_header`` lines, the ``nginx-custom/*.conf``
include where an admin's additions go, the static-files regex, BOSH and
websockets through ``$connection_upgrade``, the room regex with
``@root_path``, tenant locations); the include goes where the custom
includes are.
"""

from __future__ import annotations

import base64
import http.client
from collections.abc import Iterator
from pathlib import Path

import pytest

from demo.nginx import Nginx, default_include
from demo.school import SCHOOL
from sidecar.admin.jitsi_edits import without_upstream
from testbed.stack import Stack, followed, nginx_in_front, request

TOKEN = "eyJoYW5nLXVwLXRva2Vu.c2VjcmV0LXBhcnQ.c2lnbmF0dXJl"
DOCKER_HTTP = """
    map $http_upgrade $connection_upgrade {
        default upgrade;
        '' close;
    }
"""

DOCKER_SITE = """\
server {{
    listen 127.0.0.1:{port};
    server_name _;
    charset utf8;
    client_max_body_size 0;
    root {webroot};
    ssi on;
    ssi_types application/x-javascript application/javascript;
    index index.html index.htm;
    error_page 404 /static/404.html;

    add_header X-Content-Type-Options nosniff;
    add_header Permissions-Policy "interest-cohort=()";
    set $prefix "";

    include {include};

    location = /config.js {{
        alias {webroot}/config.js;
    }}
    location = /interface_config.js {{
        alias {webroot}/config.js;
    }}
    location = /external_api.js {{
        alias {webroot}/libs/external_api.min.js;
    }}
    location ~ ^/(libs|css|static|images|fonts|lang|sounds|connection_optimization|.well-known|transcripts)/(.*)$ {{
        add_header 'Access-Control-Allow-Origin' '*';
        alias {webroot}/$1/$2;
        if ($arg_v) {{
            expires 1y;
        }}
    }}
    location = /http-bind {{
        proxy_set_header X-Forwarded-For $remote_addr;
        proxy_set_header Host meet.jitsi;
        proxy_pass http://127.0.0.1:{xmpp_port}/http-bind?prefix=$prefix&$args;
    }}
    location = /xmpp-websocket {{
        tcp_nodelay on;
        proxy_http_version 1.1;
        proxy_set_header Connection $connection_upgrade;
        proxy_set_header Upgrade $http_upgrade;
        proxy_set_header Host meet.jitsi;
        proxy_pass http://127.0.0.1:{xmpp_port}/xmpp-websocket?prefix=$prefix&$args;
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
        alias {webroot}/config.js;
    }}
    location ~ ^/([^/?&:'"]+)/http-bind {{
        set $subdomain "$1.";
        set $subdir "$1/";
        set $prefix "$1";
        rewrite ^/(.*)$ /http-bind;
    }}
    location ~ ^/([^/?&:'"]+)/(.*)$ {{
        set $subdomain "$1.";
        set $subdir "$1/";
        rewrite ^/([^/?&:'"]+)/(.*)$ /$2;
    }}
}}
"""


@pytest.fixture(scope="module")
def docker_nginx(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nginx]:
    """The docker-shaped site in front of the shared stack's sidecar, with the include
    as setup --docker writes it, and no http-level file of the sidecar's."""
    workdir: Path = tmp_path_factory.mktemp("docker-site")
    include = workdir / "docker-include.conf"
    include.write_text(without_upstream(default_include().read_text("utf-8")), "utf-8")
    with nginx_in_front(
        stack.sidecar,
        workdir,
        site=DOCKER_SITE,
        http_extra=DOCKER_HTTP,
        include=include,
        with_upstream=False,
    ) as nginx:
        yield nginx


def get(nginx: Nginx, path: str, headers: dict[str, str] | None = None) -> tuple[int, str, str]:
    reply = request(http.client.HTTPConnection("127.0.0.1", nginx.port, timeout=20), path, headers)
    return reply.status, reply.header("Location") or "", reply.body


def test_config_test_passes(docker_nginx: Nginx) -> None:
    result = docker_nginx.check()
    assert result.returncode == 0, result.stderr


def test_rooms_ask_the_sidecar(docker_nginx: Nginx) -> None:
    status, location, _ = get(docker_nginx, "/Mathe7b")
    assert status == 302
    assert location == "/auth/login?next=%2FMathe7b"
    teacher = SCHOOL.teachers[0]
    raw = f"{teacher.uid}:{teacher.password}".encode()
    basic = {"Authorization": "Basic " + base64.b64encode(raw).decode()}
    status, location, _ = get(docker_nginx, "/Mathe7b", basic)
    assert status == 302
    assert location.startswith("/Mathe7b?jwt=")
    status, _, body = get(docker_nginx, followed(location), basic)
    assert status == 200
    assert "stands in for Jitsi Meet" in body


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/config.js", "var config"),
        ("/interface_config.js", "var config"),
        ("/libs/app.bundle.min.js", "stand-in bundle"),
        ("/favicon.ico", ""),
        ("/http-bind", "prosody stand-in: http-bind"),
        ("/xmpp-websocket", "prosody stand-in: xmpp-websocket"),
        ("/tenant/config.js", "var config"),
    ],
)
def test_files_and_xmpp_unchanged(docker_nginx: Nginx, path: str, expected: str) -> None:
    status, _, body = get(docker_nginx, path)
    assert status == 200
    assert expected in body


HUNG_UP = [
    f"/?jwt={TOKEN}",
    f"/?jwt={TOKEN}&lang=de",
    f"/?lang=de&jwt={TOKEN}",
    f"/?JWT={TOKEN}",
]


@pytest.mark.parametrize("path", HUNG_UP)
def test_a_hang_up_lands_on_the_start_page_without_its_token(stack: Stack, path: str) -> None:
    """Jitsi's hang-up goes to redirectWithStoredParams('/'): the root with the room's
    token. That is the start page (its own fragment replaces the token's), not a 404."""
    reply = stack.get(path)
    assert reply.status == 302
    assert reply.header("Location") == "/auth/#"
    assert reply.header("Cache-Control") == "no-store"
    assert TOKEN not in stack.nginx.access_log.read_text()
    assert TOKEN not in stack.sidecar.log()


@pytest.mark.parametrize("path", HUNG_UP)
def test_a_hang_up_in_the_docker_site_too(docker_nginx: Nginx, path: str) -> None:
    status, location, _ = get(docker_nginx, path)
    assert (status, location) == (302, "/auth/#")
