"""The web page reader: a URL in the question is fetched and its readable text used as passages.

The page goes through ingest's HTML loader (hidden text dropped, invisible Unicode removed) and
enters the prompt as marked, untrusted data like any passage, cited by its URL. Private,
loopback, link-local and other non-public addresses are refused unless the assistant allows them
(`web.allow_private: true`, or a list of the addresses and networks allowed); every redirect
target is resolved and checked again, at most `max_redirects` are followed, and the connection
goes to the address that was checked (no second lookup). Size and time are capped.
"""

from __future__ import annotations

import http.client
import ipaddress
import re
import socket
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

from assistants.tools import ToolStep
from runtime.errors import ArchivistError

URL = re.compile(r"https?://[^\s<>\"'`)\]]+", re.I)
Resolver = Callable[[str, int], list[str]]


class WebError(ArchivistError):
    """A page that cannot or may not be read."""


@dataclass(frozen=True)
class WebLimits:
    allow_private: bool | tuple[str, ...] = False
    max_bytes: int = 2 * 2**20
    timeout_s: float = 10.0
    max_redirects: int = 3


@dataclass(frozen=True)
class Page:
    url: str  # the URL asked for
    final_url: str  # after redirects
    text: str
    warnings: list[str]


def find_urls(text: str, limit: int = 2) -> list[str]:
    """The http(s) URLs written in `text`, in order, without trailing punctuation."""
    out: list[str] = []
    for m in URL.finditer(text):
        url = m.group(0).rstrip(".,;:!?")
        if url not in out:
            out.append(url)
    return out[:limit]


def _resolve(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise WebError(f"{host}: the name does not resolve ({exc.strerror})") from exc
    return list(dict.fromkeys(str(i[4][0]) for i in infos))


def check_address(host: str, address: str, allow: bool | Sequence[str]) -> None:
    """Refuse an address that is not public unless `allow` is True or names it (or its network)."""
    ip = ipaddress.ip_address(address.split("%")[0])
    public = ip.is_global and not ip.is_multicast
    if public or allow is True:
        return
    if allow and any(ip in ipaddress.ip_network(a, strict=False) for a in allow):
        return
    kind = (
        "loopback"
        if ip.is_loopback
        else "link-local"
        if ip.is_link_local
        else "private"
        if ip.is_private
        else "not public"
    )
    raise WebError(
        f"{host} is at {address}, a {kind} address; the web reader reads public pages only "
        "(an assistant may allow others with web.allow_private)"
    )


class _Pinned(http.client.HTTPConnection):
    """Connects to the address that was checked, whatever the name resolves to now."""

    def __init__(self, host: str, address: str, port: int, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedTLS(_Pinned):
    def connect(self) -> None:
        super().connect()
        self.sock = ssl.create_default_context().wrap_socket(self.sock, server_hostname=self.host)


def fetch(url: str, limits: WebLimits | None = None, resolve: Resolver = _resolve) -> Page:
    """The page at `url` as readable text; WebError naming the URL and the reason otherwise."""
    from ingest.loaders import load_bytes

    limits = limits or WebLimits()
    deadline = time.monotonic() + limits.timeout_s
    current = url
    for hop in range(limits.max_redirects + 1):
        parts = urlsplit(current)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise WebError(f"{current}: only http and https URLs are read")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        addresses = resolve(parts.hostname, port)
        if not addresses:
            raise WebError(f"{parts.hostname}: the name does not resolve")
        for a in addresses:  # every address the name has must be allowed
            check_address(parts.hostname, a, limits.allow_private)
        left = deadline - time.monotonic()
        if left <= 0:
            raise WebError(f"{url}: no answer within {limits.timeout_s:g} s")
        cls = _PinnedTLS if parts.scheme == "https" else _Pinned
        conn = cls(parts.hostname, addresses[0], port, left)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        try:
            conn.request("GET", path, headers={"User-Agent": "Archivist web reader", "Accept": "text/html, text/plain"})
            resp = conn.getresponse()
            if resp.status in (301, 302, 303, 307, 308):
                target = resp.getheader("Location")
                conn.close()
                if not target:
                    raise WebError(f"{current}: a redirect without a target")
                if hop == limits.max_redirects:
                    raise WebError(f"{url}: more than {limits.max_redirects} redirects")
                current = urljoin(current, target)
                continue
            if resp.status != 200:
                raise WebError(f"{current}: the server answered {resp.status} {resp.reason}")
            kind = (resp.getheader("Content-Type") or "text/html").split(";")[0].strip().lower()
            if kind not in ("text/html", "application/xhtml+xml", "text/plain"):
                raise WebError(f"{current}: {kind} is not a web page the reader reads (HTML or plain text)")
            data = resp.read(limits.max_bytes + 1)
        except (OSError, http.client.HTTPException) as exc:
            raise WebError(f"{current}: {type(exc).__name__}: {exc}") from exc
        finally:
            conn.close()
        warnings: list[str] = []
        if len(data) > limits.max_bytes:
            data = data[: limits.max_bytes]
            warnings.append(f"only the first {limits.max_bytes / 2**20:g} MB were read")
        name = "page.txt" if kind == "text/plain" else "page.html"
        doc = load_bytes(data, name, drop_hidden=True)
        text = "\n\n".join(p.text for p in doc.pages).strip()
        if not text:
            raise WebError(f"{current}: no readable text on the page")
        return Page(url, current, text, warnings + doc.warnings)
    raise WebError(f"{url}: more than {limits.max_redirects} redirects")


def read(
    url: str, limits: WebLimits, by: str = "archivist", resolve: Resolver = _resolve
) -> tuple[ToolStep, Page | None]:
    """A step for reading `url` and the page (None when it was refused or failed)."""
    t0 = time.perf_counter()
    try:
        page = fetch(url, limits, resolve)
    except WebError as exc:
        return ToolStep(
            "web", url, str(exc), False, f"could not read {url}: {exc}", url, by, time.perf_counter() - t0
        ), None
    note = f" ({'; '.join(page.warnings)})" if page.warnings else ""
    card = f"read {page.final_url}: {len(page.text):,} characters{note}"
    return ToolStep("web", url, page.text[:2000], True, card, page.final_url, by, time.perf_counter() - t0), page
