"""Ingest files into a collection: load, chunk, embed, store; one bad file never stops the batch."""

from __future__ import annotations

import functools
import hashlib
import logging
import queue
import shutil
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar

import numpy as np

from ingest.catalog import DocumentStatus
from ingest.chunk import ChunkSettings, chunk_document
from ingest.embed import Embedder, Vectors
from ingest.errors import IngestError
from ingest.loaders import SUPPORTED_SUFFIXES, sniff
from ingest.store import Store, check_collection_name
from ingest.types import ChunkDraft, LoadedDocument, Page
from ingest.worker import ParseLimits, ParseStream, parse_in_worker
from runtime.errors import ArchivistError

T = TypeVar("T")

EMBED_BATCH = 64
EMBED_GROUP = 1024

log = logging.getLogger("archivist.ingest")


@dataclass(frozen=True)
class IngestLimits:
    """Limits on one file."""

    max_file_bytes: int = 200 * 1024 * 1024
    max_pages: int = 5000
    parse_timeout_s: float = 600.0
    parse_memory_mb: int = 2048
    password: str | None = None
    # policy for text a reader cannot see: drop it from the chunks (and warn), or keep it (and warn)
    hidden_text: str = "drop"


FileStatus = Literal["added", "replaced", "unchanged", "failed"]  # what one ingest did to one file


@dataclass
class FileResult:
    """What happened to one file."""

    path: str
    status: FileStatus
    chunks: int = 0
    pages: int | None = None
    warnings: list[str] = field(default_factory=list)
    error: str | None = None
    name: str = ""  # the document name it was stored under


@dataclass
class IngestReport:
    """What happened to a batch."""

    results: list[FileResult] = field(default_factory=list)

    @property
    def failed(self) -> list[FileResult]:
        return [r for r in self.results if r.status == "failed"]


@dataclass(frozen=True)
class Progress:
    """One step of an ingest, for progress bars."""

    file_index: int
    files: int
    name: str
    stage: str  # reading | embedding | done | failed | unchanged
    chunks: int = 0
    pages: int = 0


ProgressCallback = Callable[[Progress], None]


def named_files(paths: Iterable[str | Path]) -> list[tuple[Path, str]]:
    """(path, document name) of the files named directly (named by their file name) and of the
    supported files found under named folders (sorted; named by their path from the folder's
    parent, e.g. `docs/howto/index.html`, so files of the same name in different folders stay
    separate documents)."""
    out: list[tuple[Path, str]] = []
    for p in map(Path, paths):
        if p.is_dir():
            top = p.resolve()
            found = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in SUPPORTED_SUFFIXES)
            out.extend((f, (Path(top.name) / f.relative_to(p)).as_posix().lstrip("/")) for f in found)
        else:
            out.append((p, p.name))
    return out


