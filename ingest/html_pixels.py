"""The pixels of an HTML page judge what a reader sees of each of its texts (`ingest.html_render`
runs it in Chromium).

The page is painted twice, as it is and with all its text transparent (colour, fill, shadow,
stroke); a text node that changes no pixel inside its own boxes, by 10% of the range or more in
a channel, draws nothing a reader sees. Only pixels of one text's boxes alone count for it, so a
transparent line laid over a visible one is not seen by its neighbour's pixels; texts whose
boxes mostly lie under other text's are painted transparent alone and judged again. Pages are
painted in bands of `TILE_PX` that overlap, so that a line cut by a band's edge is whole in one.
"""

from __future__ import annotations

import base64
import io
import json
import secrets
from dataclasses import dataclass
from typing import Any

MAX_WIDTH_PX = 2560  # text past this, or left of or above the page, is outside the page
MAX_HEIGHT_PX = 100_000  # text lower than this is left to the rule set
TILE_PX = 4096
MARGIN_PX = 128
SAME = 26  # a pixel changed by less than this (of 255) in every channel did not change for a reader
MIN_PIXELS = 1  # changed pixels a text needs inside its boxes to be seen (rendering has no noise)
FEW_PIXELS = 25  # so few changed pixels of a text overlapping another's may be its neighbour's
MIN_HEIGHT_PX = 3.0  # boxes lower than this hold text too small to read
PAGE_TIMEOUT_S = 30.0

# every text node of the page: its boxes in page coordinates, and whether a box the reader can
# scroll holds it outside that box's visible part
_COLLECT = """() => {
  // (a form control draws its text from its own shadow tree, not from these nodes: left to the rules)
  const skip = new Set(["SCRIPT", "STYLE", "TEMPLATE", "HEAD", "TITLE", "TEXTAREA", "OPTION", "SELECT", "OPTGROUP"]);
  for (const a of document.getAnimations()) { try { a.finish(); } catch (e) {} }
  // boxes the reader can scroll: first those with more inside than they show (cheap), then
  // their computed overflow
  const scrollers = new Set();
  for (const el of document.body ? document.body.querySelectorAll("*") : []) {
    if (el.scrollHeight > el.clientHeight || el.scrollWidth > el.clientWidth) {
      const cs = getComputedStyle(el);
      if (/(auto|scroll)/.test(cs.overflowX + " " + cs.overflowY)) scrollers.add(el);
    }
  }
  const scroller = new Map();
  const scrollBox = el => {  // (a loop, not recursion: hostile pages nest deeply)
    const path = [];
    let found = null;
    for (let a = el; a && a !== document.body && a !== document.documentElement; a = a.parentElement) {
      if (scroller.has(a)) { found = scroller.get(a); break; }
      if (scrollers.has(a)) { found = a; break; }
      path.push(a);
    }
    for (const a of path) scroller.set(a, found);
    return found;
  };
  const walker = document.createTreeWalker(document.documentElement, NodeFilter.SHOW_TEXT);
  const nodes = [], out = [];
  let n;
  while ((n = walker.nextNode())) {
    const p = n.parentElement;
    if (!n.data.trim() || !p || skip.has(p.tagName)) continue;
    const range = document.createRange();
    range.selectNodeContents(n);
    const rects = [...range.getClientRects()].filter(r => r.width > 0 && r.height > 0)
      .map(r => [r.left + scrollX, r.top + scrollY, r.width, r.height]);
    let scrolled = false;
    const box = scrollBox(p);
    if (box && rects.length) {
      const b = box.getBoundingClientRect();
      scrolled = rects.some(([x, y, w, h]) => x < b.left + scrollX || y < b.top + scrollY
        || x + w > b.right + scrollX || y + h > b.bottom + scrollY);
    }
    nodes.push(n);
    out.push([rects, scrolled]);
  }
  window.__archivistText = nodes;
  const root = document.documentElement;
  return JSON.stringify({nodes: out, width: root.scrollWidth, height: root.scrollHeight});
}"""

# the page's text transparent (on) or as it was (off); the style element stays, switched
_TRANSPARENT = """([css, on, token]) => {
  // ours only: the window outlives a page set into it (the last page's style), and a page's
  // element with id="__archivistStyle" is a window property too (the token is unknown to pages)
  let s = window.__archivistStyle;
  if (!(s instanceof HTMLStyleElement) || !s.isConnected || s.dataset.archivist !== token) {
    s = document.createElement("style");
    s.dataset.archivist = token;
    s.textContent = css;
    document.documentElement.appendChild(s);
    window.__archivistStyle = s;
  }
  s.disabled = !on;
}"""
_TOKEN = secrets.token_hex(8)
# the wrappers of a text seen and of a text hidden: named with a token a page cannot know, so that
# markup written in a page never passes for a verdict
VERDICT_TAGS = (f"archivist-seen-{_TOKEN}", f"archivist-hidden-{_TOKEN}")
_PROBE_TAG = f"archivist-probe-{_TOKEN}"
_HIDE_TEXT = (
    "*, *::before, *::after, *::marker { color: transparent !important; "
    "-webkit-text-fill-color: transparent !important; text-shadow: none !important; "
    "-webkit-text-stroke-width: 0 !important; text-decoration-color: transparent !important; "
    "transition: none !important }"
)

