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
import os
import time
from collections import OrderedDict, deque
from pathlib import Path
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


def request_headers(scope: dict[str, Any]) -> dict[str, str]:
    """An ASGI request's headers by lower-case name (the last one of a repeated name)."""
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}


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
            headers = request_headers(scope)
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
        await refuse(send, 403, sentence)


class BodyLimits:
    """ASGI middleware: what a client may send, enforced on the raw routes (not only in the page).

    - Every POST says its size (Content-Length; 411 otherwise). A form (an upload, on any route that
      takes files) is at most `max_files` files of `max_file_bytes` each (413); any other body at
      most `max_body_bytes` (413): a question, its history and a rating are small.
    - A client (by address) uploads at most `client_bytes_per_minute` (429, Retry-After: 60), and
      the upload folder holds at most `cache_bytes` (429): files wait there until the page adds them.
    The file count is read off the stream as it passes (each part opens with the form's boundary);
    past `max_files` the request is cut and answered 413, and what Gradio had started to write goes.
    """

    def __init__(self, app: Callable[..., Awaitable[None]], max_files: int, max_file_bytes: int,
                 client_bytes_per_minute: int, cache_bytes: int, cache_folder: Callable[[], Path],
                 max_body_bytes: int = 4 * 1024 * 1024, clock: Callable[[], float] = time.monotonic) -> None:
        self.app = app
        self.max_files, self.max_file_bytes, self.max_body_bytes = max_files, max_file_bytes, max_body_bytes
        self.client_bytes_per_minute, self.cache_bytes = client_bytes_per_minute, cache_bytes
        self.cache_folder, self.clock = cache_folder, clock
        self._sent: OrderedDict[str, deque[tuple[float, int]]] = OrderedDict()
        self._cache_used: tuple[float, int] = (-1e9, 0)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        headers = request_headers(scope)
        try:
            length = int(headers["content-length"])
        except (KeyError, ValueError):
            await refuse(send, 411, "A request must state its size (Content-Length).")
            return
        boundary = form_boundary(headers.get("content-type", ""))
        if boundary is None:
            if length > self.max_body_bytes:
                await refuse(send, 413, f"A request body is at most {self.max_body_bytes // 1024} KB.")
                return
            await self.app(scope, receive, send)
            return
        if length > self.max_files * (self.max_file_bytes + 4096):
            await refuse(send, 413, f"At most {self.max_files} files of {self.max_file_bytes // 2**20} MB "
                                    "per upload.")
            return
        client = (scope.get("client") or ("?", 0))[0]
        if not self._spend(client, length):
            await refuse(send, 429, f"At most {self.client_bytes_per_minute // 2**20} MB of uploads a minute "
                                    "from one address; try again in a minute.", retry_after=60)
            return
        if self._cache_bytes() + length > self.cache_bytes:
            await refuse(send, 429, "The upload folder is full; add the files already sent, or try again later.",
                         retry_after=300)
            return
        await self._counted(scope, receive, send, b"--" + boundary.encode("latin-1"))

    async def _counted(self, scope: dict[str, Any], receive: Any, send: Any, delimiter: bytes) -> None:
        seen, tail, cut, started = 0, b"", False, False

        async def counting_receive() -> dict[str, Any]:
            nonlocal seen, tail, cut
            if cut:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                window = tail + message.get("body", b"")
                seen += window.count(delimiter)
                tail = window[-(len(delimiter) - 1):] if len(delimiter) > 1 else b""
                if seen > self.max_files + 1:  # n files: n opening delimiters and the closing one
                    cut = True
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: dict[str, Any]) -> None:
            nonlocal started
            if cut:
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            if not cut:
                raise
        if cut and not started:
            await refuse(send, 413, f"At most {self.max_files} files per upload.")

    def _spend(self, client: str, size: int) -> bool:
        now = self.clock()
        sent = self._sent.pop(client, deque())
        while sent and now - sent[0][0] > 60:
            sent.popleft()
        allowed = sum(n for _, n in sent) + size <= self.client_bytes_per_minute
        if allowed:
            sent.append((now, size))
        self._sent[client] = sent
        while len(self._sent) > 10_000:  # the oldest addresses are forgotten first
            self._sent.popitem(last=False)
        return allowed

    def _cache_bytes(self) -> int:
        """Bytes in the upload folder, counted at most once a second."""
        when, used = self._cache_used
        now = self.clock()
        if now - when > 1.0:
            used = folder_bytes(self.cache_folder())
            self._cache_used = (now, used)
        return used


