"""The encoder's precision is chosen by measuring it on this machine, kept per machine, and
overridable; vectors from either precision stay interchangeable."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from ingest import precision
from ingest.precision import Calibration, CalibrationFile, measure


def fake_encoder(seconds_per_text: float, noise: float = 0.0, calls: list[int] | None = None):  # type: ignore[no-untyped-def]
    """Unit vectors that depend only on the text (plus optional drift), at a known speed."""

    def encode(texts: Sequence[str]) -> np.ndarray:
        if calls is not None:
            calls.append(len(texts))
        time.sleep(seconds_per_text * len(texts))
        out = []
        for t in texts:
            rng = np.random.default_rng(abs(hash(t)) % 2**32)
            v = rng.normal(size=16)
            v += noise * np.random.default_rng(7).normal(size=16)
            out.append(v / np.linalg.norm(v))
        return np.array(out, dtype=np.float32)

    return encode


TEXTS = [f"chunk number {i} about regression" for i in range(40)]


def test_the_faster_precision_is_chosen() -> None:
    cal = measure({"float32": fake_encoder(0.004), "bfloat16": fake_encoder(0.001)}, TEXTS)
    assert cal.chosen == "bfloat16"
    assert cal.speeds["bfloat16"] > 2 * cal.speeds["float32"]
    assert cal.cosine["bfloat16"] > 0.9999
    assert "faster" in cal.reason


def test_a_slower_precision_is_dropped_after_the_first_small_round() -> None:
    calls: list[int] = []
    cal = measure({"float32": fake_encoder(0.001), "bfloat16": fake_encoder(0.006, calls=calls)}, TEXTS)
    assert cal.chosen == "float32"
    assert "0." in cal.reason and "x of float32" in cal.reason
    # warm-up (2 texts) and the first round (4 texts): a clear loser costs no more
    assert calls == [2, 4]


def test_a_close_race_gets_every_round() -> None:
    calls: list[int] = []
    cal = measure({"float32": fake_encoder(0.002), "bfloat16": fake_encoder(0.0022, calls=calls)}, TEXTS)
    assert calls == [2, 4, 16, precision.SAMPLE]
    assert cal.chunks == sum(size for size, _ in precision.ROUNDS)  # chunks timed per precision
    assert cal.chosen == "float32"  # not faster by the margin: the reference stays


def test_a_faster_precision_whose_vectors_drift_is_refused() -> None:
    cal = measure({"float32": fake_encoder(0.004), "bfloat16": fake_encoder(0.001, noise=0.3)}, TEXTS)
    assert cal.cosine["bfloat16"] < precision.MIN_COSINE
    assert cal.chosen == "float32"
    assert "drift" in cal.reason


def test_the_fastest_of_three_contenders_is_chosen_unless_its_vectors_drift() -> None:
    onnx = precision.ONNX
    cal = measure({"float32": fake_encoder(0.004), "bfloat16": fake_encoder(0.002), onnx: fake_encoder(0.001)}, TEXTS)
    assert cal.chosen == onnx and set(cal.speeds) == {"float32", "bfloat16", onnx}
    assert cal.speeds[onnx] > cal.speeds["bfloat16"] > cal.speeds["float32"]
    assert f"{onnx} " in cal.reason and "faster than float32" in cal.reason and "bfloat16" in cal.reason
    drifting = measure(
        {"float32": fake_encoder(0.004), "bfloat16": fake_encoder(0.002), onnx: fake_encoder(0.001, noise=0.3)},
        TEXTS,
    )
    assert drifting.chosen == "bfloat16"
    assert drifting.cosine[onnx] < precision.MIN_COSINE
    # a clear loser among three is dropped after the first round; the others race on
    calls: list[int] = []
    cal = measure(
        {"float32": fake_encoder(0.002), "bfloat16": fake_encoder(0.012, calls=calls), onnx: fake_encoder(0.0021)},
        TEXTS,
    )
    assert calls == [2, 4] and cal.chosen == "float32" and cal.chunks == sum(size for size, _ in precision.ROUNDS)


def test_the_finalists_race_again_on_all_the_chunks_and_that_race_decides() -> None:
    """On 20 chunks at batch 64 ONNX Runtime edged out bfloat16 (79 against 77 chunks/s), at batch 16
    on the whole first batch bfloat16 was 1.5x ahead: the full race decides, batch size with it."""
    onnx = precision.ONNX
    speeds = {"float32": 29.0, "bfloat16": 77.0, onnx: 79.0}
    cal = Calibration({}, speeds, dict.fromkeys(speeds, 1.0), onnx, "small sample", 20, 1.0)
    assert precision.finalists(cal) == [onnx, "bfloat16"]
    # a drifting or slow contender is no finalist; with none, float32 stays
    assert precision.finalists(Calibration({}, speeds, {**dict.fromkeys(speeds, 1.0), onnx: 0.9}, "", "", 0, 0)) == [
        "bfloat16"
    ]
    assert precision.finalists(Calibration({}, {"float32": 50.0, "bfloat16": 20.0}, {}, "", "", 0, 0)) == ["float32"]

    def at(seconds: float):  # type: ignore[no-untyped-def]
        return lambda texts, size: fake_encoder(seconds * (1.5 if size == 64 else 1.0))(texts)

    race, vectors = precision.race_batches({onnx: at(0.003), "bfloat16": at(0.001)}, TEXTS[:16])
    assert set(race) == {onnx, "bfloat16"} and all(set(v) == set(precision.BATCHES) for v in race.values())
    precision.decide(cal, race, 16)
    assert cal.chosen == "bfloat16" and cal.batch_size == 16
    assert "racing again warm on all 16 chunks" in cal.reason and cal.reason.startswith("bfloat16")
    assert vectors["bfloat16"].shape == (16, 16)


@pytest.mark.slow
def test_small_files_chunks_are_gathered_until_the_calibration_has_enough(tmp_path: Path) -> None:
    """A folder of small files embeds a few chunks at a time: the calibration waits for
    MIN_TEXTS of them (float32 meanwhile, whose vectors any precision matches) and a single text,
    a query, never counts."""
    from ingest.embed import SentenceTransformerEmbedder

    emb = SentenceTransformerEmbedder(calibration=tmp_path / "calibration.json")
    texts = [f"Section {i}: the lm function fits linear model number {i}. " * (1 + i % 5) for i in range(60)]
    per_file = 6
    calls = 0
    for at in range(0, len(texts), per_file):
        emb.embed(["a query, never gathered"])
        assert emb.calibration is None
        emb.embed(texts[at : at + per_file])
        calls += 1
        if emb.calibration is not None:
            break
    assert calls == -(-precision.MIN_TEXTS // per_file)  # the first call that brings the sample to MIN_TEXTS
    assert emb.calibration.chunks > 0
    if "racing again" in emb.calibration.reason:  # two contenders beat float32 here: the second race ran on the sample
        assert f"on all {precision.MIN_TEXTS} chunks" in emb.calibration.reason
    assert (tmp_path / "calibration.json").exists()


def test_a_workspace_calibrated_to_onnx_runtime_embeds_with_it_and_float32_vectors(tmp_path: Path) -> None:
    """What the calibration chose on a machine where ONNX Runtime was fastest is what the next
    process runs; its vectors are float32's."""
    from ingest.embed import SentenceTransformerEmbedder

    reference = SentenceTransformerEmbedder(dtype="float32")
    file = CalibrationFile(tmp_path / "calibration.json")
    here = precision.fingerprint(reference.name, reference._threads)
    speeds = {"float32": 50.0, "bfloat16": 30.0, precision.ONNX: 90.0}
    file.save(Calibration(here, speeds, dict.fromkeys(speeds, 1.0), precision.ONNX, "measured", 32, 1.0))
    # what an export made before an upgrade (another model file or library version) left behind,
    # and another model's export, which stays
    (tmp_path / "onnx").mkdir()
    stale = tmp_path / "onnx" / f"{reference.name}-0123456789.onnx"
    other = tmp_path / "onnx" / "paraphrase-MiniLM-3-0123456789.onnx"
    for f in (stale, other):
        f.write_bytes(b"an older export")
    emb = SentenceTransformerEmbedder(calibration=tmp_path / "calibration.json")
    assert emb.dtype == precision.ONNX and emb.precision_source == "calibrated"
    exports = sorted((tmp_path / "onnx").glob("*.onnx"))
    assert len(exports) == 2 and other in exports and stale not in exports, exports  # exported once, the old one gone
    texts = [f"The lm function fits linear model number {i}. " * (1 + i % 7) for i in range(40)]
    cos = np.sum(emb.embed(texts) * reference.embed(texts), axis=1)
    assert cos.min() > 0.9999, cos.min()