# wrap each judged text node; verdicts[i] is null (not judged), "" (seen) or the kind it is hidden by
_WRAP = """([verdicts, seen, hidden]) => {
  window.__archivistStyle.remove();
  window.__archivistText.forEach((n, i) => {
    const v = verdicts[i];
    if (v === null) return;
    const w = document.createElement(v ? hidden : seen);
    if (v) w.setAttribute("kind", v);
    n.replaceWith(w);
    w.appendChild(n);
  });
  return document.documentElement.outerHTML;
}"""


# --- judging the pixels ---------------------------------------------------------------------------


@dataclass
class _Node:
    rects: list[tuple[float, float, float, float]]
    scrolled: bool


def verdicts(
    nodes: list[_Node], before: Any, after: Any, top: int, band: tuple[int, int] | None = None
) -> tuple[list[str | None], set[int]]:
    """What each text node's boxes show in two renders of the page from `top` down, for the boxes
    whose middle lies in `band` (the whole render by default; None: no box there, for another band
    or the rule set to judge), and the nodes whose
    boxes mostly lie under other text's (their changed pixels cannot be told apart: judged alone).

    Only pixels inside one text's boxes alone count for it: a transparent line laid over a visible
    one is not seen by its neighbour's pixels; a text whose boxes overlap another's and that
    changed only a few pixels of its own (the edge of its neighbour's glyphs) is judged alone."""
    import numpy as np

    h, w = before.shape[:2]
    low, high = band or (top, top + h)
    boxes: list[list[tuple[int, int, int, int, float]]] = []
    cover = np.zeros((h, w), dtype=np.int16)
    for node in nodes:
        mine = []
        for x, y, rw, rh in node.rects:
            if low <= y + rh / 2 < high:
                x0, y0 = max(0, round(x)), max(0, round(y) - top)  # rounded: side by side boxes share no pixel
                x1, y1 = min(w, round(x + rw)), min(h, round(y + rh) - top)
                mine.append((x0, y0, x1, y1, rh))
                if x1 > x0 and y1 > y0:
                    cover[y0:y1, x0:x1] += 1
        boxes.append(mine)
    alone = cover == 1

    def counts(x0: int, y0: int, x1: int, y1: int) -> tuple[int, int]:
        """Pixels of the box that lie in no other text's box, and those of them that changed."""
        mask = alone[y0:y1, x0:x1]
        one, two = before[y0:y1, x0:x1], after[y0:y1, x0:x1]
        changed = (np.maximum(one, two) - np.minimum(one, two)).max(axis=2) >= SAME
        return int(np.count_nonzero(mask)), int(np.count_nonzero(changed & mask))

    out: list[str | None] = []
    shared: set[int] = set()
    for i, (node, mine) in enumerate(zip(nodes, boxes, strict=True)):
        if not mine:
            out.append(None)
            continue
        seen, area, own, changed = False, 0, 0, 0
        for x0, y0, x1, y1, rh in mine:
            if x1 > x0 and y1 > y0:
                mine_alone, mine_changed = counts(x0, y0, x1, y1)
                area += (x1 - x0) * (y1 - y0)
                own += mine_alone
                changed += mine_changed
                seen = seen or (rh >= MIN_HEIGHT_PX and mine_changed >= MIN_PIXELS)
        if area and (own < area / 2 or (own < area and changed < FEW_PIXELS)):
            shared.add(i)
        out.append("" if seen else _unseen_kind([r for r in node.rects if low <= r[1] + r[3] / 2 < high], w))
    return out, shared


def _pixels(png: bytes) -> Any:
    """A screenshot as an array of RGB pixels."""
    import numpy as np
    from PIL import Image

    image: Any = Image.open(io.BytesIO(png))
    if image.mode not in ("RGB", "RGBA"):
        image = image.convert("RGB")
    return np.asarray(image)[..., :3]  # (no conversion of RGBA: a view is enough)


def _shot(cdp: Any, x: int, y: int, width: int, height: int) -> Any:
    """The page's pixels inside a box, below the window as well (Chrome DevTools Protocol: PNG
    made for speed, not size)."""
    clip = {"x": x, "y": y, "width": width, "height": height, "scale": 1}
    sent = {"format": "png", "optimizeForSpeed": True, "captureBeyondViewport": True, "clip": clip}
    return _pixels(base64.b64decode(cdp.send("Page.captureScreenshot", sent)["data"]))


