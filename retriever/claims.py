"""Check a claim against a collection: `archivist verify` and the API's verify endpoint.

Each sentence of the text is a claim. The collections are searched for the whole text (and for
each sentence when there are several), and every claim is read by the verifier against the
passages found: supported, contradicted or not found, with the sentence and page it was read
against.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ingest.embed import Embedder
from ingest.store import Store
from retriever.grounding import Neighbours, is_claim, strip_citations, verdict
from retriever.passages import passage_sentences
from retriever.search import Hit, search
from retriever.sentences import collapse, split_sentences
from retriever.verify import Verdict

MAX_CLAIM_CHARS = 4000  # a claim is a sentence or a short paragraph, not a document


@dataclass(frozen=True)
class ClaimCheck:
    """One claim's verdict and the documents' sentence it was read against."""

    verdict: Verdict
    sentence: str | None = None
    document: str | None = None
    page: int | None = None

    def to_json(self) -> dict[str, Any]:
        v = self.verdict
        return {
            "claim": v.claim,
            "verdict": v.label,
            "reason": v.reason,
            "similarity": round(v.similarity, 4),
            "evidence": None
            if self.sentence is None
            else {"sentence": self.sentence, "document": self.document, "page": self.page},
        }


def verify_text(
    store: Store, embedder: Embedder, collections: Sequence[str], text: str, top_k: int = 5
) -> list[ClaimCheck]:
    """Every claim of `text` checked against what a search of `collections` finds for it."""
    text = text.strip()
    if not text:
        raise ValueError("the claim is empty")
    if len(text) > MAX_CLAIM_CHARS:
        raise ValueError(f"the claim is {len(text):,} characters; the limit is {MAX_CLAIM_CHARS:,}")
    claims = [strip_citations(text[a:b]) for a, b in split_sentences(text)]
    claims = [c for c in claims if is_claim(c)] or [text]
    hits: list[Hit] = []
    seen: set[int] = set()
    for query in [text, *claims] if len(claims) > 1 else [text]:
        for h in search(store, embedder, collections, query, top_k, per_page=2):
            if h.chunk_id not in seen:
                seen.add(h.chunk_id)
                hits.append(h)
    ps = passage_sentences(store, embedder, hits)
    vectors = embedder.embed(claims, batch_size=8)
    around = Neighbours.of(ps)
    out = []
    for claim, vector in zip(claims, vectors, strict=True):
        v = verdict(claim, vector, ps, around)
        if v.sentence is None:
            out.append(ClaimCheck(v))
            continue
        s = ps.sentences[v.sentence]
        h = ps.hits[s.passage - 1]
        out.append(ClaimCheck(v, collapse(s.text), h.document, h.page))
    return out
