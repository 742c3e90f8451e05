"""Speech on the real engines: generated speech transcribed within the word error rate, a recording
ingested whose passages carry the second they start, the API's transcription and speech endpoints
through OpenAI's own client, and broken or endless recordings refused with a clear message."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from bench.measure import wer, words
from bench.speech import joined
from ingest import IngestError, Store, ingest_paths, load_bytes
from runtime.speech import engines, say

pytestmark = pytest.mark.skipif(not engines(), reason="no speech engine (pip install 'archivist[voice]')")

SENTENCES = [
    "The ferry to the island leaves every morning from the north pier.",
    "Tickets for adults cost twelve euros and children travel free.",
    "The lighthouse museum opens at ten and closes at five.",
    "Visitors should bring warm clothes because the wind is strong.",
]


@pytest.mark.slow
def test_generated_speech_is_heard_within_the_word_error_rate(tmp_path: Path) -> None:
    from ingest.audio import transcribe

    recording = joined([say(s).wav for s in SENTENCES], pause_s=0.6)
    heard = " ".join(seg.text for seg in transcribe(recording, "talk.wav"))
    assert wer(heard, " ".join(SENTENCES)) <= 0.10, heard


@pytest.mark.slow
def test_a_recording_is_searchable_and_its_passages_name_the_second(tmp_path: Path, real_embedder) -> None:  # type: ignore[no-untyped-def]
    from retriever.search import search

    talk = tmp_path / "talk.wav"
    talk.write_bytes(joined([say(s).wav for s in SENTENCES * 3], pause_s=1.0))  # about 45 s: two stretches
    store = Store(tmp_path / "ws", real_embedder.name, real_embedder.dim)
    report = ingest_paths([talk], "c", store, real_embedder)
    assert not report.failed, [r.error for r in report.failed]
    (result,) = report.results
    assert result.pages and result.pages >= 2 and any("transcribed 0:" in w for w in result.warnings)
    hits = search(store, real_embedder, ["c"], "How much do adult tickets cost?", 5)
    assert hits[0].document == "talk.wav" and hits[0].seconds is not None
    assert "twelve" in hits[0].text.lower() or "12" in hits[0].text
    later = [h for h in hits if h.seconds and h.seconds[0] > 20]
    assert later, [h.seconds for h in hits]  # the second stretch starts well into the recording
    start, end = later[0].seconds
    assert 20 < start < end <= 60


def test_broken_and_overlong_recordings_are_refused_clearly(
    tmp_path: Path,
    fake_embedder,  # type: ignore[no-untyped-def]
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    broken = tmp_path / "memo.mp3"
    broken.write_bytes(b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\x00" * 500)
    fine = tmp_path / "notes.txt"
    fine.write_text("The ferry leaves at nine.")
    store = Store(tmp_path / "ws", fake_embedder.name, fake_embedder.dim)
    report = ingest_paths([broken, fine], "c", store, fake_embedder)
    errors = {Path(r.path).name: r.error or "" for r in report.failed}
    assert errors["memo.mp3"].startswith("memo.mp3: not a readable recording")
    assert [r.name for r in report.results if r.status == "added"] == ["notes.txt"]
    # over the length limit: refused from the container's length, before anything is decoded
    from ingest import audio

    monkeypatch.setattr(audio, "MAX_SECONDS", 1.0)
    with pytest.raises(IngestError, match=r"talk.wav: the recording is 0:0\d long; the limit is 0:01"):
        load_bytes(say(SENTENCES[0]).wav, "talk.wav")


@pytest.mark.slow
def test_cli_transcribes_and_says(tmp_path: Path, home: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "app.cli", *args], capture_output=True, text=True, timeout=300)

    out = tmp_path / "answer.wav"
    r = run("say", SENTENCES[2], "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert out.read_bytes().startswith(b"RIFF") and "s of speech" in r.stderr
    r = run("transcribe", str(out), "--json")
    assert r.returncode == 0, r.stderr
    import json

    heard = json.loads(r.stdout)
    assert wer(heard["text"], SENTENCES[2]) <= 0.2 and heard["segments"][0]["start"] == 0.0
    r = run("transcribe", str(tmp_path / "missing.wav"))
    assert r.returncode == 1 and "missing.wav" in r.stderr
    # a question asked aloud, the answer written and spoken
    (tmp_path / "ferry.txt").write_text(" ".join(SENTENCES))
    assert run("ingest", str(tmp_path / "ferry.txt"), "-c", "ferry").returncode == 0
    bot = tmp_path / "bot.yaml"
    bot.write_text("name: ferry-bot\nknowledge: {collections: [ferry]}\nanswer_mode: extractive\n")
    (tmp_path / "q.wav").write_bytes(say("How much do tickets for adults cost?").wav)
    r = run("ask", str(bot), "--audio", str(tmp_path / "q.wav"), "--speak", str(tmp_path / "a.wav"))
    assert r.returncode == 0, r.stderr
    heard = re.search(r"\(heard: (.*)\)", r.stderr)
    assert heard and "adults cost" in heard.group(1) and "twelve euros" in r.stdout
    assert "twelve" in " ".join(words(load_bytes((tmp_path / "a.wav").read_bytes(), "a.wav").pages[0].text))


@pytest.fixture
def voice_api(home: Path, fake_embedder) -> Iterator[dict]:  # type: ignore[no-untyped-def]
    from app.api import KeyStore, create_app
    from app.services import Services
    from ingest import IngestLimits
    from tests.shared import Server, free_port

    svc = Services.create(home, embedder=fake_embedder)
    key = KeyStore(svc.store.engine).create("voice")
    app = create_app(svc, max_queue=8, limits=IngestLimits(max_file_bytes=5_000_000))
    with Server(app, free_port()) as server:
        yield {"url": server.url, "key": key}


@pytest.mark.slow
def test_the_api_speaks_and_transcribes_in_openais_shapes(voice_api: dict) -> None:
    client = openai.OpenAI(base_url=voice_api["url"] + "/v1", api_key=voice_api["key"], max_retries=0, timeout=300)
    spoken = client.audio.speech.create(model="tts-1", voice="alloy", input=SENTENCES[0], response_format="wav")
    wav = spoken.read()
    assert wav.startswith(b"RIFF")
    text = client.audio.transcriptions.create(model="whisper-1", file=("q.wav", wav))
    assert wer(text.text, SENTENCES[0]) <= 0.2, text.text
    verbose = client.audio.transcriptions.create(model="whisper-1", file=("q.wav", wav), response_format="verbose_json")
    assert verbose.segments and verbose.segments[0].start == 0.0 and verbose.duration > 1  # type: ignore[union-attr]
    mp3 = client.audio.speech.create(model="tts-1", voice="alloy", input=SENTENCES[2], response_format="mp3").read()
    heard = client.audio.transcriptions.create(model="whisper-1", file=("a.mp3", mp3), response_format="text")
    assert wer(str(heard), SENTENCES[2]) <= 0.2, heard  # an MP3 the API made, heard back
    with pytest.raises(openai.BadRequestError, match="whisper-1"):
        client.audio.transcriptions.create(model="whisper-large", file=("q.wav", wav))
    with pytest.raises(openai.APIStatusError, match="not a recording"):
        client.audio.transcriptions.create(model="whisper-1", file=("q.txt", b"just some text"))
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=voice_api["url"] + "/v1", api_key="ak-wrong", max_retries=0).audio.speech.create(
            model="tts-1", voice="alloy", input="hello"
        )
