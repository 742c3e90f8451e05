"""DOCX (paragraphs, headings, tables), CSV and JSON as text."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections import Counter
from collections.abc import Callable
from typing import Any

from ingest.errors import IngestError

MAX_UNCOMPRESSED = 200 * 2**20  # a DOCX archive may not expand beyond this
MAX_RATIO = 200  # nor compress any member more than this (zip bombs compress ~1000x)


def check_zip(data: bytes, name: str) -> zipfile.ZipFile:
    """Open a ZIP-based document after checking it cannot expand into a bomb."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise IngestError(f"{name}: not a readable DOCX ({exc})") from None
    total = 0
    for info in zf.infolist():
        total += info.file_size
        if info.file_size > 1_000_000 and info.compress_size and info.file_size / info.compress_size > MAX_RATIO:
            raise IngestError(
                f"{name}: member {info.filename} expands {info.file_size / info.compress_size:,.0f}x; "
                f"the limit is {MAX_RATIO}x (zip bomb?)"
            )
    if total > MAX_UNCOMPRESSED:
        raise IngestError(
            f"{name}: expands to {total / 2**20:,.0f} MB; the limit is {MAX_UNCOMPRESSED / 2**20:,.0f} MB"
        )
    return zf


def docx_text(data: bytes, name: str, drop_hidden: bool = True) -> tuple[str, Counter[str]]:
    """Paragraphs in order, headings as Markdown '#', tables as ' | '-separated rows; and the hidden
    characters per kind, kept out of the text unless drop_hidden is False.

    Hidden as Word shows it: runs marked hidden (`w:vanish`), directly or through their character,
    paragraph or default style; white text on an unshaded page; text under 1 pt."""
    check_zip(data, name)
    import docx
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    try:
        document = docx.Document(io.BytesIO(data))
    except Exception as exc:  # python-docx raises several types on damaged files
        raise IngestError(f"{name}: not a readable DOCX ({type(exc).__name__}: {exc})") from None
    styles = _Styles(document)
    hidden: Counter[str] = Counter()

    def para(p: Any, shaded: bool = False) -> str:
        return styles.paragraph_text(p, drop_hidden, hidden, shaded).strip()

    out: list[str] = []

    def blocks(parent: Any) -> None:
        """Paragraphs and tables in order; content controls (`w:sdt`) hold blocks of their own."""
        for block in parent.iterchildren():
            tag = block.tag.rsplit("}", 1)[-1]
            if tag == "sdt":
                content = block.find(styles.qn("w:sdtContent"))
                if content is not None:
                    blocks(content)
            elif tag == "p":
                p = Paragraph(block, document)
                text = para(block)
                if not text:
                    continue
                style = (p.style.name if p.style is not None else "") or ""
                if style.lower().startswith("heading") and style[-1:].isdigit():
                    out.append("#" * min(6, int(style[-1])) + " " + text)
                elif style.lower() == "title":
                    out.append("# " + text)
                else:
                    out.append(text)
            elif tag == "tbl":
                for row in Table(block, document).rows:
                    cells = [
                        " ".join(para(p._p, styles.cell_shaded(c._tc)) for p in c.paragraphs).strip() for c in row.cells
                    ]
                    if any(cells):
                        out.append(" | ".join(cells))

    blocks(document.element.body)
    out += _notes(document, para)
    return "\n\n".join(out), +hidden


_NOTES = {
    "http://schemas.openxmlformats.org/officeDocument/2006/relationships/footnotes": "footnote",
    "http://schemas.openxmlformats.org/officeDocument/2006/relationships/endnotes": "endnote",
}


def _notes(document: Any, para: Callable[[Any], str]) -> list[str]:
    """The footnotes and endnotes (Word prints them: they are part of what a reader reads), each as
    a paragraph "[footnote N] text" after the body; the separators Word keeps there are left out."""
    from docx.oxml import parse_xml
    from docx.oxml.ns import qn

    out: list[str] = []
    for rel in document.part.rels.values():
        kind = _NOTES.get(rel.reltype)
        if kind is None or rel.is_external:
            continue
        root = parse_xml(rel.target_part.blob)
        for note in root.iterchildren():
            if note.get(qn("w:type")) in ("separator", "continuationSeparator", "continuationNotice"):
                continue
            text = " ".join(t for t in (para(p) for p in note.iter(qn("w:p"))) if t)
            if text:
                out.append(f"[{kind} {note.get(qn('w:id'))}] {text}")
    return out


