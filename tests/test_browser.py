"""The real app in a real browser: Debian's chromium driven by Playwright (no browser download)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.shared import CHROMIUM, OUTPUT, ROOT, needs_chromium, start_app

# CI installs chromium (.ci/run) and must run these tests; elsewhere they are skipped with a reason.
pytestmark = needs_chromium


def choose(page, combobox, option: str, *, exact: bool = False, tries: int = 4) -> None:  # type: ignore[no-untyped-def]
    """Open a Streamlit select box and click one of its options. A rerun of the page can close
    the list as it opens (seen in CI: the option never showed), so the list is opened again until
    the option is there; it must then be picked, and the box shows it."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import expect

    item = page.get_by_role("option", name=option, exact=exact)
    for attempt in range(tries):
        combobox.click()
        try:
            item.wait_for(state="visible", timeout=10_000)
        except PlaywrightTimeout:
            if attempt == tries - 1:
                raise
            page.keyboard.press("Escape")
            page.wait_for_timeout(1000)  # let the rerun finish
            continue
        item.click()
        break
    expect(combobox).to_have_value(option, timeout=30_000)


def fill_kept(page, box, value: str, tries: int = 4) -> None:  # type: ignore[no-untyped-def]
    """Type into a builder field until it keeps the value: the builder's first run puts the loaded
    assistant's values into its fields and reruns once, which resets what was typed in that second
    (seen in CI: the name came back empty and Save refused it)."""
    from playwright.sync_api import expect

    for attempt in range(tries):
        box.fill(value)
        box.press("Enter")
        page.wait_for_timeout(1500)
        try:
            expect(box).to_have_value(value, timeout=5_000)
            return
        except AssertionError:
            if attempt == tries - 1:
                raise


@pytest.mark.slow
def test_starter_question_streams_an_answer_with_a_citation(app_url: str) -> None:
    from playwright.sync_api import expect, sync_playwright

    OUTPUT.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.goto(app_url)
        starter = page.get_by_role("button", name="How do I run a model on the GPU?")
        expect(starter).to_be_visible(timeout=240_000)  # first start loads the embedder and indexes docs/
        starter.click()
        answer = page.locator('[data-testid="stChatMessage"]').nth(1)
        expect(answer).to_be_visible(timeout=240_000)
        # the answer is checked before it is shown: its draft shows as it is written, marked as one
        draft = page.get_by_text("Draft, being checked against the documents", exact=False)
        expect(draft).to_be_visible(timeout=240_000)
        assert answer.inner_text().replace("Draft, being checked against the documents:", "").strip(" ▌\n")
        page.screenshot(path=str(OUTPUT / "chat-draft.png"), full_page=True)
        # the citation's own line (the quotes' passage headings, "[1] ...", sit in a closed expander)
        citation = page.locator('[data-testid="stExpander"] summary', has_text="[1] ").first
        expect(citation).to_be_visible(timeout=240_000)
        expect(page.get_by_text("models.md", exact=False).filter(visible=True).first).to_be_visible()
        expect(draft).to_have_count(0)  # the checked answer replaced the draft, saying how it was made
        expect(page.get_by_text("Answer: ", exact=False).first).to_be_visible()
        assert answer.inner_text().strip()
        page.screenshot(path=str(OUTPUT / "chat.png"), full_page=True)
        # warm: the time from Enter to the first words of the next answer on screen (printed, not asserted)
        box = page.get_by_placeholder("Ask a question about the documents")
        box.fill("Which file formats can Archivist ingest?")
        start = time.time()
        box.press("Enter")
        page.wait_for_function(  # its draft, or (written faster than a look) the finished answer
            "() => document.body.innerText.includes('Draft, being checked')"
            " || document.body.innerText.split('Answer: ').length > 2",
            timeout=60_000,
            polling=50,
        )
        print(f"warm app: first words of the answer on screen {time.time() - start:.2f} s after Enter")
        browser.close()
    assert (OUTPUT / "chat.png").stat().st_size > 10_000


