"""What a reader of an HTML page sees, decided by rendering it in Chromium, where one is installed.

The page is laid out and painted by a real browser engine (scripts off, every network request
refused), twice: as it is, and with all text made transparent. A piece of text a reader can see
changes pixels inside its own boxes between the two; one that draws nothing, draws it the colour
of what is under it, lies under a cover, outside a clip, off the page or inside a closed
`<details>` changes none, whatever CSS or markup did it. Text in a box the reader can scroll is
seen; text under half a legible size (boxes under 3 px tall) is not. The browser's own parse of
the page comes back with each judged text node wrapped in a seen or a hidden element (named with
a token no page knows: `html_pixels.VERDICT_TAGS`), which `ingest.html` reads; text the renderer did not judge (past
`MAX_HEIGHT_PX`, or every text when no Chromium is found) is judged by `ingest.html`'s rule set.

`ARCHIVIST_HTML_RENDERER`: `off` for the rule set alone, or the path of a Chromium; by default
the first of `CANDIDATES` found. Playwright drives it from one thread of its own (its sync API
belongs to the thread that started it); the browser is closed after `IDLE_S` without pages.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import queue
import shutil
import threading
from collections.abc import Iterator
from typing import Any

from ingest.html_pixels import PAGE_TIMEOUT_S, judge_page

log = logging.getLogger(__name__)

ENV = "ARCHIVIST_HTML_RENDERER"
CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")
WIDTH_PX = 1280  # a desktop window
IDLE_S = 60.0
GIVE_UP_AFTER = 3  # failed pages in a row after which a process stops asking its browser


def renderer_path() -> str | None:
    """The Chromium that judges what a reader sees, or None (the rule set alone)."""
    chosen = os.environ.get(ENV, "").strip()
    if chosen.lower() == "off":
        return None
    if chosen:
        return chosen if os.path.exists(chosen) else None
    try:
        import playwright  # noqa: F401
    except ImportError:
        return None
    return next((c for c in CANDIDATES if os.path.exists(c)), shutil.which("chromium"))


def describe() -> str:
    """One line for `archivist doctor`."""
    path = renderer_path()
    if path:
        return f"rendered by Chromium ({path}), the page's CSS rule set for what it cannot judge"
    why = "turned off by ARCHIVIST_HTML_RENDERER" if os.environ.get(ENV, "").lower() == "off" else "no Chromium found"
    return f"the page's CSS rule set ({why}; install chromium and playwright to judge by rendering)"


def rendered(html: str, notes: list[str] | None = None) -> str | None:
    """The page as Chromium parsed it, each text node it judged wrapped with its verdict; None where
    no Chromium is at hand or it failed on this page (the rule set then judges all of it, and
    `notes` gets a line saying so)."""
    path = renderer_path()
    if path is None:
        return None
    worker = _worker(path)
    try:
        if worker.failures >= GIVE_UP_AFTER:
            raise RuntimeError(f"it failed on the last {worker.failures} pages: {worker.last_error}")
        page = worker.submit(html)
        worker.failures = 0
        return page
    except Exception as e:  # a crash or timeout of the browser must not cost the document
        why = ((str(e).strip().splitlines() or [""])[0] or type(e).__name__)[:160]
        if worker.failures < GIVE_UP_AFTER:
            worker.failures, worker.last_error = worker.failures + 1, why
        log.warning("HTML not rendered (%s): the rule set judges what is hidden", why)
        if notes is not None:
            notes.append(f"hidden text judged by the CSS rule set only: Chromium failed on the page ({why})")
        return None


# --- the browser's own thread ----------------------------------------------------------------------


class _Worker:
    """One thread that owns Playwright and a Chromium, judging pages sent to it one at a time."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.failures = 0  # pages in a row it failed on (a browser that cannot start is not retried for ever)
        self.last_error = ""
        self.jobs: queue.Queue[tuple[str, queue.Queue[tuple[bool, Any]]] | None] = queue.Queue()
        self.thread = threading.Thread(target=self._run, name="html-renderer", daemon=True)
        self.thread.start()

    def submit(self, html: str) -> str:
        answer: queue.Queue[tuple[bool, Any]] = queue.Queue(1)
        self.jobs.put((html, answer))
        try:
            ok, value = answer.get(timeout=PAGE_TIMEOUT_S * 3)
        except queue.Empty:
            raise TimeoutError(f"no verdict within {PAGE_TIMEOUT_S * 3:.0f} s") from None
        if not ok:
            raise value
        return str(value)

    def stop(self) -> None:
        self.jobs.put(None)

    def _run(self) -> None:
        while True:
            job = self.jobs.get()
            if job is None:
                return
            html, answer = job
            try:
                self._serve(html, answer)
            except Exception as e:  # the browser could not start or died: tell the waiting page
                answer.put((False, e))

    def _serve(self, html: str, answer: queue.Queue[tuple[bool, Any]]) -> None:
        from playwright.sync_api import sync_playwright

        with _address_space_for_children():
            pw = sync_playwright().start()
            try:
                browser = pw.chromium.launch(executable_path=self.path, args=["--disable-gpu"])
            except Exception:
                pw.stop()
                raise
        try:
            self._pages(browser, html, answer)
        finally:
            browser.close()
            pw.stop()

    def _pages(self, browser: Any, html: str, answer: queue.Queue[tuple[bool, Any]]) -> None:
        """Judge pages in one browser tab until one fails, none comes for IDLE_S, or stop()."""
        context = browser.new_context(
            java_script_enabled=False, offline=True, viewport={"width": WIDTH_PX, "height": 800}, device_scale_factor=1
        )
        page = context.new_page()
        page.route("**/*", lambda route: route.abort())
        cdp = context.new_cdp_session(page)
        while True:
            try:
                answer.put((True, judge_page(page, cdp, html)))
            except Exception as e:
                answer.put((False, e))
                return  # a fresh browser for the next page
            try:
                job = self.jobs.get(timeout=IDLE_S)
            except queue.Empty:
                return
            if job is None:
                self.jobs.put(None)  # (for _run, once the browser is closed)
                return
            html, answer = job


@contextlib.contextmanager
def _address_space_for_children() -> Iterator[None]:
    """Lift this process's address-space limit while the browser starts: the parser process caps
    its own (ingest/worker.py), and a Chromium started under the cap cannot reserve the address
    space it needs and dies at launch. The parse that asked waits meanwhile; the cap comes back."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_AS, (hard, hard))
    try:
        yield
    finally:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


_workers: dict[str, _Worker] = {}
_lock = threading.Lock()


def _worker(path: str) -> _Worker:
    with _lock:
        if path not in _workers:
            if not _workers:
                atexit.register(_close)
            _workers[path] = _Worker(path)
        return _workers[path]


def _close() -> None:
    """Close the browsers when the program ends (a daemon thread would leave them to the driver)."""
    for worker in _workers.values():
        worker.stop()
    for worker in _workers.values():
        worker.thread.join(timeout=5)
