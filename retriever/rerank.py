"""The reranker seam: a cross-encoder scores (question, passage) pairs."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Protocol


class Reranker(Protocol):
    """Scores passages for a question; higher is more relevant."""

    def score(self, query: str, passages: Sequence[str]) -> list[float]: ...


class CrossEncoderReranker:
    """sentence-transformers `CrossEncoder`, from a local path or a hub id."""

    def __init__(self, model: str, device: str = "cpu") -> None:
        from sentence_transformers import CrossEncoder

        self.name = model
        self._model = CrossEncoder(model, device=device)
        self._lock = threading.Lock()

    def score(self, query: str, passages: Sequence[str]) -> list[float]:
        if not passages:
            return []
        with self._lock:
            scores = self._model.predict([(query, p) for p in passages], show_progress_bar=False)
        return [float(s) for s in scores]
