"""Models from the model hub: a short curated list, and downloads that show progress, can be
cancelled, resume where they stopped and are checked against the hub's checksum.

URLs follow the hub's layout (`{endpoint}/{repo}/resolve/main/{file}`) as `huggingface_hub` builds
them; the endpoint is huggingface_hub's own setting (`HF_ENDPOINT`), read when a download starts, so
a mirror or a local server works the same way. The file is written as `<file>.part` next to where it
will live and renamed only once its SHA-256 (or git object id) matches what the hub states, so a
half-written model is never loaded. A download resumes with an HTTP Range request while the hub
still states the same checksum for the file.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from runtime.errors import ArchivistError, ModelNotFoundError

HUB_FOLDER = "hub"  # models/hub/<org>--<repo>/<file>: what the Models page downloaded
GGUF_MAGIC = b"GGUF"
_HEX64 = re.compile(r"[0-9a-f]{64}")
_HEX40 = re.compile(r"[0-9a-f]{40}")


class HubUnreachableError(ArchivistError):
    """The model hub could not be reached (offline, or the address is wrong)."""

    def __init__(self, endpoint: str, url: str, detail: str) -> None:
        self.endpoint, self.url = endpoint, url
        super().__init__(f"the model hub at {endpoint} could not be reached ({detail})")


class HubOfflineError(HubUnreachableError):
    """Downloads are switched off on this computer (HF_HUB_OFFLINE is set): no request is made."""

    def __init__(self, endpoint: str, url: str) -> None:
        super().__init__(endpoint, url, "HF_HUB_OFFLINE is set, so nothing is downloaded")


def hub_offline() -> bool:
    """Whether HF_HUB_OFFLINE switches the hub off, read as huggingface_hub reads it (1, true, yes, on)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in ("1", "ON", "YES", "TRUE")


class DownloadCancelledError(ArchivistError):
    """The user cancelled a download; what was downloaded is kept for a resume."""


class ChecksumMismatchError(ArchivistError):
    """The downloaded bytes are not the file the hub describes; they were removed."""


@dataclass(frozen=True)
class Recommended:
    """A GGUF chat model worth trying, with what a user needs to know before downloading it."""

    title: str
    repo: str
    filename: str
    size_gb: float  # the file, as the hub lists it (approximate)
    ram_gb: float  # to run it with a 4,096-token context (approximate)
    licence: str
    context: int  # tokens the model was trained for
    tools: bool  # its chat template renders tool calls
    note: str

    @property
    def spec(self) -> str:
        return f"hf:{self.repo}/{self.filename}"


RECOMMENDED: tuple[Recommended, ...] = (
    Recommended(
        "Qwen2.5 1.5B Instruct (Q4_K_M)",
        "Qwen/Qwen2.5-1.5B-Instruct-GGUF",
        "qwen2.5-1.5b-instruct-q4_k_m.gguf",
        1.1,
        2.0,
        "Apache-2.0",
        32768,
        True,
        "small and quick on a laptop CPU; follows the passages far better than the bundled model",
    ),
    Recommended(
        "Llama 3.2 3B Instruct (Q4_K_M)",
        "bartowski/Llama-3.2-3B-Instruct-GGUF",
        "Llama-3.2-3B-Instruct-Q4_K_M.gguf",
        2.0,
        3.5,
        "Llama 3.2 Community License",
        131072,
        True,
        "good answers for its size; long context",
    ),
    Recommended(
        "Phi-3.5 mini Instruct (Q4_K_M)",
        "bartowski/Phi-3.5-mini-instruct-GGUF",
        "Phi-3.5-mini-instruct-Q4_K_M.gguf",
        2.4,
        4.0,
        "MIT",
        131072,
        False,
        "strong at reasoning over long passages",
    ),
    Recommended(
        "Qwen2.5 7B Instruct (Q4_K_M)",
        "bartowski/Qwen2.5-7B-Instruct-GGUF",
        "Qwen2.5-7B-Instruct-Q4_K_M.gguf",
        4.7,
        6.5,
        "Apache-2.0",
        32768,
        True,
        "the best answers here; wants 8 GB of RAM or a GPU",
    ),
)


def split_spec(spec: str) -> tuple[str, str]:
    """`hf:org/repo/file.gguf` as (repo, file), with a clear error for anything else."""
    parts = spec.removeprefix("hf:").strip().strip("/").split("/")
    if len(parts) < 3 or not all(parts) or not parts[-1].endswith(".gguf"):
        raise ModelNotFoundError(f"model spec {spec!r} must look like 'hf:org/repo/file.gguf'")
    return "/".join(parts[:2]), "/".join(parts[2:])


