"""A real nginx serving a site shaped like Jitsi Meet's stock Debian site.

Used by the demo (``python -m demo``) and by the tests: the server block has the
stock site's locations (``/config.js``, the static-files regex, ``/http-bind``,
``/xmpp-websocket``, the room regex with ``@root_path``, tenants) and the
project's include where the stock file includes ``jaas/*.conf``. The webroot
holds a stand-in page instead of Jitsi's app.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from demo.processes import terminate

STANDIN = Path(__file__).with_name("standin")
TENANTS_LITERAL = "jitsi-auth-sidecar-no-tenants"
SOCKET_LITERAL = "unix:/run/jitsi-auth-sidecar/http.sock"
NGINX = "/usr/sbin/nginx"


def default_include() -> Path:
    """The include file of this source tree (``nginx/jitsi-auth-sidecar.conf``)."""
    return Path(__file__).resolve().parents[1] / "nginx" / "jitsi-auth-sidecar.conf"


def default_upstream() -> Path:
    """The http-level upstream the include names (``nginx/jitsi-auth-sidecar-upstream.conf``)."""
    return default_include().with_name("jitsi-auth-sidecar-upstream.conf")


SITE = """\
server {{
    listen 127.0.0.1:{port};
    server_name localhost;

    root {webroot};
    index index.html;
    set $prefix "";
    ssi on;
    ssi_types application/x-javascript application/javascript;
    error_page 404 /static/404.html;

    include {include};

    location = /config.js {{
        alias {webroot}/config.js;
    }}
    location = /external_api.js {{
        alias {webroot}/libs/external_api.min.js;
    }}
    location ~ ^/(libs|css|static|images|fonts|lang|sounds|.well-known)/(.*)$ {{
        add_header 'Access-Control-Allow-Origin' '*';
        alias {webroot}/$1/$2;
    }}
    location = /http-bind {{
        proxy_pass http://127.0.0.1:{xmpp_port}/http-bind?prefix=$prefix&$args;
        proxy_set_header X-Forwarded-For $remote_addr;
        proxy_set_header Host $http_host;
    }}
    location = /xmpp-websocket {{
        proxy_pass http://127.0.0.1:{xmpp_port}/xmpp-websocket?prefix=$prefix&$args;
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
        alias {webroot}/config.js;
    }}
    location ~ ^/([^/?&:'"]+)/(.*)$ {{
        set $subdomain "$1.";
        set $subdir "$1/";
        rewrite ^/([^/?&:'"]+)/(.*)$ /$2;
    }}
}}
"""

MAIN = """\
{user}
worker_processes 1;
daemon off;
pid {workdir}/nginx.pid;
error_log {workdir}/error.log notice;

events {{
    worker_connections 1024;
}}

http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log {workdir}/access.log;
    client_body_temp_path {workdir}/tmp/body;
    proxy_temp_path {workdir}/tmp/proxy;
    fastcgi_temp_path {workdir}/tmp/fastcgi;
    uwsgi_temp_path {workdir}/tmp/uwsgi;
    scgi_temp_path {workdir}/tmp/scgi;
    server_names_hash_bucket_size 64;
{upstream}{http_extra}
    include {workdir}/site.conf;
}}
"""


def make_webroot(webroot: Path, *, demo_rooms_url: str | None = None) -> None:
    """The stand-in meet page plus the kinds of real files a Jitsi webroot has.

    With ``demo_rooms_url``, config.js tells the stand-in page where to open
    and close its room (the demo's room-size stand-in).
    """
    (webroot / "libs").mkdir(parents=True, exist_ok=True)
    (webroot / "static").mkdir(exist_ok=True)
    page = (STANDIN / "index.html").read_text("utf-8")
    (webroot / "index.html").write_text(page, encoding="utf-8")
    rooms = f", demoRooms: {json.dumps(demo_rooms_url)}" if demo_rooms_url else ""
    (webroot / "config.js").write_text(f"var config = {{ standIn: true{rooms} }};\n", "utf-8")
    (webroot / "libs" / "app.bundle.min.js").write_text("/* stand-in bundle */\n", "utf-8")
    (webroot / "libs" / "external_api.min.js").write_text("/* stand-in api */\n", "utf-8")
    (webroot / "static" / "404.html").write_text("<h1>Not found</h1>\n", "utf-8")
    (webroot / "favicon.ico").write_bytes(b"\x00\x00\x01\x00")


class Nginx:
    """nginx on 127.0.0.1:``port`` with the include pointed at ``sidecar_socket``."""

    def __init__(
        self,
        workdir: Path,
        *,
        port: int,
        sidecar_socket: Path,
        xmpp_port: int,
        include: Path | None = None,
        site: str = SITE,
        http_extra: str = "",
        demo_rooms_url: str | None = None,
        tenants: str | None = None,
        with_upstream: bool = True,
    ) -> None:
        self.workdir = workdir
        self.site = site
        self.http_extra = http_extra
        self.demo_rooms_url = demo_rooms_url
        self.tenants = tenants  # a regex for the include's tenant name, as an admin sets it
        self.port = port
        self.sidecar_socket = sidecar_socket
        self.xmpp_port = xmpp_port
        self.include_source = include or default_include()
        # False: nginx as docker-jitsi-meet's web container runs it, with no
        # http-level file of the sidecar's (the include as setup --docker writes it).
        self.with_upstream = with_upstream
        self.webroot = workdir / "webroot"
        self.config = workdir / "nginx.conf"
        self.access_log = workdir / "access.log"
        self.error_log = workdir / "error.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def write_config(self) -> None:
        for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (self.workdir / "tmp" / name).mkdir(parents=True, exist_ok=True)
        make_webroot(self.webroot, demo_rooms_url=self.demo_rooms_url)
        include_text = self.include_source.read_text("utf-8")
        # Pointing the include (and its upstream) at another address is exactly this
        # one replacement.
        include = self.workdir / "jitsi-auth-sidecar.conf"
        include_text = include_text.replace(SOCKET_LITERAL, f"unix:{self.sidecar_socket}")
        if self.tenants is not None:
            include_text = include_text.replace(TENANTS_LITERAL, self.tenants)
        include.write_text(include_text, "utf-8")
        # The upstream, as the package puts it in conf.d, pointed at the same socket.
        upstream = self.workdir / "jitsi-auth-sidecar-upstream.conf"
        upstream_text = default_upstream().read_text("utf-8")
        upstream.write_text(
            upstream_text.replace(SOCKET_LITERAL, f"unix:{self.sidecar_socket}"), "utf-8"
        )
        upstream_line = f"    include {upstream};\n" if self.with_upstream else ""
        (self.workdir / "site.conf").write_text(
            self.site.format(
                port=self.port, webroot=self.webroot, include=include, xmpp_port=self.xmpp_port
            ),
            "utf-8",
        )
        # As root, nginx's workers would become "nobody" and could not reach
        # the sidecar's socket in a private temp directory.
        user = "user root;" if os.geteuid() == 0 else ""
        self.config.write_text(
            MAIN.format(
                user=user,
                workdir=self.workdir,
                upstream=upstream_line,
                http_extra=self.http_extra,
            ),
            "utf-8",
        )

    def check(self) -> subprocess.CompletedProcess[str]:
        """``nginx -t`` on the written configuration."""
        return subprocess.run(
            [NGINX, "-t", "-c", str(self.config), "-p", str(self.workdir)],
            capture_output=True,
            text=True,
            check=False,
        )

    def start(self, timeout: float = 10.0) -> None:
        self.write_config()
        result = self.check()
        if result.returncode != 0:
            raise RuntimeError(f"nginx -t failed:\n{result.stderr}")
        self._process = subprocess.Popen(
            [NGINX, "-c", str(self.config), "-p", str(self.workdir)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"nginx exited: {self.error_log.read_text('utf-8')[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("nginx did not start listening")

    def reload(self) -> None:
        """``nginx -s reload``: new workers; the old ones close idle connections at once."""
        if self._process is not None:
            self._process.send_signal(signal.SIGHUP)

    def stop(self) -> None:
        process, self._process = self._process, None
        terminate(process)

    def __enter__(self) -> Nginx:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def nginx_available() -> bool:
    return shutil.which(NGINX) is not None or Path(NGINX).exists()
