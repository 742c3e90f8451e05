"""Helper for the crash tests: ingest files into a workspace with the fake embedder, slowly enough
that a SIGKILL lands mid-ingest, or sync a folder so. Usage: python tests/crash_ingest.py HOME
FILE... | python tests/crash_ingest.py HOME --sync FOLDER"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ingest import Store, ingest_paths
from tests.shared import FakeEmbedder


class SlowFakeEmbedder(FakeEmbedder):
    def embed(self, texts, batch_size=64):  # type: ignore[no-untyped-def]
        time.sleep(0.002 * len(texts))
        return super().embed(texts, batch_size)


if __name__ == "__main__":
    emb = SlowFakeEmbedder()
    store = Store(Path(sys.argv[1]), emb.name, emb.dim)
    if sys.argv[2] == "--sync":
        from ingest.store_sources import SourceSpec
        from ingest.sync import sync

        sync(store, emb, "crash", [SourceSpec(sys.argv[3])])
    else:
        ingest_paths(sys.argv[2:], "crash", store, emb)
