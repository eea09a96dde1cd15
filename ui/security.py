"""Request guards the Gradio server lacks by default.

Gradio's CORS middleware only withholds CORS headers from foreign origins: the
request itself still runs, so a page on another site can make a visitor's
browser upload files or join the queue (CVE-2024-47084). Here, a request that
can change state (any method but GET, HEAD and OPTIONS) and carries an Origin
header naming another site is refused with 403 before it reaches Gradio.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable
from urllib.parse import urlsplit

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def _host_port(value: str, default_scheme: str = "http") -> tuple[str, int | None]:
    parts = urlsplit(value if "://" in value else f"{default_scheme}://{value}")
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return (parts.hostname or "").lower(), port


class SameOriginGuard:
    """ASGI middleware: state-changing requests must come from the server's own origin
    (or one listed in `allowed_origins`, for a reverse proxy on another name)."""

    def __init__(self, app: Callable[..., Awaitable[None]], allowed_origins: tuple[str, ...] = ()) -> None:
        self.app = app
        self.allowed = {_host_port(origin) for origin in allowed_origins if origin}

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] not in SAFE_METHODS:
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
            origin = headers.get("origin")
            if origin is not None and not self._same_site(origin, headers):
                await self._refuse(send)
                return
        await self.app(scope, receive, send)

    def _same_site(self, origin: str, headers: dict[str, str]) -> bool:
        if origin == "null":
            return False
        claimed = _host_port(origin)
        scheme = urlsplit(origin).scheme or "http"
        hosts = {_host_port(headers.get("host", ""), scheme)}
        if headers.get("x-forwarded-host"):
            hosts.add(_host_port(headers["x-forwarded-host"], scheme))
        return claimed in hosts or claimed in self.allowed

    @staticmethod
    async def _refuse(send: Any) -> None:
        body = b"Cross-origin request refused."
        await send({"type": "http.response.start", "status": 403,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
