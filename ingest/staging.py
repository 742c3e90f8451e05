"""A file staged for ingest: checked, hashed, its parse started in the parser process and read
ahead in a thread, its chunks embedded in length-sorted batches while the parse goes on."""

from __future__ import annotations

import hashlib
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

import numpy as np

from ingest.catalog import DocumentStatus
from ingest.chunk import ChunkSettings, chunk_document
from ingest.embed import Embedder, Vectors
from ingest.errors import IngestError
from ingest.loaders import sniff
from ingest.results import FileResult, IngestLimits
from ingest.store import Store
from ingest.types import ChunkDraft, LoadedDocument, Page
from ingest.worker import ParseLimits, ParseStream, parse_in_worker

T = TypeVar("T")

# read as staging.EMBED_* where they are used (pipeline, finish), so one setting holds everywhere
EMBED_BATCH = 64  # chunks per encoder call
EMBED_GROUP = 1024  # chunks sorted by length together (a big file's share, or small files' together)


@dataclass
class Staged:
    """A file checked, with its parse under way in the parser process; what the parse has
    handed over so far is in `doc` and `drafts`."""

    data: bytes
    name: str
    label: str
    sha: str
    info: ParseStream
    pages: ReadAhead[tuple[list[Page], list[ChunkDraft]]]
    doc: LoadedDocument = field(init=False)
    drafts: list[ChunkDraft] = field(default_factory=list)
    error: Exception | None = None  # the parse failed (kept by `drained`, raised by `take`)

    def __post_init__(self) -> None:
        self.doc = LoadedDocument(self.name, self.info.format, [])

    def take(self, wait: bool = False) -> int:
        """Move the page batches the parse has ready into doc and drafts; with `wait`, at least one
        unless the parse has ended. Returns how many batches; raises the parse's failure."""
        if self.error is not None:
            raise self.error
        ready = self.pages.ready(wait=wait)
        for batch, chunks in ready:
            self.doc.pages.extend(batch)
            self.drafts.extend(chunks)
        self.doc.format = self.info.format
        return len(ready)

    def drained(self) -> bool:
        """Whether the parse has finished; if so everything it read is in doc and drafts (or its
        failure in `error`). Only for a file nobody is embedding yet."""
        if self.error is None and not self.pages.exhausted:
            if not self.pages.finished:
                return False
            try:
                while self.take():
                    pass
            except Exception as exc:
                self.error = exc
        return True


def stage_file(
    data: bytes,
    name: str,
    collection: str,
    store: Store,
    embedder: Embedder,
    chunking: ChunkSettings | None,
    limits: IngestLimits,
    label: str | None,
) -> Staged | FileResult:
    """An unchanged file's result, or the file with its parse started; IngestError (recorded as a
    failed version) for a file refused before parsing."""
    path = Path(label or name)
    check_size(len(data), name, limits)
    sha = hashlib.sha256(data).hexdigest()
    known = store.find(collection, sha)
    if known is not None and known.status == DocumentStatus.READY and known.name == name:
        store.drop_failed_versions(collection, name, sha)  # an interrupted replacement is moot now
        return FileResult(str(path), "unchanged", known.chunks, known.pages, known.warnings, name=name)
    parse = ParseLimits(
        limits.parse_timeout_s,
        limits.parse_memory_mb,
        limits.max_pages,
        limits.hidden_text != "keep",
        limits.password,
        limits.ocr,
    )
    try:
        sniff(data, name)  # an empty or unsupported file is refused before a parser process is started
        info, batches = parse_in_worker(data, name, parse)
    except IngestError as exc:
        store.mark_failed(collection, name=name, sha256=sha, fmt="unknown", size=len(data), error=str(exc))
        raise

    def chunked() -> Iterator[tuple[list[Page], list[ChunkDraft]]]:
        # Chunking (0.6 s of 11.4 s for three R manuals, profiled) runs in the read-ahead thread,
        # beside the encoder rather than between its batches.
        for batch in batches:
            loaded = LoadedDocument(name, info.format, batch)
            yield batch, chunk_document(loaded, embedder.count_tokens, embedder.max_tokens, chunking)

    return Staged(data, name, str(path), sha, info, ReadAhead(chunked()))


def embed_sorted(
    drafts: list[ChunkDraft],
    embedder: Embedder,
    step: int,
    advance: Callable[[], None],
    notify: Callable[..., None],
    pages: int,
) -> Vectors:
    """The drafts' vectors, embedded `step` at a time longest first; `advance` before each call."""
    order = sorted(range(len(drafts)), key=lambda i: -drafts[i].n_tokens)
    vectors = np.empty((len(drafts), embedder.dim), dtype=np.float32)
    for at in range(0, len(order), step):
        advance()
        picked = order[at : at + step]
        vectors[picked] = embedder.embed([drafts[i].text for i in picked])
        notify("embedding", at + len(picked), pages, pages_total=pages, drafted=len(drafts))
    return vectors


