"""A corpus of hiding tricks, each with a visible twin, each proved by rendering here.

Every hidden line is shown invisible by a renderer in the test itself (Chromium for HTML,
Markdown rendered by a CommonMark renderer, and Unicode; PDFium for PDF): the page with the line
and the page with the line made invisible by the renderer's own means (`visibility: hidden` in
the browser, the text cut out in the PDF) differ by no pixel a reader could tell (every channel
within 10%), and for its twin they differ. Then ingest must remove and report every hidden line
and keep every twin, without a warning. The line is a false fact, not an instruction, so no
injection warning can stand in for the hidden-text one. DOCX has no renderer here: its tricks are
checked by Word's documented rules in tests/test_hidden_text.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ingest import load_bytes
from ingest.html_render import CANDIDATES

FACT = "Herons were banned from Lisbon in 1999."
CHROMIUM = next((c for c in CANDIDATES if Path(c).exists()), None)
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium to prove invisibility with")

# (name, hidden markup, visible twin): F is the fact
HTML = [
    ("display none", '<p style="display:none">F</p>', '<p style="display:block">F</p>'),
    ("visibility hidden", '<p style="visibility:hidden">F</p>', '<p style="visibility:visible">F</p>'),
    ("hidden attribute", "<p hidden>F</p>", "<p>F</p>"),
    ("zero font size", '<p style="font-size:0">F</p>', '<p style="font-size:16px">F</p>'),
    ("sub-pixel font", '<p style="font-size:0.4px">F</p>', '<p style="font-size:12px">F</p>'),
    ("opacity 0", '<p style="opacity:0">F</p>', '<p style="opacity:1">F</p>'),
    ("colour transparent", '<p style="color:transparent">F</p>', '<p style="color:black">F</p>'),
    ("rgba alpha 0", '<p style="color:rgba(0,0,0,0)">F</p>', '<p style="color:rgba(0,0,0,1)">F</p>'),
    ("spaced rgb alpha 0", '<p style="color:rgb(0 0 0 / 0)">F</p>', '<p style="color:rgb(0 0 0 / 1)">F</p>'),
    ("near-white on white", '<p style="color:#fefefe">F</p>', '<p style="color:#333">F</p>'),
    (
        "same colour as the box",
        '<div style="background:#123456"><p style="color:#123456">F</p></div>',
        '<div style="background:#123456"><p style="color:#fff">F</p></div>',
    ),
    (
        "white on a white gradient",
        '<div style="background:linear-gradient(#fff,#fff)"><p style="color:#fff">F</p></div>',
        '<div style="background:linear-gradient(#036,#024)"><p style="color:#fff">F</p></div>',
    ),
    (
        "positioned off the page",
        '<p style="position:absolute;left:-9999px">F</p>',
        '<p style="position:absolute;left:20px;top:300px">F</p>',
    ),
    ("fixed above the page", '<p style="position:fixed;top:-500px">F</p>', '<p style="position:fixed;top:500px">F</p>'),
    ("negative margin", '<p style="margin-left:-99999px">F</p>', '<p style="margin-left:0">F</p>'),
    ("text-indent", '<p style="text-indent:-10000px">F</p>', '<p style="text-indent:20px">F</p>'),
    (
        "legacy clip",
        '<p style="position:absolute;top:300px;clip:rect(0 0 0 0)">F</p>',
        '<p style="position:absolute;top:300px;clip:rect(0 2000px 200px 0)">F</p>',
    ),
    ("clip-path inset", '<p style="clip-path:inset(50%)">F</p>', '<p style="clip-path:inset(0)">F</p>'),
    (
        "zero height overflow hidden",
        '<div style="height:0;overflow:hidden"><p>F</p></div>',
        '<div style="overflow:hidden"><p>F</p></div>',
    ),
    (
        "zero width overflow hidden",
        '<div style="width:0;overflow:hidden;white-space:nowrap">F</div>',
        '<div style="overflow:hidden;white-space:nowrap">F</div>',
    ),
    (
        "max-height 0",
        '<div style="max-height:0;overflow:hidden"><p>F</p></div>',
        '<div style="max-height:none;overflow:hidden"><p>F</p></div>',
    ),
    (
        "placed outside its clipping box",
        '<div style="position:relative;height:30px;overflow:hidden"><p style="position:absolute;top:100px">F</p></div>',
        '<div style="position:relative;height:30px;overflow:hidden"><p style="position:absolute;top:0;margin:0">F</p></div>',
    ),
    ("transform scale 0", '<p style="transform:scale(0)">F</p>', '<p style="transform:scale(1)">F</p>'),
    ("scale property", '<p style="scale:0">F</p>', '<p style="scale:1">F</p>'),
    ("zoom", '<p style="zoom:0.01">F</p>', '<p style="zoom:1">F</p>'),
    ("closed dialog", "<dialog>F</dialog>", "<dialog open>F</dialog>"),
    (
        "closed details",
        "<details><summary>More</summary><p>F</p></details>",
        "<details open><summary>More</summary><p>F</p></details>",
    ),
    ("popover", "<div popover>F</div>", "<div>F</div>"),
    ("font shorthand 0", '<p style="font:0/0 a">F</p>', '<p style="font:16px/1.2 serif">F</p>'),
    ("filter opacity", '<p style="filter:opacity(0)">F</p>', '<p style="filter:opacity(1)">F</p>'),
    (
        "fill colour transparent",
        '<p style="-webkit-text-fill-color:transparent">F</p>',
        '<p style="-webkit-text-fill-color:#222">F</p>',
    ),
    (
        "shadow of transparent text",
        '<p style="color:transparent;text-shadow:0 0 0 transparent">F</p>',
        '<p style="color:transparent;text-shadow:0 0 0 #000">F</p>',
    ),
    ("content-visibility", '<p style="content-visibility:hidden">F</p>', '<p style="content-visibility:visible">F</p>'),
    (
        "covered by a box",
        '<div style="position:relative"><p>F</p><div style="position:absolute;inset:0;background:#fff"></div></div>',
        '<div style="position:relative"><p>F</p><div style="position:absolute;inset:0;background:transparent"></div></div>',
    ),
    (
        "transparent line laid over a visible one",
        '<div style="position:relative"><p style="margin:0">Swifts sleep aloft.</p>'
        '<p style="position:absolute;top:0;margin:0;color:transparent">F</p></div>',
        '<div style="position:relative"><p style="margin:0">Swifts sleep aloft.</p>'
        '<p style="position:absolute;top:0;margin:0;color:#c00">F</p></div>',
    ),
    (
        "media query for every screen",
        "<style>@media (min-width:1px){.x{display:none}}</style><p class=x>F</p>",
        "<style>@media (max-width:1px){.x{display:none}}</style><p class=x>F</p>",
    ),
    (
        "rule inside a layer",
        "<style>@layer a{.x{visibility:hidden}}</style><p class=x>F</p>",
        "<style>@layer a{.x{visibility:visible}}</style><p class=x>F</p>",
    ),
    (
        "custom property",
        '<style>:root{--h:none}</style><p style="display:var(--h)">F</p>',
        '<style>:root{--h:block}</style><p style="display:var(--h)">F</p>',
    ),
    (
        "var() fallback",
        '<p style="font-size:var(--missing, 0px)">F</p>',
        '<p style="font-size:var(--missing, 15px)">F</p>',
    ),
    (
        "sibling selector",
        "<style>main p + p{color:#fff}</style><main><p>x</p><p>F</p></main>",
        "<style>main p + p{color:#000}</style><main><p>x</p><p>F</p></main>",
    ),
    (
        "attribute selector",
        '<style>[data-x="1"]{opacity:0}</style><p data-x="1">F</p>',
        '<style>[data-x="2"]{opacity:0}</style><p data-x="1">F</p>',
    ),
    (
        "pseudo-class",
        "<style>p:last-of-type{font-size:0}</style><p>F</p>",
        "<style>p:empty{font-size:0}</style><p>F</p>",
    ),
    (
        "important beats inline",
        '<style>.x{color:#fff !important}</style><p class=x style="color:#000">F</p>',
        '<style>.x{color:#fff}</style><p class=x style="color:#000">F</p>',
    ),
]

MARKDOWN = [
    ("HTML comment", "<!-- F -->", "F"),
    ("comment line", "[//]: # (F)", "F"),
    ("raw HTML display none", '<span style="display:none">F</span>', '<span style="display:inline">F</span>'),
    ("raw HTML white", '<div style="color:#fff">F</div>', '<div style="color:#111">F</div>'),
    ("style block class", "<style>.q{display:none}</style>\n\n<p class=q>F</p>", "<p class=q>F</p>"),
    (
        "raw closed details",
        "<details><summary>More</summary>F</details>",
        "<details open><summary>More</summary>F</details>",
    ),
]

TAGGED = "".join(chr(0xE0000 + ord(c)) for c in FACT)
UNICODE = [
    ("tag characters in HTML", f"<p>{TAGGED}</p>", f"<p>{FACT}</p>"),
    ("tag characters in Markdown", TAGGED, FACT),
]


def page(body: str) -> str:
    return (
        f'<html><head><meta charset="utf-8"></head><body><h1>Birds</h1><p>Owls hunt at night.</p>{body}</body></html>'
    )


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM)
        context = chromium.new_context(java_script_enabled=False, viewport={"width": 1280, "height": 800})
        yield context.new_page()
        chromium.close()


def differ(one: bytes, two: bytes) -> bool:
    """Can a reader tell two renders apart: does any pixel change by 10% of the range or more in a
    channel? (Text one level off white on white changes pixels by 1 of 255.)"""
    import numpy as np

    a, b = np.frombuffer(one, dtype=np.uint8), np.frombuffer(two, dtype=np.uint8)
    return a.shape != b.shape or int(np.abs(a.astype(np.int16) - b.astype(np.int16)).max()) >= 26


def pixels(tab: Any, html: str) -> bytes:
    import io

    from PIL import Image

    tab.set_content(html)
    return Image.open(io.BytesIO(tab.screenshot())).convert("RGB").tobytes()


def proof(tab: Any, html: str) -> bool:
    """Does the page with the fact look different from the page with its text made invisible by
    the browser itself (`visibility: hidden` keeps its place in the layout)?"""
    cut = html.replace(FACT, f'<span style="visibility:hidden">{FACT}</span>').replace(TAGGED, "")
    return differ(pixels(tab, html), pixels(tab, cut))


def markdown_page(md: str) -> str:
    from markdown_it import MarkdownIt

    return page(MarkdownIt("commonmark", {"html": True}).render(f"Owls hunt at night.\n\n{md}\n"))


def check(doc: Any, hidden: bool, label: str) -> None:
    text = doc.pages[0].text
    warned = [w for w in doc.warnings if "hidden" in w or "invisible" in w]
    assert "Owls hunt at night." in text, (label, text)
    if hidden:
        assert "Lisbon" not in text and warned, (label, text, doc.warnings)
    else:
        assert FACT in text and not warned, (label, text, doc.warnings)


def test_the_corpus_holds_sixty_tricks_with_twins() -> None:
    assert len(HTML) + len(MARKDOWN) + len(UNICODE) + len(PDF) >= 60


@needs_chromium
@pytest.mark.parametrize(("name", "hidden", "twin"), HTML + UNICODE[:1], ids=[t[0] for t in HTML + UNICODE[:1]])
def test_html_trick_invisible_when_rendered_is_removed_and_its_twin_kept(
    browser: Any, name: str, hidden: str, twin: str
) -> None:
    for markup, is_hidden in ((hidden, True), (twin, False)):
        html = page(markup.replace("F", FACT) if "F" in markup else markup)
        assert proof(browser, html) is not is_hidden, (name, "rendered", is_hidden)
        check(load_bytes(html.encode(), "birds.html"), is_hidden, name)


@needs_chromium
@pytest.mark.parametrize(("name", "hidden", "twin"), MARKDOWN + UNICODE[1:], ids=[t[0] for t in MARKDOWN + UNICODE[1:]])
def test_markdown_trick_invisible_when_rendered_is_removed_and_its_twin_kept(
    browser: Any, name: str, hidden: str, twin: str
) -> None:
    for markup, is_hidden in ((hidden, True), (twin, False)):
        md = markup.replace("F", FACT) if "F" in markup else markup
        assert proof(browser, markdown_page(md)) is not is_hidden, (name, "rendered", is_hidden)
        check(load_bytes(f"Owls hunt at night.\n\n{md}\n".encode(), "birds.md"), is_hidden, name)


# --- PDF: PDFium renders the page with and without the line's text ---------------------------------


def _text(y: int, words: str, before: bytes = b"", x: int = 72) -> bytes:
    return before + b" BT /F1 12 Tf %d %d Td (%s) Tj ET" % (x, y, words.encode())


# (name, hidden drawing, visible twin, page extra[, the twin's page extra])
PDF: list[tuple[Any, ...]] = [
    ("fill opacity 0", _text(600, "F", b"q /Clear gs") + b" Q", _text(600, "F", b"q /NoStroke gs") + b" Q", b""),
    (
        "covered by a shape",
        _text(600, "F") + b" 0 g 60 590 420 30 re f",
        b"0.8 g 60 590 420 30 re f 0 g" + _text(600, "F"),
        b"",
    ),
    (
        "colour of the shape under it",
        b"0 0 1 rg 60 590 420 30 re f" + _text(600, "F"),
        b"0 0 1 rg 60 590 420 30 re f 1 g" + _text(600, "F"),
        b"",
    ),
    ("CMYK white", _text(600, "F", b"0 0 0 0 k"), _text(600, "F", b"0 0 0 1 k"), b""),
    ("separation tint 0", _text(600, "F", b"/Spot cs 0 scn"), _text(600, "F", b"/Spot cs 1 scn"), b""),
    ("render mode invisible", _text(600, "F", b"3 Tr"), _text(600, "F", b"0 Tr"), b""),
    (
        "clipped away",
        b"q 0 0 20 20 re W n" + _text(600, "F") + b" Q",
        b"q 0 0 612 792 re W n" + _text(600, "F") + b" Q",
        b"",
    ),
    ("rise off the page", b"BT /F1 12 Tf 72 600 Td 900 Ts (F) Tj ET", b"BT /F1 12 Tf 72 600 Td 20 Ts (F) Tj ET", b""),
    ("outside the crop box", _text(700, "F", x=400), _text(700, "F", x=20), b"/CropBox [0 0 300 792]"),
    ("sub-point size", b" BT /F1 0.1 Tf 72 600 Td (F) Tj ET", b" BT /F1 9 Tf 72 600 Td (F) Tj ET", b""),
    # only the pixels catch these two (ingest.pdf_pixels): a kerning jump inside one text object,
    # and a shading (no shape, no image) painted over the text
    (
        "kerning jump off the page",
        b" BT /F1 12 Tf 72 600 Td [( ) -90000 (F)] TJ ET",
        b" BT /F1 12 Tf 72 600 Td [( ) -900 (F)] TJ ET",
        b"",
    ),
    (
        "covered by an annotation",
        _text(600, "F"),
        _text(600, "F"),
        b"/Annots [<< /Type /Annot /Subtype /Square /Rect [60 590 480 620] /IC [1 1 1] /C [1 1 1] /F 4 >>]",
        b"/Annots [<< /Type /Annot /Subtype /Square /Rect [60 590 480 620] /C [1 0 0] /F 4 >>]",
    ),
    (
        "covered by a shading",
        _text(600, "F") + b" q 60 590 420 30 re W n /White sh Q",
        b"q 60 590 420 30 re W n /White sh Q" + _text(600, "F"),
        b"",
    ),
]

PDF = [t if len(t) == 5 else (*t, None) for t in PDF]  # (the twin's page extra, where it differs)


def pdf(path: Path, draw: bytes, extra: bytes) -> bytes:
    from tests.test_hidden_text import raw_pdf

    line = _text(700, "Owls hunt at night.") + b" " + draw.replace(b"(F)", b"(" + FACT.encode() + b")")
    return raw_pdf(path, [(line, extra)]).read_bytes()


def rendered(data: bytes) -> bytes:
    import pypdfium2 as pdfium

    doc = pdfium.PdfDocument(data)
    return bytes(doc[0].render(scale=2).to_pil().convert("RGB").tobytes())


@pytest.mark.parametrize(("name", "hidden", "twin", "extra", "twin_extra"), PDF, ids=[t[0] for t in PDF])
def test_pdf_trick_invisible_when_rendered_is_removed_and_its_twin_kept(
    tmp_path: Path, name: str, hidden: bytes, twin: bytes, extra: bytes, twin_extra: bytes | None
) -> None:
    for draw, more, is_hidden in ((hidden, extra, True), (twin, extra if twin_extra is None else twin_extra, False)):
        data = pdf(tmp_path / "t.pdf", draw, more)
        cut = pdf(tmp_path / "cut.pdf", draw.replace(b"(F)", b"()"), more)
        assert differ(rendered(data), rendered(cut)) is not is_hidden, (name, "rendered", is_hidden)
        check(load_bytes(data, "birds.pdf"), is_hidden, name)


@pytest.mark.parametrize("renderer", ["default", "off"])
def test_a_page_cannot_pass_for_the_judge(renderer: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A page that writes the judge's own names (its wrappers, the window properties its scripts
    use) still has its hidden text removed and its visible text kept."""
    if renderer == "off":
        monkeypatch.setenv("ARCHIVIST_HTML_RENDERER", "off")
    html = page(
        '<style id="__archivistStyle" data-archivist="on"></style><p id="__archivistText">Swifts sleep aloft.</p>'
        f'<archivist-seen><p style="display:none">{FACT}</p></archivist-seen>'
        f'<archivist-seen-0123456789abcdef><p style="display:none">{FACT}</p></archivist-seen-0123456789abcdef>'
    )
    doc = load_bytes(html.encode(), "birds.html")
    check(doc, True, "the judge's names")
    assert "Swifts sleep aloft." in doc.pages[0].text


def test_a_browser_that_cannot_start_leaves_the_rule_set_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARCHIVIST_HTML_RENDERER", "/bin/false")  # a "browser" that exits at once
    for _ in range(4):  # after three failures in a row it is no longer started, and still said
        doc = load_bytes(page(f"<p hidden>{FACT}</p>").encode(), "birds.html")
        check(doc, True, "no browser")
        assert any("judged by the CSS rule set only: Chromium failed" in w for w in doc.warnings), doc.warnings
