"""How the sidecar's cookies are named and flagged (the session's and the CSRF token's).

``Secure`` and the ``__Host-`` prefix whenever the meet site is https (the
prefix makes the browser refuse the cookie unless it is Secure, for this
host only and for path ``/``, so no neighbouring subdomain can plant one).
Always ``HttpOnly``, always a ``SameSite`` setting.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class CookiePolicy:
    secure: bool

    def name(self, base: str) -> str:
        return f"__Host-{base}" if self.secure else base

    def set_cookie(
        self,
        base: str,
        value: str,
        *,
        max_age: int,
        same_site: Literal["Lax", "Strict"] = "Lax",
    ) -> str:
        """A ``Set-Cookie`` header value."""
        parts = [f"{self.name(base)}={value}", "Path=/", f"Max-Age={max_age}", "HttpOnly"]
        parts.append(f"SameSite={same_site}")
        if self.secure:
            parts.append("Secure")
        return "; ".join(parts)

    def clear_cookie(self, base: str) -> str:
        return self.set_cookie(base, "", max_age=0)
