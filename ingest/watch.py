"""Following folders as they change: `archivist watch --collection C`.

The collection's sources (`ingest.sync`) are synced once, then again whenever something under them
changes. A change is noticed by the operating system's file events (the `watchdog` package), or by
looking every `poll_s` seconds where events cannot be had (network shares, some containers). A file
is read only once it has stopped changing: its size and modification time the same for `settle_s`
seconds, so a file still being copied or written in pieces is not ingested half-written. One bad
file fails alone (the sync's ingest); every sync's result is logged and kept with the collection.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from ingest.embed import Embedder
from ingest.pipeline import IngestLimits
from ingest.store import Store
from ingest.store_sources import SourceSpec
from ingest.sync import SyncResult, source_files, sync

log = logging.getLogger("archivist.watch")

Snapshot = dict[Path, tuple[int, int]]  # file -> (size, mtime in ns)


def snapshot(sources: Sequence[SourceSpec]) -> Snapshot:
    out: Snapshot = {}
    for path, _name in source_files(sources):
        try:
            st = path.stat()
        except OSError:
            continue
        out[path] = (st.st_size, st.st_mtime_ns)
    return out


class _Events:
    """Sets `changed` on any file event under the folders (watchdog), when it can be started."""

    def __init__(self, sources: Sequence[SourceSpec]) -> None:
        self.changed = threading.Event()
        self.observer = None
        try:
            from watchdog.events import FileSystemEventHandler
            from watchdog.observers import Observer
        except ImportError:
            return
        events = self

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event: object) -> None:
                events.changed.set()

        try:
            observer = Observer()
            for spec in sources:
                p = Path(spec.path).expanduser()
                folder = p if p.is_dir() else p.parent
                if folder.is_dir():
                    observer.schedule(Handler(), str(folder), recursive=p.is_dir())
            observer.start()
            self.observer = observer
        except OSError as exc:  # no inotify here (limits, a network share): polling serves
            log.info("file events unavailable (%s); looking every few seconds", exc)

    def stop(self) -> None:
        if self.observer is not None:
            self.observer.stop()
            self.observer.join(timeout=5)


def watch(
    store: Store,
    embedder: Embedder,
    collection: str,
    sources: Sequence[SourceSpec],
    *,
    stop: threading.Event | None = None,
    poll_s: float = 5.0,
    settle_s: float = 2.0,
    on_sync: Callable[[SyncResult], None] | None = None,
    said: Callable[[str], None] | None = None,
    limits: IngestLimits | None = None,
) -> None:
    """Keep `collection` mirroring `sources` until `stop` is set (or forever)."""
    stop = stop or threading.Event()
    events = _Events(sources)
    seen: Snapshot | None = None  # the settled files the last sync saw
    last: Snapshot = {}
    steady_since: dict[Path, float] = {}  # monotonic time each file last changed
    try:
        while not stop.is_set():
            now_snap = snapshot(sources)
            now, wall = time.monotonic(), time.time_ns()
            for p, sig in now_snap.items():
                if p not in last:  # first seen: it last changed at its modification time
                    steady_since[p] = now - max(0.0, (wall - sig[1]) / 1e9)
                elif last[p] != sig:
                    steady_since[p] = now
            last = now_snap
            hold = {p for p in now_snap if now - steady_since[p] < settle_s}
            settled = {p: sig for p, sig in now_snap.items() if p not in hold}
            if settled != seen:
                result = sync(store, embedder, collection, sources, hold=hold, said=said, limits=limits)
                seen = settled
                log.info("synced %s: %s", collection, result.summary())
                if on_sync is not None:
                    on_sync(result)
            if events.changed.wait(min(poll_s, settle_s / 2) if hold else poll_s):
                events.changed.clear()
                stop.wait(0.05)  # let a burst of events land together
    finally:
        events.stop()
