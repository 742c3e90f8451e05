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

STAGE_SHARE = {"waiting": 0.0, "reading": 0.1, "embedding": 0.5}
KEEP_FINISHED = 20  # finished jobs listed per process


@dataclass
class FileProgress:
    name: str
    size: int
    stage: str = "waiting"  # waiting | reading | embedding | added | replaced | unchanged | failed
    chunks: int = 0
    pages: int = 0
    error: str = ""
    warnings: list[str] = field(default_factory=list)

    @property
    def done(self) -> bool:
        return self.stage in ("added", "replaced", "unchanged", "failed")

    @property
    def fraction(self) -> float:
        return 1.0 if self.done else STAGE_SHARE.get(self.stage, 0.5)

    def take_result(self, r: FileResult) -> None:
        """Take the file's result: its stage, counts and warnings."""
        self.stage, self.chunks, self.pages, self.warnings = r.status, r.chunks, r.pages or 0, r.warnings

    def text(self) -> str:
        if self.stage == "failed":
            return f"{self.name}: failed: {self.error}"
        counts = f", {self.chunks:,} chunks" if self.chunks else ""
        pages = f" from {self.pages:,} pages" if self.pages and self.chunks else ""
        waiting = " (in the queue)" if self.stage == "waiting" else ""
        return f"{self.name}: {self.stage}{counts}{pages}{waiting}"


@dataclass
class IngestJob:
    id: str
    collection: str
    files: list[FileProgress]
    started: float = field(default_factory=time.time)
    finished: float | None = None
    error: str = ""  # the job as a whole failed (e.g. the store could not be opened)

    @property
    def running(self) -> bool:
        return self.finished is None


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
                if self.queue is None and self._add_many is not None:
                    self._together(job, files, self._add_many, lambda name: self.store.journal_done(journal, name))
                    return
                for progress, (name, data) in zip(job.files, files, strict=True):
                    self._one(job, progress, name, data)
                    self.store.journal_done(journal, name)
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
                f.stage, f.chunks, f.pages = p.stage, p.chunks, p.pages
                return
            r = p.result
            if r.status == "failed":
                f.stage, f.error = "failed", r.error or "failed"
            else:
                f.take_result(r)
            finished(f.name)

        add_many(job.collection, files, progress)

    def _one(self, job: IngestJob, progress: FileProgress, name: str, data: bytes) -> None:
        def notify(stage: str, chunks: int = 0, pages: int = 0) -> None:
            if stage in ("reading", "embedding"):
                progress.stage, progress.chunks, progress.pages = stage, chunks, pages

        progress.stage = "reading"
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
            def both(stage: str, chunks: int = 0, pages: int = 0) -> None:
                if record:
                    record(stage, chunks, pages)
                notify(stage, chunks, pages)

            return self._add(collection, doc, content, both)

        state = self.queue.ingest(job.collection, [(name, data)], worker_name(), add)[0]
        progress.stage, progress.error = state.stage, state.error
        progress.chunks, progress.pages, progress.warnings = state.chunks, state.pages, state.warnings
