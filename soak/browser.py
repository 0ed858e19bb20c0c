"""One person's browser for the soak's scripted steps (logins, guest links,
logout): a cookie jar over ``http.client`` to nginx, no redirects followed."""

from __future__ import annotations

import http.client
import re
from dataclasses import dataclass, field
from urllib.parse import quote, urlencode


@dataclass
class Page:
    status: int
    location: str
    set_cookies: list[str]
    body: str

    @property
    def admits(self) -> bool:
        """A room redirect that carries a token: the way into the conference."""
        return self.status == 302 and "jwt=" in self.location


@dataclass
class Browser:
    port: int
    cookies: dict[str, str] = field(default_factory=dict)
    timeout: float = 30.0

    def _send(self, method: str, path: str, body: bytes | None = None) -> Page:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
        headers = {"Accept-Language": "en"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            text = response.read().decode("utf-8", errors="replace")
        finally:
            connection.close()
        set_cookies = response.headers.get_all("Set-Cookie") or []
        for header in set_cookies:
            name, _, value = header.split(";", 1)[0].partition("=")
            if value and "max-age=0" not in header.lower():
                self.cookies[name.strip()] = value
            else:
                self.cookies.pop(name.strip(), None)
        return Page(response.status, response.getheader("Location") or "", set_cookies, text)

    def get(self, path: str) -> Page:
        return self._send("GET", path.partition("#")[0])

    def post(self, path: str, form: dict[str, str]) -> Page:
        return self._send("POST", path, urlencode(form).encode())

    @staticmethod
    def csrf_token(page: Page) -> str:
        found = re.search(r'name="csrf_token" value="([^"]+)"', page.body)
        return found.group(1) if found else ""

    def log_in(self, uid: str, password: str, next_path: str) -> Page:
        form = self.get(f"/auth/login?next={quote(next_path, safe='')}")
        fields = {"next": next_path, "username": uid, "password": password}
        return self.post("/auth/login", {"csrf_token": self.csrf_token(form), **fields})