def hub_path(models_dir: Path, repo: str, filename: str) -> Path:
    """Where a downloaded hub model lives in the workspace's models folder."""
    return models_dir / HUB_FOLDER / repo.replace("/", "--") / filename


def endpoint_now() -> str:
    """The hub address: huggingface_hub's `HF_ENDPOINT` setting as it is now, else its default."""
    from huggingface_hub import constants

    return (os.environ.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/")


def is_gguf(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            return f.read(4) == GGUF_MAGIC
    except OSError:
        return False


def _checksum_of(head_etag: str) -> str | None:
    """The hub's ETag of a file: a SHA-256 for large (LFS) files, a git object id for small ones."""
    tag = head_etag.strip().removeprefix("W/").strip('"').lower()
    return tag if _HEX64.fullmatch(tag) or _HEX40.fullmatch(tag) else None


def _digest(path: Path, expected: str, progress: Callable[[str, int, int | None], None] | None) -> str:
    size = path.stat().st_size
    h = hashlib.sha256() if len(expected) == 64 else hashlib.sha1(f"blob {size}\0".encode())
    done = 0
    with path.open("rb") as f:
        while block := f.read(1 << 22):
            h.update(block)
            done += len(block)
            if progress:
                progress("verifying", done, size)
    return h.hexdigest()


def download(
    spec: str,
    models_dir: Path,
    *,
    progress: Callable[[str, int, int | None], None] | None = None,
    cancel: threading.Event | None = None,
    endpoint: str | None = None,
) -> Path:
    """Download the GGUF a `hf:` spec names into the models folder and return its path.

    `progress(stage, done, total)` is called as bytes arrive ("downloading") and as the checksum is
    computed ("verifying"). Setting `cancel` stops at the next block and keeps the part file, so the
    next call resumes from there."""
    import httpx
    from huggingface_hub import hf_hub_url

    repo, filename = split_spec(spec)
    dest = hub_path(models_dir, repo, filename)
    if dest.is_file():
        return dest
    base = (endpoint or endpoint_now()).rstrip("/")
    url = hf_hub_url(repo, filename, endpoint=base)
    if hub_offline():
        raise HubOfflineError(base, url)
    part = dest.with_name(dest.name + ".part")
    state = dest.with_name(dest.name + ".part.json")  # the checksum the part belongs to
    dest.parent.mkdir(parents=True, exist_ok=True)
    with httpx.Client(follow_redirects=True, timeout=httpx.Timeout(30.0, read=120.0)) as client:
        try:
            head = _head(client, url)
        except httpx.TransportError as exc:
            raise HubUnreachableError(base, url, type(exc).__name__) from exc
        assert isinstance(head, httpx.Response)
        if head.status_code in (401, 403, 404):
            raise ModelNotFoundError(f"{repo}/{filename} is not on the model hub at {base} (HTTP {head.status_code})")
        if head.status_code >= 400:
            raise HubUnreachableError(base, url, f"HTTP {head.status_code}")
        total = int(head.headers.get("X-Linked-Size") or head.headers.get("Content-Length") or 0) or None
        expected = _checksum_of(head.headers.get("X-Linked-Etag") or head.headers.get("ETag") or "")
        if expected is None:
            raise ArchivistError(f"the model hub at {base} states no checksum for {repo}/{filename}; not downloaded")
        have = 0
        if part.is_file() and state.is_file() and json.loads(state.read_text()).get("checksum") == expected:
            have = part.stat().st_size
        state.write_text(json.dumps({"checksum": expected, "url": url, "size": total}))
        if total is not None and have > total:
            have = 0
        try:
            _fetch(client, url, part, have, total, progress, cancel)
        except httpx.TransportError as exc:
            raise HubUnreachableError(base, url, f"{type(exc).__name__} after {part.stat().st_size:,} bytes") from exc
    got = _digest(part, expected, progress)
    if got != expected:
        part.unlink(missing_ok=True)
        state.unlink(missing_ok=True)
        raise ChecksumMismatchError(
            f"the downloaded {filename} does not match the hub's checksum (got {got[:12]}..., expected "
            f"{expected[:12]}...); the file was removed, download it again"
        )
    if not is_gguf(part):
        part.unlink(missing_ok=True)
        state.unlink(missing_ok=True)
        raise ModelNotFoundError(f"{repo}/{filename} is not a GGUF model file; removed")
    part.replace(dest)
    state.unlink(missing_ok=True)
    return dest


def _head(client: object, url: str) -> object:
    """The hub's answer about a file: a large file's resolve URL redirects to a content server and
    carries its checksum and size (X-Linked-Etag, X-Linked-Size) on that redirect, so redirects are
    followed only until one does."""
    import httpx

    assert isinstance(client, httpx.Client)
    for _ in range(6):
        r = client.head(url, headers={"Accept-Encoding": "identity"}, follow_redirects=False)
        if not r.is_redirect or r.headers.get("X-Linked-Etag"):
            return r
        url = str(r.next_request.url) if r.next_request else url
    return r


def _fetch(
    client: object,
    url: str,
    part: Path,
    have: int,
    total: int | None,
    progress: Callable[[str, int, int | None], None] | None,
    cancel: threading.Event | None,
) -> None:
    import httpx

    assert isinstance(client, httpx.Client)
    if total is not None and have == total:
        return
    headers = {"Accept-Encoding": "identity"} | ({"Range": f"bytes={have}-"} if have else {})
    with client.stream("GET", url, headers=headers) as r:
        if r.status_code == 200:
            have = 0  # the server sent the whole file: start over
        elif r.status_code != 206:
            raise ArchivistError(f"the model hub answered HTTP {r.status_code} for {url}")
        with part.open("r+b" if have else "wb") as f:
            f.seek(have)
            f.truncate()
            if progress:
                progress("downloading", have, total)
            for block in r.iter_bytes():  # blocks as they arrive: a broken connection loses none
                if cancel is not None and cancel.is_set():
                    raise DownloadCancelledError(f"cancelled after {have:,} bytes; the next download resumes there")
                f.write(block)
                have += len(block)
                if progress:
                    progress("downloading", have, total)


@dataclass
class Download:
    """One download running in the background of the app process, as a page shows it."""

    spec: str
    stage: str = "starting"  # starting, downloading, verifying, done, failed, cancelled
    done: int = 0
    total: int | None = None
    error: str = ""
    offline: bool = False
    path: Path | None = None
    cancel: threading.Event = field(default_factory=threading.Event)

    @property
    def running(self) -> bool:
        return self.stage in ("starting", "downloading", "verifying")


class Downloads:
    """Background downloads that outlive the page that started them (one per spec at a time)."""

    def __init__(self, models_dir: Path, endpoint: Callable[[], str] = endpoint_now) -> None:
        self.models_dir = models_dir
        self.endpoint = endpoint
        self._jobs: dict[str, Download] = {}
        self._lock = threading.Lock()

    def start(self, spec: str) -> Download:
        split_spec(spec)
        with self._lock:
            job = self._jobs.get(spec)
            if job is not None and job.running:
                return job
            job = self._jobs[spec] = Download(spec)
        threading.Thread(target=self._run, args=(job,), daemon=True, name=f"download {spec}").start()
        return job

    def _run(self, job: Download) -> None:
        def progress(stage: str, done: int, total: int | None) -> None:
            job.stage, job.done, job.total = stage, done, total

        try:
            job.path = download(
                job.spec, self.models_dir, progress=progress, cancel=job.cancel, endpoint=self.endpoint()
            )
            job.stage = "done"
        except DownloadCancelledError:
            job.stage = "cancelled"
        except HubUnreachableError as exc:
            job.stage, job.error, job.offline = "failed", str(exc), True
        except ArchivistError as exc:
            job.stage, job.error = "failed", str(exc)
        except OSError as exc:  # disk full, permissions: say so instead of dying in a thread
            job.stage, job.error = "failed", f"could not write the model file: {exc}"

    def get(self, spec: str) -> Download | None:
        with self._lock:
            return self._jobs.get(spec)

    def all(self) -> list[Download]:
        with self._lock:
            return list(self._jobs.values())

    def cancel(self, spec: str) -> None:
        job = self.get(spec)
        if job is not None:
            job.cancel.set()

    def partial(self, spec: str) -> int:
        """Bytes kept from an earlier, unfinished download of `spec` (0 if none)."""
        repo, filename = split_spec(spec)
        part = hub_path(self.models_dir, repo, filename)
        part = part.with_name(part.name + ".part")
        return part.stat().st_size if part.is_file() else 0
