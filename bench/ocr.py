"""OCR engines on pages whose text is known: character error rate and seconds per page.

Pages of text PDFs (the R manuals by default) are rendered at each resolution, some degraded as a
poor scan is (tilted 1 degree, blurred, noisy, JPEG quality 40), and read by each engine; the truth
is the page's own text layer. CER is the edit distance between the two (whitespace runs as one
space) over the truth's length; pages/s is the reading alone, on this machine, engines and
settings interleaved page by page so a busy moment hits all alike.

    python bench/ocr.py [--pdf FILE ...] [--pages 8] [--dpi 150,200,300] [--engines rapidocr,tesseract]
        [--det-side 736,960] [--json FILE]

Also times the refusal of a decompression bomb (a PNG header claiming 100,000 x 100,000 pixels).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.measure import cer
from ingest import ocr

R_MANUALS = Path("/usr/share/doc/r-doc-pdf/manual")


def degrade(pixels: np.ndarray, seed: int) -> np.ndarray:
    from PIL import Image, ImageFilter

    rng = np.random.default_rng(seed)
    img = (
        Image.fromarray(pixels)
        .rotate(1.0, expand=True, fillcolor=(255, 255, 255))
        .filter(ImageFilter.GaussianBlur(0.6))
    )
    arr = np.clip(np.asarray(img).astype(np.int16) + rng.normal(0, 8, (img.height, img.width, 3)), 0, 255)
    buf = io.BytesIO()
    Image.fromarray(arr.astype(np.uint8)).save(buf, "JPEG", quality=40)
    return np.asarray(Image.open(buf).convert("RGB"))


def pick_pages(pdfs: list[Path], n: int) -> list[tuple[Path, int, str]]:
    """n pages with plenty of text, spread over the files: (file, index, truth)."""
    import pypdfium2 as pdfium

    from ingest.pdf import page_text

    out = []
    per = max(1, n // len(pdfs))
    for path in pdfs:
        doc = pdfium.PdfDocument(str(path))
        total = len(doc)
        step = max(1, total // (per + 2))
        taken = 0
        for i in range(step, total, step):
            text, _ = page_text(doc, i)
            if len(text.split()) > 150:
                out.append((path, i, text))
                taken += 1
            if taken == per:
                break
        doc.close()
    return out[:n]


def render(path: Path, index: int, dpi: int) -> np.ndarray:
    import pypdfium2 as pdfium

    doc = pdfium.PdfDocument(str(path))
    try:
        return doc[index].render(scale=dpi / 72, rev_byteorder=True).to_numpy()[..., :3].copy()
    finally:
        doc.close()


def bomb_seconds() -> float:
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")
    from ingest import IngestError, load_bytes

    t0 = time.perf_counter()
    try:
        load_bytes(png, "bomb.png")
    except IngestError:
        return time.perf_counter() - t0
    raise SystemExit("the bomb was not refused")


def text_pdf_parse(pdfs: list[Path], rounds: int = 3) -> tuple[float, float]:
    """Seconds to parse text PDFs with OCR auto and with OCR off (medians of interleaved rounds): a
    page with a text layer must cost no more in auto mode."""
    from ingest import load_bytes
    from ingest.ocr import OcrSettings

    data = [(p.read_bytes(), p.name) for p in pdfs]
    times: dict[str, list[float]] = {"auto": [], "off": []}
    for _ in range(rounds):
        for mode in ("auto", "off"):
            t0 = time.perf_counter()
            for blob, name in data:
                load_bytes(blob, name, ocr=OcrSettings(mode=mode))  # type: ignore[arg-type]
            times[mode].append(time.perf_counter() - t0)
    return statistics.median(times["auto"]), statistics.median(times["off"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pdf", action="append", type=Path, help="text PDFs (default: three R manuals)")
    ap.add_argument("--pages", type=int, default=8)
    ap.add_argument("--dpi", default="150,200,300")
    ap.add_argument("--engines", default="rapidocr,tesseract")
    ap.add_argument("--det-side", default=str(ocr.DET_SIDE), help="RapidOCR detector sizes to compare")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    pdfs = args.pdf or [R_MANUALS / f for f in ("R-data.pdf", "R-intro.pdf", "R-admin.pdf")]
    pages = pick_pages(pdfs, args.pages)
    dpis = [int(x) for x in args.dpi.split(",")]
    contenders: list[tuple[str, Any]] = []
    for engine in args.engines.split(","):
        if engine == "tesseract" and shutil.which("tesseract") is None:
            print("tesseract: not installed, left out", file=sys.stderr)
            continue
        if engine == "rapidocr":
            for side in (int(x) for x in args.det_side.split(",")):
                contenders.append((f"rapidocr det {side}", lambda img, s=side: ocr._rapidocr(img, s)))
        else:
            contenders.append(("tesseract", lambda img: ocr._tesseract(img, ["en"])))
    for _, fn in contenders:  # models loaded before anything is timed
        fn(render(*pages[0][:2], 100))
    results: dict[tuple[str, str], dict[str, list[float]]] = {}
    for n, (path, index, truth) in enumerate(pages):
        for dpi in dpis:
            clean = render(path, index, dpi)
            for variant, img in (("clean", clean), ("degraded", degrade(clean, n))):
                for name, fn in contenders:
                    t0 = time.perf_counter()
                    lines = fn(img)
                    dt = time.perf_counter() - t0
                    r = results.setdefault((name, f"{variant} {dpi} dpi"), {"cer": [], "s": []})
                    r["cer"].append(cer(ocr.lines_text(lines), truth))
                    r["s"].append(dt)
        print(f"page {n + 1}/{len(pages)} done", file=sys.stderr, flush=True)
    print(f"{len(pages)} pages of {', '.join(p.name for p in pdfs)}; {os.cpu_count()} cores")
    print(f"{'engine':22s} {'pages':18s} {'CER median':>10s} {'CER mean':>9s} {'s/page median':>13s}")
    rows = []
    for (name, kind), r in sorted(results.items()):
        row = {
            "engine": name,
            "pages": kind,
            "cer_median": statistics.median(r["cer"]),
            "cer_mean": statistics.mean(r["cer"]),
            "s_median": statistics.median(r["s"]),
        }
        rows.append(row)
        print(f"{name:22s} {kind:18s} {row['cer_median']:10.4f} {row['cer_mean']:9.4f} {row['s_median']:13.2f}")
    bomb = bomb_seconds()
    print(f"decompression bomb (100,000 x 100,000 PNG) refused in {bomb * 1000:.1f} ms")
    auto, off = text_pdf_parse(pdfs)
    print(f"parsing the text PDFs themselves: ocr auto {auto:.2f} s, ocr off {off:.2f} s (ratio {auto / off:.2f})")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "bomb_s": bomb, "text_pdf_s": [auto, off]}, indent=1))


if __name__ == "__main__":
    main()
