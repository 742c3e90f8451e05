"""Ingest jobs in the server database, claimed by workers on any machine.

A job holds one uploaded file (its bytes, so any machine can work it). A worker claims the oldest
free job with `SELECT ... FOR UPDATE SKIP LOCKED` (no two workers take the same job, none waits on
another) and holds it under a lease that it renews while it works; the lease runs on the
database's clock, so machines need not agree on the time. A worker that dies (killed, its machine
gone) stops renewing: once the lease expires another worker takes the job and does it again. A
document is stored in one transaction, so a job done twice stores it once ("unchanged" the second
time) and a reader never sees half of it. A job taken `MAX_ATTEMPTS` times without finishing (a
file that kills its worker) is failed with that reason, and its document is listed as failed.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text

from ingest.errors import UnsupportedFileError
from ingest.store import Store, check_collection_name
from runtime.errors import ArchivistError

LEASE_S = 60.0  # a worker renews its lease every third of this
MAX_ATTEMPTS = 3
DONE = ("done", "failed")


@dataclass
class JobState:
    """A job as a user sees it: its file, where it is, and how it ended."""

    id: int
    collection: str
    name: str
    size: int
    status: str  # queued | running | done | failed
    stage: str  # waiting | reading | embedding | added | replaced | unchanged | failed
    chunks: int
    pages: int
    error: str
    error_kind: str  # "unsupported" (a file type Archivist does not read) | "error" | ""
    warnings: list[str] = field(default_factory=list)
    worker: str = ""
    attempts: int = 0

    @property
    def done(self) -> bool:
        return self.status in DONE

    def to_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def worker_name() -> str:
    """This process as the jobs name it: host and process id."""
    import os
    import socket

    return f"{socket.gethostname()}:{os.getpid()}"


AddDocument = Callable[[str, str, bytes, Callable[..., None] | None], Any]


class JobQueue:
    """The ingest jobs of a server-backend store."""

    def __init__(self, store: Store, lease_s: float = LEASE_S) -> None:
        if not store.server:
            raise ArchivistError(
                "ingest workers need a server database: set ARCHIVIST_DATABASE_URL or --database-url "
                "(postgresql+psycopg://...); a workspace's SQLite file has one writer"
            )
        self.store, self.engine, self.lease_s = store, store.engine, lease_s

    # ---- the user's side --------------------------------------------------------------
    def enqueue(self, collection: str, files: Sequence[tuple[str, bytes]]) -> list[int]:
        """Queue files ((name, content) pairs) for `collection`; returns their job ids at once."""
        check_collection_name(collection)
        ids = []
        with self.engine.begin() as conn:
            for name, data in files:
                row = conn.execute(
                    text(
                        "INSERT INTO ingest_jobs (collection, name, data, size, sha256, status, stage, chunks, pages, "
                        "error, error_kind, warnings_json, worker, attempts, created_at, updated_at) VALUES "
                        "(:c, :n, :d, :s, :h, 'queued', 'waiting', 0, 0, '', '', '[]', '', 0, now(), now()) "
                        "RETURNING id"
                    ),
                    {"c": collection, "n": name, "d": data, "s": len(data), "h": hashlib.sha256(data).hexdigest()},
                ).scalar_one()
                ids.append(int(row))
        return ids

    def jobs(self, ids: Sequence[int] | None = None, limit: int = 50) -> list[JobState]:
        """The given jobs, or the newest `limit`; newest first."""
        where = "WHERE id = ANY(:ids)" if ids is not None else ""
        sql = text(
            "SELECT id, collection, name, size, status, stage, chunks, pages, error, error_kind, warnings_json, "
            f"worker, attempts FROM ingest_jobs {where} ORDER BY id DESC LIMIT :lim"
        )
        params: dict[str, Any] = {"lim": len(ids) if ids is not None else limit}
        if ids is not None:
            params["ids"] = list(ids)
        with self.engine.connect() as conn:
            rows = conn.execute(sql, params).all()
        return [
            JobState(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], json.loads(r[10]), r[11], r[12])
            for r in rows
        ]

    def wait(self, ids: Sequence[int], timeout_s: float | None = None, poll_s: float = 0.25) -> list[JobState]:
        """Block until the jobs are done or failed (or `timeout_s` passes); their states."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            states = self.jobs(ids)
            if all(s.done for s in states) or (deadline is not None and time.monotonic() > deadline):
                return sorted(states, key=lambda s: s.id)
            time.sleep(poll_s)

    # ---- the worker's side ------------------------------------------------------------
    def _give_up_on_stuck(self) -> None:
        """Jobs whose lease expired after MAX_ATTEMPTS tries: failed, and their documents listed as failed."""
        with self.engine.begin() as conn:
            stuck = conn.execute(
                text(
                    "UPDATE ingest_jobs SET status = 'failed', stage = 'failed', error_kind = 'error', "
                    "error = name || ': the worker stopped ' || attempts || ' times while ingesting it', "
                    "updated_at = now() WHERE status = 'running' AND lease_until < now() AND attempts >= :max "
                    "RETURNING collection, name, sha256, size, error"
                ),
                {"max": MAX_ATTEMPTS},
            ).all()
        for collection, name, sha, size, error in stuck:
            self.store.mark_failed(collection, name=name, sha256=sha, fmt="unknown", size=size, error=error)

    def claim(self, worker: str, only: int | None = None) -> tuple[int, str, str, bytes] | None:
        """Take the oldest free job (queued, or running under an expired lease): (id, collection,
        name, data), or None when there is none. `only` takes that job or nothing."""
        self._give_up_on_stuck()
        pick = "AND id = :only " if only is not None else ""
        params: dict[str, Any] = {"w": worker, "lease": self.lease_s}
        if only is not None:
            params["only"] = only
        with self.engine.begin() as conn:
            row = conn.execute(
                text(
                    "UPDATE ingest_jobs SET status = 'running', stage = 'reading', worker = :w, "
                    "attempts = attempts + 1, lease_until = now() + make_interval(secs => :lease), updated_at = now() "
                    "WHERE id = (SELECT id FROM ingest_jobs WHERE (status = 'queued' OR (status = 'running' "
                    f"AND lease_until < now())) {pick}ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) "
                    "RETURNING id, collection, name, data"
                ),
                params,
            ).first()
        return None if row is None else (int(row[0]), row[1], row[2], bytes(row[3]))

    def _update(self, job: int, worker: str, sets: str, params: dict[str, Any]) -> bool:
        """Change a job this worker still holds; False when another worker has taken it over."""
        with self.engine.begin() as conn:
            done = conn.execute(
                text(
                    f"UPDATE ingest_jobs SET {sets}, updated_at = now() WHERE id = :id AND worker = :w "
                    "AND status = 'running'"
                ),
                {**params, "id": job, "w": worker},
            )
            return bool(done.rowcount)

    def work(self, worker: str, job: tuple[int, str, str, bytes], add: AddDocument) -> None:
        """Do one claimed job: ingest its file through `add` while a thread renews the lease and
        records the progress; then record how it ended."""
        job_id, collection, name, data = job
        progress: dict[str, Any] = {"stage": "reading", "chunks": 0, "pages": 0}
        stop = threading.Event()

        def renew() -> None:
            while not stop.wait(self.lease_s / 3):
                self._update(
                    job_id,
                    worker,
                    "lease_until = now() + make_interval(secs => :lease), stage = :stage, chunks = :chunks, pages = :pages",
                    {"lease": self.lease_s, **progress},
                )

        def notify(stage: str, chunks: int = 0, pages: int = 0, **_totals: int | None) -> None:
            changed = stage != progress["stage"]
            progress.update(stage=stage, chunks=chunks, pages=pages)
            if changed:
                self._update(job_id, worker, "stage = :stage, chunks = :chunks, pages = :pages", dict(progress))

        keeper = threading.Thread(target=renew, name=f"archivist-lease-{job_id}", daemon=True)
        keeper.start()
        try:
            result = add(collection, name, data, notify)
            sets = "status = 'done', stage = :stage, chunks = :chunks, pages = :pages, warnings_json = :warn"
            params = {
                "stage": result.status,
                "chunks": result.chunks,
                "pages": result.pages or 0,
                "warn": json.dumps(list(result.warnings)),
            }
        except ArchivistError as exc:  # a bad file, or a collection of another embedder
            kind = "unsupported" if isinstance(exc, UnsupportedFileError) else "error"
            sets = "status = 'failed', stage = 'failed', error = :err, error_kind = :kind"
            params = {"err": str(exc), "kind": kind}
        except Exception as exc:  # a parser bug fails this job, not the worker
            sets = "status = 'failed', stage = 'failed', error = :err, error_kind = 'error'"
            params = {"err": f"{name}: {type(exc).__name__}: {exc}"}
        finally:
            stop.set()
            keeper.join()
        self._update(job_id, worker, sets + ", lease_until = NULL", params)

    def run(
        self,
        worker: str,
        add: AddDocument,
        stop: threading.Event,
        poll_s: float = 1.0,
        on_job: Callable[[str], None] | None = None,
    ) -> int:
        """Work jobs until `stop` is set (a job under way is finished first); returns how many."""
        n = 0
        while not stop.is_set():
            job = self.claim(worker)
            if job is None:
                stop.wait(poll_s)
                continue
            if on_job:
                on_job(f"job {job[0]}: {job[2]} -> {job[1]}")
            self.work(worker, job, add)
            n += 1
        return n

    def ingest(
        self, collection: str, files: Sequence[tuple[str, bytes]], worker: str, add: AddDocument, poll_s: float = 0.25
    ) -> list[JobState]:
        """Queue files and see them done (the API's uploads): this process works each job itself
        unless a worker has taken it, and then waits for that worker, or takes the job over
        should that worker's lease expire."""
        ids = self.enqueue(collection, files)
        for job_id in ids:
            while not self.jobs([job_id])[0].done:
                job = self.claim(worker, only=job_id)
                if job is not None:
                    self.work(worker, job, add)
                else:
                    time.sleep(poll_s)
        return sorted(self.jobs(ids), key=lambda s: s.id)
