"""Text read from pictures: scanned PDF pages, image files, and the pictures on text pages.

The engine is RapidOCR (PP-OCRv6 detection and recognition, ONNX models inside its wheel, run by
onnxruntime), chosen by measurement (docs/benchmarks.md, `bench/ocr.py`); Tesseract is used instead
where it is installed and the setting names it. Nothing is downloaded.

Text a reader cannot see is not text: a line whose ink differs from the paper around it by less
than a person sees (near-white on white) is dropped and reported as hidden, like hidden text in PDFs
and HTML. Each page carries the engine's confidence, so a reader knows to check the picture.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ingest.errors import IngestError

OcrMode = Literal["auto", "always", "off"]
OCR_MODES: tuple[str, ...] = ("auto", "always", "off")
ENGINES = ("rapidocr", "tesseract")
# What RapidOCR's bundled multilingual PP-OCRv6 models read (its default_models.yaml); English first.
RAPIDOCR_LANGUAGES = (
    "en", "ch", "chinese_cht", "japan", "af", "az", "bs", "ca", "cs", "cy", "da", "de", "es", "et", "eu", "fi", "fr",
    "ga", "gl", "hr", "hu", "id", "is", "it", "ku", "la", "lb", "lt", "lv", "mi", "ms", "mt", "nl", "no", "oc", "pl",
    "pt", "qu", "rm", "ro", "rs_latin", "sk", "sl", "sq", "sv", "sw", "tl", "tr", "uz", "vi",
)  # fmt: skip
_TESSERACT_CODES = {"en": "eng", "de": "deu", "fr": "fra", "es": "spa", "it": "ita", "pt": "por", "nl": "nld"}

DET_SIDE = 960  # long side (pixels) the text detector looks at; see _engine
DPI = 200  # PDF pages are rendered at this resolution for reading (bench/ocr.py: CER and speed per DPI)
MAX_PIXELS = 60_000_000  # an image (or a TIFF frame) larger than this is refused: a decompression bomb
MAX_SIDE = 30_000  # a page longer than this is refused whatever its area
READ_SIDE = 4000  # a larger picture is scaled down to this long side before it is read (time per page bounded)
MIN_CONTRAST = 40  # gray levels (0-255) between a line's ink and its paper under which no one reads it
LOW_CONFIDENCE = 0.80  # a page read with less than this is said to be uncertain


@dataclass(frozen=True)
class OcrSettings:
    """How pictures are read: `mode` auto (pages and pictures without usable text), always (every
    PDF page read from its image), off; `languages` the engine reads; `engine` rapidocr or tesseract."""

    mode: OcrMode = "auto"
    languages: tuple[str, ...] = ("en",)
    engine: str = "rapidocr"
    dpi: int = DPI

    def check(self) -> OcrSettings:
        """The settings, or an IngestError naming the field that is wrong and what it may be."""
        if self.mode not in OCR_MODES:
            raise IngestError(f"ocr: {self.mode!r} is not a mode; use one of {', '.join(OCR_MODES)}")
        if self.engine not in ENGINES:
            raise IngestError(f"ocr.engine: {self.engine!r} is not an engine; use one of {', '.join(ENGINES)}")
        if not 72 <= self.dpi <= 600:
            raise IngestError(f"ocr.dpi: {self.dpi} is outside 72-600")
        known = languages(self.engine)
        bad = [lang for lang in self.languages if lang not in known]
        if bad or not self.languages:
            shown = ", ".join(known) if known else "none (the engine is not installed)"
            raise IngestError(
                f"ocr.languages: {', '.join(bad) or 'none given'} not read by {self.engine}; it reads: {shown}"
            )
        return self


@functools.cache  # every file's settings are checked: Tesseract is asked once per process
def languages(engine: str) -> tuple[str, ...]:
    """The languages `engine` can read here (tesseract: its installed language packs)."""
    if engine == "rapidocr":
        return RAPIDOCR_LANGUAGES
    exe = shutil.which("tesseract")
    if exe is None:
        return ()
    out = subprocess.run([exe, "--list-langs"], capture_output=True, text=True, timeout=30).stdout.split()
    back = {v: k for k, v in _TESSERACT_CODES.items()}
    return tuple(back.get(code, code) for code in out if code.isalpha() or "_" in code)


@dataclass(frozen=True)
class Line:
    """One line of text as read: its words, its box (left, top, right, bottom in pixels), the
    engine's confidence (0-1)."""

    text: str
    box: tuple[float, float, float, float]
    confidence: float