def ingest_paths(
    paths: Iterable[str | Path],
    collection: str,
    store: Store,
    embedder: Embedder,
    *,
    chunking: ChunkSettings | None = None,
    limits: IngestLimits | None = None,
    progress: ProgressCallback | None = None,
) -> IngestReport:
    """Ingest every file (folders are searched for supported files) into `collection`.

    A collection name the store refuses is an error before any file is read (not one per file
    after each was parsed and embedded). Once a file's parse has finished, the next file is read
    and its parse started while this one is still embedded, so the encoder never waits for a
    file's first pages (the parser process is free by then; one runs at a time)."""
    check_collection_name(collection)
    limits = limits or IngestLimits()
    files = named_files(paths)
    report = IngestReport()
    named: dict[str, Path] = {}
    staged: dict[int, _Staged | FileResult | Exception] = {}  # by file index; an Exception is its failure

    def stage(j: int) -> None:
        """Check file j and start its parse; what fails is kept for its turn (files are reported in order)."""
        if j >= len(files) or j in staged:
            return
        path, name = files[j]
        try:
            first = named.setdefault(name, path)
            if first != path:
                raise IngestError(
                    f"{path}: {first} in this batch has the same document name {name!r}; ingest one of "
                    "them into another collection, or both from a folder that holds them both"
                )
            if not path.exists():
                raise IngestError(f"{path}: no such file")
            if not path.is_file():
                raise IngestError(f"{path}: not a regular file")
            _check_size(path.stat().st_size, path.name, limits)  # before reading it into memory
            staged[j] = _stage(path.read_bytes(), name, collection, store, embedder, chunking, limits, str(path))
        except Exception as exc:  # reported at its turn, like any failure of that file
            staged[j] = exc

    def stage_ahead(j: int) -> None:
        """Stage the files from j on until one's parse is under way (those before it failed or are unchanged)."""
        while j < len(files):
            stage(j)
            if isinstance(staged[j], _Staged):
                return
            j += 1

    with store.writer():
        try:
            for i, (path, name) in enumerate(files):
                notify = _notifier(progress, i, len(files), name)
                notify("reading")
                try:
                    stage(i)
                    got = staged.pop(i)
                    if isinstance(got, Exception):
                        raise got
                    if isinstance(got, FileResult):
                        result = got
                    else:
                        result = _finish(
                            got,
                            collection,
                            store,
                            embedder,
                            notify,
                            functools.partial(stage_ahead, i + 1),
                        )
                except ArchivistError as exc:
                    result = FileResult(str(path), "failed", error=str(exc))
                except Exception as exc:  # a parser bug must not stop the batch
                    result = FileResult(str(path), "failed", error=f"{path.name}: {type(exc).__name__}: {exc}")
                notify(result.status if result.status in ("failed", "unchanged") else "done", result.chunks)
                if result.status == "failed":
                    log.warning("ingest of %s into %s failed: %s", name, collection, result.error)
                report.results.append(result)
        finally:
            for s in staged.values():  # stopped early (an interrupt): end the parse started ahead
                if isinstance(s, _Staged):
                    s.pages.close()
    return report


def _notifier(progress: ProgressCallback | None, i: int, n: int, name: str) -> Callable[..., None]:
    def notify(stage: str, chunks: int = 0, pages: int = 0) -> None:
        if progress is not None:
            progress(Progress(i, n, name, stage, chunks, pages))

    return notify


def ingest_bytes(
    data: bytes,
    name: str,
    collection: str,
    store: Store,
    embedder: Embedder,
    *,
    chunking: ChunkSettings | None = None,
    limits: IngestLimits | None = None,
    notify: Callable[..., None] | None = None,
    label: str | None = None,
) -> FileResult:
    """Ingest one file's content under the document name `name` (a label only, never a path).

    Call inside `store.writer()`; raises IngestError for a bad file (recorded as failed)."""
    check_collection_name(collection)  # before the file is parsed and embedded
    staged = _stage(data, name, collection, store, embedder, chunking, limits or IngestLimits(), label)
    if isinstance(staged, FileResult):
        return staged
    return _finish(staged, collection, store, embedder, notify or (lambda *_a, **_k: None))


@dataclass
class _Staged:
    """A file checked, with its parse under way in the parser process."""

    data: bytes
    name: str
    label: str
    sha: str
    info: ParseStream
    pages: ReadAhead[tuple[list[Page], list[ChunkDraft]]]


