"""Parse each PDF font once per document instead of once per page.

pypdf builds a `Font` (encoding, ToUnicode map, widths) from every font resource of a page each
time it extracts that page's text, although a document's pages share a handful of fonts.
Measured on fullrefman.pdf: 31% of extraction time went to `Font.from_font_resource` (546
calls for 100 pages). The fonts are cached per reader, keyed by the font object's number, and
the cache goes away with the reader. Extraction only ever sets `space_width` on a font, to the
same value each time, so a shared `Font` gives the same text.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

_lock = threading.Lock()
_installed = False
_cache: weakref.WeakKeyDictionary[Any, dict[tuple[int, int], Any]] = weakref.WeakKeyDictionary()


def install() -> None:
    """Wrap pypdf's `Font.from_font_resource` with the per-document cache (idempotent)."""
    global _installed
    with _lock:
        if _installed:
            return
        try:
            from pypdf.generic._font import Font
        except ImportError:  # another pypdf layout: parse as pypdf does
            return
        original = Font.__dict__.get("from_font_resource")
        if not isinstance(original, classmethod):
            return
        build = original.__func__

        def from_font_resource(cls: Any, pdf_font_dict: Any) -> Any:
            ref = getattr(pdf_font_dict, "indirect_reference", None)
            pdf = getattr(ref, "pdf", None)
            if ref is None or pdf is None:
                return build(cls, pdf_font_dict)
            try:
                fonts = _cache.setdefault(pdf, {})
            except TypeError:  # not weak-referenceable
                return build(cls, pdf_font_dict)
            key = (int(ref.idnum), int(ref.generation))
            font = fonts.get(key)
            if font is None:
                font = fonts[key] = build(cls, pdf_font_dict)
            return font

        Font.from_font_resource = classmethod(from_font_resource)  # type: ignore[method-assign,assignment]
        _installed = True
