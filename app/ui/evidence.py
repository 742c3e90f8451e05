"""Evidence in place: a citation or quote opens its document at the cited page inside the app, the
quoted words outlined on the page (PDF, drawn by streamlit-pdf-viewer from PDFium's text boxes), or
the passage inside its section as formatted text (HTML, Markdown, DOCX, text). PDFs show the page
label the book prints ("p. 28") beside the physical page where they have page labels."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import streamlit as st

from app.ui.common import esc_markdown, highlight, passage_markdown, plain, safe_markdown, services

_WS = re.compile(r"\s+")
OUTLINE = "#e8590c"  # the highlight's colour, readable on white and dark pages


def _collapsed(text: str) -> tuple[str, list[int]]:
    """`text` with runs of whitespace as one space (case folded), and each kept character's index."""
    out: list[str] = []
    where: list[int] = []
    space = False
    for i, ch in enumerate(text):
        if ch.isspace() or ch in "\ufffe\u00ad":  # PDFium writes soft hyphens at line ends
            space = bool(out)
            continue
        if space:
            out.append(" ")
            where.append(i)
            space = False
        out.append(ch.lower())
        where.append(i)
    return "".join(out), where


def find_span(page_text: str, quote: str) -> tuple[int, int] | None:
    """Where `quote` is in `page_text`, whatever the line breaks and spacing; a long quote that is
    not found whole is found by its first words."""
    hay, where = _collapsed(page_text)
    needle = _WS.sub(" ", quote.strip()).lower()
    for attempt in (needle, " ".join(needle.split()[:8])):
        if len(attempt) < 8:
            continue
        i = hay.find(attempt)
        if i >= 0:
            return where[i], where[i + len(attempt) - 1] + 1
    return None


@st.cache_data(max_entries=2048, show_spinner=False)
def page_label(path: str, page: int) -> str | None:
    """The label the PDF gives its page (1-based `page`) when it differs from the page number."""
    import pypdfium2 as pdfium

    try:
        pdf = pdfium.PdfDocument(path)
        try:
            label = pdf.get_page_label(page - 1)
        finally:
            pdf.close()
    except Exception:  # pdfium raises its own error type on a damaged file; no label then
        return None
    return label if label and label != str(page) else None


@st.cache_data(max_entries=64, show_spinner=False)
def pdf_page(path: str, page: int, quotes: tuple[str, ...]) -> tuple[bytes, list[dict[str, Any]], int]:
    """The cited page as a one-page PDF (quick to send), boxes around each quote's lines in the
    viewer's coordinates (points from the top left), and how many quotes were found on it."""
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(path)
    try:
        p = pdf[page - 1]
        _, height = p.get_size()
        tp = p.get_textpage()
        text = tp.get_text_range()
        boxes: list[dict[str, Any]] = []
        found = 0
        for q in quotes:
            span = find_span(text, q)
            if span is None:
                continue
            found += 1
            for i in range(tp.count_rects(span[0], span[1] - span[0])):
                left, bottom, right, top = tp.get_rect(i)
                boxes.append(
                    {
                        "page": 1,
                        "x": left - 1,
                        "y": height - top - 1,
                        "width": right - left + 2,
                        "height": top - bottom + 2,
                        "color": OUTLINE,
                    }
                )
        single = pdfium.PdfDocument.new()
        single.import_pages(pdf, [page - 1])
        buf = io.BytesIO()
        single.save(buf)
        single.close()
    finally:
        pdf.close()
    return buf.getvalue(), boxes, found


@st.cache_data(max_entries=16, show_spinner=False)
def picture_page(path: str, page: int, quotes: tuple[str, ...]) -> tuple[bytes, int]:
    """A page read from a picture (a scanned PDF page, an image file's frame) as a PNG with the
    quoted lines outlined from the OCR engine's line boxes (read again here: the same engine and
    settings give the same lines), and how many quotes were found on it."""
    from PIL import Image, ImageDraw

    from ingest.ocr import OcrSettings, read
    from ingest.pictures import page_pixels

    pixels = page_pixels(path, page, OcrSettings().dpi)
    lines = read(pixels, OcrSettings()).lines
    image = Image.fromarray(pixels)
    draw = ImageDraw.Draw(image)
    found = 0
    for q in quotes:
        marked = [ln for ln in lines if _line_in_quote(ln.text, q)]
        found += bool(marked)
        for ln in marked:
            left, top, right, bottom = ln.box
            draw.rectangle((left - 3, top - 3, right + 3, bottom + 3), outline=OUTLINE, width=3)
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return buf.getvalue(), found