def _unseen_kind(rects: list[tuple[float, float, float, float]], width: float) -> str:
    if all(x + rw <= 0 or y + rh <= 0 or x >= width for x, y, rw, rh in rects):
        return "outside the page"
    if all(rh < MIN_HEIGHT_PX for _, _, _, rh in rects):
        return "too small to read"
    return "invisible when rendered"


def judge_page(page: Any, cdp: Any, html: str) -> str:
    """Render `html` in `page` and return it with its text nodes wrapped in their verdicts."""
    page.set_content(html, wait_until="domcontentloaded", timeout=PAGE_TIMEOUT_S * 1000)
    info = json.loads(page.evaluate(_COLLECT))  # one string: Playwright checks no 10,000 objects
    nodes = [_Node([tuple(r) for r in rects], scrolled) for rects, scrolled in info["nodes"]]
    width = max(1, min(int(info["width"]), MAX_WIDTH_PX))
    height = max(1, min(int(info["height"]), MAX_HEIGHT_PX))

    # bands overlap by MARGIN_PX, so that a line cut by a band's edge is seen whole in the band
    # that holds its middle; one band's two paints at a time (a tall page's would not fit in memory)
    final: list[str | None] = [None] * len(nodes)
    shared: set[int] = set()
    for top in range(0, height, TILE_PX):
        start = max(0, top - MARGIN_PX)
        first = _shot(cdp, 0, start, width, min(top + TILE_PX + MARGIN_PX, height) - start)
        page.evaluate(_TRANSPARENT, [_HIDE_TEXT, True, _TOKEN])
        after = _shot(cdp, 0, start, width, first.shape[0])
        page.evaluate(_TRANSPARENT, [_HIDE_TEXT, False, _TOKEN])
        band, under = verdicts(nodes, first, after, start, (top, top + TILE_PX))
        shared |= under
        for i, v in enumerate(band):
            final[i] = v if final[i] is None else (final[i] if v is None else ("" if "" in (v, final[i]) else v))
    for i in sorted(shared)[:MAX_ALONE]:
        again = _alone(page, cdp, i, nodes[i], width, height)
        final[i] = final[i] if again is None else again
    for i, node in enumerate(nodes):
        if node.scrolled:
            final[i] = ""  # the reader scrolls the box to it
        elif not node.rects:
            final[i] = "not rendered"
        elif final[i] is None and all(y + rh <= 0 or x + rw <= 0 or x >= width for x, y, rw, rh in node.rects):
            final[i] = "outside the page"
    return str(page.evaluate(_WRAP, [final, *VERDICT_TAGS]))


# one text node in an inline wrapper of its own with `css` (null: out of it again), the page's
# other text as it is
_PROBE = """([i, css, tag]) => {
  window.__archivistStyle.remove();
  const n = window.__archivistText[i];
  let w = n.parentElement;
  if (w.localName !== tag) {
    if (css === null) return;
    w = document.createElement(tag);
    n.replaceWith(w);
    w.appendChild(n);
  }
  if (css === null) w.replaceWith(n); else w.setAttribute("style", css);
}"""
MAX_ALONE = 200  # text nodes a page may have judged one by one (they lie under other text)


def _alone(page: Any, cdp: Any, i: int, node: _Node, width: int, height: int) -> str | None:
    """Judge one text node by making only it transparent: "" seen, a kind, or None (not judged)."""
    x0, y0 = max(0.0, min(r[0] for r in node.rects)), max(0.0, min(r[1] for r in node.rects))
    x1 = min(float(width), max(r[0] + r[2] for r in node.rects))
    y1 = min(float(height), max(r[1] + r[3] for r in node.rects))
    if x1 - x0 < 1 or y1 - y0 < 1 or y1 - y0 > TILE_PX:
        return None
    left, top = int(x0), int(y0)
    box = (left, top, int(x1) - left + 1, int(y1) - top + 1)
    page.evaluate(_PROBE, [i, "display: inline", _PROBE_TAG])
    before = _shot(cdp, *box)
    page.evaluate(_PROBE, [i, _HIDE_ONE, _PROBE_TAG])
    after = _shot(cdp, *box)
    page.evaluate(_PROBE, [i, None, _PROBE_TAG])
    moved = [_Node([(r[0] - left, r[1] - top, r[2], r[3]) for r in node.rects], False)]
    if before.shape != after.shape:
        return None
    return verdicts(moved, before, after, 0)[0][0]


_HIDE_ONE = (
    "color: transparent !important; -webkit-text-fill-color: transparent !important; "
    "text-shadow: none !important; -webkit-text-stroke-width: 0 !important; transition: none !important"
)
