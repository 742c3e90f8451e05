"""Speech in OpenAI's shapes: `POST /v1/audio/transcriptions` (Whisper tiny.en, bundled) and
`POST /v1/audio/speech` (Piper or espeak-ng, where installed). Same keys and size caps as every
upload; a recording is decoded and transcribed in the parser process, under its time and memory
limits, never in the server."""

from __future__ import annotations

import io
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, UploadFile
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel, Field

from app.api.deps import Auth, Ctx, read_upload
from app.api.errors import ApiError
from ingest.errors import IngestError, UnsupportedFileError

router = APIRouter()

STT_MODELS = ("whisper-1", "whisper-tiny.en")
TTS_MODELS = ("tts-1", "tts-1-hd", "piper", "espeak")
FORMATS = ("json", "text", "verbose_json")
# OpenAI's voice names all map to the best voice installed here; "joe" and "espeak" name one
OPENAI_VOICES = ("alloy", "ash", "ballad", "coral", "echo", "fable", "nova", "onyx", "sage", "shimmer", "verse")


@router.post("/v1/audio/transcriptions", response_model=None)
def transcriptions(
    file: UploadFile,
    _key: Auth,
    ctx: Ctx,
    model: Annotated[str, Form()] = "whisper-1",
    language: Annotated[str | None, Form()] = None,
    response_format: Annotated[str, Form()] = "json",
) -> dict[str, Any] | Response:
    if model not in STT_MODELS:
        raise ApiError(400, f"model {model!r} is not installed; installed: {', '.join(STT_MODELS)}", param="model")
    if language not in (None, "", "en"):
        raise ApiError(400, f"language {language!r}: the bundled model hears English only (en)", param="language")
    if response_format not in FORMATS:
        raise ApiError(400, f"response_format must be one of {', '.join(FORMATS)}", param="response_format")
    name, data = read_upload(file, ctx.limits, "file")
    segments = _transcribe(data, name, ctx)
    text = " ".join(s["text"] for s in segments)
    if response_format == "text":
        return PlainTextResponse(text)
    if response_format == "json":
        return {"text": text}
    duration = segments[-1]["end"] if segments else 0.0
    return {"task": "transcribe", "language": "english", "duration": duration, "text": text, "segments": segments}


def _transcribe(data: bytes, name: str, ctx: Any) -> list[dict[str, Any]]:
    """The recording heard in the parser process: its stretches with their times."""
    import dataclasses

    from ingest.loaders import sniff
    from ingest.worker import ParseLimits, parse_in_worker

    try:
        if sniff(data, name) != "audio":
            raise ApiError(415, f"{name}: not a recording; send WAV, MP3, OGG/Opus, FLAC, M4A or WebM", param="file")
        limits = dataclasses.replace(ParseLimits(), timeout_s=ctx.limits.parse_timeout_s)
        _, batches = parse_in_worker(data, name, limits)
        pages = [p for batch in batches for p in batch]
    except UnsupportedFileError as exc:
        raise ApiError(415, str(exc), param="file") from None
    except IngestError as exc:
        raise ApiError(400, str(exc), param="file") from None
    return [
        {"id": i, "start": p.seconds[0], "end": p.seconds[1], "text": p.text}
        for i, p in enumerate(pages)
        if p.seconds is not None
    ]


class SpeechRequest(BaseModel):
    model: str = "tts-1"
    input: str = Field(min_length=1, max_length=4096)
    voice: str = "alloy"
    response_format: Literal["wav", "pcm", "mp3"] = "wav"
    speed: float = Field(1.0, ge=0.25, le=4.0)


@router.post("/v1/audio/speech", response_model=None)
def speech(req: SpeechRequest, _key: Auth) -> Response | JSONResponse:
    from runtime.errors import ArchivistError
    from runtime.speech import engines, say

    if req.model not in TTS_MODELS:
        raise ApiError(400, f"model {req.model!r} is not installed; installed: {', '.join(TTS_MODELS)}", param="model")
    have = engines()
    if not have:
        from runtime.speech import HOW_TO_ADD

        raise ApiError(503, HOW_TO_ADD, param="model")
    voice = req.voice if req.voice in have else "espeak" if req.model == "espeak" else None
    if voice is None and req.voice not in OPENAI_VOICES:
        known = ", ".join([*have, *OPENAI_VOICES])
        raise ApiError(400, f"voice {req.voice!r} is not installed; voices: {known}", param="voice")
    try:
        spoken = say(req.input, voice=voice, speed=req.speed)
    except ArchivistError as exc:
        raise ApiError(400, str(exc), param="input") from None
    if req.response_format == "pcm":
        return Response(spoken.pcm, media_type="audio/pcm", headers={"X-Sample-Rate": str(spoken.sample_rate)})
    if req.response_format == "mp3":
        return Response(_mp3(spoken.pcm, spoken.sample_rate), media_type="audio/mpeg")
    return Response(spoken.wav, media_type="audio/wav")


def _mp3(pcm: bytes, rate: int) -> bytes:
    """16-bit mono samples as MP3, by PyAV's bundled encoder."""
    import av
    import numpy as np

    if "libmp3lame" not in av.codecs_available:
        raise ApiError(400, "response_format mp3: no MP3 encoder here; use wav or pcm", param="response_format")
    buf = io.BytesIO()
    with av.open(buf, mode="w", format="mp3") as out:
        stream = out.add_stream("libmp3lame", rate=rate, layout="mono")
        samples = np.frombuffer(pcm, dtype=np.int16).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate = rate
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buf.getvalue()
