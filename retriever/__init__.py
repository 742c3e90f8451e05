"""RAM management: find the passages that matter and pack them into the context window.

Public API:
- `search(store, embedder, collections, query, k, mode=..., where=..., reranker=...)` -> list of `Hit`
  (modes: dense, keyword (BM25), hybrid (weighted reciprocal rank fusion))
- `SearchFilter` (documents, page range), `FusionSettings`, `Reranker`, `CrossEncoderReranker`
- `build_prompt(...)` -> `PromptPlan` (messages within the token budget, passages numbered [1]..[n],
  marked as untrusted data)
- `evaluate(...)`, `load_questions(path)`: hit@1, hit@5, MRR, nDCG@10 and latency over a JSONL set
"""

from retriever.context import PromptPlan, build_prompt, passage_label
from retriever.evaluate import EvalResult, Question, evaluate, load_questions
from retriever.filters import SearchFilter
from retriever.keyword import KeywordIndex, SqliteKeywordIndex
from retriever.rerank import CrossEncoderReranker, Reranker
from retriever.search import MODES, FusionSettings, Hit, Mode, rrf, search

__all__ = [
    "MODES",
    "CrossEncoderReranker",
    "EvalResult",
    "FusionSettings",
    "Hit",
    "KeywordIndex",
    "Mode",
    "PromptPlan",
    "Question",
    "Reranker",
    "SearchFilter",
    "SqliteKeywordIndex",
    "build_prompt",
    "evaluate",
    "load_questions",
    "passage_label",
    "rrf",
    "search",
]
