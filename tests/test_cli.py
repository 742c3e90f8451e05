"""The `archivist` CLI as a user runs it, on the real embedder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.shared import make_pdf


def run(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, ARCHIVIST_HOME=str(home), HF_HUB_OFFLINE="1")
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        cwd=Path(__file__).parent.parent,
    )


@pytest.mark.slow
def test_batch_with_bad_files_reports_each_and_ingests_the_rest(home: Path, tmp_path: Path) -> None:
    good = make_pdf(tmp_path / "guide.pdf", ["Owls hunt at night.", "Falcons dive at 300 km/h."])
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "photo.md").write_bytes(b"GIF89a" + bytes(100))
    r = run(
        home,
        "ingest",
        str(tmp_path / "missing.pdf"),
        str(tmp_path / "empty.txt"),
        str(tmp_path / "photo.md"),
        str(good),
        "--collection",
        "birds",
    )
    assert r.returncode == 1
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 3
    assert "missing.pdf: no such file" in errors[0]
    assert "empty.txt: file is empty" in errors[1]
    assert "photo.md: unsupported file type" in errors[2]
    assert "added: guide.pdf (2 chunks, 2 pages)" in r.stdout

    s = run(home, "search", "birds", "how fast does a falcon dive", "--k", "2", "--json")
    assert s.returncode == 0, s.stderr
    hits = json.loads(s.stdout)["hits"]
    assert set(hits[0]) == {"document", "page", "page_end", "chunk_id", "score", "text", "ocr", "seconds"}
    assert hits[0]["ocr"] is None  # its own text, not read from a picture
    assert hits[0]["document"] == "guide.pdf" and hits[0]["page"] == 2

    d = run(home, "documents", "birds")
    assert "guide.pdf\tready\tpages=2\tchunks=2" in d.stdout
    assert "empty.txt\tfailed" in d.stdout


def test_ask_with_a_malformed_assistant_lists_each_bad_field(home: Path, tmp_path: Path) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text("name: ok\nmodel: {temperature: -1, max_tokens: 0}\nknowledge: {collections: []}\nextra: 1\n")
    r = run(home, "ask", str(f), "hello?")
    assert r.returncode != 0
    for line in ("model.temperature:", "model.max_tokens:", "knowledge.collections:", "extra: unknown field"):
        assert line in r.stderr
    assert "Traceback" not in r.stderr


def test_search_of_unknown_collection_is_one_clear_line(home: Path) -> None:
    r = run(home, "search", "nothing-here", "q")
    assert r.returncode == 1 and r.stderr.strip() == (
        "error: no collection named 'nothing-here'; ingest files with --collection first"
    )


def test_assistants_list_shows_the_example(home: Path) -> None:
    r = run(home, "assistants", "list", "--json")
    assert r.returncode == 0
    assert "archivist-guide" in [a["name"] for a in json.loads(r.stdout)]


@pytest.mark.slow
def test_ask_json_answers_with_citations_from_docs(home: Path) -> None:
    docs = Path(__file__).parent.parent / "docs"
    # as `make run` ingests the guide: the user pages, not the developer ones
    flags = ["--exclude", "architecture.md", "--exclude", "benchmarks.md", "-q"]
    assert run(home, "ingest", str(docs), "--collection", "archivist-docs", *flags).returncode == 0
    held = json.loads(run(home, "documents", "archivist-docs", "--json").stdout)
    names = {d["name"] for d in held}
    assert "docs/knowledge.md" in names and not names & {"docs/architecture.md", "docs/benchmarks.md"}, names
    r = run(home, "ask", "archivist-guide", "Which file formats can Archivist ingest?", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["answer"].strip()
    assert out["citations"] and set(out["citations"][0]) == {"document", "page", "chunk_id", "score", "ocr", "seconds"}
    # the formats are listed in knowledge.md and in getting-started.md's first steps
    assert {c["document"] for c in out["citations"][:2]} <= {"docs/knowledge.md", "docs/getting-started.md"}
    assert any("DOCX" in q["text"] for q in out["quotes"]), out["quotes"]


@pytest.mark.slow
def test_eval_answers_on_pages_without_page_numbers(home: Path, tmp_path: Path) -> None:
    """A question set over HTML and Markdown names no pages (`"pages": []`): `archivist eval --answers`
    scores the retrieval and the quotes (it once stopped on an empty page clause in its SQL)."""
    (tmp_path / "zebras.html").write_text(
        "<html><body><h1>Zebras</h1><p>Zebras live in herds on the open plains of Africa. "
        "Their black and white stripes confuse the biting flies that carry disease.</p></body></html>"
    )
    (tmp_path / "owls.md").write_text("# Owls\n\nOwls hunt at night. They turn their heads almost all the way round.\n")
    assert (
        run(home, "ingest", str(tmp_path / "zebras.html"), str(tmp_path / "owls.md"), "-c", "animals", "-q").returncode
        == 0
    )
    rows = [
        {
            "id": "z",
            "document": "zebras.html",
            "question": "Why do zebras have stripes?",
            "pages": [],
            "evidence": "stripes confuse the biting flies",
        },
        {"id": "o", "document": "owls.md", "question": "When do owls hunt?", "pages": [], "evidence": "hunt at night"},
    ]
    qa = tmp_path / "qa.jsonl"
    qa.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    r = run(home, "eval", str(qa), "-c", "animals", "--mode", "hybrid", "--answers", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["results"][0]["questions"] == 2 and out["results"][0]["hit_at_1"] == 1.0
    assert {x["id"]: x["evidence_in_quotes"] for x in out["answers"]["rows"]} == {"z": True, "o": True}


@pytest.mark.slow
def test_serve_refuses_a_public_address_without_keys_and_keys_are_managed(home: Path) -> None:
    r = run(home, "serve", "--host", "0.0.0.0", "--port", "1")
    assert r.returncode == 1 and "refusing to serve on 0.0.0.0 without an API key" in r.stderr
    created = run(home, "keys", "create", "laptop", "--assistant", "archivist-guide")
    secret = created.stdout.strip()
    assert created.returncode == 0 and secret.startswith("ak-") and len(secret) > 30
    listed = run(home, "keys", "list").stdout
    assert "laptop" in listed and "active" in listed and secret not in listed
    assert run(home, "keys", "revoke", "laptop").returncode == 0
    assert "revoked" in run(home, "keys", "list").stdout


@pytest.mark.slow
def test_stopping_archivist_ui_stops_the_app_server(home: Path) -> None:
    import signal
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, ARCHIVIST_HOME=str(home), HF_HUB_OFFLINE="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "ui", "--port", str(port)],
        env=env,
        cwd=Path(__file__).parent.parent,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.5)
        else:
            raise AssertionError("the app never listened")
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        time.sleep(1)
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
    finally:
        proc.kill()
