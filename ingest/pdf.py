"""PDF pages as a reader sees them, parsed by PDFium (`pypdfium2`).

PDFium is the engine Chrome renders PDFs with: it resolves colour spaces (gray, CMYK,
Separation, Indexed) to RGB, applies the graphics state (fill and stroke opacity, clipping
paths) and lays out text the way it is drawn, at about 3 ms a page where pypdf took 33-39 ms
(measured on the R manuals). Text a reader cannot see is judged from the page objects, by the
rules a renderer applies, and kept out of the page's text:

- the invisible render mode (3, or 7 clip-only);
- fill opacity 0 (an ExtGState `ca` of 0) for filled text, an invisible stroke for stroke-only text;
- text the colour of what lies under it: the page's white, or a filled shape drawn before it;
- text covered by an opaque filled shape or an opaque image drawn after it (a black "redaction"
  box); an image with transparency (a full-page overlay, a watermark drawn last) covers nothing;
- text clipped away by a clipping path;
- an effective size under 1 pt (font size times the text and form matrices);
- text placed outside the page's visible box (the CropBox), rise included;
- text in optional content (layers) a viewer does not show when it opens the file: groups the
  default configuration turns off, membership dictionaries whose policy or visibility expression
  comes out off, and forms in such layers. PDFium extracts such text as if it were shown and does
  not expose the catalog's layer settings, so those are read with pypdf (`ingest.pdf_layers`;
  content streams only in files that have a layer that is off).
"""

from __future__ import annotations

import ctypes
import functools
import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ingest import pdf_pixels as pixels
from ingest.errors import IngestError
from ingest.pdf_layers import FORM_OFF, Form, Layers, judge_layers, layer_marks

Matrix = tuple[float, float, float, float, float, float]
Box = tuple[float, float, float, float]  # left, bottom, right, top in page space

_IDENTITY: Matrix = (1.0, 0.0, 0.0, 1.0, 0.0, 0.0)
_OPAQUE = 250  # alpha (0-255) from which a shape hides what is under it
_SAME_COLOUR = 24  # largest RGB channel difference still read as "the same colour"
_WHITE = (255, 255, 255)


def open_pdf(data: bytes, name: str, password: str | None) -> Any:
    """The PDFium document, or an IngestError that says why not (encrypted, wrong password, damaged)."""
    import pypdfium2 as pdfium
    import pypdfium2.raw as c

    try:
        return pdfium.PdfDocument(data, password=password or None)
    except pdfium.PdfiumError as exc:
        if getattr(exc, "err_code", None) == c.FPDF_ERR_PASSWORD:
            if password:
                raise IngestError(f"{name}: the password does not open this encrypted PDF") from exc
            raise IngestError(f"{name}: the PDF is encrypted; give its password (--password)") from exc
        raise IngestError(f"{name}: not a readable PDF ({exc})") from exc


@dataclass
class _Text:
    handle: int
    box: Box
    kind: str | None
    fill: tuple[int, int, int]
    index: int
    layers: list[str | frozenset[str]]  # optional-content marks: a group's name, or an OCMD's keys
    obj: Any = None  # PDFium's object, while the page is open


@dataclass
class _Fill:
    box: Box
    colour: tuple[int, int, int] | None  # None: an image (colour unknown)
    index: int
    opaque: Callable[[], bool] | None = None  # an image: whether it hides what is under it, asked only when it matters


@dataclass(frozen=True)
class PageRead:
    """A page as `read_page` found it: its text minus what a reader cannot see, the hidden characters
    per kind, and where its images lie (cut to the visible page box, also given)."""

    text: str
    hidden: Counter[str]
    pictures: list[Box]
    visible: Box


def page_text(doc: Any, index: int, drop_hidden: bool = True, layers: Layers | None = None) -> tuple[str, Counter[str]]:
    """Page `index` (0-based) as text, minus what a reader cannot see; and the hidden characters per kind."""
    read = read_page(doc, index, drop_hidden, layers)
    return read.text, read.hidden


