"""Reading the store: chunks, page and section texts, the original files, filtered chunk ids and
counts. All SQL on the catalog stays in ingest."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import Engine, func, or_, select, text
from sqlalchemy.orm import Session, sessionmaker

from ingest.catalog import Chunk, Collection, Document, DocumentStatus
from ingest.filters import SearchFilter
from ingest.records import StoredChunk


class StoreReads:
    """The read side of `Store` (mixed in): needs its home, engine and sessions."""

    home: Path
    engine: Engine
    sessions: sessionmaker[Session]

    def page_texts(self, ids: Sequence[int]) -> dict[int, str]:
        """For each chunk id, its page's text rebuilt from the page's chunks (each chunk is a slice
        of the page text at its offsets; whitespace between chunks becomes newlines). A document
        without pages (HTML, Markdown, text) is one page: its whole text."""
        if not ids:
            return {}
        with self.sessions() as s:
            keys = s.execute(select(Chunk.id, Chunk.document_id, Chunk.page).where(Chunk.id.in_(list(ids)))).all()
            wanted = {(d, p) for _, d, p in keys}
            docs = {d for d, _ in wanted}
            numbered = [p for _, p in wanted if p is not None]
            on_page = Chunk.page.in_(numbered)  # SQL's IN never matches NULL: pageless documents apart
            rows = s.execute(
                select(Chunk.document_id, Chunk.page, Chunk.start, Chunk.end, Chunk.text).where(
                    Chunk.document_id.in_(list(docs)),
                    or_(on_page, Chunk.page.is_(None)) if len(numbered) < len(wanted) else on_page,
                )
            ).all()
        slices: dict[tuple[int, int | None], list[tuple[int, int, str]]] = {}
        for d, p, a, b, t in rows:
            if (d, p) in wanted:
                slices.setdefault((d, p), []).append((a, b, t))
        pages: dict[tuple[int, int | None], str] = {}
        for key, parts in slices.items():
            buf = ["\n"] * max(b for _, b, _ in parts)
            for a, b, t in parts:
                buf[a:b] = list(t) if len(t) == b - a else list(t[: b - a].ljust(b - a))
            pages[key] = "".join(buf)
        return {cid: pages[(d, p)] for cid, d, p in keys if (d, p) in pages}

    def section(self, chunk_id: int, max_chars: int = 6000) -> tuple[str, str, int]:
        """The text of a chunk's section (its document's chunks under the same heading, in order;
        overlaps merged), the heading, and where the chunk starts in that text (-1: not found)."""
        with self.sessions() as s:
            c = s.get(Chunk, chunk_id)
            if c is None:
                return "", "", -1
            rows = s.execute(
                select(Chunk.id, Chunk.start, Chunk.end, Chunk.text)
                .where(
                    Chunk.document_id == c.document_id,
                    Chunk.heading == c.heading,
                    Chunk.page.is_not_distinct_from(c.page),
                )
                .order_by(Chunk.start)
            ).all()
            heading = c.heading
        text, at, reached = "", -1, -1
        for cid, a, b, t in rows:
            if a < reached:  # overlapping windows: keep only what is new
                t = t[reached - a :] if len(t) == b - a else t
            elif text:
                text += "\n"
            if cid == chunk_id:
                at = max(0, len(text) - max(0, reached - a))
            text += t
            reached = max(reached, b)
            if len(text) > max_chars and at >= 0:
                break
        return text, heading, at

    def chunk_ids(self, collection: str, where: SearchFilter) -> list[int]:
        """The ready chunks of a collection that pass a filter (documents, pages)."""
        params: dict[str, object] = {"col": collection}
        sql = (
            "SELECT c.id FROM chunks c JOIN documents d ON d.id = c.document_id JOIN collections col "
            "ON col.id = d.collection_id WHERE col.name = :col AND d.status = 'ready'" + where.sql(params)
        )
        with self.engine.connect() as conn:
            return [int(r[0]) for r in conn.execute(text(sql), params)]

    def count_chunks(self, collection: str, document: str, pages: Sequence[int] = ()) -> int:
        """Ready chunks of a document that overlap any of `pages` (all of them when none are given)."""
        sql = (
            "SELECT COUNT(*) FROM chunks c JOIN documents d ON d.id = c.document_id JOIN collections col "
            "ON col.id = d.collection_id WHERE col.name = :col AND d.name = :doc AND d.status = 'ready'"
        )
        if pages:  # a document without pages: every passage of it is relevant
            overlaps = " OR ".join(
                f"(c.page <= :p{i} AND COALESCE(c.page_end, c.page) >= :p{i})" for i in range(len(pages))
            )
            sql += f" AND ({overlaps})"
        params: dict[str, object] = {"col": collection, "doc": document}
        params.update({f"p{i}": p for i, p in enumerate(pages)})
        with self.engine.connect() as conn:
            return int(conn.execute(text(sql), params).scalar() or 0)

    def sample_texts(self, n: int) -> list[str]:
        """Up to n chunk texts spread over the workspace (for measuring the encoder on real text)."""
        with self.sessions() as s:
            total = s.scalar(select(func.count(Chunk.id))) or 0
            step = max(1, total // max(n, 1))
            rows = s.execute(select(Chunk.text).where(Chunk.id % step == 0).order_by(Chunk.id).limit(n))
            return [r[0] for r in rows]

    def chunks(self, ids: Sequence[int]) -> dict[int, StoredChunk]:
        """Ready chunks by id (chunks of documents not ready are left out)."""
        if not ids:
            return {}
        with self.sessions() as s:
            rows = s.execute(
                select(Chunk, Document.name, Collection.name, Document.pages_json)
                .select_from(Chunk)
                .join(Document, Chunk.document_id == Document.id)
                .join(Collection, Document.collection_id == Collection.id)
                .where(Chunk.id.in_(list(ids)), Document.status == DocumentStatus.READY)
            ).all()
        return {
            c.id: StoredChunk(
                c.id,
                dname,
                c.document_id,
                cname,
                c.page,
                c.page_end,
                c.heading,
                c.start,
                c.end,
                c.text,
                c.n_tokens,
                c.embedding,
                *_page_info(pages_json, c.page),
            )
            for c, dname, cname, pages_json in rows
        }


def _page_info(pages_json: str | None, page: int | None) -> tuple[float | None, tuple[float, float] | None]:
    """What `page` is beyond text: its OCR confidence when read from a picture, its start and end
    when it is a stretch of a recording."""
    if not pages_json or page is None:
        return None, None
    info = json.loads(pages_json).get(str(page)) or {}
    seconds = (float(info["start"]), float(info["end"])) if "start" in info and "end" in info else None
    return (float(info["ocr"]) if "ocr" in info else None), seconds