def _line_in_quote(line: str, quote: str) -> bool:
    """Most of a line's words (two or more) are words of the quote."""
    words = [w.lower() for w in re.findall(r"\w{2,}", line)]
    said = {w.lower() for w in re.findall(r"\w{2,}", quote)}
    return len(words) >= 2 and sum(w in said for w in words) >= 0.7 * len(words)


def section_markdown(text: str, spans: list[tuple[int, int]]) -> str:
    """A section as formatted text with the quoted spans highlighted (Markdown kept as Markdown,
    made safe; pilcrows from HTML headings dropped)."""

    out, last = [], 0
    for a, b in sorted(spans):
        if a < last:
            continue
        inner = " ".join(text[a:b].split()).replace("[", "\\[").replace("]", "\\]")
        out.append(text[last:a] + ":orange-background[" + inner + "]")
        last = b
    out.append(text[last:])
    return safe_markdown("".join(out).replace("\u00b6", ""))


@st.dialog("In the document", width="large")
def show_evidence(c: dict[str, Any], quotes: list[str]) -> None:
    """The cited page with the quotes outlined, or the passage in its section."""

    svc = services()
    path: Path | None = None
    if c.get("collection") not in ("web", "tools"):
        path = svc.store.original(c["collection"], c["document"])
    page = c.get("page")
    st.markdown(f"**{plain(c['document'])}**")
    if path is not None and c.get("seconds"):
        from ingest.audio import clock

        start, end = (float(x) for x in c["seconds"])
        st.caption(f"From {clock(start)} to {clock(end)} · plays from where the passage starts")
        kinds = {".mp3": "audio/mpeg", ".ogg": "audio/ogg", ".opus": "audio/ogg", ".oga": "audio/ogg"}
        kinds |= {".flac": "audio/flac", ".m4a": "audio/mp4", ".webm": "audio/webm"}
        kind = kinds.get(path.suffix.lower(), "audio/wav")
        st.audio(path.read_bytes(), format=kind, start_time=int(start), end_time=int(end) + 1)
        st.markdown(passage_markdown(str(c["text"])))
        return
    if path is not None and page and c.get("ocr") is not None:
        st.caption(
            f"Page {page} · read from an image (confidence {float(c['ocr']):.2f}) · the quoted lines are outlined"
        )
        with st.spinner("Reading the page again to find the quoted lines..."):
            png, found = picture_page(str(path), int(page), tuple(quotes or [c["text"][:200]]))
        if quotes and not found:
            st.caption("The quote could not be located on the page image; it is below.")
        st.image(png, caption=f"{plain(c['document'])}, page {page}")
        with st.expander("The passage as text"):
            st.markdown(passage_markdown(str(c["text"])))
        return
    if path is not None and path.suffix.lower() == ".pdf" and page:
        from streamlit_pdf_viewer import pdf_viewer

        label = page_label(str(path), int(page))
        st.caption(f"Page {page}" + (f" (printed p. {label})" if label else "") + " · the quoted words are outlined")
        data, boxes, found = pdf_page(str(path), int(page), tuple(quotes or [c["text"][:200]]))
        if quotes and not found:
            st.caption("The quote could not be located on the page image; it is below.")
        pdf_viewer(data, annotations=boxes, annotation_outline_size=2, key=f"pdf-{c['chunk_id']}")
        with st.expander("The passage as text"):
            st.markdown(passage_markdown(str(c["text"])))
        return
    text, heading, _ = svc.store.section(int(c["chunk_id"])) if c.get("chunk_id") else ("", "", -1)
    text = text or str(c["text"])
    if heading:
        st.caption(f"Section: {plain(heading)}")
    spans = [s for q in (quotes or [c["text"][:200]]) if (s := find_span(text, q)) is not None]
    st.markdown(section_markdown(text, spans))


