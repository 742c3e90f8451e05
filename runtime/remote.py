"""Models answered by OpenAI-compatible servers: llama.cpp's server, vLLM, Ollama, another Archivist.

Spec: `openai:URL[,URL...][;model=NAME][;key_env=VAR]`. Each URL is a server's API base (the part
before `/chat/completions`, e.g. `http://10.0.0.5:8080/v1`). Requests go round-robin over the
servers; a server that cannot be reached, or answers 5xx or 429 before its first token, is skipped
for the next one (failover). `model` is the name sent in each request (default `default`); the key
is read from the environment variable `key_env` names (default `ARCHIVIST_OPENAI_API_KEY`), never
from the spec, so a key is never written into an assistant's YAML.

Token counts for the context budget: the server's own tokenizer where it has one (llama.cpp's
`/extras/tokenize/count` or `/tokenize`), else a stated safe estimate: one token per two UTF-8
bytes, where common BPE vocabularies average three to four bytes a token on prose and code, plus
eight tokens a message for the chat template's role markers and 48 once for what a template adds
by itself (the reply's header, a default system line).
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import os
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from runtime.errors import ArchivistError
from runtime.protocol import GenerationParams, GenerationStats, Message

log = logging.getLogger("archivist.models")

PREFIX = "openai:"
KEY_ENV = "ARCHIVIST_OPENAI_API_KEY"
BYTES_PER_TOKEN = 2  # the safe estimate: common vocabularies average 3-4 bytes a token
TEMPLATE_TOKENS = 8  # role markers and separators a chat template adds per message
TEMPLATE_DEFAULTS = 48  # what a template adds once: the reply's header, a default system line


@dataclass(frozen=True)
class RemoteSpec:
    urls: tuple[str, ...]
    model: str = "default"
    key_env: str = KEY_ENV

    @property
    def ident(self) -> str:
        """The spec written out in full: what names this model among the loaded ones (the key's
        variable, never the key)."""
        extra = f";key_env={self.key_env}" if self.key_env != KEY_ENV else ""
        return f"{PREFIX}{','.join(self.urls)};model={self.model}{extra}"


def is_remote(spec: str) -> bool:
    return spec.startswith(PREFIX)


def parse_remote(spec: str) -> RemoteSpec:
    """The servers, model name and key variable of an `openai:` spec, or an error naming what is wrong."""
    body = spec.removeprefix(PREFIX)
    urls_part, *options = body.split(";")
    urls = tuple(u.strip().rstrip("/") for u in urls_part.split(",") if u.strip())
    if not urls:
        raise ArchivistError(f"model {spec!r}: name at least one server, as openai:http://HOST:PORT/v1")
    for u in urls:
        why = unclean_url(u)
        if why:
            raise ArchivistError(f"model {spec!r}: {u!r} {why}")
    fields: dict[str, str] = {}
    for opt in options:
        key, sep, value = opt.partition("=")
        if not sep or key.strip() not in ("model", "key_env") or not value.strip():
            raise ArchivistError(f"model {spec!r}: unknown option {opt!r} (options: model=NAME, key_env=VARIABLE)")
        fields[key.strip()] = value.strip()
    return RemoteSpec(urls, **fields)


def unclean_url(url: str) -> str:
    """Why `url` is not a clean server address (empty when it is): http or https, a host, an optional
    port and a plain path; no credentials, query, fragment, dot segments, spaces or control characters
    (a spec that walks `..` must not pass as one thing to one reader and another to the next)."""
    if any(c.isspace() or ord(c) < 32 or c == "\\" for c in url):
        return "holds spaces, control characters or backslashes"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a port that is not a number in range
    except ValueError as exc:
        return f"is not a valid address ({exc})"
    if parts.scheme not in ("http", "https"):
        return "is not an http:// or https:// address"
    if not parts.hostname:
        return "names no host"
    if parts.username is not None or parts.password is not None:
        return "holds credentials (the key comes from the environment, never from the spec)"
    if parts.query or parts.fragment or url.endswith(("?", "#")):
        return "holds a query or fragment (name the API base, e.g. http://HOST:PORT/v1)"
    if any(seg.lower().replace("%2e", ".") in (".", "..") for seg in parts.path.split("/")):
        return "holds '.' or '..' path segments"
    return ""


class RemoteGenerator:
    """A `TextGenerator` whose answers come from OpenAI-compatible servers over HTTP."""

    def __init__(self, spec: RemoteSpec, context_window: int = 4096, timeout: float = 600.0) -> None:
        self.spec = spec
        self._context_window = context_window
        self._turn = itertools.count()
        self._lock = threading.Lock()
        self._in_flight = 0
        self._tokenizer: dict[str, str | None] = {}  # server -> its token-count endpoint (None: none)
        key = os.environ.get(spec.key_env)
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._http = httpx.Client(headers=headers, timeout=httpx.Timeout(timeout, connect=5.0))

    @property
    def context_window(self) -> int:
        return self._context_window

    @property
    def waiting(self) -> int:
        return self._in_flight

    def close(self) -> None:
        self._http.close()

    # token counts -----------------------------------------------------------------------------
    def count_tokens(self, text: str) -> int:
        for url in self.spec.urls:
            counted = self._server_count(url, text)
            if counted is not None:
                return counted
        return math.ceil(len(text.encode("utf-8")) / BYTES_PER_TOKEN)

    def _count_endpoint(self, url: str) -> str | None:
        """The server's token-count endpoint, found on first use (llama.cpp's server has one under
        either name; most others have none). A server that is down then counts as having none, so
        counting never waits on it again; the other servers' tokenizers or the estimate serve."""
        if url in self._tokenizer:
            return self._tokenizer[url]
        root = url.removesuffix("/v1")
        for path, body in (("/extras/tokenize/count", {"input": "x"}), ("/tokenize", {"content": "x"})):
            try:
                r = self._http.post(root + path, json=body, timeout=5.0)
            except httpx.HTTPError:
                break
            if r.status_code == 200:
                self._tokenizer[url] = path
                return path
        log.info("model server %s gives no token counts; they are taken elsewhere or estimated", url)
        self._tokenizer[url] = None
        return None

    def _server_count(self, url: str, text: str) -> int | None:
        path = self._count_endpoint(url)
        if path is None:
            return None
        body = {"input": text} if path.startswith("/extras") else {"content": text}
        try:
            r = self._http.post(url.removesuffix("/v1") + path, json=body, timeout=30.0)
            r.raise_for_status()
            data = r.json()
        except (httpx.HTTPError, ValueError):
            return None
        return int(data["count"]) if "count" in data else len(data.get("tokens", []))

    def tokenize_prompt(self, messages: Sequence[Message]) -> list[int]:
        """As many placeholder ids as the prompt's tokens: the content counted by the server's
        tokenizer (or the estimate) plus the template's markers and defaults (never fewer than the
        server reads: SmolLM2's template, for one, adds its own system line when none is sent)."""
        total = sum(self.count_tokens(m["content"]) + TEMPLATE_TOKENS for m in messages) + TEMPLATE_DEFAULTS
        return [0] * total

    def render(self, messages: Sequence[Message]) -> str:
        """The messages as the server receives them (its chat template is applied there)."""
        return "\n".join(f"<{m['role']}>\n{m['content']}" for m in messages)

    # generation -------------------------------------------------------------------------------
    def _order(self) -> list[str]:
        start = next(self._turn) % len(self.spec.urls)
        return list(self.spec.urls[start:] + self.spec.urls[:start])

    def _body(self, messages: Sequence[Message], params: GenerationParams) -> dict[str, Any]:
        msgs = [dict(m) for m in messages]
        if params.prefix:  # the answer's first words, sent as the assistant turn the server continues
            msgs.append({"role": "assistant", "content": params.prefix})
        body: dict[str, Any] = {
            "model": self.spec.model,
            "messages": msgs,
            "stream": True,
            "max_tokens": params.max_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
        }
        if params.stop:
            body["stop"] = list(params.stop)
        if params.seed is not None:
            body["seed"] = params.seed
        return body

    def stream(
        self, messages: Sequence[Message], params: GenerationParams, stats: GenerationStats | None = None
    ) -> Iterator[str]:
        stats = stats if stats is not None else GenerationStats()
        body = self._body(messages, params)
        failures: list[str] = []
        with self._lock:
            self._in_flight += 1
        try:
            for url in self._order():
                started = time.perf_counter()
                try:
                    with self._http.stream("POST", url + "/chat/completions", json=body) as r:
                        if r.status_code >= 500 or r.status_code == 429:
                            failures.append(f"{url}: HTTP {r.status_code}")
                            continue
                        if r.status_code != 200:
                            r.read()
                            raise ArchivistError(
                                f"model server {url} refused the request: HTTP {r.status_code} {r.text[:300]}"
                            )
                        if params.prefix:  # the answer's opening is part of its text, as on llama.cpp
                            yield params.prefix
                        yield from self._read(r, started, stats)
                        if stats.prompt_tokens == 0:
                            stats.prompt_tokens = len(self.tokenize_prompt(messages))
                        return
                except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                    failures.append(f"{url}: {exc.__class__.__name__}")
                    log.warning("model server %s cannot be reached (%s); trying the next", url, exc.__class__.__name__)
                    continue
                except httpx.HTTPError as exc:
                    raise ArchivistError(f"model server {url} broke off the answer: {exc}") from exc
            raise ArchivistError("no model server answered: " + "; ".join(failures))
        finally:
            with self._lock:
                self._in_flight -= 1

    def _read(self, r: httpx.Response, started: float, stats: GenerationStats) -> Iterator[str]:
        """The text pieces of a streamed chat completion (server-sent events)."""
        for line in r.iter_lines():
            if not line.startswith("data:"):
                continue
            data = line.removeprefix("data:").strip()
            if data == "[DONE]":
                break
            try:
                event = json.loads(data)
            except ValueError:
                continue
            if event.get("usage"):
                stats.prompt_tokens = int(event["usage"].get("prompt_tokens") or 0)
                stats.completion_tokens = int(event["usage"].get("completion_tokens") or 0)
            for choice in event.get("choices") or []:
                piece = (choice.get("delta") or {}).get("content") or ""
                if choice.get("finish_reason"):
                    stats.finish_reason = str(choice["finish_reason"])
                if piece:
                    if stats.time_to_first_token is None:
                        stats.time_to_first_token = time.perf_counter() - started
                    if not event.get("usage"):
                        stats.completion_tokens += 1  # one piece a token until the server says
                    yield piece
        stats.total_time = time.perf_counter() - started