def test_only_the_newest_export_of_a_model_stays(tmp_path: Path) -> None:
    from ingest.onnx_encoder import prune_exports

    keep = tmp_path / "all-MiniLM-L6-v2-aaaaaaaaaa.onnx"
    older = tmp_path / "all-MiniLM-L6-v2-bbbbbbbbbb.onnx"
    dead = tmp_path / "all-MiniLM-L6-v2-cccccccccc.999999999.tmp"  # a killed export's half-written file
    live = tmp_path / f"all-MiniLM-L6-v2-dddddddddd.{os.getpid()}.tmp"  # an export being written now
    others = [tmp_path / "all-MiniLM-L6-v2-finetuned-aaaaaaaaaa.onnx", tmp_path / "notes.txt"]
    for f in (keep, older, dead, live, *others):
        f.write_bytes(b"x")
    assert sorted(prune_exports(tmp_path, "all-MiniLM-L6-v2", keep=keep)) == sorted([older, dead])
    assert sorted(tmp_path.iterdir()) == sorted([keep, live, *others])


def test_calibrations_are_kept_per_machine_and_damage_is_harmless(tmp_path: Path) -> None:
    f = CalibrationFile(tmp_path / "calibration.json")
    here = precision.fingerprint("all-MiniLM-L6-v2", 2)
    cal = measure({"float32": fake_encoder(0.001)}, TEXTS[:8])
    cal.fingerprint = here
    f.save(cal)
    assert f.find(here) == cal
    other = dict(here, torch="9.9.9")
    assert f.find(other) is None  # a library upgrade measures again
    other_cal = Calibration(other, {"float32": 1.0}, {"float32": 1.0}, "float32", "x", 4, 0.1)
    f.save(other_cal)
    assert f.find(here) == cal and f.find(other) == other_cal
    (tmp_path / "calibration.json").write_text("{not json")
    assert f.find(here) is None and f.latest() is None


