"""Models: hub downloads through huggingface_hub's endpoint setting against a hub on loopback
(progress, cancel and resume, a broken connection, a wrong checksum, offline), and the models folder."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from runtime.catalog import add_by_path, add_upload, installed, remove, same_model
from runtime.errors import ArchivistError, ModelNotFoundError
from runtime.hub import ChecksumMismatchError, Downloads, HubUnreachableError, download, hub_path
from runtime.spec import resolve_model
from runtime.toolcalls import model_tool_support
from tests.hub_server import Hub, serve_hub

BUNDLED = resolve_model("bundled:smollm2-135m")
KEY = "someorg/Some-Model-GGUF/some-model-q4_1.gguf"
SPEC = "hf:" + KEY


@pytest.fixture(scope="module")
def gguf() -> bytes:
    return BUNDLED.read_bytes()


@pytest.fixture(autouse=True)
def hub_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """Downloads on (the suite runs with HF_HUB_OFFLINE=1; these reach a hub on loopback)."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")


def test_hf_hub_offline_switches_downloads_off_without_a_request(
    tmp_path: Path, gguf: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with serve_hub(Hub({KEY: gguf})) as hub:
        jobs = Downloads(tmp_path / "models", endpoint=lambda: hub.url)
        job = jobs.start(SPEC)
        while job.running:
            time.sleep(0.05)
        assert job.stage == "failed" and job.offline and "HF_HUB_OFFLINE is set" in job.error
        assert hub.requests == []  # nothing was asked of the hub
    assert not (tmp_path / "models").exists() or not any((tmp_path / "models").rglob("*.gguf*"))


def test_a_hub_model_downloads_through_the_endpoint_setting_and_resolves(
    tmp_path: Path, gguf: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    models = tmp_path / "models"
    seen: list[tuple[str, int, int | None]] = []
    with serve_hub(Hub({KEY: gguf})) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)  # huggingface_hub's own setting
        path = download(SPEC, models, progress=lambda s, d, t: seen.append((s, d, t)))
    assert path == hub_path(models, "someorg/Some-Model-GGUF", "some-model-q4_1.gguf")
    assert path.read_bytes() == gguf
    assert ("GET", "/someorg/Some-Model-GGUF/resolve/main/some-model-q4_1.gguf", "") in hub.requests
    got = [d for s, d, _ in seen if s == "downloading"]
    assert got == sorted(got) and got[-1] == len(gguf) and len(got) > 10  # a bar that moves
    assert seen[-1] == ("verifying", len(gguf), len(gguf))
    assert resolve_model(SPEC, models) == path  # an assistant naming the spec uses the file
    assert not list(path.parent.glob("*.part*"))
    assert model_tool_support(SPEC, models)[1] != f"{SPEC} is not downloaded yet; its tool support is known once it is"
    [m] = [m for m in installed(models) if m.kind == "downloaded"]
    assert m.spec == SPEC and m.size == len(gguf)


@pytest.mark.slow
def test_a_cancelled_download_resumes_where_it_stopped(tmp_path: Path, gguf: bytes) -> None:
    models = tmp_path / "models"
    with serve_hub(Hub({KEY: gguf}, bytes_per_s=20e6)) as hub:
        jobs = Downloads(models, endpoint=lambda: hub.url)
        job = jobs.start(SPEC)
        deadline = time.monotonic() + 30
        while job.done < len(gguf) // 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        jobs.cancel(SPEC)
        while job.running and time.monotonic() < deadline:
            time.sleep(0.05)
        assert job.stage == "cancelled"
        kept = jobs.partial(SPEC)
        assert 0 < kept < len(gguf)
        hub.bytes_per_s = 0
        job = jobs.start(SPEC)
        while job.running and time.monotonic() < deadline + 30:
            time.sleep(0.05)
    assert job.stage == "done", job.error
    assert job.path is not None and job.path.read_bytes() == gguf
    ranges = [r for m, p, r in hub.requests if m == "GET" and p.startswith("/cdn/") and r]
    assert ranges == [f"bytes={kept}-"]  # the second download asked only for the rest


def test_a_broken_connection_keeps_the_part_and_the_next_try_finishes(tmp_path: Path, gguf: bytes) -> None:
    models = tmp_path / "models"
    with serve_hub(Hub({KEY: gguf}, cut_after=3_000_000)) as hub:
        with pytest.raises(HubUnreachableError):
            download(SPEC, models, endpoint=hub.url)
        final = hub_path(models, "someorg/Some-Model-GGUF", "some-model-q4_1.gguf")
        assert not final.exists()  # nothing half-written is usable
        kept = final.with_name(final.name + ".part").stat().st_size
        assert kept == 3_000_000  # every byte that arrived was kept
        path = download(SPEC, models, endpoint=hub.url)
    assert path.read_bytes() == gguf
    assert [r for m, p, r in hub.requests if m == "GET" and p.startswith("/cdn/") and r] == ["bytes=3000000-"]


def test_bytes_that_do_not_match_the_hubs_checksum_are_removed(tmp_path: Path, gguf: bytes) -> None:
    models = tmp_path / "models"
    with (
        serve_hub(Hub({KEY: gguf}, corrupt=True)) as hub,
        pytest.raises(ChecksumMismatchError, match="does not match the hub's checksum"),
    ):
        download(SPEC, models, endpoint=hub.url)
    folder = hub_path(models, "someorg/Some-Model-GGUF", "x").parent
    assert not [p for p in folder.iterdir() if p.suffix != ".json"]
    assert not [m for m in installed(models) if m.kind == "downloaded"]


def test_offline_and_missing_files_say_so(tmp_path: Path, gguf: bytes) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    jobs = Downloads(tmp_path / "models", endpoint=lambda: closed)
    job = jobs.start(SPEC)
    while job.running:
        time.sleep(0.05)
    assert job.stage == "failed" and job.offline and closed in job.error
    with serve_hub(Hub({KEY: gguf})) as hub, pytest.raises(ModelNotFoundError, match="not on the model hub"):
        download("hf:someorg/Other-GGUF/missing.gguf", tmp_path / "models", endpoint=hub.url)
    with pytest.raises(ModelNotFoundError, match="hf:org/repo/file.gguf"):
        download("hf:just-a-name.gguf", tmp_path / "models", endpoint=closed)


def test_model_files_added_by_path_or_upload(tmp_path: Path) -> None:
    models = tmp_path / "models"
    mine = tmp_path / "elsewhere" / "My Model.gguf"
    mine.parent.mkdir()
    mine.write_bytes(b"GGUF" + bytes(100))
    linked = add_by_path(models, mine)
    assert linked.is_symlink() and linked.parent == models and linked.name == "My-Model.gguf"
    with pytest.raises(ArchivistError, match="already in the list"):
        add_by_path(models, mine)
    not_a_model = tmp_path / "notes.gguf"
    not_a_model.write_text("hello")
    with pytest.raises(ArchivistError, match="not a GGUF model file"):
        add_by_path(models, not_a_model)
    with pytest.raises(ArchivistError, match="no file at"):
        add_by_path(models, tmp_path / "missing.gguf")
    with not_a_model.open("rb") as f, pytest.raises(ArchivistError, match="nothing was added"):
        add_upload(models, "notes.gguf", f)
    with mine.open("rb") as f:
        copy = add_upload(models, "My Model.gguf", f)
    assert copy.name == "My-Model-2.gguf" and not copy.is_symlink()
    kinds = {m.path.name: m.kind for m in installed(models)}
    assert kinds == {BUNDLED.name: "bundled", "My-Model.gguf": "linked", "My-Model-2.gguf": "added"}
    [link] = [m for m in installed(models) if m.kind == "linked"]
    assert same_model(str(mine), link) and same_model(str(linked), link) and not same_model("bundled:x", link)
    remove(models, link)
    assert mine.is_file() and not linked.exists()  # the user's own file stays
    [bundled] = [m for m in installed(models) if m.kind == "bundled"]
    with pytest.raises(ArchivistError, match="cannot be deleted"):
        remove(models, bundled)
