"""Ingest in the background of the app process: a job outlives the page that started it.

The Knowledge page submits the uploaded files and returns at once; a thread ingests them under
the workspace's writer lock (as `archivist ingest` does: the next files parsed ahead, small ones
embedded together; through the server database's queue, one by one). Leaving the page, opening
another tab or reloading does not touch the job, and the page shows its progress again when you
come back. Each file is noted
in the store's journal before its work starts, so if the app itself stops mid-ingest the next
writer records the file as failed with the reason ("interrupted"): it never vanishes.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ingest.jobs import JobQueue, worker_name
from ingest.pipeline import FileResult, IngestReport, Progress, ProgressCallback
from ingest.store import Store, check_collection_name
from runtime.errors import ArchivistError

KEEP_FINISHED = 20  # finished jobs listed per process
UNKNOWN_READ = {"reading": 0.2, "embedding": 0.5}  # share read when a file's page count is not known ahead


class IngestCancelled(Exception):
    """Cancel was pressed: the job stops at its next step; what was stored stays."""


@dataclass
class FileProgress:
    name: str
    size: int
    stage: str = "waiting"  # waiting | reading | embedding | added | replaced | unchanged | failed | cancelled
    chunks: int = 0  # embedded so far (when done: the document's chunks)
    pages: int = 0  # read so far
    error: str = ""
    warnings: list[str] = field(default_factory=list)
    pages_total: int | None = None  # the pages to expect, where the format says so before reading
    drafted: int = 0  # chunks cut from the pages read so far
    started: float | None = None  # when its reading began (time.time)

    @property
    def done(self) -> bool:
        return self.stage in ("added", "replaced", "unchanged", "failed", "cancelled")

    @property
    def fraction(self) -> float:
        """The share of the file's work done: half for its pages read, half for its chunks embedded
        (out of the chunks its pages read so far promise for the whole file)."""
        if self.done:
            return 1.0
        if self.stage == "waiting":
            return 0.0
        read = min(1.0, self.pages / self.pages_total) if self.pages_total else UNKNOWN_READ.get(self.stage, 0.5)
        expected = self.drafted / read if read > 0 and self.drafted else 0.0
        embedded = min(1.0, self.chunks / expected) if expected else 0.0
        return min(0.99, 0.5 * read + 0.5 * embedded)

    def seconds_left(self, now: float | None = None) -> float | None:
        """The time left at the pace so far; None until there is a pace to go by."""
        f = self.fraction
        if self.done or self.started is None or f < 0.02:
            return None
        spent = (now or time.time()) - self.started
        return spent * (1 - f) / f if spent >= 1.0 else None

    def step(self, stage: str, chunks: int, pages: int, pages_total: int | None = None, drafted: int = 0) -> None:
        """A step of reading or embedding, as the pipeline reports it."""
        if self.started is None:
            self.started = time.time()
        self.stage, self.chunks, self.pages = stage, chunks, pages
        self.pages_total = pages_total if pages_total is not None else self.pages_total
        self.drafted = max(self.drafted, drafted)

    def take_result(self, r: FileResult) -> None:
        """Take the file's result: its stage, counts and warnings."""
        self.stage, self.chunks, self.pages, self.warnings = r.status, r.chunks, r.pages or 0, r.warnings

    def text(self) -> str:
        if self.stage == "failed":
            return f"{self.name}: failed: {self.error}"
        if self.stage == "cancelled":
            return f"{self.name}: cancelled, nothing of it stored"
        if self.done:
            counts = f", {self.chunks:,} chunks" if self.chunks else ""
            pages = f" from {self.pages:,} pages" if self.pages and self.chunks else ""
            return f"{self.name}: {self.stage}{counts}{pages}"
        if self.stage == "waiting":
            return f"{self.name}: waiting (in the queue)"
        parts = [f"{self.name}: {self.stage}"]
        if self.pages:
            parts.append(
                f"page {self.pages:,} of {self.pages_total:,}" if self.pages_total else f"{self.pages:,} pages read"
            )
        if self.drafted:
            parts.append(f"{self.chunks:,} of {self.drafted:,} chunks embedded")
        left = self.seconds_left()
        if left is not None:
            parts.append(f"about {duration_text(left)} left")
        return ", ".join(parts)


def duration_text(seconds: float) -> str:
    if seconds < 60:
        return f"{max(1, round(seconds))} s"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60} min"


@dataclass
class IngestJob:
    id: str
    collection: str
    files: list[FileProgress]
    started: float = field(default_factory=time.time)
    finished: float | None = None
    error: str = ""  # the job as a whole failed (e.g. the store could not be opened)
    cancel: threading.Event = field(default_factory=threading.Event)  # set by Cancel: stop at the next step

    @property
    def running(self) -> bool:
        return self.finished is None

    def check(self) -> None:
        if self.cancel.is_set():
            raise IngestCancelled(f"the ingest into {self.collection} was cancelled")

    def seconds_left(self) -> float | None:
        """The job's time left: the running files' at their pace, the waiting ones' at the pace of
        the files so far (by size); None until there is a pace to go by."""
        now = time.time()
        active = [f for f in self.files if not f.done and f.stage != "waiting"]
        lefts = [f.seconds_left(now) for f in active]
        if not active or any(x is None for x in lefts):
            return None
        spent = now - self.started
        done_bytes = sum(f.size * (1.0 if f.done else f.fraction) for f in self.files)
        waiting = sum(f.size for f in self.files if f.stage == "waiting")
        pace = spent / done_bytes if done_bytes else 0.0
        return max(x or 0.0 for x in lefts) + waiting * pace


AddDocument = Callable[[str, str, bytes, Callable[..., None] | None], FileResult]
AddDocuments = Callable[[str, Sequence[tuple[str, bytes]], ProgressCallback | None], IngestReport]


