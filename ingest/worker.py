"""Parsing in a child process that can be killed: a time limit and a memory limit per file.

Pages stream back in batches while the parent chunks and embeds the ones already received,
so parsing overlaps embedding. A hostile file (a decompression bomb, a parser loop) costs at
most the limits and one child process; the parent, and the rest of the batch, go on.
"""

from __future__ import annotations

import atexit
import contextlib
import multiprocessing as mp
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from ingest.errors import IngestError, UnsupportedFileError
from ingest.ocr import OcrSettings
from ingest.types import Page

BATCH_PAGES = 16
OCR_PAGE_S = 60.0  # time each page read by OCR adds to a file's parse limit (a page takes 1-3 s on 2 cores)


@dataclass(frozen=True)
class ParseLimits:
    """Per-file limits on the parser."""

    timeout_s: float = 600.0
    memory_mb: int = 2048
    max_pages: int = 5000
    drop_hidden: bool = True
    password: str | None = None
    ocr: OcrSettings = field(default_factory=OcrSettings)


def serve(conn: Connection) -> None:
    """The parser process: parse one file after another until the parent closes the pipe.

    Each file gets its own memory limit; after a failure that may have left the process in a bad
    state (out of memory, a parser bug) it exits and the parent starts a fresh one."""
    # The embedder is the costly stage and runs in the parent on every core: the parser takes
    # the cycles it leaves idle, so parsing overlaps embedding instead of slowing it down.
    # (SCHED_IDLE was measured worse: the parser then ran only when the encoder starved, so the
    # two took turns instead of overlapping: 281 s against 249 s on the R manuals.)
    with contextlib.suppress(OSError):
        os.nice(10)
    import ingest.loaders  # noqa: F401  (the parsers' imports are not part of any file's time limit)

    conn.send(("ready", os.getpid()))
    while True:
        try:
            data, name, limits = conn.recv()
        except (EOFError, OSError):
            return
        try:
            if not run_child(conn, data, name, limits):
                return
        except OSError:  # the parent went away mid-file
            return


def run_child(conn: Connection, data: bytes, name: str, limits: ParseLimits) -> bool:
    """Parse one file and send ('start', (fmt, pages expected or None)), ('pages', [...])..., ('done', warnings), or ('error', msg)
    or ('unsupported', msg); ('fatal', msg) when the process is not fit to parse another file (it
    then exits). Returns whether it is fit."""
    import resource

    try:
        cap = limits.memory_mb * 2**20
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        resource.setrlimit(resource.RLIMIT_AS, (cap + _vm_size(), hard))
    except (ValueError, OSError):
        pass
    from ingest.loaders import iter_pages

    try:
        fmt, pages, warnings, total = iter_pages(
            data,
            name,
            max_pages=limits.max_pages,
            drop_hidden=limits.drop_hidden,
            password=limits.password,
            ocr=limits.ocr,
        )
        conn.send(("start", (fmt, total)))
        batch: list[tuple[int | None, str, float | None, tuple[float, float] | None]] = []
        for page in pages:
            batch.append((page.number, page.text, page.ocr, page.seconds))
            # a page read from a picture took seconds: it goes at once (progress, and the time limit
            # counts from it)
            if len(batch) >= BATCH_PAGES or page.ocr is not None or page.seconds is not None:
                conn.send(("pages", batch))
                batch = []
        if batch:
            conn.send(("pages", batch))
        conn.send(("done", warnings))
    except UnsupportedFileError as exc:
        conn.send(("unsupported", str(exc)))
    except IngestError as exc:
        conn.send(("error", str(exc)))
    except MemoryError:
        conn.send(("fatal", f"{name}: parsing needed more than the memory limit of {limits.memory_mb:,} MB"))
        return False
    except Exception as exc:
        conn.send(("fatal", f"{name}: could not be parsed ({type(exc).__name__}: {exc})"))
        return False
    return True


def _vm_size() -> int:
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return 0


_ROOT = str(Path(__file__).resolve().parent.parent)
IDLE_S = 60.0  # an idle parser process older than this is replaced rather than reused
START_TIMEOUT_S = 60.0


