"""Background ingest (the app's uploads): jobs outlive the page, and a killed app loses nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from app.cli import main
from app.services import Services
from tests.shared import make_pdf, slow_encoder

ROOT = Path(__file__).parent.parent


def test_a_job_ingests_in_the_background_and_reports_each_file(home: Path, real_embedder: Any) -> None:
    svc = Services.create(home, embedder=real_embedder)
    job = svc.ingest_jobs.submit("notes", [("owls.txt", b"Owls hunt at night."), ("empty.txt", b"")])
    assert job.running and [f.stage for f in job.files] in (["waiting", "waiting"], ["reading", "waiting"])
    assert svc.ingest_jobs.wait(120)
    assert [f.stage for f in job.files] == ["added", "failed"]
    assert "empty.txt" in job.files[1].error and job.files[0].chunks == 1
    assert [d.name for d in svc.store.documents("notes") if d.status == "ready"] == ["owls.txt"]
    assert svc.store.in_progress() == []


@pytest.mark.slow
def test_an_app_killed_mid_ingest_leaves_the_file_listed_as_failed(home: Path, tmp_path: Path, capsys: Any) -> None:
    pages = [f"Page {i}. " + "The keeper logs the weather, the tide and every passing ship. " * 25 for i in range(120)]
    pdf = make_pdf(tmp_path / "logbook.pdf", pages)
    script = (
        "import sys, time\n"
        "from app.services import Services\n"
        "svc = Services.create(sys.argv[1])\n"
        "svc.ingest_jobs.submit('logs', [('logbook.pdf', open(sys.argv[2], 'rb').read())])\n"
        "time.sleep(600)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script, str(home), str(pdf)], cwd=ROOT, env=dict(os.environ))
    try:
        deadline = time.time() + 240
        while not list((home / "journal").glob("*.json")) and time.time() < deadline:
            time.sleep(0.2)
        assert list((home / "journal").glob("*.json")), "the job never started"
        time.sleep(1.0)
        assert main(["--home", str(home), "documents", "logs", "--json"]) == 0
        running = json.loads(capsys.readouterr().out)
        assert [(r["name"], r["status"]) for r in running] == [("logbook.pdf", "ingesting")]
    finally:
        proc.send_signal(signal.SIGKILL)  # the app process dies mid-ingest
        proc.wait(30)
    assert main(["--home", str(home), "documents", "logs", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["name"], r["status"]) for r in rows] == [("logbook.pdf", "failed")]
    assert "interrupted" in rows[0]["error"]


def test_a_job_of_small_uploads_embeds_them_together_and_reports_each(
    home: Path, fake_embedder: Any, monkeypatch: Any
) -> None:
    """The app's uploads go the way `archivist ingest` goes: the next files parsed while one is
    embedded, small ones sharing encoder batches; each file still gets its own result."""
    import re

    calls = slow_encoder(fake_embedder, monkeypatch)
    svc = Services.create(home, embedder=fake_embedder)
    big = "\n".join(f"# Part {i}\n\n{' '.join(f'big{i}w{j}' for j in range(30))}.\n" for i in range(40))
    small = [(f"s{i}.md", f"# S{i}\n\nheron{i} note {i}.\n\n# More\n\nsmall{i} end.\n".encode()) for i in range(5)]
    job = svc.ingest_jobs.submit("notes", [("big.md", big.encode()), *small, ("empty.md", b"")])
    assert svc.ingest_jobs.wait(120)

    assert [f.stage for f in job.files] == ["added"] * 6 + ["failed"]
    assert "empty.md: file is empty" in job.files[-1].error
    assert all(f.chunks > 0 for f in job.files[:6]) and job.files[0].chunks > 4
    owners = [{m for t in batch for m in re.findall(r"(?:heron|small)(\d)", t)} for batch in calls]
    assert any(len(o) > 1 for o in owners), calls  # some encoder batches held several uploads
    assert svc.store.in_progress() == []  # every file was taken off the journal
    found = svc.search(["notes"], "heron3 small3", 1)
    assert found[0].document == "s3.md"


@pytest.mark.slow
def test_progress_moves_by_pages_and_chunks_and_cancel_stores_nothing_more(
    home: Path, tmp_path: Path, fake_embedder: Any, monkeypatch: Any
) -> None:
    """A running job says how far it is by work done (page N of the PDF's total, chunks embedded),
    with the time left at its pace; Cancel stops it at the next step: the file under way and the ones
    after it are not stored, none is left to be reported later as interrupted, and what finished before
    stays."""
    slow_encoder(fake_embedder, monkeypatch, seconds=0.05)
    pages = [f"Page {i}. " + "The keeper logs the weather, the tide and every passing ship. " * 25 for i in range(80)]
    pdf = make_pdf(tmp_path / "logbook.pdf", pages).read_bytes()
    svc = Services.create(home, embedder=fake_embedder)
    first = svc.ingest_jobs.submit("logs", [("owls.txt", b"Owls hunt at night.")])
    assert svc.ingest_jobs.wait(120) and first.files[0].stage == "added"

    job = svc.ingest_jobs.submit("logs", [("logbook.pdf", pdf), ("later.txt", b"Herons wade at dawn.")])
    seen: list[tuple[float, str]] = []
    deadline = time.time() + 120
    while time.time() < deadline and job.running:
        f = job.files[0]
        seen.append((f.fraction, f.text()))
        if f.pages_total and f.fraction > 0.2 and job.seconds_left() is not None:
            break
        time.sleep(0.05)
    assert job.running, "the job ended before it could be watched"
    file = job.files[0]
    assert file.pages_total == 80 and 0 < file.pages <= 80
    assert f"page {file.pages} of 80" in file.text() and "chunks embedded" in file.text() and "left" in file.text()
    fractions = [x for x, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] < 1.0, seen  # it only moves forward
    assert len({x for x in fractions if x > 0}) >= 3, seen  # and moves, step by step

    assert svc.ingest_jobs.cancel(job.id)
    assert svc.ingest_jobs.wait(60)
    assert [f.stage for f in job.files] == ["cancelled", "cancelled"]
    assert "cancelled, nothing of it stored" in job.files[0].text()
    assert [d.name for d in svc.store.documents("logs")] == ["owls.txt"]
    assert svc.store.in_progress() == []  # nothing left to be called interrupted
    svc.store.recover_if_idle()
    assert [(d.name, d.status) for d in svc.store.documents("logs")] == [("owls.txt", "ready")]
    assert not svc.ingest_jobs.cancel(job.id)  # a finished job: nothing to cancel
