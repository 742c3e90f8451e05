"""PDF text judged by its pixels: what PDFium paints, not what the rules foresee.

After the rules of `ingest.pdf` (render modes, colours, covers, clips, sizes, layers), the text
still judged visible is checked by rendering the page twice with PDFium, annotations included:
as it is, and with that text in the invisible render mode. A text object that changes no pixel
inside its own box, by 10% of the range or more in a channel, draws nothing a reader sees,
whatever did it: a soft mask, a cover drawn by a shading or an annotation, a clip of no area, a
kerning jump off the page, Type 3 glyphs that draw nothing. Only pixels inside one text's box
alone count for it; a text whose box mostly lies under other text's is left as the rules judged
it (so a line is never lost to its neighbour's pixels). Pages are rendered at `SCALE` (1.5: 108
dpi), rotated pages are left to the rules.
"""

from __future__ import annotations

from typing import Any

SCALE = 1.5
SAME = 26  # a pixel changed by less than this (of 255) in every channel did not change for a reader
KIND = "invisible when rendered"
MAX_PIXELS = 40_000_000  # a page bigger than this at SCALE is left to the rules


def judge(page: Any, texts: list[Any], visible: tuple[float, float, float, float]) -> None:
    """Set `kind` on the text objects in `texts` (ingest.pdf's _Text) still judged visible whose
    glyphs change no pixel of the page."""
    import numpy as np
    import pypdfium2.raw as c

    shown = [t for t in texts if t.kind is None and t.obj is not None and t.box[2] > t.box[0]]
    width, height = page.get_width() * SCALE, page.get_height() * SCALE
    if not shown or page.get_rotation() or width * height > MAX_PIXELS:
        return
    before = _render(page)
    modes = [c.FPDFTextObj_GetTextRenderMode(t.obj) for t in shown]
    for t, mode in zip(shown, modes, strict=True):
        c.FPDFTextObj_SetTextRenderMode(t.obj, 7 if mode >= 4 else 3)  # invisible (keeping a clip it adds)
    try:
        after = _render(page)
    finally:
        for t, mode in zip(shown, modes, strict=True):
            c.FPDFTextObj_SetTextRenderMode(t.obj, mode)
    if before.shape != after.shape:
        return
    h, w = before.shape[:2]
    left, top = visible[0], visible[3]
    boxes = []
    cover = np.zeros((h, w), dtype=np.int16)
    for t in shown:
        # a pixel of margin: a glyph's box is tight, and its edge is painted into the pixel beside
        x0, x1 = max(0, int((t.box[0] - left) * SCALE) - 1), min(w, int((t.box[2] - left) * SCALE) + 2)
        y0, y1 = max(0, int((top - t.box[3]) * SCALE) - 1), min(h, int((top - t.box[1]) * SCALE) + 2)
        boxes.append((x0, y0, x1, y1))
        if x1 > x0 and y1 > y0:
            cover[y0:y1, x0:x1] += 1
    alone = cover == 1
    for t, (x0, y0, x1, y1) in zip(shown, boxes, strict=True):
        if x1 <= x0 or y1 <= y0:
            continue  # outside the rendered page: the rules judge it
        mask = alone[y0:y1, x0:x1]
        if np.count_nonzero(mask) * 2 < mask.size:
            continue  # mostly under other text: its changed pixels cannot be told apart
        one, two = before[y0:y1, x0:x1], after[y0:y1, x0:x1]
        changed = (np.maximum(one, two) - np.minimum(one, two)).max(axis=2) >= SAME
        if not np.count_nonzero(changed & mask):
            t.kind = KIND


def _render(page: Any) -> Any:
    bitmap = page.render(scale=SCALE, draw_annots=True, rev_byteorder=True)
    try:
        return bitmap.to_numpy()[..., :3].copy()
    finally:
        bitmap.close()
