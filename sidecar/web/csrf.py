"""CSRF protection for the sidecar's POST forms: a double-submit token.

A random token lives in a ``SameSite=Strict``, ``HttpOnly`` cookie and in a
hidden field of the form; a POST passes only when both are present and
equal. Another site can make a browser send the cookie with a POST
(SameSite aside), but cannot read it to put it in the form.
"""

from __future__ import annotations

import hmac
import re
import secrets

from sidecar.cookies import CookiePolicy

COOKIE_NAME = "jitsi_auth_csrf"
FIELD = "csrf_token"
_TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{32,64}")
COOKIE_MAX_AGE = 3600


class CsrfTokens:
    def __init__(self, policy: CookiePolicy) -> None:
        self._policy = policy

    @property
    def cookie_name(self) -> str:
        return self._policy.name(COOKIE_NAME)

    def token_for(self, cookie_value: str | None) -> tuple[str, str | None]:
        """The form's token, and a Set-Cookie value when a new one was made."""
        if cookie_value and _TOKEN_SHAPE.fullmatch(cookie_value):
            return cookie_value, None
        token = secrets.token_urlsafe(32)
        header = self._policy.set_cookie(
            COOKIE_NAME, token, max_age=COOKIE_MAX_AGE, same_site="Strict"
        )
        return token, header

    @staticmethod
    def valid(cookie_value: str | None, form_value: str | None) -> bool:
        if not cookie_value or not form_value or not _TOKEN_SHAPE.fullmatch(cookie_value):
            return False
        return hmac.compare_digest(cookie_value.encode(), form_value.encode())
