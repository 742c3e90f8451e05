"""Parsers of the commands that take files in: `ingest` (with the OCR flags), `sync` and `watch`
(with a collection's folders and globs), and the voice commands `transcribe` and `say`."""

from __future__ import annotations

import argparse
from typing import Any

from ingest.chunk import ChunkSettings


def intake_commands(sub: Any, commands: Any) -> None:
    """ingest, sync, watch, transcribe, say"""
    _ingest_command(sub, commands)
    _sync_command(sub, commands)
    _voice_commands(sub, commands)


def _ingest_command(sub: Any, commands: Any) -> None:
    c = sub.add_parser("ingest", help="add files or folders to a collection")
    c.add_argument("paths", nargs="+", metavar="PATH")
    c.add_argument("--collection", "-c", required=True)
    c.add_argument("--chunk-tokens", type=int, default=ChunkSettings.chunk_tokens)
    c.add_argument("--overlap-tokens", type=int, default=ChunkSettings.overlap_tokens)
    c.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    c.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="GLOB",
        help="leave out files of a folder matching (repeatable)",
    )
    c.add_argument("--password", help="password of encrypted PDFs")
    c.add_argument(
        "--keep-hidden-text",
        action="store_true",
        help="keep text a reader cannot see in the chunks (it is still reported)",
    )
    c.add_argument("--max-mb", type=float, help="largest file accepted, in MB (default 200, ARCHIVIST_MAX_FILE_MB)")
    c.add_argument(
        "--parse-timeout", type=float, help="seconds allowed to parse one file (default 600, ARCHIVIST_PARSE_TIMEOUT_S)"
    )
    _ocr_flags(c)
    c.set_defaults(func=commands.ingest)


def _ocr_flags(c: Any) -> None:
    c.add_argument(
        "--ocr",
        choices=("auto", "always", "off"),
        help="read pictures: auto (scanned pages, image files; the default, ARCHIVIST_OCR), "
        "always (every PDF page from its image), off",
    )
    c.add_argument(
        "--ocr-languages", metavar="LANGS", help="languages OCR reads, e.g. en,de (default en, ARCHIVIST_OCR_LANGUAGES)"
    )


def _source_arguments(c: Any) -> None:
    """The folders a collection mirrors (sync, watch), the collection and the globs."""
    c.add_argument("paths", nargs="*", metavar="FOLDER", help="its sources (default: those it was synced with)")
    c.add_argument("--collection", "-c", required=True)
    c.add_argument("--include", action="append", default=[], metavar="GLOB", help="only files matching (repeatable)")
    c.add_argument("--exclude", action="append", default=[], metavar="GLOB", help="leave out files matching")


def _sync_command(sub: Any, commands: Any) -> None:
    c = sub.add_parser(
        "sync",
        help="make a collection mirror folders and files: new files added, changed ones read again, "
        "moved ones renamed, removed ones deleted",
    )
    _source_arguments(c)
    _ocr_flags(c)
    c.add_argument("--dry-run", action="store_true", help="list what would change, change nothing")
    c.add_argument(
        "--follow",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="the app and `archivist serve` follow these folders in the background from now on (--no-follow: stop)",
    )
    c.set_defaults(func=commands.sync)
    c = sub.add_parser("watch", help="keep a collection mirroring its folders as they change (sync, then follow)")
    _source_arguments(c)
    _ocr_flags(c)
    c.add_argument("--poll", type=float, default=5.0, help="seconds between looks where file events are missing")
    c.add_argument("--settle", type=float, default=2.0, help="seconds a file must stay unchanged before it is read")
    c.set_defaults(func=commands.watch)


def _voice_commands(sub: Any, commands: Any) -> None:
    """transcribe, say"""
    c = sub.add_parser("transcribe", help="a recording's speech as text with its times (offline)")
    c.add_argument("file", help="WAV, MP3, OGG/Opus, FLAC, M4A or WebM")
    c.add_argument("--language", default="en", help="the spoken language (the bundled model hears English)")
    c.add_argument("--json", action="store_true", help='{"text": ..., "segments": [{"start", "end", "text"}]}')
    c.set_defaults(func=commands.transcribe)
    c = sub.add_parser("say", help="speak TEXT into a WAV file (offline)")
    c.add_argument("text")
    c.add_argument("--output", "-o", required=True, help="the WAV file to write")
    c.add_argument("--voice", choices=("joe", "espeak"), help="default: the best installed")
    c.add_argument("--speed", type=float, default=1.0, help="0.25-4 (1: normal)")
    c.set_defaults(func=commands.say)