def read_page(doc: Any, index: int, drop_hidden: bool = True, layers: Layers | None = None) -> PageRead:
    """Page `index` (0-based): its visible text, hidden characters and images, from one walk of its
    objects."""
    import pypdfium2.raw as c

    page = doc[index]
    textpage = page.get_textpage()
    try:
        n = textpage.count_chars()
        text = textpage.get_text_range(0, n) if n > 0 else ""
        visible = _visible_box(page)
        texts, fills = _objects(page.raw, visible, layers.forms(index) if layers is not None else [], doc.raw)
        if layers is not None:
            judge_layers(texts, layers, index)
        pixels.judge(page, texts, visible)  # what the rules let through, painted (ingest.pdf_pixels)
        hidden_objs = {t.handle: t.kind for t in texts if t.kind}
        hidden: Counter[str] = Counter()
        if hidden_objs:
            # one entry per character index (astral characters make the range text shorter than n:
            # then the characters are read one by one, so hidden text is never let through)
            out = list(text) if len(text) == n else [chr(c.FPDFText_GetUnicode(textpage.raw, i)) for i in range(n)]
            for i in range(n):
                obj = c.FPDFText_GetTextObject(textpage.raw, i)
                kind = hidden_objs.get(ctypes.cast(obj, ctypes.c_void_p).value or 0)
                if kind is None:
                    continue
                if not out[i].isspace():
                    hidden[kind] += 1
                if drop_hidden and out[i] not in "\r\n":
                    out[i] = " "
            text = "".join(out).encode("utf-16", "surrogatepass").decode("utf-16", "replace")
        pictures = [_cut(f.box, visible) for f in fills if f.colour is None]
        return PageRead(_clean(text), hidden, [b for b in pictures if _area(b) > 0], visible)
    finally:
        textpage.close()
        page.close()


def _clean(text: str) -> str:
    # PDFium marks a hyphen it found at a line end with U+0002 and unknown glyphs with U+FFFE
    return text.replace("\x02", "-").replace("\ufffe", "").replace("\x00", "").replace("\r\n", "\n")


def _visible_box(page: Any) -> Box:
    """The CropBox cut to the MediaBox, inherited from the page tree where the page has none."""
    import pypdfium2.raw as c

    rect = c.FS_RECTF()
    if not c.FPDF_GetPageBoundingBox(page.raw, rect):
        return (0.0, 0.0, page.get_width(), page.get_height())
    left, right = sorted((rect.left, rect.right))
    bottom, top = sorted((rect.bottom, rect.top))
    return (left, bottom, right, top)


def _objects(
    raw_page: Any, visible: Box, forms: list[Form] | None = None, raw_doc: Any = None
) -> tuple[list[_Text], list[_Fill]]:
    """The page's text objects, each with the reason it cannot be seen (or None), in drawing order;
    and the filled shapes and images (colour None) that may hide them. `raw_doc`: the document, so
    an image can be rendered to see how much of it is see-through."""
    import pypdfium2.raw as c

    texts: list[_Text] = []
    fills: list[_Fill] = []
    order = 0
    r, g, b, a = (ctypes.c_uint() for _ in range(4))
    left, bottom, right, top = (ctypes.c_float() for _ in range(4))
    fm = c.FS_MATRIX()

    def walk(
        count: int, get: Any, parent: Any, outer: Matrix, marks: list[str | frozenset[str]], forms: list[Form]
    ) -> None:
        nonlocal order
        nth_form = 0
        if forms and sum(c.FPDFPageObj_GetType(get(parent, j)) == c.FPDF_PAGEOBJ_FORM for j in range(count)) != len(
            forms
        ):
            forms = []  # the content streams and PDFium disagree on the forms drawn: trust no pairing
        for j in range(count):
            obj = get(parent, j)
            kind = c.FPDFPageObj_GetType(obj)
            order += 1
            if kind == c.FPDF_PAGEOBJ_FORM:
                inner = outer
                if c.FPDFPageObj_GetMatrix(obj, fm):
                    inner = _mul((fm.a, fm.b, fm.c, fm.d, fm.e, fm.f), outer)
                # a layer marked around the form's `Do`, or named by the form itself, holds all it draws
                form = forms[nth_form] if nth_form < len(forms) else Form(False, [])
                nth_form += 1
                inner_marks = marks + layer_marks(obj) + ([FORM_OFF] if form.hidden else [])
                walk(c.FPDFFormObj_CountObjects(obj), c.FPDFFormObj_GetObject, obj, inner, inner_marks, form.children)
                continue
            if not c.FPDFPageObj_GetBounds(obj, left, bottom, right, top):
                continue
            box = _transform_box((left.value, bottom.value, right.value, top.value), outer)
            if kind == c.FPDF_PAGEOBJ_TEXT:
                texts.append(_text(obj, box, outer, visible, order, r, g, b, a, fm))
                texts[-1].layers += marks
            elif kind == c.FPDF_PAGEOBJ_PATH:
                fillmode, stroke = ctypes.c_int(), ctypes.c_int()
                if c.FPDFPath_GetDrawMode(obj, fillmode, stroke) and fillmode.value:
                    c.FPDFPageObj_GetFillColor(obj, r, g, b, a)
                    if a.value >= _OPAQUE and _area(box) > 4:
                        fills.append(_Fill(_clip(box, obj), (r.value, g.value, b.value), order))
            elif kind == c.FPDF_PAGEOBJ_IMAGE and _area(box) > 4:
                # an image with transparency (a soft mask, an alpha below 1: an overlay, a watermark)
                # lets the text under it show; an opaque one covers it. Rendering it to tell is asked
                # for only where the image lies over or under text still judged visible.
                opaque = functools.cache(functools.partial(_opaque_image, raw_doc, raw_page, obj))
                fills.append(_Fill(_clip(box, obj), None, order, opaque))

    walk(
        c.FPDFPage_CountObjects(raw_page), lambda p, j: c.FPDFPage_GetObject(p, j), raw_page, _IDENTITY, [], forms or []
    )
    _judge_by_neighbours(texts, fills)
    return texts, fills


