"""DOCX (paragraphs, headings, tables), CSV and JSON as text."""

from __future__ import annotations

import csv
import io
import json
import zipfile

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


def docx_text(data: bytes, name: str) -> str:
    """Paragraphs in order, headings as Markdown '#', tables as ' | '-separated rows."""
    check_zip(data, name)
    import docx
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    try:
        document = docx.Document(io.BytesIO(data))
    except Exception as exc:  # python-docx raises several types on damaged files
        raise IngestError(f"{name}: not a readable DOCX ({type(exc).__name__}: {exc})") from None
    out: list[str] = []
    for block in document.element.body.iterchildren():
        tag = block.tag.rsplit("}", 1)[-1]
        if tag == "p":
            p = Paragraph(block, document)
            text = p.text.strip()
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
                cells = [c.text.strip() for c in row.cells]
                if any(cells):
                    out.append(" | ".join(cells))
    return "\n\n".join(out)


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
