"""Built-in retrieval evaluation: hit@1, hit@5, MRR and nDCG@10 over a JSONL question set."""

from __future__ import annotations

import dataclasses
import json
import math
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ingest.embed import Embedder
from ingest.store import Store
from retriever.search import FusionSettings, Hit, Mode, search
from runtime.errors import ArchivistError


@dataclass(frozen=True)
class Question:
    """One line of the evaluation file."""

    id: str
    document: str
    question: str
    pages: tuple[int, ...]
    # Verbatim words of the answering page, when the set has them; several when the documents
    # answer it in more than one place (any of them counts)
    evidence: tuple[str, ...] = ()
    answer: str | None = None  # a short reference answer, when the set has one
    unanswerable: bool = False  # the documents do not answer it: the right reply is the refusal
    # The terms a right answer must name: each group is satisfied by any of its alternatives
    # ("keys": ["sink", ["read.csv2", "read.delim2"]])
    keys: tuple[tuple[str, ...], ...] = ()


@dataclass
class EvalResult:
    """Scores of one mode over the whole set."""

    mode: str
    questions: int
    hit_at_1: float
    hit_at_5: float
    mrr: float
    ndcg_at_10: float
    p50_ms: float
    p95_ms: float
    misses: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


def load_questions(path: Path) -> list[Question]:
    """Read a JSONL file of {id, document, question, pages[, evidence, answer, unanswerable]}; a bad
    line is an error naming it. An unanswerable question needs no pages. `evidence` is a string, or
    a list of strings when the documents answer the question in several places (any one counts)."""
    if not path.is_file():
        raise ArchivistError(f"{path}: no such file")
    out: list[Question] = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            d = json.loads(line)
            unanswerable = bool(d.get("unanswerable", False))
            out.append(
                Question(
                    str(d.get("id", n)),
                    d["document"],
                    d["question"],
                    tuple(int(p) for p in (d.get("pages") or [] if unanswerable else d["pages"])),
                    _evidence(d.get("evidence")),
                    str(d["answer"]) if d.get("answer") else None,
                    unanswerable,
                    _keys(d.get("keys")),
                )
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ArchivistError(f"{path}:{n}: not a question line ({type(exc).__name__}: {exc})") from None
    if not out:
        raise ArchivistError(f"{path}: no questions")
    return out


def _evidence(value: Any) -> tuple[str, ...]:
    """A question's evidence: one non-empty string, or a list of them."""
    if not value:
        return ()
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(e, str) and e.strip() for e in items):
        raise ValueError("'evidence' must be a non-empty string or a list of them")
    return tuple(items)


def _keys(value: Any) -> tuple[tuple[str, ...], ...]:
    """A question's key terms: a list whose items are a term or a list of alternative terms."""
    if not value:
        return ()
    if not isinstance(value, list):
        raise ValueError("'keys' must be a list of terms (a term: a string, or a list of alternatives)")
    groups = tuple((g,) if isinstance(g, str) else tuple(g) if isinstance(g, list) else () for g in value)
    if not all(groups) or not all(isinstance(t, str) and t.strip() for g in groups for t in g):
        raise ValueError("'keys' must hold non-empty strings or non-empty lists of them")
    return groups


def with_keys(questions: Sequence[Question], path: Path) -> list[Question]:
    """The questions with the key terms of `path` (JSONL lines {"id", "keys"}) by id: a set that
    cannot be edited (a shared one) gets its keys from a file beside the project's sets."""
    if not path.is_file():
        raise ArchivistError(f"{path}: no such file")
    keys: dict[str, tuple[tuple[str, ...], ...]] = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            try:
                d = json.loads(line)
                keys[str(d["id"])] = _keys(d["keys"])
            except (ValueError, KeyError, TypeError) as exc:
                raise ArchivistError(f"{path}:{n}: not a keys line ({type(exc).__name__}: {exc})") from None
    unknown = sorted(set(keys) - {q.id for q in questions})
    if unknown:
        raise ArchivistError(f"{path}: keys for questions not in the set: {', '.join(unknown[:5])}")
    return [dataclasses.replace(q, keys=keys.get(q.id, q.keys)) for q in questions]


def is_hit(h: Hit, q: Question) -> bool:
    """Right document, and the passage's pages overlap the expected ones (any passage of it, for a
    document without pages: HTML, Markdown, DOCX)."""
    if h.document == q.document and not q.pages:
        return True
    if h.document != q.document or h.page is None:
        return False
    end = h.page_end or h.page
    return any(h.page <= p <= end for p in q.pages)


def _relevant_count(store: Store, collection: str, q: Question) -> int:
    return store.count_chunks(collection, q.document, q.pages)


def evaluate(
    store: Store,
    embedder: Embedder,
    collection: str,
    questions: Sequence[Question],
    mode: Mode,
    k: int = 10,
    fusion: FusionSettings | None = None,
) -> EvalResult:
    """Run every answerable question through `search` and score the ranking."""
    if collection not in store.collection_names():
        raise ArchivistError(f"no collection named {collection!r}; ingest the documents first")
    questions = [q for q in questions if not q.unanswerable]
    if not questions:
        raise ArchivistError("no answerable question in the set: retrieval needs questions with pages")
    k = max(k, 10)
    search(store, embedder, [collection], "warm up", 1, mode=mode)
    h1 = h5 = rr = ndcg = 0.0
    times: list[float] = []
    misses: list[str] = []
    for q in questions:
        t = time.perf_counter()
        hits = search(store, embedder, [collection], q.question, k, mode=mode, fusion=fusion)
        times.append((time.perf_counter() - t) * 1000)
        flags = [is_hit(h, q) for h in hits]
        first = next((i for i, f in enumerate(flags) if f), None)
        h1 += first == 0
        h5 += first is not None and first < 5
        rr += 1 / (first + 1) if first is not None else 0.0
        if first is None or first >= 5:
            misses.append(q.id)
        dcg = sum(1 / math.log2(i + 2) for i, f in enumerate(flags[:10]) if f)
        ideal = sum(1 / math.log2(i + 2) for i in range(min(10, max(1, _relevant_count(store, collection, q)))))
        ndcg += dcg / ideal
    n = len(questions)
    times.sort()
    p95 = times[min(len(times) - 1, math.ceil(0.95 * len(times)) - 1)]
    return EvalResult(mode, n, h1 / n, h5 / n, rr / n, ndcg / n, statistics.median(times), p95, misses)