def _stage(
    data: bytes,
    name: str,
    collection: str,
    store: Store,
    embedder: Embedder,
    chunking: ChunkSettings | None,
    limits: IngestLimits,
    label: str | None,
) -> _Staged | FileResult:
    """An unchanged file's result, or the file with its parse started; IngestError (recorded as a
    failed version) for a file refused before parsing."""
    path = Path(label or name)
    _check_size(len(data), name, limits)
    sha = hashlib.sha256(data).hexdigest()
    known = store.find(collection, sha)
    if known is not None and known.status == DocumentStatus.READY and known.name == name:
        store.drop_failed_versions(collection, name, sha)  # an interrupted replacement is moot now
        return FileResult(str(path), "unchanged", known.chunks, known.pages, known.warnings, name=name)
    parse = ParseLimits(
        limits.parse_timeout_s, limits.parse_memory_mb, limits.max_pages, limits.hidden_text != "keep", limits.password
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

    return _Staged(data, name, str(path), sha, info, ReadAhead(chunked()))


def _finish(
    staged: _Staged,
    collection: str,
    store: Store,
    embedder: Embedder,
    notify: Callable[..., None],
    parsed: Callable[[], None] | None = None,
) -> FileResult:
    """Embed and store a staged file; `parsed` is called once its parse has finished."""
    name, data = staged.name, staged.data
    try:
        doc, drafts, vectors = _embed(staged, embedder, notify, parsed)
    except IngestError as exc:
        store.mark_failed(collection, name=name, sha256=staged.sha, fmt="unknown", size=len(data), error=str(exc))
        raise
    _keep_original(store.home, data, staged.sha, Path(name).suffix)
    store.share_original(staged.sha, _safe_suffix(Path(name).suffix), data)
    pages = len(doc.pages) if doc.format == "pdf" else None
    _, replaced = store.add_document(
        collection,
        name=name,
        sha256=staged.sha,
        fmt=doc.format,
        size=len(data),
        pages=pages,
        warnings=doc.warnings,
        chunks=drafts,
        vectors=vectors,
    )
    status: FileStatus = "replaced" if replaced else "added"
    return FileResult(staged.label, status, len(drafts), pages, doc.warnings, name=name)


def _check_size(size: int, name: str, limits: IngestLimits) -> None:
    if size > limits.max_file_bytes:
        raise IngestError(
            f"{name}: file is {size / 2**20:,.1f} MB; the limit is {limits.max_file_bytes / 2**20:,.0f} MB"
        )


def _embed(
    staged: _Staged,
    embedder: Embedder,
    notify: Callable[..., None],
    parsed: Callable[[], None] | None,
) -> tuple[LoadedDocument, list[ChunkDraft], Vectors]:
    """Pages stream in from the parser process; a thread drains it as fast as it parses (it never
    waits for the encoder) and chunks them, and this thread embeds what has arrived, leaving the
    parser a core while it runs. Parsing overlaps embedding.

    Chunks are embedded in groups of up to EMBED_GROUP sorted by length, so each batch of
    EMBED_BATCH pads to a length close to its own texts' (measured on the R manuals: batches in
    document order pad to 1.26x the tokens the texts have; groups of 1024 sorted, 1.04x)."""
    name, info, pages = staged.name, staged.info, staged.pages
    share = getattr(embedder, "share_cpu", None)
    doc = LoadedDocument(name, info.format, [])
    drafts: list[ChunkDraft] = []
    parts: list[Vectors] = []
    embedded = 0

    def take_pages() -> None:
        # everything the parser has ready; wait for more only while there is too little to embed
        nonlocal parsed
        while not pages.exhausted:
            ready = pages.ready(wait=len(drafts) - embedded < EMBED_BATCH)
            if not ready:
                break
            for batch, chunks in ready:
                doc.pages.extend(batch)
                drafts.extend(chunks)
        if parsed is not None and pages.finished:
            start_next, parsed = parsed, None
            start_next()

    try:
        while True:
            take_pages()
            group = drafts[embedded : embedded + EMBED_GROUP]
            if not group:
                break
            order = sorted(range(len(group)), key=lambda i: -group[i].n_tokens)
            vectors = np.empty((len(group), embedder.dim), dtype=np.float32)
            for at in range(0, len(order), EMBED_BATCH):
                if parsed is not None and pages.finished:
                    take_pages()  # starts the next file's parse
                if share is not None:
                    # a core for this file's parser only: the next file's parse (staged ahead) runs
                    # beside all of torch's threads, for small files it runs nearly all the time
                    # (a folder of 46 HTML pages took 29-31 s giving it a core, 21-24 s not)
                    share(not pages.finished)
                picked = order[at : at + EMBED_BATCH]
                vectors[picked] = embedder.embed([group[i].text for i in picked])
                notify("embedding", embedded + at + len(picked), len(doc.pages))
            parts.append(vectors)
            embedded += len(group)
    finally:
        pages.close()
        if share is not None:
            share(False)
    doc.warnings = list(info.warnings or [])
    if not drafts:
        raise IngestError(f"{name}: no text to index")
    return doc, drafts, np.vstack(parts)


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


def _safe_suffix(suffix: str) -> str:
    """A file name's suffix as originals are stored under (a supported one, or none)."""
    return suffix.lower() if suffix.lower() in SUPPORTED_SUFFIXES else ""


def _keep_original(home: Path, data: bytes, sha: str, suffix: str) -> None:
    """Originals are stored by content hash, never by the name they came with."""
    target = home / "files" / f"{sha}{_safe_suffix(suffix)}"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".tmp")
        tmp.write_bytes(data)
        shutil.move(tmp, target)
