"""Speech on this machine: word error rate and real-time factor of transcription over generated
speech, time to the first audio of an answer, and a long recording's ingest.

Sentences (the answers of the question sets, which read like what people say about their
documents) are spoken by each installed voice at several speeds, some with noise mixed in at
20 dB SNR, then transcribed by the bundled Whisper tiny.en. WER: word edit distance over the words
said, after lowercasing, dropping punctuation and writing numbers 0-20 as words. RTF: seconds of
transcription per second of speech.

    python bench/speech.py [--sentences 24] [--long-minutes 0] [--json FILE]

`--long-minutes 30` also builds a 30-minute recording and ingests it with `archivist ingest`
(time and peak memory of that process).
"""

from __future__ import annotations

import argparse
import io
import json
import math
import re
import statistics
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.measure import edit_distance, words  # noqa: E402
from ingest.audio import transcribe  # noqa: E402
from runtime.speech import engines, say  # noqa: E402

SETS = [ROOT.parent / "shared" / "eval" / "r-manuals-dev.jsonl"] + [
    ROOT / "bench" / "eval" / f"{name}-dev.jsonl" for name in ("second", "third", "fourth")
]


def sentences(n: int, plain: bool = True) -> list[str]:
    """Answers of the question sets: plain English (every word letters only, no code names such as
    na.strings or colClasses, no symbols), or the ones with code names a voice reads out letter by
    letter ("read dot csv two")."""
    out = []
    for path in SETS:
        for line in path.read_text().splitlines():
            answer = json.loads(line).get("answer", "")
            if not re.fullmatch(r"[A-Za-z0-9 ,.;:'()-]{30,200}", answer):
                continue
            tokens = re.findall(r"\S+", re.sub(r"[,.;:()']+(\s|$)", r"\1", answer))
            is_plain = all(re.fullmatch(r"[A-Z]?[a-z]+|[0-9]+", t) for t in tokens)
            if is_plain == plain:
                out.append(answer)
    return out[:n]


def noisy(wav: bytes, snr_db: float, seed: int) -> bytes:
    with wave.open(io.BytesIO(wav)) as r:
        rate, pcm = r.getframerate(), np.frombuffer(r.readframes(r.getnframes()), dtype=np.int16).astype(np.float64)
    noise = np.random.default_rng(seed).normal(0, 1, len(pcm))
    noise *= np.sqrt(np.mean(pcm**2) / (10 ** (snr_db / 10)) / max(np.mean(noise**2), 1e-9))
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.clip(pcm + noise, -32768, 32767).astype(np.int16).tobytes())
    return out.getvalue()


def joined(clips: list[bytes], pause_s: float = 0.0) -> bytes:
    """WAV clips (16-bit mono, one rate) one after another, with `pause_s` of silence after each."""
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        for n, clip in enumerate(clips):
            with wave.open(io.BytesIO(clip)) as r:
                if n == 0:
                    w.setnchannels(1)
                    w.setsampwidth(2)
                    w.setframerate(r.getframerate())
                w.writeframes(r.readframes(r.getnframes()) + b"\x00\x00" * int(r.getframerate() * pause_s))
    return out.getvalue()


def seconds_of(wav: bytes) -> float:
    with wave.open(io.BytesIO(wav)) as r:
        return r.getnframes() / r.getframerate()


def long_recording(minutes: float, texts: list[str]) -> tuple[float, float, str]:
    """A recording of `minutes` (the sentences over and over), ingested by the CLI: seconds, peak
    RSS in GB, and its report line."""
    clips = [say(t).wav for t in texts]
    passes = math.ceil(minutes * 60 / sum(seconds_of(c) for c in clips))  # whole passes over the sentences
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "long.wav"
        path.write_bytes(joined(clips * passes))
        t0 = time.perf_counter()
        proc = subprocess.run(
            [
                "/usr/bin/time",
                "-f",
                "%M",
                sys.executable,
                "-m",
                "app.cli",
                "--home",
                f"{tmp}/ws",
                "ingest",
                str(path),
                "-c",
                "talks",
                "-q",
            ],
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        dt = time.perf_counter() - t0
        rss_kb = int(proc.stderr.strip().splitlines()[-1]) if proc.stderr.strip() else 0
        return dt, rss_kb / 2**20, proc.stdout.strip().splitlines()[0] if proc.stdout.strip() else proc.stderr[-300:]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sentences", type=int, default=24)
    ap.add_argument("--long-minutes", type=float, default=0.0)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    texts = sentences(args.sentences)
    technical = sentences(args.sentences, plain=False)
    voices = engines()
    if not voices:
        raise SystemExit("no speech engine: pip install 'archivist[voice]' or apt install espeak-ng")
    list(transcribe(say("warm up").wav, "warm.wav"))  # the model loaded before anything is timed
    conditions = [("plain", v, speed, None) for v in voices for speed in (0.8, 1.0, 1.3)]
    conditions += [("plain", voices[0], 1.0, 20.0), ("code names", voices[0], 1.0, None)]
    rows = []
    print(f"{len(texts)} plain sentences, {len(technical)} with code names; voices: {', '.join(voices)}")
    print(f"{'sentences':10s} {'voice':8s} {'speed':>5s} {'noise':>8s} {'WER':>6s} {'RTF':>6s} {'speech s':>9s}")
    for kind, voice, speed, snr in conditions:
        errors = said = 0
        spent = heard_s = 0.0
        for i, text in enumerate(texts if kind == "plain" else technical):
            wav = say(text, voice=voice, speed=speed).wav
            if snr is not None:
                wav = noisy(wav, snr, i)
            t0 = time.perf_counter()
            heard = " ".join(s.text for s in transcribe(wav, "s.wav"))
            spent += time.perf_counter() - t0
            heard_s += seconds_of(wav)
            errors += edit_distance(words(heard), words(text))
            said += len(words(text))
        row = {"sentences": kind, "voice": voice, "speed": speed, "snr_db": snr}
        row |= {"wer": errors / said, "rtf": spent / heard_s}
        rows.append(row)
        noise = f"{snr:.0f} dB" if snr is not None else "-"
        print(
            f"{kind:10s} {voice:8s} {speed:5.1f} {noise:>8s} {errors / said:6.3f} {spent / heard_s:6.3f} {heard_s:9.1f}",
            flush=True,
        )
    firsts = []
    for text in texts[:8]:
        first = re.split(r"(?<=[.!?;])\s", text)[0]
        t0 = time.perf_counter()
        say(first)
        firsts.append(time.perf_counter() - t0)
    first_audio = statistics.median(firsts)
    print(f"first audio of an answer (its first sentence spoken by {voices[0]}): median {first_audio:.2f} s")
    result: dict[str, object] = {"rows": rows, "first_audio_s": first_audio}
    if args.long_minutes:
        dt, gb, line = long_recording(args.long_minutes, texts)
        print(
            f"{args.long_minutes:.0f}-minute recording ingested in {dt:.0f} s (RTF {dt / (args.long_minutes * 60):.3f}), peak RSS {gb:.2f} GB: {line}"
        )
        result["long"] = {"minutes": args.long_minutes, "seconds": dt, "peak_gb": gb, "report": line}
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