def _text(
    obj: Any, box: Box, outer: Matrix, visible: Box, order: int, r: Any, g: Any, b: Any, a: Any, fm: Any
) -> _Text:
    import pypdfium2.raw as c

    handle = ctypes.cast(obj, ctypes.c_void_p).value or 0
    mode = c.FPDFTextObj_GetTextRenderMode(obj)
    c.FPDFPageObj_GetFillColor(obj, r, g, b, a)
    fill, fill_alpha = (r.value, g.value, b.value), a.value
    kind: str | None = None
    if mode in (3, 7):
        kind = "invisible render mode"
    elif mode in (1, 5):  # stroke only: what shows is the outline
        c.FPDFPageObj_GetStrokeColor(obj, r, g, b, a)
        fill = (r.value, g.value, b.value)
        if a.value == 0:
            kind = "stroke-only text with an invisible stroke"
    elif fill_alpha == 0:
        kind = "transparent text (fill opacity 0)"
    if kind is None:
        size = ctypes.c_float()
        scale = 1.0
        if c.FPDFPageObj_GetMatrix(obj, fm):
            m = _mul((fm.a, fm.b, fm.c, fm.d, fm.e, fm.f), outer)
            scale = math.sqrt(abs(m[0] * m[3] - m[1] * m[2]))
        if c.FPDFTextObj_GetFontSize(obj, size) and 0 < size.value * scale < 1.0:
            kind = "text under 1 pt"
        elif not _intersects(box, visible, margin=2.0):
            kind = "text outside the page"
        elif (clip := _clip(box, obj)) != box and _area(clip) <= 0:
            kind = "text clipped away"
    return _Text(handle, box, kind, fill, order, layer_marks(obj), obj)


def _opaque_image(raw_doc: Any, raw_page: Any, obj: Any) -> bool:
    """Does the image hide what lies under it? Rendered as the page draws it (its soft mask and the
    graphics state's alpha applied), it must be mostly opaque: a see-through overlay or a faint
    watermark drawn last hides nothing."""
    import pypdfium2 as pdfium
    import pypdfium2.raw as c

    if c.FPDFPageObj_HasTransparency(obj):
        return False
    if raw_doc is None:
        return True
    raw = c.FPDFImageObj_GetRenderedBitmap(raw_doc, raw_page, obj)
    if not raw:
        return True
    bitmap = pdfium.PdfBitmap.from_raw(raw)
    try:
        pixels = bitmap.to_numpy()
        if bitmap.format != c.FPDFBitmap_BGRA or pixels.ndim != 3 or pixels.shape[2] != 4:
            return True  # no alpha channel: opaque
        return float(pixels[..., 3].mean()) >= _OPAQUE * 0.8
    finally:
        bitmap.close()


