"""Several uploaded files at once: one batch (how the HTTP API's upload ingests a request's files
in a local workspace: the next files parsed ahead, small ones embedded together) against one
ingest per file (how it did before), on the same files, interleaved over rounds, each in a fresh
workspace. Prints each round, the medians and their ratio.

    python bench/upload_batch.py [--folder /usr/share/doc/python3.11/html/library] [--files 40] [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.services import Services


def run(files: list[tuple[str, bytes]], batch: bool) -> tuple[float, int]:
    """Seconds to ingest `files` into a fresh workspace, and the chunks stored."""
    home = tempfile.mkdtemp(prefix="archivist-upload-bench-")
    try:
        svc = Services.create(home)
        svc.embedder.embed(["warm up"])  # the model loaded (and calibrated) before the clock starts
        start = time.perf_counter()
        with svc.store.writer():
            if batch:
                chunks = sum(r.chunks for r in svc.add_documents("bench", files).results)
            else:
                chunks = sum(svc.add_document("bench", name, data).chunks for name, data in files)
        return time.perf_counter() - start, chunks
    finally:
        shutil.rmtree(home, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--folder", type=Path, default=Path("/usr/share/doc/python3.11/html/library"))
    ap.add_argument("--files", type=int, default=40)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    paths = sorted(p for p in args.folder.iterdir() if p.is_file())[: args.files]
    if not paths:
        sys.exit(f"{args.folder}: no files (apt-get install python3.11-doc for the default)")
    files = [(p.name, p.read_bytes()) for p in paths]
    print(f"{len(files)} files, {sum(len(d) for _, d in files) / 2**20:.1f} MB from {args.folder}")
    times: dict[str, list[float]] = {"one per file": [], "one batch": []}
    for r in range(args.rounds):
        order = [False, True] if r % 2 == 0 else [True, False]
        for batch in order:
            name = "one batch" if batch else "one per file"
            seconds, chunks = run(files, batch)
            times[name].append(seconds)
            print(f"round {r + 1}: {name}: {seconds:.1f} s, {chunks} chunks", flush=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(
        f"median: one per file {med['one per file']:.1f} s, one batch {med['one batch']:.1f} s; "
        f"the batch is {med['one per file'] / med['one batch']:.2f}x as fast"
    )


if __name__ == "__main__":
    main()
