"""Request guards the Gradio server lacks by default.

Two guards, in one ASGI middleware:

- **Host**: a request whose `Host` names a site the server was not configured for is refused
  (403), whatever its method. This is what stops DNS rebinding: a page on `evil.example`,
  whose name the attacker re-points at 127.0.0.1, reaches the server with `Host: evil.example`.
  Trusted without configuration: IP literals and `localhost` (rebinding needs a name), and the
  name the server listens on; anything else must be listed in `RAG_ALLOWED_ORIGINS`.
- **Origin**: Gradio's CORS middleware only withholds CORS headers from foreign origins: the
  request itself still runs, so a page on another site can make a visitor's browser upload files
  or join the queue (CVE-2024-47084). A request that can change state (any method but GET, HEAD
  and OPTIONS) and carries an `Origin` naming another site is refused with 403.

The request's own headers never vouch for themselves: `X-Forwarded-Host` is ignored (anyone
can send it), and a reverse proxy on another name is declared in `RAG_ALLOWED_ORIGINS`.
"""

from __future__ import annotations

import ipaddress
from typing import Any, Awaitable, Callable
from urllib.parse import urlsplit

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def _host_port(value: str, default_scheme: str = "http") -> tuple[str, int | None]:
    try:
        parts = urlsplit(value if "://" in value else f"{default_scheme}://{value}")
        port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    except ValueError:  # a port that is not a number, a broken IPv6 literal
        return "", None
    return (parts.hostname or "").lower().rstrip("."), port


def is_local_name(host: str) -> bool:
    """An IP literal or a localhost name: no DNS answer an attacker controls can stand behind it."""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class SameOriginGuard:
    """ASGI middleware: the Host must be one of ours, and state-changing requests must come from
    the page's own origin (or one listed in `allowed_origins`, for a reverse proxy on another name)."""

    def __init__(self, app: Callable[..., Awaitable[None]], allowed_origins: tuple[str, ...] = (),
                 listen_host: str = "") -> None:
        self.app = app
        self.allowed = {_host_port(origin) for origin in allowed_origins if origin}
        self.names = {host for host, _ in self.allowed} | ({listen_host.lower()} if listen_host else set())

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
            host = headers.get("host", "")
            if not self.trusted_host(host):
                await self._refuse(send, f"Host {host[:100]!r} is not one this server answers for; a reverse proxy "
                                         "or another name is declared in RAG_ALLOWED_ORIGINS.")
                return
            origin = headers.get("origin")
            if scope["method"] not in SAFE_METHODS and origin is not None and not self.same_site(origin, host):
                await self._refuse(send, "Cross-origin request refused.")
                return
        await self.app(scope, receive, send)

    def trusted_host(self, host: str) -> bool:
        if not host:  # HTTP/1.0 without Host: no name was used, so none was rebound
            return True
        name, _ = _host_port(host)
        return bool(name) and (is_local_name(name) or name in self.names)

    def same_site(self, origin: str, host: str) -> bool:
        if origin == "null":
            return False
        claimed = _host_port(origin)
        if not claimed[0]:
            return False
        scheme = origin.split("://", 1)[0].lower() if "://" in origin else "http"
        return claimed == _host_port(host, scheme) or claimed in self.allowed

    @staticmethod
    async def _refuse(send: Any, sentence: str) -> None:
        body = sentence.encode("utf-8")
        await send({"type": "http.response.start", "status": 403,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