def _judge_by_neighbours(texts: list[_Text], fills: list[_Fill]) -> None:
    """Text the colour of what lies under it, and text an opaque shape drawn later covers."""
    if not texts:
        return
    for t in texts:
        if t.kind is not None or not t.box[2] > t.box[0]:
            continue
        under: tuple[int, int, int] | None = _WHITE
        for f in fills:
            if f.index < t.index and _contains(f.box, t.box):
                if f.opaque is None or f.opaque():
                    under = f.colour  # the last one drawn before the text is what shows through
            elif f.index > t.index and _contains(f.box, t.box, tolerance=1.0) and (f.opaque is None or f.opaque()):
                t.kind = "text covered by a shape drawn over it"
                break
        if t.kind is None and under is not None and _same(t.fill, under):
            t.kind = "white or near-white text" if under == _WHITE else "text the colour of the shape under it"


def _same(x: tuple[int, int, int], y: tuple[int, int, int]) -> bool:
    return max(abs(p - q) for p, q in zip(x, y, strict=True)) <= _SAME_COLOUR


def _clip(box: Box, obj: Any) -> Box:
    """`box` cut to the bounding box of the object's clipping paths (each path narrows it)."""
    import pypdfium2.raw as c

    clip = c.FPDFPageObj_GetClipPath(obj)
    if not clip:
        return box
    out = box
    x, y = ctypes.c_float(), ctypes.c_float()
    for p in range(c.FPDFClipPath_CountPaths(clip)):
        xs: list[float] = []
        ys: list[float] = []
        for s in range(c.FPDFClipPath_CountPathSegments(clip, p)):
            seg = c.FPDFClipPath_GetPathSegment(clip, p, s)
            if seg and c.FPDFPathSegment_GetPoint(seg, x, y):
                xs.append(x.value)
                ys.append(y.value)
        if xs:
            out = (max(out[0], min(xs)), max(out[1], min(ys)), min(out[2], max(xs)), min(out[3], max(ys)))
    return out


def _mul(a: Matrix, b: Matrix) -> Matrix:
    return (
        a[0] * b[0] + a[1] * b[2],
        a[0] * b[1] + a[1] * b[3],
        a[2] * b[0] + a[3] * b[2],
        a[2] * b[1] + a[3] * b[3],
        a[4] * b[0] + a[5] * b[2] + b[4],
        a[4] * b[1] + a[5] * b[3] + b[5],
    )


def _transform_box(box: Box, m: Matrix) -> Box:
    if m == _IDENTITY:
        return box
    pts = [(x * m[0] + y * m[2] + m[4], x * m[1] + y * m[3] + m[5]) for x in (box[0], box[2]) for y in (box[1], box[3])]
    return (min(p[0] for p in pts), min(p[1] for p in pts), max(p[0] for p in pts), max(p[1] for p in pts))


def _cut(box: Box, to: Box) -> Box:
    return (max(box[0], to[0]), max(box[1], to[1]), min(box[2], to[2]), min(box[3], to[3]))


def _area(box: Box) -> float:
    return max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1])


def _intersects(a: Box, b: Box, margin: float = 0.0) -> bool:
    return a[0] < b[2] + margin and a[2] > b[0] - margin and a[1] < b[3] + margin and a[3] > b[1] - margin


def _contains(outer: Box, inner: Box, tolerance: float = 0.5) -> bool:
    return (
        outer[0] <= inner[0] + tolerance
        and outer[1] <= inner[1] + tolerance
        and outer[2] >= inner[2] - tolerance
        and outer[3] >= inner[3] - tolerance
    )


def picture_share(boxes: list[Box], visible: Box) -> float:
    """How much of the page its images (`PageRead.pictures`) cover (0-1; overlaps counted once at most
    per image, so a share near 1 is a page that is a picture: a scan)."""
    return min(1.0, sum(_area(b) for b in boxes) / (_area(visible) or 1.0))


def render_page(doc: Any, index: int, dpi: int) -> Any:
    """Page `index` (0-based) as RGB pixels (height x width x 3) at `dpi`, as a reader sees it."""
    page = doc[index]
    try:
        width, height = page.get_width() * dpi / 72, page.get_height() * dpi / 72
        from ingest.ocr import check_size

        check_size(int(width), int(height), f"page {index + 1} at {dpi} dpi")
        bitmap = page.render(scale=dpi / 72, rev_byteorder=True)
        try:
            return bitmap.to_numpy()[..., :3].copy()
        finally:
            bitmap.close()
    finally:
        page.close()