@pytest.mark.slow
def test_arena_battle_shows_both_answers_together_and_names_only_after_the_vote(harbor, app_url: str) -> None:  # type: ignore[no-untyped-def]
    import yaml
    from playwright.sync_api import expect, sync_playwright

    svc, _ = harbor
    folder = svc.home / "assistants"
    folder.mkdir(parents=True, exist_ok=True)
    for name, mode in (("kw", "keyword"), ("dense", "dense")):
        spec = {
            "name": name,
            "knowledge": {"collections": ["harbor"]},
            "answer_mode": "extractive",
            "retrieval": {"mode": mode, "top_k": 2},
        }
        (folder / f"{name}.yaml").write_text(yaml.safe_dump(spec))
    OUTPUT.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        page.goto(app_url + "/arena")
        expect(page.get_by_text("Pick two or more assistants")).to_be_visible(timeout=240_000)  # first start
        picker = page.get_by_role("combobox", name="Assistants (two or more")
        for name in ("kw", "dense"):
            picker.click()
            page.keyboard.type(name)
            page.keyboard.press("Enter")
        page.keyboard.press("Escape")
        expect(page.get_by_role("button", name="Battle")).to_be_enabled()
        page.get_by_label("Or ask your own question").fill("How often is the lighthouse lens cleaned?")
        page.get_by_role("button", name="Battle").click()
        a = page.get_by_role("heading", name="Assistant A")
        b = page.get_by_role("heading", name="Assistant B")
        expect(a).to_be_visible(timeout=120_000)
        expect(b).to_be_visible()  # both at once: the page shows none until both are written
        expect(page.get_by_text("cleaned every Tuesday").first).to_be_visible()
        body = page.locator('[data-testid="stMain"]').inner_text()
        assert "A was" not in body and "Assistant A:" not in body and "Assistant B:" not in body
        page.screenshot(path=str(OUTPUT / "arena-battle.png"), full_page=True)
        page.get_by_role("button", name="A is better").click()
        reveal = page.get_by_text("A was", exact=False)
        expect(reveal).to_be_visible(timeout=60_000)
        text = reveal.inner_text()
        assert ("A was kw" in text and "B was dense" in text) or ("A was dense" in text and "B was kw" in text)
        page.get_by_role("tab", name="Leaderboard").click()
        table = page.locator('[data-testid="stTable"]')
        expect(table).to_be_visible(timeout=60_000)
        rows = table.inner_text()
        assert "kw" in rows and "dense" in rows and "after 10 votes" in rows
        page.screenshot(path=str(OUTPUT / "arena-leaderboard.png"), full_page=True)
        browser.close()
    battles = svc.arena_store.battles("human")
    assert len(battles) == 1 and battles[0].vote == "a"


@pytest.mark.slow
def test_calculator_card_and_a_code_blocks_run_output_in_the_chat(harbor, app_url: str) -> None:  # type: ignore[no-untyped-def]
    import yaml
    from playwright.sync_api import expect, sync_playwright

    svc, _ = harbor
    folder = svc.home / "assistants"
    folder.mkdir(parents=True, exist_ok=True)
    spec = {
        "name": "tool-bot",
        "knowledge": {"collections": ["harbor"]},
        "answer_mode": "extractive",
        "tools": ["calculator", "code"],
    }
    (folder / "tool-bot.yaml").write_text(yaml.safe_dump(spec))
    OUTPUT.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(app_url)
        picker = page.get_by_role("combobox", name="Assistant")
        expect(picker).to_be_visible(timeout=240_000)  # first start loads the embedder
        picker.click()
        page.keyboard.type("tool-bot")
        page.keyboard.press("Enter")
        expect(page.get_by_role("heading", name="tool-bot")).to_be_visible(timeout=60_000)
        box = page.get_by_placeholder("Ask a question about the documents")
        box.fill("What is 12.5% of 3,840?")
        box.press("Enter")
        expect(page.get_by_text("12.5% of 3,840 = 480").first).to_be_visible(timeout=120_000)
        page.screenshot(path=str(OUTPUT / "tools-calculator.png"), full_page=True)
        box.fill("What does this print?\n```python\nprint(sum(range(10)) * 2)\n```")
        page.locator('[data-testid="stChatInputSubmitButton"]').click()
        run = page.get_by_role("button", name="Run")
        expect(run.first).to_be_visible(timeout=120_000)
        run.first.click()
        expect(page.get_by_text("ran in the sandbox", exact=False).first).to_be_visible(timeout=120_000)
        expect(page.locator('[data-testid="stCode"]').get_by_text("90", exact=True).first).to_be_visible()
        page.screenshot(path=str(OUTPUT / "tools-run.png"), full_page=True)
        browser.close()


