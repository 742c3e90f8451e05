"""Pages read from pictures: image files (a TIFF's frames as pages) and PDF pages without a usable
text layer, by OCR (`ingest.ocr`). Runs in the parser process, under its time and memory limits.

A PDF page's invisible text layer (render mode 3: what scanners and OCR tools write over the scan)
is kept where it agrees with what the picture shows, and dropped and reported where it does not
(an invisible layer over an unrelated picture says what no reader sees)."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ingest.errors import IngestError
from ingest.ocr import LOW_CONFIDENCE, Line, OcrPage, OcrSettings, check_size, read
from ingest.types import Page

if TYPE_CHECKING:
    from ingest.pdf import Box

SCAN_SHARE = 0.5  # a page whose images cover this much of it, with little text of its own, is a scan
FEW_CHARS = 40  # a page with fewer visible letters than this has no usable text layer
PICTURE_MIN_PT = (72.0, 18.0)  # a picture smaller than 1 x 1/4 inch holds no line worth reading
LAYER_AGREES = 0.5  # share of an invisible layer's words the picture must show for the layer to be kept
_WORD = re.compile(r"[^\W\d_]{3,}", re.UNICODE)


def page_ranges(numbers: list[int]) -> str:
    """'1-3, 7' for [1, 2, 3, 7]."""
    out: list[str] = []
    start = prev = numbers[0]
    for n in [*numbers[1:], None]:
        if n is not None and n == prev + 1:
            prev = n
            continue
        out.append(str(start) if start == prev else f"{start}-{prev}")
        if n is not None:
            start = prev = n
    return ", ".join(out)


def ocr_summary(read: dict[int, float], settings: OcrSettings) -> list[str]:
    """What `archivist documents` shows of the pages read from pictures: which, how sure, and the
    uncertain ones by name."""
    if not read:
        return []
    mean = sum(read.values()) / len(read)
    which = page_ranges(sorted(read))
    out = [f"page{'s' if len(read) > 1 else ''} {which} read from an image ({settings.engine}), confidence {mean:.2f}"]
    low = sorted(p for p, c in read.items() if c < LOW_CONFIDENCE)
    out += [f"page {p}: read from an image, confidence {read[p]:.2f}: check the picture" for p in low[:20]]
    if len(low) > 20:
        out.append(f"{len(low) - 20} more pages read with confidence under {LOW_CONFIDENCE:.2f}")
    return out


def _hidden_warning(where: str, page: OcrPage, dropped: bool) -> list[str]:
    if not page.hidden:
        return []
    verb = "removed" if dropped else "found"
    return [f"{where}: hidden text in the image {verb} (text too faint to see, {page.hidden_chars} characters)"]


def _text(page: OcrPage, drop_hidden: bool) -> str:
    from ingest.ocr import lines_text

    return page.text if drop_hidden else lines_text([*page.lines, *page.hidden])


def image_pages(
    data: bytes, name: str, max_pages: int, drop_hidden: bool, settings: OcrSettings, warnings: list[str]
) -> tuple[Iterator[Page], int]:
    """An image file's pages (one, or a TIFF's frames), read by OCR, and how many frames it has. A frame that cannot be read is
    reported and skipped; the others go on."""
    from PIL import Image, UnidentifiedImageError

    if settings.mode == "off":
        raise IngestError(f"{name}: an image, and reading pictures is off (ocr: off); set ocr to auto to read it")
    Image.MAX_IMAGE_PIXELS = None  # sizes are checked here, from the header, before any pixel is decoded
    try:
        image = Image.open(io.BytesIO(data))
        check_size(image.width, image.height, name)
        frames = getattr(image, "n_frames", 1)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise IngestError(f"{name}: not a readable image ({exc})") from None
    if frames > max_pages:
        raise IngestError(f"{name}: the image has {frames:,} pages; the limit is {max_pages:,}")
    return _frames(image, name, frames, drop_hidden, settings, warnings), frames


def _frames(
    image: Any, name: str, frames: int, drop_hidden: bool, settings: OcrSettings, warnings: list[str]
) -> Iterator[Page]:
    import numpy as np
    from PIL import Image, ImageOps

    read_pages: dict[int, float] = {}
    failed: list[str] = []
    try:
        for i in range(1, frames + 1):
            try:
                image.seek(i - 1)
                check_size(image.width, image.height, f"{name} page {i}")
                rgb = ImageOps.exif_transpose(image).convert("RGB")
                page = read(np.asarray(rgb), settings)
            except IngestError as exc:
                failed.append(str(exc))
                continue
            except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
                failed.append(f"{name} page {i}: could not be read ({type(exc).__name__}: {exc})")
                continue
            read_pages[i] = page.confidence
            warnings.extend(_hidden_warning(f"page {i}", page, drop_hidden))
            yield Page(i, _text(page, drop_hidden), page.confidence)
    finally:
        image.close()
    if not read_pages:
        raise IngestError(failed[0] if failed else f"{name}: no page of the image could be read")
    warnings.extend(failed)
    warnings[:0] = ocr_summary(read_pages, settings)


def pdf_page_texts(
    doc: Any, name: str, n: int, drop_hidden: bool, layers: Any, settings: OcrSettings, page_warnings: list[str]
) -> Iterator[tuple[int, str, float | None]]:
    """(page, text, OCR confidence or None) for each page: the text layer where the page has a usable
    one, else what its picture shows (ocr auto); every page from its picture with ocr always."""
    from ingest.hidden import hidden_warnings
    from ingest.pdf import read_page

    try:
        for i in range(1, n + 1):
            try:
                page = read_page(doc, i - 1, drop_hidden, layers)
            except Exception as exc:  # PDFium reports a damaged page as an error of its own
                raise IngestError(f"{name}: page {i} could not be read ({type(exc).__name__}: {exc})") from exc
            raw, hidden = page.text, page.hidden
            # auto: where the page's pictures are decides whether it is a scan or a text page with pictures
            pictures = (page.pictures, page.visible) if settings.mode == "auto" else None
            if not _wants_ocr(raw, settings, pictures):
                page_warnings += hidden_warnings(f"page {i}: hidden text", hidden, drop_hidden)
                if pictures is not None:
                    raw = _with_picture_text(doc, i - 1, raw, drop_hidden, settings, page_warnings, pictures)
                yield i, raw, None
                continue
            try:
                text, confidence, notes = _read_pdf_page(doc, i - 1, raw, hidden, drop_hidden, layers, settings)
            except IngestError as exc:  # one page that cannot be read leaves the others
                page_warnings.append(f"page {i}: not read from its image ({exc})")
                page_warnings += hidden_warnings(f"page {i}: hidden text", hidden, drop_hidden)
                yield i, raw, None
                continue
            page_warnings += notes
            yield i, text, confidence
    finally:
        doc.close()


def _with_picture_text(
    doc: Any,
    index: int,
    raw: str,
    drop_hidden: bool,
    settings: OcrSettings,
    notes: list[str],
    pictures: tuple[list[Box], Box],
) -> str:
    """A text page's pictures that carry text a reader sees (a figure's labels, a pasted screenshot):
    their lines that the page's text layer does not already hold, added after its text. Only the
    pictures are read, and only pictures large enough to hold a line of text."""
    from ingest.ocr import lines_text
    from ingest.pdf import render_page

    boxes, page_box = pictures
    boxes = [b for b in boxes if (b[2] - b[0]) >= PICTURE_MIN_PT[0] and (b[3] - b[1]) >= PICTURE_MIN_PT[1]]
    if not boxes:
        return raw
    try:
        pixels = render_page(doc, index, settings.dpi)
    except IngestError as exc:
        notes.append(f"page {index + 1}: its pictures were not read ({exc})")
        return raw
    scale = settings.dpi / 72
    known = {w.lower() for w in _WORD.findall(raw)}
    added: list[Line] = []
    confidence: list[float] = []
    faint = 0
    for left, bottom, right, top in boxes:
        x0, x1 = int((left - page_box[0]) * scale), int((right - page_box[0]) * scale)
        y0, y1 = int((page_box[3] - top) * scale), int((page_box[3] - bottom) * scale)
        crop = pixels[max(0, y0) : y1, max(0, x0) : x1]
        if crop.size == 0:
            continue
        page = read(crop, settings)
        faint += page.hidden_chars
        for line in page.lines if drop_hidden else [*page.lines, *page.hidden]:
            words = [w.lower() for w in _WORD.findall(line.text)]
            if len(words) >= 2 and sum(w in known for w in words) < 0.5 * len(words):
                added.append(line)
                confidence.append(line.confidence)
    if faint:
        verb = "removed" if drop_hidden else "found"
        notes.append(f"page {index + 1}: hidden text in a picture {verb} (text too faint to see, {faint} characters)")
    if not added:
        return raw
    mean = sum(confidence) / len(confidence)
    lines = f"{len(added)} line{'s' if len(added) > 1 else ''}"
    notes.append(f"page {index + 1}: {lines} read from its pictures, confidence {mean:.2f}")
    return raw.rstrip() + "\n\n" + lines_text(added)


def _wants_ocr(raw: str, settings: OcrSettings, pictures: tuple[list[Box], Box] | None) -> bool:
    """Whether the page is read from its picture: always, or (auto) a page with no usable text layer
    that its pictures mostly cover."""
    if settings.mode == "off":
        return False
    if settings.mode == "always":
        return True
    if sum(ch.isalpha() for ch in raw) >= FEW_CHARS or pictures is None:
        return False  # a usable text layer: never read again in auto mode
    from ingest.pdf import picture_share

    return picture_share(*pictures) >= SCAN_SHARE


def _read_pdf_page(
    doc: Any, index: int, raw: str, hidden: Any, drop_hidden: bool, layers: Any, settings: OcrSettings
) -> tuple[str, float, list[str]]:
    """The page read from its rendering; an invisible text layer kept instead where the picture shows
    its words."""
    from ingest.hidden import hidden_warnings
    from ingest.pdf import page_text, render_page

    where = f"page {index + 1}"
    page = read(render_page(doc, index, settings.dpi), settings)
    notes = _hidden_warning(where, page, drop_hidden)
    others = {k: v for k, v in hidden.items() if k != "invisible render mode"}
    invisible = hidden.get("invisible render mode", 0)
    if invisible and drop_hidden:
        layer, _ = page_text(doc, index, False, layers)
        agree = _agreement(layer, page.text)
        if agree >= LAYER_AGREES and not others:
            notes.append(f"{where}: its invisible text layer kept: the page image shows {agree:.0%} of its words")
            return layer, page.confidence, notes
        notes.append(
            f"{where}: hidden text removed (invisible text layer that the page image does not show: "
            f"{agree:.0%} of its words, {invisible} characters)"
        )
        notes += hidden_warnings(f"{where}: hidden text", others, drop_hidden)
    else:
        notes += hidden_warnings(f"{where}: hidden text", hidden, drop_hidden)
    text = _text(page, drop_hidden)
    if raw.strip() and settings.mode == "auto":
        text = raw.rstrip() + "\n" + text  # a stamp or label of the text layer stays with the scan's text
    return text, page.confidence, notes


def _agreement(layer: str, seen: str) -> float:
    """Share of the layer's words (3 letters or more) that the picture shows."""
    words = [w.lower() for w in _WORD.findall(layer)]
    if not words:
        return 0.0
    shown = {w.lower() for w in _WORD.findall(seen)}
    return sum(w in shown for w in words) / len(words)


def page_pixels(path: str, page: int, dpi: int) -> Any:
    """Page `page` (1-based) of a stored file as RGB pixels, as OCR read it: a PDF page rendered at
    `dpi`, an image file's frame upright."""
    import numpy as np
    from PIL import Image, ImageOps

    with open(path, "rb") as fh:
        head = fh.read(8)
    if head.startswith(b"%PDF-"):
        from ingest.pdf import open_pdf, render_page

        with open(path, "rb") as fh:
            doc = open_pdf(fh.read(), path, None)
        try:
            return render_page(doc, page - 1, dpi)
        finally:
            doc.close()
    Image.MAX_IMAGE_PIXELS = None
    with Image.open(path) as image:
        check_size(image.width, image.height, path)
        image.seek(page - 1)
        return np.asarray(ImageOps.exif_transpose(image).convert("RGB"))
