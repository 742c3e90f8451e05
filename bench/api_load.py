"""Load on the HTTP API: N concurrent streaming chats for a bounded time against a server on loopback.

Starts `archivist serve` in a subprocess on a free port with a temporary workspace (the docs/
collection and the example assistant), then prints requests/s, p50/p95 time to first token and
total latency, and the error count.

    python bench/api_load.py [--concurrency 8] [--seconds 30] [--max-tokens 32]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import math
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, math.ceil(p * len(xs)) - 1))] if xs else float("nan")


QUESTIONS = [
    "How do I add my own PDFs?",
    "Which formats can be ingested?",
    "How do I use the GPU?",
    "Where is the workspace?",
    "What does archivist eval print?",
    "How are API keys stored?",
]


def start_server(concurrency: int) -> tuple[subprocess.Popen[bytes], str]:
    """A fresh workspace with the docs ingested, served on a free loopback port once it answers."""
    home = tempfile.mkdtemp(prefix="archivist-load-")
    env = dict(os.environ, ARCHIVIST_HOME=home, HF_HUB_OFFLINE="1")
    cli = [sys.executable, "-m", "app.cli"]
    subprocess.run(
        [*cli, "ingest", str(ROOT / "docs"), "--collection", "archivist-docs", "-q"],
        env=env,
        check=True,
        cwd=ROOT,
        capture_output=True,
    )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [*cli, "serve", "--port", str(port), "--max-queue", str(concurrency * 2)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(url + "/health").status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    return server, url


def client(url: str, w: int, deadline: float, max_tokens: int) -> tuple[list[float], list[float], int]:
    """One streaming client asking in turn until the deadline: its times to first token, its total
    times, and how many requests failed."""
    t1: list[float] = []
    tt: list[float] = []
    err, i = 0, w
    with httpx.Client(timeout=300) as c:
        while time.perf_counter() < deadline:
            body = {
                "model": "archivist-guide",
                "stream": True,
                "max_tokens": max_tokens,
                "messages": [{"role": "user", "content": QUESTIONS[i % len(QUESTIONS)]}],
            }
            i += 1
            start, first = time.perf_counter(), None
            try:
                with c.stream("POST", url + "/v1/chat/completions", json=body) as r:
                    if r.status_code != 200:
                        err += 1
                        r.read()
                        continue
                    for line in r.iter_lines():
                        if first is None and '"content": "' in line and '"content": ""' not in line:
                            first = time.perf_counter() - start
                        if line == "data: [DONE]":
                            break
            except httpx.HTTPError:
                err += 1
                continue
            tt.append(time.perf_counter() - start)
            t1.append(first if first is not None else tt[-1])
    return t1, tt, err


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--max-tokens", type=int, default=32)
    args = ap.parse_args()

    server, url = start_server(args.concurrency)
    try:
        deadline = time.perf_counter() + args.seconds
        ttfts: list[float] = []
        totals: list[float] = []
        errors = 0
        t0 = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(args.concurrency) as pool:
            runs = [pool.submit(client, url, w, deadline, args.max_tokens) for w in range(args.concurrency)]
            for run in runs:
                t1, tt, err = run.result()
                ttfts += t1
                totals += tt
                errors += err
        wall = time.perf_counter() - t0
        print(
            f"{args.concurrency} concurrent streaming clients for {wall:.0f}s, max_tokens {args.max_tokens}, "
            f"model bundled:smollm2-135m"
        )
        print(f"completed {len(totals)} requests, {len(totals) / wall:.2f} requests/s, errors {errors}")
        print(
            f"time to first token: p50 {statistics.median(ttfts) * 1000:.0f} ms, p95 {pct(ttfts, 0.95) * 1000:.0f} ms"
        )
        print(
            f"total latency:       p50 {statistics.median(totals) * 1000:.0f} ms, p95 {pct(totals, 0.95) * 1000:.0f} ms"
        )
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()
