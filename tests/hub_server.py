"""A model hub on loopback for tests: the hub's URL layout (`/{org}/{repo}/resolve/main/{file}`, a
redirect that carries X-Linked-Etag / X-Linked-Size, content served with Range requests), so
huggingface_hub's endpoint setting (HF_ENDPOINT) can point at it. It can send slowly, break the
connection part way, or send other bytes than its checksum states."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Hub:
    files: dict[str, bytes]  # "org/repo/file.gguf" -> content
    bytes_per_s: float = 0.0  # 0: as fast as possible
    cut_after: int | None = None  # the first content GET stops after this many bytes
    corrupt: bool = False  # send other bytes than the checksum states
    requests: list[tuple[str, str, str]] = field(default_factory=list)  # method, path, Range header
    url: str = ""

    def sha(self, key: str) -> str:
        return hashlib.sha256(self.files[key]).hexdigest()


@contextmanager
def serve_hub(hub: Hub) -> Iterator[Hub]:
    by_sha = {hub.sha(k): k for k in hub.files}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _resolve(self) -> None:
            parts = self.path.split("/")
            if len(parts) >= 6 and parts[3] == "resolve":
                key = "/".join([parts[1], parts[2], *parts[5:]])
                if key in hub.files:
                    self.send_response(302)
                    self.send_header("Location", f"/cdn/{hub.sha(key)}")
                    self.send_header("X-Repo-Commit", "a" * 40)
                    self.send_header("X-Linked-Etag", f'"{hub.sha(key)}"')
                    self.send_header("X-Linked-Size", str(len(hub.files[key])))
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
            self.send_response(404)
            self.send_header("X-Error-Code", "EntryNotFound")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def _content(self, body: bool) -> None:
            key = by_sha.get(self.path.removeprefix("/cdn/"))
            if key is None:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            data = hub.files[key]
            if hub.corrupt:
                data = data[:-16] + bytes(16)
            start = 0
            rng = self.headers.get("Range", "")
            if rng.startswith("bytes="):
                start = int(rng.removeprefix("bytes=").split("-")[0])
            self.send_response(206 if start else 200)
            if start:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.send_header("Content-Length", str(len(data) - start))
            self.send_header("Accept-Ranges", "bytes")
            self.end_headers()
            if not body:
                return
            limit = len(data)
            if hub.cut_after is not None:
                limit, hub.cut_after = min(len(data), hub.cut_after), None
            step = 1 << 16
            for i in range(start, limit, step):
                try:
                    self.wfile.write(data[i : min(i + step, limit)])
                except (BrokenPipeError, ConnectionResetError):
                    return
                if hub.bytes_per_s:
                    time.sleep(step / hub.bytes_per_s)
            if limit < len(data):
                self.close_connection = True  # the connection breaks part way

        def do_HEAD(self) -> None:
            hub.requests.append(("HEAD", self.path, self.headers.get("Range", "")))
            self._content(False) if self.path.startswith("/cdn/") else self._resolve()

        def do_GET(self) -> None:
            hub.requests.append(("GET", self.path, self.headers.get("Range", "")))
            self._content(True) if self.path.startswith("/cdn/") else self._resolve()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    hub.url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hub
    finally:
        server.shutdown()
        server.server_close()
