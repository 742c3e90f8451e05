"""Streaming answers: server-sent events closed however the response ends, and each model's
queue places (taken on arrival, given back when the answer is done or its client leaves)."""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import anyio
from fastapi.responses import StreamingResponse


class Slot:
    """One admitted answer's place in its model's queue; `leave` is idempotent."""

    def __init__(self, admission: Admission, key: int) -> None:
        self._admission, self._key, self._left = admission, key, False

    def leave(self) -> None:
        if not self._left:
            self._left = True
            self._admission.leave(self._key)


class Admission:
    """Answers admitted per model, counted from arrival until done or abandoned."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count: dict[int, int] = {}

    def enter(self, key: int, limit: int) -> Slot | None:
        with self._lock:
            if self._count.get(key, 0) >= limit:
                return None
            self._count[key] = self._count.get(key, 0) + 1
            return Slot(self, key)

    def leave(self, key: int) -> None:
        with self._lock:
            self._count[key] = max(0, self._count.get(key, 0) - 1)


_DONE = object()


class ClosingStreamingResponse(StreamingResponse):
    """A streaming response that closes its body however it ends (Starlette leaves an abandoned
    body iterator to the garbage collector, which may hold it, and the model, for minutes)."""

    def __init__(self, *args: Any, on_close: Callable[[], None] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.on_close = on_close

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            with anyio.CancelScope(shield=True):
                aclose = getattr(self.body_iterator, "aclose", None)
                if aclose is not None:
                    await aclose()
                if self.on_close is not None:  # also when the body never started (the client left first)
                    await anyio.to_thread.run_sync(self.on_close)


async def closing(events: Iterator[str]) -> AsyncIterator[str]:
    """Serve a blocking event generator from worker threads and close it however the response
    ends: a client that hangs up mid-answer must not leave the model's stream (and the model)
    held by a generator nobody resumes."""
    try:
        while True:
            event = await anyio.to_thread.run_sync(next, events, _DONE)
            if event is _DONE:
                return
            yield event  # type: ignore[misc]
    finally:
        with anyio.CancelScope(shield=True):  # runs even when the response was cancelled
            await anyio.to_thread.run_sync(events.close)  # type: ignore[attr-defined]


def sse(obj: dict[str, Any]) -> str:
    return f"data: {json.dumps(obj, ensure_ascii=False)}\n\n"
