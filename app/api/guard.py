"""Checks every request passes before FastAPI parses it: the Host it names, where a write comes
from, and how large its body is.

- Host: a page on another site can reach a loopback server through DNS rebinding (its own name
  resolving to 127.0.0.1), so the Host header must name the address the server is bound to, a
  loopback name, or a host in the allow-list (`--allowed-host`, ARCHIVIST_ALLOWED_HOSTS).
- Cross-origin writes: a browser marks requests a page on another origin sends (`Origin`,
  `Sec-Fetch-Site`); POST, PUT, PATCH and DELETE from another origin are refused, so a web page
  cannot plant or delete documents through the user's browser. An origin is scheme, host and
  port: a page served on another port of the same machine is another origin (browsers without
  `Sec-Fetch-Site` send only `Origin`). API clients send neither header.
- Body size: refused with 413 from `Content-Length` before it is read, and counted while it
  streams when the length is not declared, so no body larger than the limit is ever held.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any
from urllib.parse import urlsplit

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1", "[::1]"}
WRITES = {"POST", "PUT", "PATCH", "DELETE"}


def host_name(value: str) -> str:
    """'example.org:8000' -> 'example.org'; '[::1]:8000' -> '::1'."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


class RequestGuard:
    """ASGI middleware: Host allow-list, no cross-site writes, body size limits."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        bound_host: str = "127.0.0.1",
        allowed_hosts: Iterable[str] = (),
        max_body: int = 8 * 2**20,
        max_upload_body: int = 201 * 2**20,
    ) -> None:
        self.app = app
        self.any_host = bound_host in ("0.0.0.0", "::", "") and not list(allowed_hosts)
        self.hosts = (
            {h.lower() for h in LOOPBACK_NAMES}
            | {host_name(bound_host)}
            | {host_name(h) for h in allowed_hosts if h.strip()}
        )
        self.max_body = max_body
        self.max_upload_body = max_upload_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        host = host_name(headers.get("host", ""))
        if not self.any_host and host not in self.hosts:
            await _refuse(
                send, 421, f"Host {host!r} is not served here; add it with --allowed-host", "host_not_allowed"
            )
            return
        if scope.get("method", "GET") in WRITES and self._cross_site(headers, scope.get("scheme", "http")):
            await _refuse(
                send, 403, "cross-origin writes are refused: send the request from an API client", "cross_origin"
            )
            return
        limit = self.max_upload_body if "multipart/form-data" in headers.get("content-type", "") else self.max_body
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _refuse(send, 413, f"request body is over the limit of {limit / 2**20:,.0f} MB", "body_too_large")
            return
        seen = 0
        refused = False

        async def counted() -> Message:
            # past the limit: answer 413 now (the app is still reading, so nothing was sent yet) and
            # tell the app the client left; whatever it tries to send after that is dropped
            nonlocal seen, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    refused = True
                    await _refuse(
                        send, 413, f"request body is over the limit of {limit / 2**20:,.0f} MB", "body_too_large"
                    )
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if not refused:
                await send(message)

        try:
            await self.app(scope, counted, guarded_send)
        except Exception:
            if not refused:
                raise

    def _cross_site(self, headers: dict[str, str], scheme: str) -> bool:
        """Does a browser say the request comes from a page of another origin than this server's?"""
        if headers.get("sec-fetch-site", "") in ("cross-site", "same-site"):
            return True
        origin = headers.get("origin")
        if origin is None:
            return False
        if origin == "null":
            return True  # sandboxed frames and file:// pages
        sent = origin_of(origin)
        return sent is None or sent != origin_of(f"{scheme}://{headers.get('host', '')}")


def origin_of(url: str) -> tuple[str, str, int | None] | None:
    """(scheme, host, port) of a URL, the port filled in for http and https; None when unreadable."""
    try:
        parts = urlsplit(url.strip().lower())
        port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    except ValueError:
        return None
    if not parts.scheme or not parts.hostname:
        return None
    return parts.scheme, parts.hostname, port


async def _refuse(send: Send, status: int, message: str, code: str) -> None:
    body = json.dumps({"error": {"message": message, "type": "invalid_request_error", "param": None, "code": code}})
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body.encode()})