def test_a_bad_setting_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    from runtime.errors import ArchivistError

    monkeypatch.setenv(precision.ENV, "float8")
    with pytest.raises(ArchivistError, match="ARCHIVIST_EMBED_PRECISION"):
        precision.setting()
    monkeypatch.setenv(precision.ENV, "BFloat16")
    assert precision.setting() == "bfloat16"


@pytest.mark.slow
def test_the_real_encoder_calibrates_once_per_machine_and_a_setting_overrides(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ingest.embed import SentenceTransformerEmbedder

    monkeypatch.delenv(precision.ENV, raising=False)
    file = tmp_path / "calibration.json"
    docs = sorted(Path(__file__).resolve().parent.parent.joinpath("docs").glob("*.md"))
    words = " ".join(p.read_text() for p in docs).split() * 3
    chunks = [" ".join(words[i : i + 90]) for i in range(0, 90 * 64, 90)]
    assert all(len(c.split()) == 90 for c in chunks)

    first = SentenceTransformerEmbedder(calibration=file)
    assert first.precision_source == "float32 until calibrated"
    query = first.embed(["one query"])  # a query is too small to measure on: no calibration yet
    assert first.calibration is None and not file.exists()
    vecs = first.embed(chunks)
    cal = first.calibration
    assert cal is not None and file.exists()
    assert cal.chosen == first.dtype and set(cal.speeds) == set(precision.PRECISIONS)
    assert first.batch_size == cal.batch_size in precision.BATCHES
    assert set(cal.batch_speeds) == {str(b) for b in precision.BATCHES}
    assert cal.fingerprint["cpu"] == precision.cpu_model()
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-4)

    again = SentenceTransformerEmbedder(calibration=file)  # the next process reads it, measures nothing
    assert again.precision_source == "calibrated" and again.dtype == cal.chosen
    assert again.batch_size == cal.batch_size
    assert json.loads(file.read_text())["entries"][0]["measured_at"] == cal.measured_at

    # either precision's vectors can share one index with float32's
    for dtype in precision.PRECISIONS:
        other = SentenceTransformerEmbedder(dtype=dtype)
        assert other.precision_source == "setting" and other.dtype == dtype
        cos = np.sum(other.embed(chunks[:8]) * vecs[:8], axis=1)
        assert cos.mean() > precision.MIN_COSINE
        assert float(other.embed(["one query"])[0] @ query[0]) > 0.99

    monkeypatch.setenv(precision.ENV, "bfloat16")
    forced = SentenceTransformerEmbedder(calibration=file)
    assert forced.dtype == "bfloat16" and forced.precision_source == "setting"


