"""`archivist transcribe` and `archivist say`: speech to text and text to speech, offline."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from runtime.errors import ArchivistError


def transcribe(args: argparse.Namespace) -> int:
    """A recording's speech with its times (Whisper tiny.en, on this machine)."""
    from ingest.audio import clock
    from ingest.audio import transcribe as heard
    from ingest.errors import IngestError
    from ingest.loaders import sniff

    path = Path(args.file)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ArchivistError(f"{path}: {exc.strerror or exc}") from None
    try:
        if sniff(data, path.name) != "audio":
            raise ArchivistError(f"{path.name}: not a recording (WAV, MP3, OGG, FLAC, M4A or WebM)")
        segments = []
        for seg in heard(data, path.name, language=args.language):
            segments.append(seg)
            if not args.json:
                print(f"[{clock(seg.start)}] {seg.text}", flush=True)
    except IngestError as exc:
        raise ArchivistError(str(exc)) from None
    if args.json:
        text = " ".join(s.text for s in segments)
        out = {"text": text, "segments": [{"start": s.start, "end": s.end, "text": s.text} for s in segments]}
        print(json.dumps(out, ensure_ascii=False))
    elif not segments:
        print("(no speech heard)", file=sys.stderr)
    return 0


def say(args: argparse.Namespace) -> int:
    """TEXT spoken into a WAV file."""
    from runtime.speech import say as speak

    speech = speak(args.text, voice=args.voice, speed=args.speed)
    Path(args.output).write_bytes(speech.wav)
    print(f"wrote {args.output} ({speech.seconds:.1f} s of speech, {speech.engine})", file=sys.stderr)
    return 0