@dataclass
class OcrPage:
    """What was read from one picture."""

    lines: list[Line]
    width: int
    height: int
    hidden: list[Line] = field(default_factory=list)  # lines dropped as too faint to see

    @property
    def text(self) -> str:
        return lines_text(self.lines)

    @property
    def confidence(self) -> float:
        """Mean of the lines' confidence, weighted by their characters (1.0 for a page with none)."""
        n = sum(len(ln.text) for ln in self.lines)
        return sum(ln.confidence * len(ln.text) for ln in self.lines) / n if n else 1.0

    @property
    def hidden_chars(self) -> int:
        return sum(len(ln.text.replace(" ", "")) for ln in self.hidden)


def lines_text(lines: Sequence[Line]) -> str:
    """Lines in reading order: top to bottom, and the pieces of one visual line (a heading and its
    page number) left to right on one line."""
    rows: list[list[Line]] = []
    for ln in sorted(lines, key=lambda ln: (ln.box[1] + ln.box[3]) / 2):
        mid, height = (ln.box[1] + ln.box[3]) / 2, ln.box[3] - ln.box[1]
        if rows:
            last = rows[-1][-1]
            if abs((last.box[1] + last.box[3]) / 2 - mid) < max(height, last.box[3] - last.box[1]) / 2:
                rows[-1].append(ln)
                continue
        rows.append([ln])
    return "\n".join(_mend(" ".join(ln.text for ln in sorted(row, key=lambda ln: ln.box[0]))) for row in rows)


# The recogniser reads "read.csv2" as "read. csv2": a dot between two lowercase words, with no
# abbreviation before it, is a name's dot (prose starts a new sentence with a capital).
# It also reads "read.fwf" as "read .fwf" (but "the .csv files" is prose: a file extension).
_DOTTED = re.compile(r"(?<![\w.])([a-z_][\w]*)(?:\. | \.)(?=[a-z_][\w]*\b)")
_ABBREVIATIONS = {"e.g", "i.e", "etc", "vs", "cf", "al", "approx", "incl", "resp", "fig", "eq", "no", "p", "pp"}
_BEFORE_EXTENSION = {
    "the",
    "a",
    "an",
    "of",
    "in",
    "to",
    "and",
    "or",
    "with",
    "as",
    "for",
    "from",
    "by",
    "on",
    "at",
    "is",
}


def _mend(text: str) -> str:
    """One line as read, with the recogniser's known slips in names and headings mended (below)."""

    def join(m: re.Match[str]) -> str:
        word = m.group(1).lower()
        spaced_before = m.group(0).endswith(".")  # "read .fwf"
        if word in _ABBREVIATIONS or (spaced_before and word in _BEFORE_EXTENSION):
            return m.group(0)
        return m.group(1) + "."

    text = _CALL.sub(lambda m: (m.group(1) or m.group(2)) + "(", _DOTTED.sub(join, text))
    return _GLUED_SECTION.sub(r"\1 ", _ONE_FOR_L.sub("l", text))


# ... and a heading "1.7 Getting help" as "1.7Getting help": a section number glued to its title
_GLUED_SECTION = re.compile(r"^(\d{1,2}(?:\.\d{1,2})+)(?=[A-Z][a-z])")


# ... and a monospaced "lqs" as "1qs": a 1 that starts a word of letters (not 1st, 1px) is an l
_ONE_FOR_L = re.compile(r"(?<![\w.])1(?=[a-z]{2,}\b)(?!st\b|nd\b|px\b|pt\b|em\b)")


# ... and "loess()" as "loess ()": a name before empty brackets, or a dotted name before any, is a call
_CALL = re.compile(r"\b([A-Za-z_][\w]*(?:\.[\w]+)*) \((?=\))|\b([A-Za-z_]\w*(?:\.\w+)+) \(")


def check_size(width: int, height: int, what: str) -> None:
    """Refuse a picture too large to read safely, before its pixels are decoded."""
    if width <= 0 or height <= 0:
        raise IngestError(f"{what}: the image has no pixels ({width}x{height})")
    if width * height > MAX_PIXELS:
        raise IngestError(
            f"{what}: the image is {width:,}x{height:,} pixels ({width * height / 1e6:,.0f} megapixels); "
            f"the limit is {MAX_PIXELS / 1e6:,.0f} megapixels (a decompression bomb?)"
        )
    if max(width, height) > MAX_SIDE:
        raise IngestError(f"{what}: the image is {width:,}x{height:,} pixels; the limit is {MAX_SIDE:,} on a side")


def read(pixels: Any, settings: OcrSettings) -> OcrPage:
    """Read an RGB picture (height x width x 3, uint8): the lines a reader sees, and the faint ones
    set aside."""
    import numpy as np

    img = np.ascontiguousarray(pixels[..., :3]) if pixels.ndim == 3 else np.stack([pixels] * 3, axis=-1)
    height, width = img.shape[:2]
    scale = 1.0
    if max(height, width) > READ_SIDE:
        scale = READ_SIDE / max(height, width)
        img = _resize(img, scale)
    found = _tesseract(img, settings.languages) if settings.engine == "tesseract" else _rapidocr(img)
    gray = img.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    visible: list[Line] = []
    hidden: list[Line] = []
    for ln in found:
        seen = contrast(gray, ln.box) >= MIN_CONTRAST
        box = tuple(v / scale for v in ln.box)
        (visible if seen else hidden).append(Line(ln.text, box, ln.confidence))  # type: ignore[arg-type]
    return OcrPage(visible, width, height, hidden)