@pytest.mark.slow
def test_an_ingest_goes_on_when_you_leave_the_page_and_reload(app_url: str, home: Path, tmp_path: Path) -> None:
    """A running ingest shows wherever you come back from, whichever collection is picked, moving page
    by page with the time left, and Cancel stops it with nothing of it stored; the next ingest goes on
    while you are away and its document is stored."""
    import re

    from playwright.sync_api import expect, sync_playwright

    from tests.shared import make_pdf, make_scan

    pages = [f"Page {i}. " + "The keeper logs the weather, the tide and every passing ship. " * 25 for i in range(60)]
    pdf = make_pdf(tmp_path / "logbook.pdf", pages)
    # a scan is read by OCR, a page every second or two: slow enough to watch, leave and cancel
    scan = make_scan(
        tmp_path / "letters.pdf",
        [f"Letter {i}. The tide came in at dawn and the boats went out." for i in range(30)],
        dpi=100,
    )
    OUTPUT.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(app_url + "/knowledge")
        picker = page.get_by_role("combobox", name="Collection")
        expect(picker).to_be_visible(timeout=240_000)  # first start
        choose(page, picker, "(new collection)")
        page.get_by_label("New collection name").fill("logs")
        page.get_by_label("New collection name").press("Enter")
        expect(page.get_by_text("Add documents (PDF", exact=False)).to_be_visible(timeout=60_000)
        page.wait_for_timeout(1000)  # the rerun for the name has settled
        page.locator('input[type="file"]').set_input_files(str(scan))
        page.get_by_role("button", name="Ingest 1 file(s) into logs").click()
        expect(page.get_by_text("Ingesting 1 file(s) into logs", exact=False)).to_be_visible(timeout=60_000)
        page.get_by_role("link", name="Chat").click()  # leave the page while it works
        expect(page.get_by_placeholder("Ask a question about the documents")).to_be_visible(timeout=60_000)
        page.reload()
        page.goto(app_url + "/knowledge")
        # shown at once, without picking its collection, moving page by page with the time left
        expect(page.get_by_text("Ingesting 1 file(s) into logs", exact=False)).to_be_visible(timeout=60_000)
        status = page.get_by_text(re.compile(r"letters\.pdf: (reading|embedding), page \d+ of 30"))
        expect(status).to_be_visible(timeout=120_000)
        first = int(re.search(r"page (\d+) of 30", status.inner_text()).group(1))  # type: ignore[union-attr]
        expect(page.get_by_text(re.compile(rf"page (?!{first} of)\d+ of 30.*left"))).to_be_visible(timeout=60_000)
        page.screenshot(path=str(OUTPUT / "knowledge-ingesting.png"), full_page=True)
        page.get_by_role("button", name="Cancel").click()
        picker = page.get_by_role("combobox", name="Collection")
        choose(page, picker, "logs", exact=True)
        expect(page.get_by_text("letters.pdf: cancelled, nothing of it stored")).to_be_visible(timeout=60_000)
        # the next ingest goes on while you are away
        page.locator('input[type="file"]').set_input_files(str(pdf))
        expect(page.get_by_role("button", name="Ingest 1 file(s) into logs")).to_be_visible(timeout=60_000)
        page.get_by_role("button", name="Ingest 1 file(s) into logs").click()
        started = page.get_by_text(
            re.compile(r"Ingesting 1 file\(s\) into logs|logbook\.pdf: (reading|embedding|added)")
        )
        expect(started.first).to_be_visible(timeout=60_000)
        page.get_by_role("link", name="Chat").click()
        expect(page.get_by_placeholder("Ask a question about the documents")).to_be_visible(timeout=60_000)
        page.reload()
        page.goto(app_url + "/knowledge")
        picker = page.get_by_role("combobox", name="Collection")
        expect(picker).to_be_visible(timeout=60_000)
        choose(page, picker, "logs", exact=True)
        # the job went on meanwhile: its progress or its result is shown, and the document is stored
        expect(page.get_by_text("logbook.pdf: added", exact=False).first).to_be_visible(timeout=240_000)
        page.reload()
        picker = page.get_by_role("combobox", name="Collection")
        expect(picker).to_be_visible(timeout=60_000)
        choose(page, picker, "logs", exact=True)
        # the documents section: its picker names the stored file (its "Documents in logs" heading was once
        # missing from the page in CI while the table below it was drawn; the picker is what a user acts on)
        expect(page.get_by_role("combobox", name="Document")).to_have_value("logbook.pdf", timeout=120_000)
        expect(page.get_by_text("logbook.pdf: added", exact=False).first).to_be_visible(timeout=60_000)
        page.wait_for_timeout(2000)  # the table is drawn on a canvas: let the rerun finish before the picture
        page.screenshot(path=str(OUTPUT / "knowledge-after-reload.png"), full_page=True)
        browser.close()
    out = subprocess.run(
        [sys.executable, "-m", "app.cli", "--home", str(home), "documents", "logs"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "logbook.pdf\tready" in out.stdout, out.stdout + out.stderr
    assert "letters.pdf" not in out.stdout, out.stdout  # cancelled: not stored, not listed as failed


# Every visible text's contrast against what is behind it, from the computed styles: the text colour
# (with its alpha and the opacity of its ancestors) over the first opaque background below it. WCAG AA:
# 4.5:1, or 3:1 for large text (24px, or 18.66px bold). Returns the texts under the line.
LOW_CONTRAST_JS = """
() => {
  const parse = (c) => { const m = c.match(/rgba?\\(([^)]+)\\)/); if (!m) return null;
    const p = m[1].split(/[ ,\\/]+/).filter(Boolean).map(Number); return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1]; };
  const lum = (c) => { const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]); };
  const over = (top, bottom) => [0, 1, 2].map((i) => top[i] * top[3] + bottom[i] * (1 - top[3])).concat([1]);
  const background = (el, x, y) => { const layers = [];
    for (let e = el; e; e = e.parentElement) { const b = parse(getComputedStyle(e).backgroundColor);
      const box = e.getBoundingClientRect();  // an ancestor drawn elsewhere (a slider's thumb under its label) is not behind it
      if (e !== el && (x < box.left || x > box.right || y < box.top || y > box.bottom)) continue;
      if (b && b[3] > 0) { layers.push(b); if (b[3] >= 1) break; } }
    return layers.reverse().reduce((acc, b) => over(b, acc), [255, 255, 255, 1]); };
  const out = [];
  for (const el of document.querySelectorAll('body *')) {
    const own = [...el.childNodes].filter((n) => n.nodeType === 3 && n.textContent.trim()).map((n) => n.textContent.trim()).join(' ');
    if (!own) continue;
    const r = el.getBoundingClientRect(); const st = getComputedStyle(el);
    if (r.width < 1 || r.height < 1 || st.visibility !== 'visible' || el.closest('[aria-hidden="true"]')) continue;
    if (el.closest('[disabled], [aria-disabled="true"]')) continue;  // inactive controls: exempt in WCAG
    let alpha = 1; for (let e = el; e; e = e.parentElement) alpha *= Number(getComputedStyle(e).opacity);
    if (alpha < 0.05) continue;
    const fg = parse(st.color); if (!fg) continue; fg[3] *= alpha;
    const bg = background(el, r.left + r.width / 2, r.top + r.height / 2); const text = over(fg, bg);
    const [a, b] = [lum(text), lum(bg)]; const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    const size = parseFloat(st.fontSize); const large = size >= 24 || (size >= 18.66 && Number(st.fontWeight) >= 700);
    if (ratio < (large ? 3 : 4.5)) out.push(`${ratio.toFixed(2)}:1 ${st.color} on rgb(${bg.slice(0, 3).map(Math.round)}) ${own.slice(0, 60)}`);
  }
  return out;
}
"""


@pytest.mark.slow
def test_every_page_renders_on_a_desktop_and_a_phone(app_url: str) -> None:
    """Screenshots of each page at 1400x1000 and 390x844 under test-output/browser/pages/ (look at them),
    and every visible text at WCAG AA contrast (4.5:1; 3:1 for large text) on each."""
    from playwright.sync_api import expect, sync_playwright

    out = OUTPUT / "pages"
    out.mkdir(parents=True, exist_ok=True)
    pages = {
        "chat": "",
        "assistants": "/assistants",
        "knowledge": "/knowledge",
        "arena": "/arena",
        "models": "/models",
        "settings": "/settings",
    }
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        for label, size in (("desktop", {"width": 1400, "height": 1000}), ("phone", {"width": 390, "height": 844})):
            page = browser.new_page(viewport=size)
            for name, path in pages.items():
                page.goto(app_url + path)
                expect(page.get_by_role("heading", level=1).first).to_be_visible(timeout=240_000)
                page.wait_for_timeout(1500)
                assert not page.locator('[data-testid="stException"]').count(), f"{name} shows an exception"
                page.screenshot(path=str(out / f"{name}-{label}.png"), full_page=True)
                low = page.evaluate(LOW_CONTRAST_JS)
                assert not low, f"{name} ({label}): text under WCAG AA contrast: {low}"
            page.close()
        browser.close()
    assert len(list(out.glob("*.png"))) == 12


@pytest.mark.slow
def test_stop_ends_the_answer_within_a_second_and_keeps_it(harbor, app_url: str) -> None:  # type: ignore[no-untyped-def]
    import yaml
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import expect, sync_playwright

    svc, _ = harbor
    (svc.home / "assistants").mkdir(parents=True, exist_ok=True)
    spec = {
        "name": "long-bot",
        "instructions": "Write a very long, detailed essay of many paragraphs about the passages.",
        "knowledge": {"collections": ["harbor"]},
        "model": {"max_tokens": 1500, "temperature": 0.9, "context_window": 4096},
        "thinking": "off",
        "fallback": "off",
        "anchor": "off",
        "retrieval": {"unknown_terms": "answer"},
    }
    (svc.home / "assistants" / "long-bot.yaml").write_text(yaml.safe_dump(spec))
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        # The model is writing (some words before the cursor): Stop is clicked. At temperature 0.9
        # the 135M model now and then ends its answer after a few words, before the wait sees it or
        # as the click lands; then the question is asked again in a new conversation (a fresh page),
        # at most six times. A Stop that does not end the answer within 10 s fails at once.
        for _ in range(6):
            page.goto(app_url + "/?assistant=long-bot")
            box = page.get_by_placeholder("Ask a question about the documents")
            expect(box).to_be_visible(timeout=240_000)
            box.fill("Tell me everything about the lighthouse, the lamp, the museum and the puffins.")
            box.press("Enter")
            answer = page.locator('[data-testid="stChatMessage"]').nth(1)
            page.wait_for_function(
                "() => { const m = document.querySelectorAll('[data-testid=stChatMessage]'); if (m.length < 2) "
                "return false; const t = m[1].innerText; const i = t.indexOf('▌'); "
                "return i > 80 || (i < 0 && t.includes('Answer:')); }",
                timeout=240_000,
            )
            if "▌" not in answer.inner_text():
                continue  # it ended first
            written = len(answer.inner_text())
            # the view follows the answer: the quotes under it stay closed while it is written
            quotes = answer.locator("details", has_text="What the documents say")
            if quotes.count():
                assert quotes.first.get_attribute("open") is None
            try:
                page.get_by_role("button", name="Stop writing").click(timeout=5_000)
            except PlaywrightTimeout:
                continue  # it ended before the click
            clicked = time.time()
            page.wait_for_function(  # stopped, or it had just ended on its own as the click landed
                "() => { const t = document.querySelectorAll('[data-testid=stChatMessage]')[1].innerText; "
                "return t.includes('Stopped: the answer as it stood') || "
                "(!t.includes('▌') && !t.includes('Stop writing') && t.includes('Answer:')); }",
                timeout=10_000,
            )
            if page.get_by_text("Stopped: the answer as it stood").count():
                break
        else:
            pytest.fail("the model ended all six answers before Stop could take effect")
        shown_after = time.time() - clicked
        expect(answer.get_by_role("button", name="Stop writing")).to_have_count(0, timeout=10_000)  # run done
        page.wait_for_timeout(1000)
        kept = answer.inner_text()
        page.wait_for_timeout(2000)
        assert answer.inner_text() == kept  # nothing more is written
        page.screenshot(path=str(OUTPUT / "stopped.png"), full_page=True)
        browser.close()
    last = [svc.conversations.messages(c.id)[-1] for c in svc.conversations.all("long-bot")]
    stored = next(m for m in last if m.details.get("stopped"))  # newest first: the one stopped on screen
    # the page shows line breaks inside a paragraph as spaces, and may mark a sentence the documents
    # do not support with a warning sign inside it
    said = " ".join(stored.text.split())[:40]
    shown = " ".join(kept.replace("\u26a0\ufe0f", " ").replace("\u26a0", " ").split())
    assert stored.details["stopped"] is True and said and said in shown
    assert stored.completion_tokens < 1500, stored.completion_tokens  # it did not run on to the end
    print(f"Stop click to the stopped answer on screen: {shown_after:.2f} s; {len(kept) - written} characters after it")


@pytest.mark.slow
def test_the_models_page_downloads_a_served_gguf_with_progress_and_the_builder_picks_it(home: Path) -> None:
    """A hub on loopback under the hub's URL layout, reached through huggingface_hub's endpoint
    setting (HF_ENDPOINT): the first recommended model downloads with a moving progress bar, is
    checked, listed, and the builder saves an assistant that uses it."""
    import yaml
    from playwright.sync_api import expect, sync_playwright

    from runtime.hub import RECOMMENDED, hub_path
    from runtime.spec import resolve_model
    from tests.hub_server import Hub, serve_hub

    pick = RECOMMENDED[0]
    gguf = resolve_model("bundled:smollm2-135m").read_bytes()
    OUTPUT.mkdir(parents=True, exist_ok=True)
    with serve_hub(Hub({f"{pick.repo}/{pick.filename}": gguf}, bytes_per_s=15e6)) as hub:
        app = start_app(home, HF_ENDPOINT=hub.url, HF_HUB_OFFLINE="0")  # downloads on, from the hub on loopback
        url = next(app)
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.goto(url + "/models")
                expect(page.get_by_role("heading", name="Recommended models")).to_be_visible(timeout=240_000)
                page.get_by_role("button", name="Download").first.click()
                bar = page.get_by_text("Downloading:", exact=False).first
                expect(bar).to_be_visible(timeout=30_000)
                first = bar.inner_text()
                page.screenshot(path=str(OUTPUT / "models-downloading.png"), full_page=True)
                page.wait_for_timeout(1500)
                if bar.count():
                    assert bar.inner_text() != first  # the bar moves
                expect(page.get_by_text("Downloaded: pick it in the builder", exact=False)).to_be_visible(
                    timeout=120_000
                )
                expect(page.get_by_text(pick.spec).first).to_be_visible(timeout=30_000)  # on this computer
                page.screenshot(path=str(OUTPUT / "models-downloaded.png"), full_page=True)

                page.goto(url + "/assistants")
                expect(page.get_by_label("Name", exact=True)).to_be_visible(timeout=120_000)
                fill_kept(page, page.get_by_label("Name", exact=True), "qwen-notes")
                knowledge = page.get_by_role("combobox", name="Knowledge")
                knowledge.click()
                page.keyboard.type("archivist-docs")
                page.keyboard.press("Enter")
                page.keyboard.press("Escape")
                page.get_by_text("Model", exact=True).first.click()  # the Model section
                choose(page, page.get_by_role("combobox", name="Model", exact=True), pick.spec)
                page.wait_for_timeout(1000)
                page.get_by_role("button", name="Save assistant").click()
                expect(page.get_by_text("Saved qwen-notes", exact=False).first).to_be_visible(timeout=60_000)
                page.screenshot(path=str(OUTPUT / "builder-picked-model.png"), full_page=True)
                # a second save of an edit persists too (the builder now edits the saved assistant)
                expect(page.get_by_role("combobox", name="Edit an assistant")).to_have_value("qwen-notes")
                page.get_by_role("textbox", name="Description").fill("Answers from the guide")
                page.get_by_role("textbox", name="Description").press("Enter")
                page.wait_for_timeout(1000)
                page.get_by_role("button", name="Save assistant").click()
                expect(page.get_by_text("Saved qwen-notes", exact=False).first).to_be_visible(timeout=60_000)
                page.wait_for_timeout(500)
                browser.close()
        finally:
            app.close()
    assert ("GET", f"/{pick.repo}/resolve/main/{pick.filename}", "") in hub.requests
    assert hub_path(home / "models", pick.repo, pick.filename).read_bytes() == gguf
    saved = yaml.safe_load((home / "assistants" / "qwen-notes.yaml").read_text())
    assert saved["model"]["path"] == pick.spec and saved["knowledge"]["collections"] == ["archivist-docs"]
    assert saved["description"] == "Answers from the guide"


@pytest.mark.slow
def test_a_citation_opens_the_pdf_page_with_the_quote_outlined(harbor, app_url: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A text PDF's page in the PDF viewer with the quote outlined; then a scanned copy's page as its
    picture, said to be read from an image, with the quoted lines outlined (one app for both)."""
    import yaml
    from playwright.sync_api import expect, sync_playwright

    svc, pdf = harbor
    (svc.home / "assistants").mkdir(parents=True, exist_ok=True)
    spec = {"name": "guide-bot", "knowledge": {"collections": ["harbor"]}, "answer_mode": "extractive"}
    (svc.home / "assistants" / "guide-bot.yaml").write_text(yaml.safe_dump(spec))
    _scan_into(svc, pdf, tmp_path / "scan.pdf")
    OUTPUT.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        dialog = _open_citation(page, app_url, "guide-bot", "[1] harbor.pdf, page 2")
        expect(dialog.get_by_text("Page 2", exact=False).first).to_be_visible(timeout=60_000)
        viewer = dialog.frame_locator("iframe").first
        outline = viewer.locator('[id^="annotation-"]').first
        expect(outline).to_be_attached(timeout=60_000)  # the quoted lines, outlined on the page
        expect(viewer.locator("canvas").first).to_be_visible(timeout=60_000)  # the page itself, drawn
        page.wait_for_timeout(1500)
        page.screenshot(path=str(OUTPUT / "citation-page.png"))
        _scanned_citation(page, app_url)
        browser.close()


def _open_citation(page, app_url: str, assistant: str, label: str, says: str | None = None):  # type: ignore[no-untyped-def]
    """Ask `assistant` when the lighthouse lens is cleaned, wait for the stored answer, open its
    citation `label` (which must say `says`) and press Show in the document: the dialog."""
    from playwright.sync_api import expect

    page.goto(f"{app_url}/?assistant={assistant}")
    box = page.get_by_placeholder("Ask a question about the documents")
    expect(box).to_be_visible(timeout=240_000)
    expect(page.get_by_role("heading", name=assistant)).to_be_visible(timeout=60_000)
    box.fill("How often is the lens of the Greywater lighthouse cleaned?")
    box.press("Enter")
    expect(page.locator("summary", has_text=label).last).to_be_visible(timeout=120_000)  # the citation, not the quote
    # the answer is stored and the page drawn again from the conversation: no Stop button any more
    expect(page.get_by_role("button", name="Stop writing")).to_have_count(0, timeout=60_000)
    page.wait_for_timeout(1500)
    citation = page.locator("summary", has_text=label).last
    if says is not None:
        expect(citation).to_contain_text(says)
    citation.click()
    opened = page.locator("details", has=page.locator("summary", has_text=label)).last
    opened.get_by_role("button", name="Show in the document").click()
    return page.get_by_role("dialog")


def _scan_into(svc, pdf: Path, scan: Path) -> None:  # type: ignore[no-untyped-def]
    """A scanner's copy of `pdf` (pictures only) in the collection "scans", and an assistant on it."""
    import pypdfium2 as pdfium
    import yaml
    from PIL import Image

    from ingest import ingest_paths

    text_pdf = pdfium.PdfDocument(str(pdf))
    pictures = [
        Image.fromarray(text_pdf[i].render(scale=150 / 72).to_numpy()[..., :3].copy()) for i in range(len(text_pdf))
    ]
    text_pdf.close()
    pictures[0].save(scan, save_all=True, append_images=pictures[1:], resolution=150)
    assert not ingest_paths([scan], "scans", svc.store, svc.embedder).failed
    spec = {"name": "scan-bot", "knowledge": {"collections": ["scans"]}, "answer_mode": "extractive"}
    (svc.home / "assistants" / "scan-bot.yaml").write_text(yaml.safe_dump(spec))


def _scanned_citation(page, app_url: str) -> None:  # type: ignore[no-untyped-def]
    import io

    import numpy as np
    from PIL import Image
    from playwright.sync_api import expect

    from app.ui.evidence import OUTLINE

    dialog = _open_citation(page, app_url, "scan-bot", "[1] scan.pdf, page 2", says="read from an image (confidence")
    expect(dialog.get_by_text("read from an image", exact=False).first).to_be_visible(timeout=60_000)
    picture = dialog.locator("img").first
    expect(picture).to_be_visible(timeout=120_000)
    expect(dialog.get_by_text("could not be located")).to_have_count(0)
    page.wait_for_timeout(1000)
    page.screenshot(path=str(OUTPUT / "citation-scan.png"))
    src = picture.get_attribute("src") or ""
    shown = httpx.get(src if src.startswith("http") else app_url + src, timeout=30).content
    pixels = np.asarray(Image.open(io.BytesIO(shown)).convert("RGB")).astype(int)
    colour = np.array([int(OUTLINE[i : i + 2], 16) for i in (1, 3, 5)])
    # the outline's colour (Streamlit sends the picture as a JPEG: near it, not exactly it)
    outlined = (np.abs(pixels - colour).max(axis=2) < 60).sum()
    assert outlined > 2000, f"no outline drawn around the quoted lines ({outlined} pixels of its colour)"


@pytest.mark.slow
def test_editing_an_assistant_edits_it_and_unsaved_changes_survive_leaving_the_page(app_url: str, home: Path) -> None:
    """Edit in the gallery loads the assistant's own fields; a change survives a visit to another page
    (offered back, never written by itself); Save changes that assistant and makes no new one."""
    import yaml
    from playwright.sync_api import expect, sync_playwright

    folder = home / "assistants"
    folder.mkdir(parents=True, exist_ok=True)
    spec = {"name": "tide-bot", "instructions": "Answer from the tide tables.", "knowledge": {"collections": ["c"]}}
    (folder / "tide-bot.yaml").write_text(yaml.safe_dump(spec))
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(app_url + "/assistants")
        edit = page.locator(".st-key-edit-tide-bot button")
        expect(edit).to_be_visible(timeout=240_000)  # first start
        edit.click()
        expect(page.get_by_role("combobox", name="Edit an assistant")).to_have_value("tide-bot", timeout=60_000)
        instructions = page.get_by_role("textbox", name="Instructions")
        expect(instructions).to_have_value("Answer from the tide tables.", timeout=60_000)
        expect(page.get_by_role("textbox", name="Name", exact=True)).to_have_value("tide-bot")
        instructions.fill("Answer about tides only, with the time of high water.")
        page.get_by_role("textbox", name="Description").click()  # the text area commits on leaving it
        page.wait_for_timeout(1500)
        page.get_by_role("link", name="Chat").click()  # away, with the change unsaved
        expect(page.get_by_placeholder("Ask a question about the documents")).to_be_visible(timeout=60_000)
        assert "tides only" not in (folder / "tide-bot.yaml").read_text()  # nothing written by itself
        page.get_by_role("link", name="Assistants").click()
        expect(page.get_by_text("You have unsaved changes to tide-bot from before")).to_be_visible(timeout=60_000)
        expect(page.get_by_role("combobox", name="Edit an assistant")).to_have_value("tide-bot")
        restored = "Answer about tides only, with the time of high water."
        for attempt in range(4):  # a click during a rerun of the page is swallowed (seen in CI): again
            restore = page.get_by_role("button", name="Restore my changes")
            if restore.count():
                restore.click()
            try:
                expect(page.get_by_role("textbox", name="Instructions").last).to_have_value(restored, timeout=15_000)
                break
            except AssertionError:
                if attempt == 3:
                    raise
        expect(page.get_by_role("textbox", name="Instructions")).to_have_value(restored, timeout=60_000)
        page.screenshot(path=str(OUTPUT / "builder-restored.png"), full_page=True)
        page.get_by_role("button", name="Save assistant").click()
        expect(page.get_by_text("Saved tide-bot", exact=False).first).to_be_visible(timeout=60_000)
        page.reload()
        edit = page.locator(".st-key-edit-tide-bot button")
        expect(edit).to_be_visible(timeout=60_000)
        edit.click()
        expect(page.get_by_role("textbox", name="Instructions")).to_have_value(
            "Answer about tides only, with the time of high water.", timeout=60_000
        )
        expect(page.get_by_text("You have unsaved changes")).to_have_count(0)
        browser.close()
    assert sorted(p.name for p in folder.glob("*.yaml")) == ["tide-bot.yaml"]  # the same one, no new one
    saved = yaml.safe_load((folder / "tide-bot.yaml").read_text())
    assert saved["instructions"] == "Answer about tides only, with the time of high water."


@pytest.mark.slow
def test_a_shared_app_needs_a_key_collections_are_renamed_and_deleted_and_a_phone_sidebar_closes(
    home: Path, tmp_path: Path, real_embedder: Any
) -> None:
    """Served beyond loopback the app asks for an API key and refuses a wrong one; on the Knowledge
    page a collection is renamed (its documents kept) and deleted after a confirmation; on a phone
    the sidebar closes once a choice is made in it."""
    from playwright.sync_api import expect, sync_playwright

    from app.api import KeyStore
    from app.services import Services
    from ingest import ingest_paths

    svc = Services.create(home, embedder=real_embedder)
    notes = tmp_path / "notes.md"
    notes.write_text("# Tides\n\nHigh water at the harbor mouth comes 40 minutes before the town quay.\n")
    ingest_paths([notes], "tide-notes", svc.store, svc.embedder)
    secret = KeyStore(svc.store.engine).create("deckhand")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        for url in start_app(home, ARCHIVIST_UI_LOGIN="1"):  # what `archivist ui --host 0.0.0.0` sets
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            log_in(page, url + "/knowledge", "not-a-key-of-this-workspace", refused=True)
            log_in(page, url + "/knowledge", secret)
            expect(page.get_by_role("heading", name="Knowledge")).to_be_visible(timeout=120_000)
            choose(page, page.get_by_role("combobox", name="Collection"), "tide-notes", exact=True)
            page.get_by_text("Manage tide-notes: folders, rename, delete").click()
            page.get_by_role("textbox", name="New name").fill("harbor-notes")
            page.get_by_role("textbox", name="New name").press("Enter")
            page.get_by_role("button", name="Rename collection").click()
            expect(page.get_by_role("combobox", name="Collection")).to_have_value("harbor-notes", timeout=60_000)
            assert "harbor-notes" in svc.store.collection_names() and "tide-notes" not in svc.store.collection_names()
            assert [d.name for d in svc.store.documents("harbor-notes")] == ["notes.md"]  # kept
            page.get_by_text("Manage harbor-notes: folders, rename, delete").click()
            delete = page.get_by_role("button", name="Delete collection")
            expect(delete).to_be_disabled()  # not before the confirmation
            tick(page, "Yes, delete harbor-notes and its 1 document(s)")
            expect(delete).to_be_enabled(timeout=30_000)
            delete.click()
            expect(page.get_by_role("combobox", name="Collection")).to_have_value("(new collection)", timeout=60_000)
            assert "harbor-notes" not in svc.store.collection_names()
            page.screenshot(path=str(OUTPUT / "collection-deleted.png"), full_page=True)
            page.close()

            phone = browser.new_page(viewport={"width": 390, "height": 844})
            log_in(phone, url, secret)
            sidebar = phone.locator('section[data-testid="stSidebar"]')
            expect(phone.get_by_placeholder("Ask a question about the documents")).to_be_visible(timeout=120_000)
            expect(sidebar).to_have_attribute("data-collapsed", "true")  # a phone opens on the page itself
            phone.get_by_role("button", name="Expand sidebar").click()
            expect(sidebar).to_have_attribute("data-collapsed", "false", timeout=10_000)
            sidebar.get_by_role("button", name="New conversation").click()
            expect(sidebar).to_have_attribute("data-collapsed", "true", timeout=15_000)
            phone.wait_for_timeout(1000)  # its slide out
            box = sidebar.bounding_box()
            assert box is None or box["x"] + box["width"] <= 1, box  # out of sight, the chat page in full
            phone.screenshot(path=str(OUTPUT / "phone-sidebar-closed.png"))
        browser.close()


def tick(page: Any, label: str, tries: int = 4) -> None:
    """Tick a Streamlit checkbox by its label. A rerun of the page (the Knowledge page's progress
    panel reruns every second) can swallow the click, so it is clicked again until it holds."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import expect

    box = page.get_by_role("checkbox", name=label)
    for attempt in range(tries):
        page.get_by_text(label, exact=True).click()
        try:
            expect(box).to_be_checked(timeout=5_000)
            return
        except (AssertionError, PlaywrightTimeout):
            if attempt == tries - 1:
                raise


def log_in(page: Any, url: str, secret: str, *, refused: bool = False) -> None:
    """Open a shared app's page and give it an API key; a refused one leaves the visitor at the login."""
    from playwright.sync_api import expect

    page.goto(url)
    key = page.get_by_role("textbox", name="API key")
    expect(key).to_be_visible(timeout=240_000)
    key.fill(secret)
    key.press("Enter")
    page.get_by_role("button", name="Log in").click()
    if refused:
        expect(page.get_by_text("That key is not valid here (or it was revoked).")).to_be_visible(timeout=60_000)
        expect(page.get_by_role("heading", name="Knowledge")).to_have_count(0)
