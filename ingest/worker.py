"""Parsing in a child process that can be killed: a time limit and a memory limit per file.

Pages stream back in batches while the parent chunks and embeds the ones already received,
so parsing overlaps embedding. A hostile file (a decompression bomb, a parser loop) costs at
most the limits and one child process; the parent, and the rest of the batch, go on.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from ingest.errors import IngestError, UnsupportedFileError
from ingest.types import Page

BATCH_PAGES = 16


@dataclass(frozen=True)
class ParseLimits:
    """Per-file limits on the parser."""

    timeout_s: float = 600.0
    memory_mb: int = 2048
    max_pages: int = 5000
    drop_hidden: bool = True
    password: str | None = None


def run_child(conn: Connection, data: bytes, name: str, limits: ParseLimits) -> None:
    """Runs in the child: parse and send ('start', fmt), ('pages', [...])..., ('done', warnings) or ('error', msg)."""
    import resource

    # The embedder is the costly stage and runs in the parent on every core: the parser takes
    # the cycles it leaves idle, so parsing overlaps embedding instead of slowing it down.
    # (SCHED_IDLE was measured worse: the parser then ran only when the encoder starved, so the
    # two took turns instead of overlapping: 281 s against 249 s on the R manuals.)
    with contextlib.suppress(OSError):
        os.nice(10)
    try:
        cap = limits.memory_mb * 2**20
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        resource.setrlimit(resource.RLIMIT_AS, (cap + _vm_size(), hard))
    except (ValueError, OSError):
        pass
    from ingest.loaders import iter_pages

    try:
        fmt, pages, warnings = iter_pages(
            data, name, max_pages=limits.max_pages, drop_hidden=limits.drop_hidden, password=limits.password
        )
        conn.send(("start", fmt))
        batch: list[tuple[int | None, str]] = []
        for page in pages:
            batch.append((page.number, page.text))
            if len(batch) >= BATCH_PAGES:
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
        conn.send(("error", f"{name}: parsing needed more than the memory limit of {limits.memory_mb:,} MB"))
    except Exception as exc:
        conn.send(("error", f"{name}: could not be parsed ({type(exc).__name__}: {exc})"))
    finally:
        conn.close()


def _vm_size() -> int:
    try:
        with open("/proc/self/statm") as fh:
            import os

            return int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return 0


def _start_child() -> tuple[Any, subprocess.Popen[bytes]]:
    """A fresh interpreter running this module: nothing of the parent (model threads, the caller's
    __main__) is copied or re-run in it."""
    parent, child = mp.Pipe(duplex=True)
    proc = subprocess.Popen(
        [sys.executable, "-m", "ingest.parse_child", str(child.fileno())],
        pass_fds=(child.fileno(),),
        cwd=_ROOT,
        env=dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [_ROOT, os.environ.get("PYTHONPATH")]))),
        stdin=subprocess.DEVNULL,
    )
    child.close()
    return parent, proc


_ROOT = str(Path(__file__).resolve().parent.parent)


@dataclass
class ParseStream:
    """Pages of one file as the child parses them; `format` and `warnings` are set along the way."""

    name: str
    format: str = ""
    warnings: list[str] | None = None


def parse_in_worker(data: bytes, name: str, limits: ParseLimits) -> tuple[ParseStream, Iterator[list[Page]]]:
    """Start parsing `data` in a child process; returns the stream info and an iterator of page batches.

    Raises IngestError (naming the file and the limit) for a timeout, a crash or a parse error."""
    parent, proc = _start_child()
    try:
        parent.send((data, name, limits))
    except OSError as exc:
        proc.kill()
        raise IngestError(f"{name}: the parser process could not start ({exc})") from None
    deadline = time.monotonic() + limits.timeout_s
    info = ParseStream(name)

    def receive() -> Any:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                proc.kill()
                raise IngestError(f"{name}: parsing took longer than the limit of {limits.timeout_s:,.0f} s")
            if parent.poll(min(left, 0.5)):
                try:
                    return parent.recv()
                except EOFError:
                    code = _wait(proc)
                    raise IngestError(
                        f"{name}: the parser stopped (exit code {code}); the file may exceed the memory limit "
                        f"of {limits.memory_mb:,} MB or be damaged"
                    ) from None
            elif proc.poll() is not None and not parent.poll(0):
                raise IngestError(f"{name}: the parser stopped (exit code {proc.returncode})")

    def batches() -> Iterator[list[Page]]:
        try:
            while True:
                kind, payload = receive()
                if kind == "pages":
                    yield [Page(n, t) for n, t in payload]
                elif kind == "done":
                    info.warnings = list(payload)
                    return
                elif kind == "error":
                    raise IngestError(payload)
                elif kind == "unsupported":
                    raise UnsupportedFileError(payload)
        finally:
            parent.close()
            if proc.poll() is None:
                proc.kill()
            _wait(proc)

    kind, payload = receive()
    if kind in ("error", "unsupported"):
        parent.close()
        _wait(proc)
        raise (UnsupportedFileError if kind == "unsupported" else IngestError)(payload)
    info.format = payload
    return info, batches()


def _wait(proc: subprocess.Popen[bytes]) -> int | None:
    try:
        return proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait(5)