class IngestJobs:
    """Background ingest jobs of one app process, newest first."""

    def __init__(
        self, store: Store, add: AddDocument, queue: JobQueue | None = None, add_many: AddDocuments | None = None
    ) -> None:
        """`add(collection, name, data, notify)` ingests one file: the services' one way in;
        `add_many(collection, files, progress)`, when given, ingests a job's files together. With a
        `queue` (the server backend) each file goes through the database's job queue, where a
        worker on another machine may take it."""
        self.store, self._add, self.queue, self._add_many = store, add, queue, add_many
        self._jobs: list[IngestJob] = []
        self._lock = threading.Lock()

    def submit(self, collection: str, files: Sequence[tuple[str, bytes]]) -> IngestJob:
        """Start ingesting `files` ((name, content) pairs) into `collection`; returns at once. A bad
        collection name is refused here, before anything is queued."""
        check_collection_name(collection)
        job = IngestJob(uuid.uuid4().hex[:12], collection, [FileProgress(n, len(d)) for n, d in files])
        with self._lock:
            self._jobs.insert(0, job)
            finished = [j for j in self._jobs if not j.running]
            for old in finished[KEEP_FINISHED:]:
                self._jobs.remove(old)
        payload = list(files)
        threading.Thread(target=self._run, args=(job, payload), daemon=True, name=f"ingest-{job.id}").start()
        return job

    def jobs(self, collection: str | None = None) -> list[IngestJob]:
        with self._lock:
            return [j for j in self._jobs if collection is None or j.collection == collection]

    def running(self, collection: str | None = None) -> bool:
        return any(j.running for j in self.jobs(collection))

    def cancel(self, job_id: str) -> bool:
        """Ask the job to stop at its next step (files done stay stored; the one under way and the
        rest are not stored); False when no such job is running."""
        for j in self.jobs():
            if j.id == job_id and j.running:
                j.cancel.set()
                return True
        return False

    def wait(self, timeout: float = 600.0) -> bool:
        """Until every job has finished (tests, shutdown); False on timeout."""
        deadline = time.monotonic() + timeout
        while self.running():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    def _run(self, job: IngestJob, files: list[tuple[str, bytes]]) -> None:
        try:
            with self.store.writer():
                journal = self.store.journal(job.collection, [(n, d) for n, d in files])
                try:
                    if self.queue is None and self._add_many is not None:
                        done = lambda name: self.store.journal_done(journal, name)  # noqa: E731
                        self._together(job, files, self._add_many, done)
                        return
                    for progress, (name, data) in zip(job.files, files, strict=True):
                        job.check()
                        self._one(job, progress, name, data)
                        self.store.journal_done(journal, name)
                except IngestCancelled:
                    for f in job.files:
                        if not f.done or (f.stage == "failed" and "IngestCancelled" in f.error):
                            f.stage, f.error = "cancelled", ""
                            self.store.journal_done(journal, f.name)  # not stored on purpose: not "interrupted"
        except Exception as exc:  # the job's own failure is shown on its files, never lost in a thread
            job.error = f"{type(exc).__name__}: {exc}"
            for f in job.files:
                if not f.done:
                    f.stage, f.error = "failed", job.error
        finally:
            job.finished = time.time()

    def _together(
        self, job: IngestJob, files: list[tuple[str, bytes]], add_many: AddDocuments, finished: Callable[[str], None]
    ) -> None:
        def progress(p: Progress) -> None:
            f = job.files[p.file_index]
            if p.result is None:  # reading, embedding
                job.check()  # Cancel stops the job here, between two steps
                f.step(p.stage, p.chunks, p.pages, p.pages_total, p.drafted)
                return
            r = p.result
            if r.status == "failed" and job.cancel.is_set() and "IngestCancelled" in (r.error or ""):
                f.stage = "cancelled"
            elif r.status == "failed":
                f.stage, f.error = "failed", r.error or "failed"
            else:
                f.take_result(r)
            finished(f.name)

        add_many(job.collection, files, progress)

    def _one(self, job: IngestJob, progress: FileProgress, name: str, data: bytes) -> None:
        def notify(
            stage: str, chunks: int = 0, pages: int = 0, pages_total: int | None = None, drafted: int = 0
        ) -> None:
            if stage in ("reading", "embedding"):
                if self.queue is None:  # a queued file is the queue's until it ends: Cancel waits for it
                    job.check()
                progress.step(stage, chunks, pages, pages_total, drafted)

        progress.step("reading", 0, 0)
        if self.queue is not None:
            self._queued(job, progress, name, data, notify)
            return
        try:
            r = self._add(job.collection, name, data, notify)
        except ArchivistError as exc:
            progress.stage, progress.error = "failed", str(exc)
            return
        except Exception as exc:  # a parser bug fails this file, not the job
            progress.stage, progress.error = "failed", f"{name}: {type(exc).__name__}: {exc}"
            return
        progress.take_result(r)

    def _queued(
        self, job: IngestJob, progress: FileProgress, name: str, data: bytes, notify: Callable[..., None]
    ) -> None:
        assert self.queue is not None

        def add(collection: str, doc: str, content: bytes, record: Callable[..., None] | None) -> FileResult:
            def both(stage: str, chunks: int = 0, pages: int = 0, **totals: int | None) -> None:
                if record:
                    record(stage, chunks, pages)
                notify(stage, chunks, pages, **totals)

            return self._add(collection, doc, content, both)

        state = self.queue.ingest(job.collection, [(name, data)], worker_name(), add)[0]
        progress.stage, progress.error = state.stage, state.error
        progress.chunks, progress.pages, progress.warnings = state.chunks, state.pages, state.warnings