def contrast(gray: Any, box: tuple[float, float, float, float]) -> float:
    """Gray levels between a line's ink and its paper, measured in its box: the paper is what most
    of the box shows (its median), the ink the pixels farthest from it (the 2% on the far side)."""
    import numpy as np

    h, w = gray.shape
    x0, y0 = max(0, int(box[0])), max(0, int(box[1]))
    x1, y1 = min(w, int(box[2]) + 1), min(h, int(box[3]) + 1)
    patch = gray[y0:y1, x0:x1]
    if patch.size == 0:
        return 0.0
    paper = float(np.median(patch))
    dark, light = np.percentile(patch, [2, 98])
    return max(paper - float(dark), float(light) - paper)


def _resize(img: Any, scale: float) -> Any:
    import cv2

    return cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)


@functools.cache
def _engine(det_side: int = DET_SIDE) -> Any:
    from rapidocr import RapidOCR

    threads = int(os.environ.get("ARCHIVIST_OCR_THREADS", "0")) or len(os.sched_getaffinity(0))
    return RapidOCR(
        params={
            "Global.log_level": "error",
            "Global.use_cls": False,  # pages are upright; the angle classifier costs time
            # text is found on the page scaled to this long side (bench/ocr.py: speed and CER per size)
            "Det.limit_side_len": det_side,
            "Det.limit_type": "max",
            "Rec.rec_batch_num": 1,  # lines one at a time: 1.63 s a page against 2.04 s in sixes (padding)
            "EngineConfig.onnxruntime.intra_op_num_threads": threads,
            "EngineConfig.onnxruntime.inter_op_num_threads": 1,
        }
    )


def _rapidocr(img: Any, det_side: int = 0) -> list[Line]:
    out = _engine(det_side or DET_SIDE)(img)
    if out.boxes is None or out.txts is None:
        return []
    lines = []
    for quad, text, score in zip(out.boxes, out.txts, out.scores, strict=True):
        xs, ys = [float(p[0]) for p in quad], [float(p[1]) for p in quad]
        if text.strip():
            lines.append(Line(text.strip(), (min(xs), min(ys), max(xs), max(ys)), float(score)))
    return lines


def _tesseract(img: Any, langs: Sequence[str]) -> list[Line]:
    """Lines from Tesseract's TSV output (words grouped by block, paragraph and line)."""
    import cv2

    exe = shutil.which("tesseract")
    if exe is None:
        raise IngestError("ocr.engine: tesseract is not installed (apt install tesseract-ocr tesseract-ocr-eng)")
    _, png = cv2.imencode(".png", img[..., ::-1])
    codes = "+".join(_TESSERACT_CODES.get(lang, lang) for lang in langs)
    proc = subprocess.run(
        [exe, "stdin", "stdout", "-l", codes, "--psm", "3", "tsv"],
        # OpenMP's threads spin against each other on few cores: 8.7 s a page unlimited, 1.2-2.5 s at 2
        env={**os.environ, "OMP_THREAD_LIMIT": os.environ.get("OMP_THREAD_LIMIT", "2")},
        input=png.tobytes(),
        capture_output=True,
        timeout=300,
        check=False,
    )
    if proc.returncode != 0:
        raise IngestError(f"tesseract failed: {proc.stderr.decode(errors='replace').strip()[:300]}")
    groups: dict[tuple[str, ...], list[tuple[str, float, tuple[int, int, int, int]]]] = {}
    for row in proc.stdout.decode("utf-8", "replace").splitlines()[1:]:
        cols = row.split("\t")
        if len(cols) < 12 or cols[0] != "5" or not cols[11].strip():
            continue
        x, y, w, h = (int(v) for v in cols[6:10])
        groups.setdefault(tuple(cols[1:5]), []).append((cols[11], max(float(cols[10]), 0.0) / 100, (x, y, w, h)))
    lines = []
    for words in groups.values():
        x0 = min(b[0] for _, _, b in words)
        y0 = min(b[1] for _, _, b in words)
        x1 = max(b[0] + b[2] for _, _, b in words)
        y1 = max(b[1] + b[3] for _, _, b in words)
        conf = sum(c for _, c, _ in words) / len(words)
        lines.append(Line(" ".join(t for t, _, _ in words), (x0, y0, x1, y1), conf))
    return lines
