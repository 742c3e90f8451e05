"""Ingest files into a collection: load, chunk, embed, store; one bad file never stops the batch."""

from __future__ import annotations

import hashlib
import logging
import queue
import shutil
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar

import numpy as np

from ingest.catalog import DocumentStatus
from ingest.chunk import ChunkSettings, chunk_document
from ingest.embed import Embedder, Vectors
from ingest.errors import IngestError, UnsupportedFileError
from ingest.loaders import SUPPORTED_SUFFIXES, sniff
from ingest.ocr import OcrSettings
from ingest.store import Store, check_collection_name
from ingest.types import ChunkDraft, LoadedDocument, Page
from ingest.worker import ParseLimits, ParseStream, parse_in_worker
from runtime.errors import ArchivistError

T = TypeVar("T")

EMBED_BATCH = 64
EMBED_GROUP = 1024
STAGE_FILES = 64  # files staged ahead at most (unchanged ones cost only their hash)

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
    ocr: OcrSettings = field(default_factory=OcrSettings)  # how scanned pages and image files are read


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
    unsupported: bool = False  # failed for a file type Archivist does not read


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
    chunks: int = 0  # embedded so far (with done: the file's chunks)
    pages: int = 0  # read so far
    result: FileResult | None = None  # with done, failed and unchanged: what happened to the file
    pages_total: int | None = None  # the pages to expect, where known before reading
    drafted: int = 0  # chunks cut from the pages read so far


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
    after each was parsed and embedded). While one file is embedded the parser reads the next
    ones (one parse at a time, up to EMBED_GROUP chunks ahead), so the encoder never waits for a
    file's first pages; small files already parsed are embedded together, sorted by length
    across files, since a file of a few dozen chunks pads its batches more and ends in a part
    batch (measured on 46 Python HTML pages: 8.8% more tokens per file than together)."""
    check_collection_name(collection)  # before a folder is walked
    return _ingest_disk(named_files(paths), collection, store, embedder, chunking, limits, progress)


def ingest_named(
    files: Sequence[tuple[str, Path]],
    collection: str,
    store: Store,
    embedder: Embedder,
    *,
    limits: IngestLimits | None = None,
    progress: ProgressCallback | None = None,
) -> IngestReport:
    """Ingest files on disk under the document names given ((name, path) pairs: a sync's), as
    `ingest_paths` does; a file gone by the time it is read fails alone."""
    return _ingest_disk([(p, name) for name, p in files], collection, store, embedder, None, limits, progress)


def _ingest_disk(
    files: Sequence[tuple[Path, str]],
    collection: str,
    store: Store,
    embedder: Embedder,
    chunking: ChunkSettings | None,
    limits: IngestLimits | None,
    progress: ProgressCallback | None,
) -> IngestReport:
    """Ingest (file, document name) pairs, each file read only when its turn comes."""
    check_collection_name(collection)
    limits = limits or IngestLimits()
    named: dict[str, Path] = {}

    def reader(path: Path, name: str) -> Callable[[], bytes]:
        def read() -> bytes:
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
            return path.read_bytes()

        return read

    sources = [_Source(str(path), name, reader(path, name), path.name) for path, name in files]
    with store.writer():
        return _ingest(sources, collection, store, embedder, chunking, limits, progress)


def ingest_files(
    files: Iterable[tuple[str, bytes]],
    collection: str,
    store: Store,
    embedder: Embedder,
    *,
    chunking: ChunkSettings | None = None,
    limits: IngestLimits | None = None,
    progress: ProgressCallback | None = None,
) -> IngestReport:
    """Ingest uploaded files ((document name, content) pairs) into `collection`, as `ingest_paths`
    does files on disk: the next files parsed ahead, small ones embedded together. Call inside
    `store.writer()`; one bad file fails alone."""
    check_collection_name(collection)
    sources = [_Source(name, name, _content(data), name) for name, data in files]
    return _ingest(sources, collection, store, embedder, chunking, limits or IngestLimits(), progress)


def _content(data: bytes) -> Callable[[], bytes]:
    return lambda: data


@dataclass(frozen=True)
class _Source:
    label: str  # what its result names: the path given, or the upload's name
    name: str  # the document name
    read: Callable[[], bytes]  # its content, or IngestError for a file refused before reading
    short: str  # how an error message names it: the file name, or the upload's name


def _ingest(
    files: list[_Source],
    collection: str,
    store: Store,
    embedder: Embedder,
    chunking: ChunkSettings | None,
    limits: IngestLimits,
    progress: ProgressCallback | None,
) -> IngestReport:
    """The engine of `ingest_paths` and `ingest_files`, inside the store's writer: files staged
    ahead (checked, hashed, parse started), grouped when small and parsed, stored and reported in
    order."""
    report = IngestReport()
    staged: dict[int, _Staged | FileResult | Exception] = {}  # by file index; an Exception is its failure
    parsing: _Staged | None = None  # the parse started last (the parser process runs one at a time)
    turn = 0  # the first file not yet reported
    ahead = -1  # the last file staged

    def stage(j: int) -> None:
        """Check file j and start its parse; what fails is kept for its turn (files are reported in order)."""
        nonlocal parsing
        if j >= len(files) or j in staged:
            return
        src = files[j]
        try:
            got = _stage(src.read(), src.name, collection, store, embedder, chunking, limits, src.label)
            staged[j] = got
            if isinstance(got, _Staged):
                parsing = got
        except Exception as exc:  # reported at its turn, like any failure of that file
            staged[j] = exc

    def advance() -> None:
        """Stage the next files while the parser is free and fewer than EMBED_GROUP chunks wait."""
        nonlocal ahead
        if parsing is not None and not parsing.pages.finished:
            return  # the parser is busy (with the file being embedded, or one staged ahead)
        waiting = sum(len(s.drafts) for s in staged.values() if isinstance(s, _Staged) and s.drained())
        while waiting < EMBED_GROUP and ahead + 1 < min(len(files), turn + STAGE_FILES):
            ahead += 1
            stage(ahead)
            got = staged[ahead]
            if isinstance(got, _Staged):
                if not got.drained():
                    return
                waiting += len(got.drafts)

    def together(i: int) -> list[int]:
        """File i and the files after it whose parse has finished, while their chunks fit in a group."""
        first = staged[i]
        if not isinstance(first, _Staged) or not first.drained() or len(first.drafts) >= EMBED_GROUP:
            return [i]
        out, chunks = [i], len(first.drafts)
        while (k := out[-1] + 1) in staged:
            got = staged[k]
            if isinstance(got, _Staged):
                if not got.drained() or chunks + len(got.drafts) > EMBED_GROUP:
                    break
                chunks += len(got.drafts)
            out.append(k)
        return out

    def finish(picked: list[int], notify: Callable[..., None]) -> list[FileResult | Exception]:
        got = [staged.pop(k) for k in picked]
        if len(picked) == 1:
            one = got[0]
            if isinstance(one, (FileResult, Exception)):
                return [one]
            try:
                return [_finish(one, collection, store, embedder, notify, advance)]
            except Exception as exc:
                return [exc]
        return _finish_together(got, collection, store, embedder, notify, advance)

    try:
        while turn < len(files):
            notify = _notifier(progress, turn, len(files), files[turn].name)
            notify("reading")
            stage(turn)
            ahead = max(ahead, turn)
            picked = together(turn)
            for k in picked[1:]:
                _notifier(progress, k, len(files), files[k].name)("reading")
            outcomes = finish(picked, notify)
            for k, got in zip(picked, outcomes, strict=True):
                label, name = files[k].label, files[k].name
                if isinstance(got, ArchivistError):
                    result = FileResult(
                        label, "failed", error=str(got), unsupported=isinstance(got, UnsupportedFileError)
                    )
                elif isinstance(got, Exception):  # a parser bug must not stop the batch
                    result = FileResult(label, "failed", error=f"{files[k].short}: {type(got).__name__}: {got}")
                else:
                    result = got
                done = "done" if result.status not in ("failed", "unchanged") else result.status
                if progress is not None:
                    progress(Progress(k, len(files), name, done, result.chunks, result.pages or 0, result))
                if result.status == "failed":
                    log.warning("ingest of %s into %s failed: %s", name, collection, result.error)
                report.results.append(result)
            turn = picked[-1] + 1
    finally:
        for s in staged.values():  # stopped early (an interrupt): end the parses started ahead
            if isinstance(s, _Staged):
                s.pages.close()
    return report


def _notifier(progress: ProgressCallback | None, i: int, n: int, name: str) -> Callable[..., None]:
    def notify(stage: str, chunks: int = 0, pages: int = 0, pages_total: int | None = None, drafted: int = 0) -> None:
        if progress is not None:
            progress(Progress(i, n, name, stage, chunks, pages, pages_total=pages_total, drafted=drafted))

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

    return _Staged(data, name, str(path), sha, info, ReadAhead(chunked()))


def _finish(
    staged: _Staged,
    collection: str,
    store: Store,
    embedder: Embedder,
    notify: Callable[..., None],
    advance: Callable[[], None] | None = None,
) -> FileResult:
    """Embed and store a staged file; `advance` is called between batches (to stage what follows)."""
    try:
        vectors = _embed(staged, embedder, notify, advance or (lambda: None))
        _check_text(staged)
    except IngestError as exc:
        _mark_failed(staged, collection, store, exc)
        raise
    return _store(staged, collection, store, vectors)


def _finish_together(
    files: list[_Staged | FileResult | Exception],
    collection: str,
    store: Store,
    embedder: Embedder,
    notify: Callable[..., None],
    advance: Callable[[], None],
) -> list[FileResult | Exception]:
    """Embed several parsed files' chunks together (sorted by length across them), then store each
    file in turn; what failed before (or fails its own checks) keeps its place in the results."""
    out = {k: f for k, f in enumerate(files) if not isinstance(f, _Staged)}
    ready: list[tuple[int, _Staged]] = []
    for k, f in enumerate(files):
        if isinstance(f, _Staged):
            try:
                f.take()  # raises the parse's failure
                _check_text(f)
                ready.append((k, f))
            except IngestError as exc:
                _mark_failed(f, collection, store, exc)
                out[k] = exc
            except Exception as exc:
                out[k] = exc
    # one encoder batch per call: the parser is given the next file after each (small files each
    # take about one batch to embed, so staging one file per call of EMBED_BATCH falls behind)
    step = min(EMBED_BATCH, getattr(embedder, "batch_size", EMBED_BATCH))
    pages = sum(len(f.doc.pages) for _, f in ready)
    if not ready:
        return [out[k] for k in range(len(files))]
    try:
        vectors = _embed_sorted([d for _, f in ready for d in f.drafts], embedder, step, advance, notify, pages)
        parts = np.split(vectors, np.cumsum([len(f.drafts) for _, f in ready])[:-1])
    except Exception:  # the encoder failed on the group: each file alone, so only the one it fails on fails
        parts = []
        for k, f in ready:
            try:
                parts.append(_embed_sorted(f.drafts, embedder, step, advance, notify, len(f.doc.pages)))
            except IngestError as exc:
                _mark_failed(f, collection, store, exc)
                out[k] = exc
            except Exception as exc:
                out[k] = exc
        ready = [(k, f) for k, f in ready if k not in out]
    for (k, f), vectors in zip(ready, parts, strict=True):
        try:
            out[k] = _store(f, collection, store, vectors)
        except Exception as exc:
            out[k] = exc
    return [out[k] for k in range(len(files))]


def _embed_sorted(
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


def _check_text(staged: _Staged) -> None:
    if not staged.drafts:
        raise IngestError(f"{staged.name}: no text to index")


def _mark_failed(staged: _Staged, collection: str, store: Store, exc: IngestError) -> None:
    store.mark_failed(
        collection, name=staged.name, sha256=staged.sha, fmt="unknown", size=len(staged.data), error=str(exc)
    )


def _store(staged: _Staged, collection: str, store: Store, vectors: Vectors) -> FileResult:
    name, data, doc = staged.name, staged.data, staged.doc
    doc.warnings = list(staged.info.warnings or [])
    _keep_original(store.home, data, staged.sha, Path(name).suffix)
    store.share_original(staged.sha, _safe_suffix(Path(name).suffix), data)
    # PDFs and pictures have pages (a TIFF's frames; one that could not be read still counts)
    pages = (
        max((p.number or 0 for p in doc.pages), default=0) or None if doc.format in ("pdf", "image", "audio") else None
    )
    _, replaced = store.add_document(
        collection,
        name=name,
        sha256=staged.sha,
        fmt=doc.format,
        size=len(data),
        pages=pages,
        warnings=doc.warnings,
        chunks=staged.drafts,
        vectors=vectors,
        page_info=_page_info(doc.pages),
    )
    status: FileStatus = "replaced" if replaced else "added"
    return FileResult(staged.label, status, len(staged.drafts), pages, doc.warnings, name=name)


def _page_info(pages: Sequence[Page]) -> dict[int, dict[str, float]]:
    """What pages are beyond text: read from a picture (the OCR confidence), a stretch of a recording."""
    info: dict[int, dict[str, float]] = {}
    for p in pages:
        if p.number is None:
            continue
        if p.ocr is not None:
            info.setdefault(p.number, {})["ocr"] = p.ocr
        if p.seconds is not None:
            info.setdefault(p.number, {}).update(start=p.seconds[0], end=p.seconds[1])
    return info


def _check_size(size: int, name: str, limits: IngestLimits) -> None:
    if size > limits.max_file_bytes:
        raise IngestError(
            f"{name}: file is {size / 2**20:,.1f} MB; the limit is {limits.max_file_bytes / 2**20:,.0f} MB"
        )


def _embed(staged: _Staged, embedder: Embedder, notify: Callable[..., None], advance: Callable[[], None]) -> Vectors:
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
            vectors = _embed_sorted(group, embedder, EMBED_BATCH, before, progress, 0)
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
