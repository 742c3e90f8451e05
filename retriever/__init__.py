"""RAM management: find the passages that matter and pack them into the context window.

Public API:
- `search(store, embedder, collections, query, k)` -> list of `Hit`
- `build_prompt(...)` -> `PromptPlan` (messages within the token budget, passages numbered [1]..[n],
  marked as untrusted data)
- `passage_label(hit)`: "document, page N"
"""

from retriever.context import PromptPlan, build_prompt, passage_label
from retriever.search import Hit, search

__all__ = ["Hit", "PromptPlan", "build_prompt", "passage_label", "search"]