@pytest.mark.slow
def test_doctor_shows_what_the_first_ingest_measured(tmp_path: Path) -> None:
    from tests.shared import make_pdf

    home = tmp_path / "ws"
    env = {k: v for k, v in __import__("os").environ.items() if k != precision.ENV}
    cli = [sys.executable, "-m", "app.cli", "--home", str(home)]
    out = subprocess.run([*cli, "doctor"], capture_output=True, text=True, env=env, check=True).stdout
    assert "not measured on this machine yet" in out
    pdf = make_pdf(tmp_path / "notes.pdf", [f"Page {i}: the lm function fits linear models. " * 40 for i in range(24)])
    subprocess.run([*cli, "ingest", str(pdf), "-c", "notes", "-q"], capture_output=True, env=env, check=True)
    report = json.loads(
        subprocess.run([*cli, "doctor", "--json"], capture_output=True, text=True, env=env, check=True).stdout
    )
    cal = report["calibration"]
    assert cal is not None, report
    assert report["precision"] == cal["chosen"] in precision.PRECISIONS
    assert cal["speeds"]["float32"] > 0 and cal["fingerprint"]["cpu"] == report["cpu"]
    text = subprocess.run([*cli, "doctor"], capture_output=True, text=True, env=env, check=True).stdout
    # in plain words first (what was timed, what was chosen, why it matters), the figures after
    assert "passages a second with " + cal["chosen"] in text and "sets how long adding documents takes" in text
    assert f"measured: {cal['chosen']} (" in text and "chunks/s" in text


def test_a_batch_size_is_kept_only_when_it_beats_the_default_by_the_margin() -> None:
    from ingest.precision import choose_batch

    assert choose_batch({16: 33.0, 32: 25.0, 64: 24.0}) == 16
    assert choose_batch({16: 24.5, 32: 24.0, 64: 24.0}) == 64
    seen: list[int] = []
    speeds, vecs = precision.race_batches({"one": lambda texts, b: seen.append(b) or np.ones((len(texts), 2))}, TEXTS)
    assert seen == list(precision.BATCHES) and set(speeds["one"]) == set(precision.BATCHES)
    assert vecs["one"].shape == (len(TEXTS), 2)