def folder_bytes(folder: Path) -> int:
    total = 0
    stack = [folder]
    while stack:
        try:
            entries = list(os.scandir(stack.pop()))
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(Path(entry.path))
                elif entry.is_file(follow_symlinks=False):
                    total += entry.stat(follow_symlinks=False).st_size
            except OSError:
                continue
    return total


def form_boundary(content_type: str) -> str | None:
    """The boundary of a multipart/form-data body, None for any other body."""
    kind, _, rest = content_type.partition(";")
    if kind.strip().lower() != "multipart/form-data":
        return None
    for parameter in rest.split(";"):
        name, _, value = parameter.strip().partition("=")
        if name.lower() == "boundary" and value:
            return value.strip('"')
    return ""


async def refuse(send: Any, status: int, sentence: str, retry_after: int | None = None) -> None:
    body = sentence.encode("utf-8")
    headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())]
    if retry_after is not None:
        headers.append((b"retry-after", str(retry_after).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


REQUIRED = object()  # a parameter without a default


def api_parameters(function: Callable[..., Any]) -> tuple[tuple[str, Any], ...]:
    """The parameters of an API function and their defaults (`REQUIRED` for none), read from its
    signature, so that the guard fills in what the function itself would."""
    import inspect

    return tuple((name, REQUIRED if p.default is inspect.Parameter.empty else p.default)
                 for name, p in inspect.signature(function).parameters.items() if name != "self")


class RouteGuard:
    """ASGI middleware for two holes of the mounted Gradio app: its OpenAPI schema stays served at
    `/openapi.json` though the docs routes are off (`closed` paths answer 404), and a call whose body
    is not what the route takes raised inside Gradio (500, a traceback in the log, the connection
    reset). Call bodies are read (they are small: `BodyLimits` runs first), checked, and passed on; a
    malformed one is answered 422 in one sentence, a call to no endpoint 404.

    `endpoints` maps each API name to its parameters and their defaults (`api_parameters`):
    `/call/NAME` takes `{"data": [...]}`, `/call/v2/NAME` an object of those parameters by name.
    Gradio fills the defaults of a v2 call, not those of a `/call/NAME` that gives only the first
    parameters: that one failed in its queue, after the 200, with a traceback in the log. The guard
    fills them in (the one body it changes) before passing it on."""

    CALLS = "/gradio_api/call/"

    def __init__(self, app: Callable[..., Awaitable[None]], endpoints: dict[str, tuple[tuple[str, Any], ...]],
                 closed: tuple[str, ...] = ("/openapi.json",)) -> None:
        self.app, self.endpoints, self.closed = app, endpoints, closed

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        root = scope.get("root_path", "")
        local = path[len(root):] if root and path.startswith(root) else path
        if local in self.closed:
            await refuse(send, 404, "Not Found")
            return
        if scope["method"] != "POST" or not local.startswith(self.CALLS):
            await self.app(scope, receive, send)
            return
        body, more = b"", True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
        status, sentence, body = self.check_call(local[len(self.CALLS):].strip("/"), body)
        if status:
            await refuse(send, status, sentence)
            return
        scope = {**scope, "headers": [(k, str(len(body)).encode() if k.lower() == b"content-length" else v)
                                      for k, v in scope.get("headers", [])]}
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    def check_call(self, route: str, body: bytes) -> tuple[int, str, bytes]:
        """(0, "", the body to pass on) for a call Gradio can take, else the status and the sentence to
        answer with."""
        import json

        v2 = route.startswith("v2/")
        name = route[3:] if v2 else route
        if name not in self.endpoints:
            return 404, f"No API endpoint {name[:60]!r}; the API has: {', '.join(self.endpoints)}.", body
        try:
            data = json.loads(body)
        except ValueError:
            data = None
        parameters = self.endpoints[name]
        names = [parameter for parameter, _ in parameters]
        required = sum(default is REQUIRED for _, default in parameters)
        if v2:
            if isinstance(data, dict) and set(data) <= set(names):
                return 0, "", body
            return 422, f"/call/v2/{name} takes a JSON object of its parameters by name: {', '.join(names)}.", body
        if isinstance(data, dict) and isinstance(data.get("data"), list) and required <= len(data["data"]) <= len(names):
            given = data["data"]
            data["data"] = given + [default for _, default in parameters[len(given):]]
            return 0, "", json.dumps(data).encode("utf-8")
        return 422, f'/call/{name} takes a JSON object {{"data": [...]}}: {", ".join(names)}, in order.', body
