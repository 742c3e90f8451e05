"""The file system: documents parsed, chunked, embedded and stored for retrieval.

Public API:
- `ingest_paths(paths, collection, store, embedder)` -> `IngestReport`
- `Store`: the SQL catalog (source of truth) and each collection's FAISS index
- `Embedder` (protocol), `SentenceTransformerEmbedder`, `DEFAULT_EMBEDDER`
- `ChunkSettings`, `IngestLimits`, `Progress`
- `IngestError`, `UnsupportedFileError`, `IndexMismatchError`
"""

from ingest.chunk import ChunkSettings, chunk_document
from ingest.embed import DEFAULT_EMBEDDER, Embedder, SentenceTransformerEmbedder
from ingest.errors import IndexMismatchError, IngestError, UnsupportedFileError
from ingest.loaders import load_bytes
from ingest.pipeline import (
    FileResult,
    IngestLimits,
    IngestReport,
    Progress,
    ingest_bytes,
    ingest_paths,
    named_files,
)
from ingest.store import DocumentInfo, Store, StoredChunk

__all__ = [
    "DEFAULT_EMBEDDER",
    "ChunkSettings",
    "DocumentInfo",
    "Embedder",
    "FileResult",
    "IndexMismatchError",
    "IngestError",
    "IngestLimits",
    "IngestReport",
    "Progress",
    "SentenceTransformerEmbedder",
    "Store",
    "StoredChunk",
    "UnsupportedFileError",
    "chunk_document",
    "ingest_bytes",
    "ingest_paths",
    "load_bytes",
    "named_files",
]
