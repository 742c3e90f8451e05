"""Search filters: by document and page range (collections are chosen by the caller)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SearchFilter:
    """Only passages of these documents, overlapping these pages."""

    documents: tuple[str, ...] = ()
    page_from: int | None = None
    page_to: int | None = None

    def accepts(self, document: str, page: int | None, page_end: int | None) -> bool:
        if self.documents and document not in self.documents:
            return False
        if self.page_from is None and self.page_to is None:
            return True
        if page is None:
            return False
        end = page_end or page
        return (self.page_from is None or end >= self.page_from) and (self.page_to is None or page <= self.page_to)

    def sql(self, params: dict[str, object]) -> str:
        """SQL conditions over aliases d (documents) and c (chunks); binds its values into params."""
        parts = []
        if self.documents:
            names = ", ".join(f":fd{i}" for i in range(len(self.documents)))
            params.update({f"fd{i}": d for i, d in enumerate(self.documents)})
            parts.append(f"d.name IN ({names})")
        if self.page_from is not None:
            params["fp_from"] = self.page_from
            parts.append("COALESCE(c.page_end, c.page) >= :fp_from")
        if self.page_to is not None:
            params["fp_to"] = self.page_to
            parts.append("c.page <= :fp_to")
        return "".join(f" AND {p}" for p in parts)

    @property
    def active(self) -> bool:
        return bool(self.documents) or self.page_from is not None or self.page_to is not None
