"""The FAISS index of one collection: derived from the catalog, written atomically, stamped, checked."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ingest.embed import Vectors
from ingest.errors import IndexMismatchError


class VectorIndex:
    """Exact inner-product search over unit vectors; ids are chunk ids."""

    def __init__(self, folder: Path, embedder: str, dim: int) -> None:
        import faiss

        self.folder, self.embedder, self.dim = folder, embedder, dim
        self.path = folder / "dense.faiss"
        self.meta_path = folder / "dense.json"
        self._index: Any = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        self._mtime = 0.0

    @property
    def size(self) -> int:
        return int(self._index.ntotal)

    def ids(self) -> set[int]:
        import faiss

        return set(faiss.vector_to_array(self._index.id_map).tolist())

    def load(self) -> bool:
        """Read the index from disk; False where there is none. A different embedder is refused."""
        import faiss

        if not (self.path.exists() and self.meta_path.exists()):
            return False
        meta = json.loads(self.meta_path.read_text())
        if meta.get("embedder") != self.embedder or meta.get("dim") != self.dim:
            raise IndexMismatchError(
                f"index {self.path} was built with embedder {meta.get('embedder')!r} ({meta.get('dim')} dims); "
                f"this workspace uses {self.embedder!r} ({self.dim} dims). Re-index the collection with "
                f"`archivist reindex COLLECTION` or switch back to the embedder it was built with"
            )
        self._index = faiss.read_index(str(self.path))
        self._mtime = self.path.stat().st_mtime
        return True

    def changed_on_disk(self) -> bool:
        """True when another process has written a newer index file."""
        return self.path.exists() and self.path.stat().st_mtime != self._mtime

    def add(self, ids: npt.NDArray[np.int64], vectors: Vectors) -> None:
        if len(ids):
            self._index.add_with_ids(vectors, ids.astype(np.int64))

    def remove(self, ids: list[int]) -> None:
        import faiss

        if ids:
            self._index.remove_ids(faiss.IDSelectorBatch(np.asarray(ids, dtype=np.int64)))

    def reset(self) -> None:
        self._index.reset()

    def search(
        self, query: Vectors, k: int, allowed: Sequence[int] | None = None
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
        """Top-k (scores, ids); `allowed` restricts the search to those chunk ids."""
        import faiss

        if self.size == 0 or (allowed is not None and not len(allowed)):
            return np.zeros((1, 0), np.float32), np.zeros((1, 0), np.int64)
        if allowed is None:
            scores, ids = self._index.search(query, min(k, self.size))
        else:
            sel = faiss.IDSelectorBatch(np.asarray(allowed, dtype=np.int64))
            scores, ids = self._index.search(query, min(k, len(allowed)), params=faiss.SearchParameters(sel=sel))  # type: ignore[call-arg]
        return scores, ids

    def save(self) -> None:
        """Write index then stamp, each via temporary file + fsync + rename."""
        import faiss

        self.folder.mkdir(parents=True, exist_ok=True)
        _atomic_write(self.path, faiss.serialize_index(self._index).tobytes())
        meta = {"embedder": self.embedder, "dim": self.dim, "count": self.size}
        _atomic_write(self.meta_path, json.dumps(meta).encode())
        self._mtime = self.path.stat().st_mtime


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