def page_words(svc: Any, c: dict[str, Any]) -> str:
    """ ", page 30 (p. 24)": the physical page, and the label the book prints when it has one; " at
    12:34" in a recording."""
    if c.get("seconds"):
        from ingest.audio import clock

        return f" at {clock(float(c['seconds'][0]))}"
    if not c.get("page"):
        return ""
    words = f", page {c['page']}"
    if c.get("collection") in ("web", "tools") or not str(c.get("document", "")).lower().endswith(".pdf"):
        return words
    path = svc.store.original(c["collection"], c["document"])
    label = page_label(str(path), int(c["page"])) if path is not None else None
    return words + (f" (p. {label})" if label else "")


def relevance_words(similarity: float) -> str:
    """One score a person reads: how closely the passage matches the question."""
    pct = max(0, min(100, round(100 * similarity)))
    word = "close match" if similarity >= 0.6 else "related" if similarity >= 0.4 else "loose match"
    return f"{word} ({pct}%)"


def show_citations(citations: list[dict[str, Any]], key: str, quotes: list[dict[str, Any]] | None = None) -> None:
    """Each citation (most relevant first, numbered as the answer cites them) with its passage as
    formatted text, a button that opens the document at the page with the quotes outlined, and the
    original file."""
    svc = services()
    for c in sorted(citations, key=lambda c: int(c["n"])):
        page = page_words(svc, c)
        label = f"[{c['n']}] {plain(c['document'])}{page} · {relevance_words(float(c.get('similarity', c['score'])))}"
        if c.get("ocr") is not None:  # the page's text was read from a picture: worth a look at the page
            label += f" · read from an image (confidence {float(c['ocr']):.2f})"
        with st.expander(label):
            st.markdown(passage_markdown(str(c["text"]), c["document"]))
            if c["collection"] in ("web", "tools"):  # a page the web reader read, a tool's result: no file
                continue
            b1, b2 = st.columns(2)
            if b1.button("Show in the document", key=f"ev-{key}-{c['n']}", icon=":material/find_in_page:"):
                mine = [q["text"] for q in quotes or [] if q.get("passage") == c["n"]]
                show_evidence(c, mine)
            original = svc.store.original(c["collection"], c["document"])
            if original is not None:
                b2.download_button(
                    f"Download {plain(c['document'])}",
                    original.read_bytes(),
                    file_name=c["document"],
                    key=f"dl-{key}-{c['n']}",
                    help=f"the original file{page}",
                )


def show_quotes(
    quotes: list[dict[str, Any]], key: str, expanded: bool = False, citations: list[dict[str, Any]] | None = None
) -> None:
    """What the documents say: each passage once, with every quote taken from it highlighted in
    place, and a button that opens the document there."""
    if not quotes:
        return
    by_passage: dict[tuple[Any, Any, Any], list[dict[str, Any]]] = {}
    for q in quotes:
        by_passage.setdefault((q["passage"], q["document"], q.get("page")), []).append(q)
    with st.expander("What the documents say", expanded=expanded):
        for i, ((n, document, page), group) in enumerate(by_passage.items()):
            where = f", page {page}" if page is not None else ""
            st.markdown(f"**[{n}] {esc_markdown(document)}{where}**")
            context, c0 = group[0].get("context"), int(group[0].get("context_start", 0))
            if context and all(q.get("context") == context for q in group):
                spans = [(int(q["start"]) - c0, int(q["end"]) - c0) for q in group]
                st.markdown(passage_markdown(context, document, spans))
            else:
                for q in group:
                    st.markdown(highlight(q["text"], 0, len(q["text"])))
            cited = next((c for c in citations or [] if c["n"] == n and c["collection"] not in ("web", "tools")), None)
            if cited is not None and st.button(
                "Show in the document", key=f"evq-{key}-{n}", icon=":material/find_in_page:"
            ):
                show_evidence(cited, [q["text"] for q in group])
            if i < len(by_passage) - 1:
                st.divider()