def check_text(staged: Staged) -> None:
    if not staged.drafts:
        raise IngestError(f"{staged.name}: no text to index")


def check_size(size: int, name: str, limits: IngestLimits) -> None:
    if size > limits.max_file_bytes:
        raise IngestError(
            f"{name}: file is {size / 2**20:,.1f} MB; the limit is {limits.max_file_bytes / 2**20:,.0f} MB"
        )


def embed_staged(
    staged: Staged, embedder: Embedder, notify: Callable[..., None], advance: Callable[[], None]
) -> Vectors:
    """Pages stream in from the parser process; a thread drains it as fast as it parses (it never
    waits for the encoder) and chunks them, and this thread embeds what has arrived, leaving the
    parser a core while it runs. Parsing overlaps embedding.

    Chunks are embedded in groups of up to EMBED_GROUP sorted by length, so each batch of
    EMBED_BATCH pads to a length close to its own texts' (measured on the R manuals: batches in
    document order pad to 1.26x the tokens the texts have; groups of 1024 sorted, 1.04x)."""
    pages, drafts = staged.pages, staged.drafts
    share = getattr(embedder, "share_cpu", None)
    parts: list[Vectors] = []
    embedded = 0

    def take_pages() -> None:
        # everything the parser has ready; wait for more only while there is too little to embed
        while not pages.exhausted and staged.take(wait=len(drafts) - embedded < EMBED_BATCH):
            progress("embedding" if embedded else "reading", 0, 0)  # a slow page (a scan) shows at once
        advance()

    def before() -> None:
        advance()  # once this file's parse has finished, the next files' start
        if share is not None:
            # a core for this file's parser only: the next files' parses (staged ahead) run beside
            # all of torch's threads, for small files they run nearly all the time (a folder of 46
            # HTML pages took 29-31 s giving them a core, 21-24 s not)
            share(not pages.finished)

    def progress(stage: str, n: int, _pages: int, **_totals: int) -> None:
        notify(stage, embedded + n, len(staged.doc.pages), pages_total=staged.info.pages_total, drafted=len(drafts))

    try:
        while True:
            take_pages()
            group = drafts[embedded : embedded + EMBED_GROUP]
            if not group:
                break
            vectors = embed_sorted(group, embedder, EMBED_BATCH, before, progress, 0)
            parts.append(vectors)
            embedded += len(group)
    finally:
        pages.close()
        if share is not None:
            share(False)
    return np.vstack(parts) if parts else np.empty((0, embedder.dim), dtype=np.float32)


class ReadAhead(Generic[T]):
    """Iterate `source` in a thread, as fast as it yields, and hand its items over in order;
    an exception it raises comes out of `ready` (or the iterator). `finished` once the source is
    done; `exhausted` once its last item has been handed over."""

    _END = object()

    def __init__(self, source: Iterator[T]) -> None:
        self._queue: queue.Queue[Any] = queue.Queue()
        self._stop = threading.Event()
        self._done = threading.Event()
        self.exhausted = False
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(source,), daemon=True, name="archivist-read-ahead")
        self._thread.start()

    @property
    def finished(self) -> bool:
        return self._done.is_set()

    def _run(self, source: Iterator[T]) -> None:
        try:
            for item in source:
                self._queue.put((True, item))
                if self._stop.is_set():
                    break
            self._queue.put((True, self._END))
        except BaseException as exc:  # handed to the consumer
            self._queue.put((False, exc))
        finally:
            close = getattr(source, "close", None)
            if close is not None:
                close()  # ends the parser process when the consumer stopped early
            self._done.set()

    def ready(self, wait: bool = False) -> list[T]:
        """The items read and not yet handed over, in order; with `wait`, at least one unless the
        source is exhausted (then [])."""
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        out: list[T] = []
        while not self.exhausted:
            try:
                ok, item = self._queue.get(block=wait and not out)
            except queue.Empty:
                break
            if not ok:
                self.exhausted = True
                if out:  # hand over what came before it first
                    self._error = item
                    break
                raise item
            if item is self._END:
                self.exhausted = True
                break
            out.append(item)
        return out

    def __iter__(self) -> Iterator[T]:
        while items := self.ready(wait=True):
            yield from items

    def close(self) -> None:
        """Stop reading (the source is closed by the thread) and wait for the thread."""
        self._stop.set()
        self._thread.join(timeout=10)
