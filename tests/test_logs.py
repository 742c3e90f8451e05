"""Logging: one configuration, a log file in the workspace, request ids in the API's access log,
ingest failures and model loads recorded, and never a document's text, a question or a key."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from app.cli import main
from app.logs import FILE
from tests.shared import Server, free_port


def test_the_cli_logs_ingest_failures_to_the_workspace_without_document_text(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "owls.txt").write_text("Owls hunt at night; the secret word is heliotrope.")
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.4 this is not really a PDF heliotrope")
    code = main(["--home", str(home), "--verbose", "ingest", str(tmp_path), "-c", "birds", "--quiet"])
    assert code == 1  # one file failed, and said so
    log = (home / FILE).read_text()
    assert "ingest of" in log and "broken.pdf into birds failed" in log
    assert "heliotrope" not in log  # no document text
    assert "broken.pdf into birds failed" in capsys.readouterr().err  # --verbose: on stderr too
    main(["--home", str(home), "documents", "birds"])  # configured again: one handler each, not two
    named = [h for h in logging.getLogger("archivist").handlers if getattr(h, "_archivist_handler", False)]
    assert len(named) == 2


def test_api_requests_carry_an_id_in_the_access_log_and_never_a_key(home: Path, real_embedder: Any) -> None:
    import httpx

    from app.api import KeyStore, create_app
    from app.services import Services

    svc = Services.create(home, embedder=real_embedder)
    key = KeyStore(svc.store.engine).create("ops")
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    access = logging.getLogger("archivist.api.access")
    keep = Keep()
    access.addHandler(keep)
    access.setLevel(logging.INFO)
    try:
        with Server(create_app(svc), free_port()) as server:
            auth = {"Authorization": f"Bearer {key}"}
            r = httpx.get(server.url + "/v1/models?q=private", headers={**auth, "X-Request-ID": "trace-42"})
            assert r.status_code == 200 and r.headers["X-Request-ID"] == "trace-42"
            r = httpx.get(server.url + "/v1/models", headers={**auth, "X-Request-ID": "bad id; forged=1"})
            made = r.headers["X-Request-ID"]
            assert made and " " not in made and "forged" not in made  # a new one, not the client's
            assert httpx.get(server.url + "/v1/models").status_code == 401
    finally:
        access.removeHandler(keep)
    lines = [r.getMessage() for r in records]
    assert any(line.startswith("GET /v1/models 200") and line.endswith("rid=trace-42") for line in lines)
    assert any(line.endswith(f"rid={made}") for line in lines)
    assert any(" 401 " in line for line in lines)
    assert not any(key in line or "private" in line for line in lines)  # no key, no query string


def test_a_model_load_is_logged_with_its_settings_and_time() -> None:
    from runtime.registry import ModelPool

    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record.getMessage())

    models = logging.getLogger("archivist.models")
    keep = Keep()
    models.addHandler(keep)
    models.setLevel(logging.INFO)
    pool = ModelPool()
    try:
        pool.get("bundled:smollm2-135m", context_window=512, n_threads=1)
        pool.get("bundled:smollm2-135m", context_window=512, n_threads=1)  # shared: loaded once
    finally:
        models.removeHandler(keep)
        pool.close()
    [line] = records
    assert line.startswith("loaded model SmolLM2-135M-Instruct.Q4_1.gguf (context 512, 1 threads, 0 GPU layers) in ")


def test_a_slow_search_goes_to_the_log_file_not_into_the_answer_on_the_terminal(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "owls.txt").write_text("Owls hunt at night and sleep by day.")
    assert main(["--home", str(home), "ingest", str(tmp_path / "notes"), "-c", "birds", "--quiet"]) == 0
    capsys.readouterr()
    monkeypatch.setattr(sys.modules["retriever.search"], "SLOW_SEARCH_S", 0.0)  # every search is slow
    bot = tmp_path / "birds.yaml"
    bot.write_text("name: birds\nknowledge: {collections: [birds]}\n")
    assert main(["--home", str(home), "ask", str(bot), "When do owls hunt?", "--extractive"]) == 0
    out = capsys.readouterr()
    assert "slow search" not in out.out + out.err  # nothing printed around the answer
    assert "slow search" in (home / FILE).read_text()  # the log keeps it