class ParseWorker:
    """A parser process: a fresh interpreter running `ingest.parse_child`, so nothing of the parent
    (model threads, the caller's __main__) is copied or re-run in it. Reused for file after file
    (starting one costs about 0.4 s: a folder of small files paid that per file); killed on a
    time limit, a crash, or a stream left unfinished."""

    def __init__(self) -> None:
        parent, child = mp.Pipe(duplex=True)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ingest.parse_child", str(child.fileno())],
            pass_fds=(child.fileno(),),
            cwd=_ROOT,
            env=dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [_ROOT, os.environ.get("PYTHONPATH")]))),
            stdin=subprocess.DEVNULL,
        )
        child.close()
        self.conn = parent
        self.idle_since = time.monotonic()
        self.ready = False

    def wait_ready(self, timeout_s: float = START_TIMEOUT_S) -> None:
        """Wait for a fresh process to have started and imported its parsers."""
        if self.ready:
            return
        try:
            if self.conn.poll(timeout_s):
                kind, _ = self.conn.recv()
                self.ready = kind == "ready"
        except (EOFError, OSError):
            pass
        if not self.ready:
            self.kill()
            raise IngestError(f"the parser process did not start within {timeout_s:,.0f} s")

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None and not self.conn.closed

    def kill(self) -> None:
        with contextlib.suppress(OSError):
            self.conn.close()
        if self.proc.poll() is None:
            self.proc.kill()
        _wait(self.proc)


_idle: list[ParseWorker] = []
_idle_lock = threading.Lock()


def _take_worker() -> ParseWorker:
    with _idle_lock:
        while _idle:
            w = _idle.pop()
            if w.alive and time.monotonic() - w.idle_since < IDLE_S:
                return w
            w.kill()
    return ParseWorker()


def prestart() -> None:
    """Start a parser process now, to import its parsers while the caller does other work (the CLI
    loads the embedder meanwhile), so the first file does not wait for it."""
    with _idle_lock:
        if _idle:
            return
    _give_back(ParseWorker())


def _give_back(w: ParseWorker) -> None:
    if not w.alive:
        w.kill()
        return
    w.idle_since = time.monotonic()
    with _idle_lock:
        _idle.append(w)


@atexit.register
def close_workers() -> None:
    """End the idle parser processes (they also end by themselves when this process does)."""
    with _idle_lock:
        while _idle:
            _idle.pop().kill()


@dataclass
class ParseStream:
    """Pages of one file as the child parses them; `format` and `warnings` are set along the way."""

    name: str
    format: str = ""
    warnings: list[str] | None = None
    pages_total: int | None = None  # the pages to expect, where known before reading (progress)


def parse_in_worker(data: bytes, name: str, limits: ParseLimits) -> tuple[ParseStream, Iterator[list[Page]]]:
    """Parse `data` in a parser process; returns the stream info and an iterator of page batches.

    Raises IngestError (naming the file and the limit) for a timeout, a crash or a parse error."""
    worker = _take_worker()
    for fresh in (False, True):  # an idle process that went away gets one fresh try
        try:
            worker.wait_ready()
            worker.conn.send((data, name, limits))
            break
        except (OSError, IngestError) as exc:
            worker.kill()
            if fresh:
                raise IngestError(f"{name}: the parser process could not start ({exc})") from None
            worker = ParseWorker()
    deadline = time.monotonic() + limits.timeout_s
    info = ParseStream(name)
    proc, conn = worker.proc, worker.conn

    def receive() -> Any:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                worker.kill()
                raise IngestError(f"{name}: parsing took longer than the limit of {_seconds(limits.timeout_s)}")
            if conn.poll(min(left, 0.5)):
                try:
                    return conn.recv()
                except EOFError:
                    code = _wait(proc)
                    worker.kill()
                    raise IngestError(
                        f"{name}: the parser stopped (exit code {code}); the file may exceed the memory limit "
                        f"of {limits.memory_mb:,} MB or be damaged"
                    ) from None
            elif proc.poll() is not None and not conn.poll(0):
                worker.kill()
                raise IngestError(f"{name}: the parser stopped (exit code {proc.returncode})")

    def settle(kind: str, payload: Any) -> None:
        """After a file's last message: the process back to the pool ('fatal': gone); a failure raised."""
        if kind == "fatal":
            worker.kill()
        else:
            _give_back(worker)
        if kind == "unsupported":
            raise UnsupportedFileError(payload)
        if kind != "done":
            raise IngestError(payload)

    def batches() -> Iterator[list[Page]]:
        nonlocal deadline
        try:
            while (message := receive())[0] == "pages":
                pages = [Page(n, t, ocr, seconds) for n, t, ocr, seconds in message[1]]
                # a long scan or recording is read page by page: each page read from a picture or
                # heard from a recording adds its own time
                deadline += OCR_PAGE_S * sum(p.ocr is not None or p.seconds is not None for p in pages)
                yield pages
        except BaseException:
            worker.kill()  # stopped mid-file (a limit, a crash, or the reader stopped): its pipe is out of step
            raise
        kind, payload = message
        if kind == "done":
            info.warnings = list(payload)
        settle(kind, payload)

    kind, payload = receive()
    if kind != "start":
        settle(kind, payload)
    info.format, info.pages_total = payload
    return info, batches()


def _seconds(s: float) -> str:
    return f"{s:,.0f} s" if s >= 10 else f"{s:g} s"


def _wait(proc: subprocess.Popen[bytes]) -> int | None:
    try:
        return proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait(5)