class _Styles:
    """Run properties as Word resolves them: direct, then the character style, the paragraph style
    and the styles they are based on, then the document defaults."""

    def __init__(self, document: Any) -> None:
        from docx.oxml.ns import qn

        self.qn = qn
        self.by_id: dict[str, Any] = {}
        self.default_rpr = None
        root = document.styles.element
        for st in root.iter(qn("w:style")):
            self.by_id[st.get(qn("w:styleId")) or ""] = st
        d = root.find(qn("w:docDefaults"))
        if d is not None:
            self.default_rpr = d.find(f"{qn('w:rPrDefault')}/{qn('w:rPr')}")

    def _chain(self, style_id: str | None) -> list[Any]:
        out: list[Any] = []
        seen: set[str] = set()
        while style_id and style_id not in seen and style_id in self.by_id:
            seen.add(style_id)
            st = self.by_id[style_id]
            rpr = st.find(self.qn("w:rPr"))
            if rpr is not None:
                out.append(rpr)
            based = st.find(self.qn("w:basedOn"))
            style_id = based.get(self.qn("w:val")) if based is not None else None
        return out

    def _prop(self, rprs: list[Any], tag: str) -> Any:
        for rpr in rprs:
            el = rpr.find(self.qn(tag))
            if el is not None:
                return el
        return None

    def _on(self, el: Any) -> bool:
        return el is not None and (el.get(self.qn("w:val")) or "true").lower() not in ("false", "0", "off")

    def cell_shaded(self, tc: Any) -> bool:
        """Is a table cell filled (its own shading): white text on it is seen."""
        tcpr = tc.find(self.qn("w:tcPr"))
        return tcpr is not None and self._shaded(tcpr.find(self.qn("w:shd")))

    def paragraph_text(self, p: Any, drop: bool, hidden: Counter[str], shaded: bool = False) -> str:
        qn = self.qn
        ppr = p.find(qn("w:pPr"))
        pstyle = ppr.find(qn("w:pStyle")) if ppr is not None else None
        para_rprs = self._chain(pstyle.get(qn("w:val")) if pstyle is not None else None)
        shaded = shaded or (ppr is not None and self._shaded(ppr.find(qn("w:shd"))))
        parts: list[str] = []
        for r in p.iter(qn("w:r")):
            rpr = r.find(qn("w:rPr"))
            rstyle = rpr.find(qn("w:rStyle")) if rpr is not None else None
            chain = ([rpr] if rpr is not None else []) + self._chain(
                rstyle.get(qn("w:val")) if rstyle is not None else None
            )
            chain += para_rprs + ([self.default_rpr] if self.default_rpr is not None else [])
            text = "".join(
                t.text or "" if t.tag == qn("w:t") else ("\t" if t.tag == qn("w:tab") else "\n")
                for t in r
                if t.tag in (qn("w:t"), qn("w:tab"), qn("w:br"))
            )
            kind = self._hidden_kind(chain, shaded)
            if kind and text.strip():
                hidden[kind] += len(text.strip())
            if kind is None or not drop:
                parts.append(text)
        return "".join(parts)

    def _shaded(self, shd: Any) -> bool:
        if shd is None:
            return False
        fill = (shd.get(self.qn("w:fill")) or "auto").upper()
        theme = (shd.get(self.qn("w:themeFill")) or "").lower()
        return (fill not in ("AUTO", "FFFFFF") and theme not in ("background1", "bg1")) or (
            bool(theme) and theme not in ("background1", "bg1", "light1", "lt1")
        )

    def _hidden_kind(self, chain: list[Any], shaded: bool) -> str | None:
        if self._on(self._prop(chain, "w:vanish")) or self._on(self._prop(chain, "w:specVanish")):
            return "hidden run (w:vanish)"
        size = self._prop(chain, "w:sz")
        if size is not None and (size.get(self.qn("w:val")) or "").isdigit() and int(size.get(self.qn("w:val"))) < 2:
            return "text under 1 pt"
        color = self._prop(chain, "w:color")
        value = (color.get(self.qn("w:val")) or "").upper() if color is not None else ""
        theme = (color.get(self.qn("w:themeColor")) or "").lower() if color is not None else ""
        if theme in ("background1", "bg1", "light1", "lt1"):  # the page's own colour, white in Word's themes
            value = "FFFFFF"
        background = self._prop(chain, "w:highlight") is not None or self._shaded(self._prop(chain, "w:shd"))
        if value in ("FFFFFF", "FEFEFE", "FDFDFD") and not (shaded or background):
            return "white text"
        return None


def csv_text(text: str) -> str:
    """Each row as 'column: value; ...' so a passage carries its headers."""
    rows = list(csv.reader(io.StringIO(text)))
    if len(rows) < 2:
        return text
    header = rows[0]
    lines = ["; ".join(f"{h}: {v}" for h, v in zip(header, row, strict=False) if v.strip()) for row in rows[1:]]
    return "\n".join(line for line in lines if line)


def json_text(text: str) -> str:
    """JSON pretty-printed, so nested keys stay next to their values."""
    try:
        return json.dumps(json.loads(text), indent=1, ensure_ascii=False)
    except ValueError:
        return text
