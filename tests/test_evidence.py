"""Evidence in place: quotes located on the PDF page (PDFium's boxes), page labels, passages as
formatted text, and each passage shown once however many quotes come from it."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from app.ui.common import passage_markdown
from app.ui.evidence import find_span, page_label, page_words, pdf_page, relevance_words
from tests.shared import PAGES, make_pdf


def test_a_quote_is_found_across_line_breaks_and_outlined_on_its_page(tmp_path: Path) -> None:
    pdf = make_pdf(tmp_path / "guide.pdf", PAGES)
    quote = "The lens of the Greywater lighthouse is cleaned every Tuesday by the keeper."
    data, boxes, found = pdf_page(str(pdf), 2, (quote,))
    assert found == 1 and data.startswith(b"%PDF")
    import pypdfium2 as pdfium

    one = pdfium.PdfDocument(data)
    assert len(one) == 1 and "Greywater" in one[0].get_textpage().get_text_range()  # only the cited page is sent
    width, height = one[0].get_size()
    one.close()
    assert boxes and all(b["page"] == 1 and 0 <= b["x"] < width and 0 <= b["y"] < height for b in boxes)
    top_of_text = min(b["y"] for b in boxes)
    assert top_of_text < height / 3  # fpdf writes from the top: the box is near the top (y counts from the top)
    _, _, none = pdf_page(str(pdf), 3, (quote,))
    assert none == 0  # not on another page
    assert find_span("The lens of the\r\nGreywater  lighthouse", "lens of the Greywater lighthouse") == (4, 38)


def test_page_labels_the_book_prints_are_read(tmp_path: Path) -> None:
    from pypdf import PdfReader, PdfWriter

    pdf = make_pdf(tmp_path / "book.pdf", PAGES)
    writer = PdfWriter(clone_from=PdfReader(pdf))
    writer.set_page_label(0, 1, style="/r")  # i, ii
    writer.set_page_label(2, 3, style="/D", start=1)  # 1, 2
    writer.write(tmp_path / "labelled.pdf")
    assert page_label(str(tmp_path / "labelled.pdf"), 2) == "ii"
    assert page_label(str(tmp_path / "labelled.pdf"), 3) == "1"
    assert page_label(str(pdf), 3) is None  # no labels: only the page number is shown

    class Svc:  # the store's one accessor page_words uses
        class store:
            @staticmethod
            def original(collection: str, name: str) -> Path:
                return tmp_path / name

    cite = {"document": "labelled.pdf", "collection": "c", "page": 3}
    assert page_words(Svc, cite) == ", page 3 (p. 1)"
    assert page_words(Svc, {**cite, "document": "book.pdf"}) == ", page 3"


def test_passages_read_as_formatted_text() -> None:
    md = "## Adding documents\n\nUse `archivist ingest` ¶ then:\n\n```\nmake run\n```"
    out = passage_markdown(md, "getting-started.md")
    assert out.startswith("## Adding documents") and "`archivist ingest`" in out and "```\nmake run\n```" in out
    assert "\u00b6" not in out
    code = "Example:\n# a comment in R\n    x <- c(1, 2)\n"
    out = passage_markdown(code, "R-intro.pdf")
    assert "\\# a comment" in out  # PDF text is not Markdown: no heading made of a comment
    assert "\u00a0" * 4 + "x \\<\\- c\\(1, 2\\)" in out  # indentation kept
    assert relevance_words(0.72) == "close match (72%)" and relevance_words(0.3).startswith("loose")


def test_one_passage_is_shown_once_with_all_its_quotes() -> None:
    def page() -> None:
        from app.ui.evidence import show_quotes

        context = "The lamp runs on a 24 volt supply. Spare bulbs are kept in the oil house. Parking is free."
        quotes = [
            {
                "text": "The lamp runs on a 24 volt supply.",
                "document": "g.pdf",
                "page": 2,
                "start": 100,
                "end": 134,
                "passage": 1,
                "context": context,
                "context_start": 100,
            },
            {
                "text": "Spare bulbs are kept in the oil house.",
                "document": "g.pdf",
                "page": 2,
                "start": 135,
                "end": 173,
                "passage": 1,
                "context": context,
                "context_start": 100,
            },
        ]
        show_quotes(quotes, key="t", expanded=True)

    at = AppTest.from_function(page).run()
    assert not at.exception, at.exception
    shown = [m.value for m in at.markdown]
    assert sum(v.startswith("**[1]") for v in shown) == 1  # one header for the passage
    [body] = [v for v in shown if "volt" in v]
    assert body.count(":orange-background[") == 2 and body.count("Parking") == 1
