"""What every command shares: the workspace's services from its settings and flags, and writing to a file or stdout."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from app.services import Services
from app.settings import Settings


def services(args: argparse.Namespace) -> Services:
    """The workspace's services for a command: its settings from the environment, then the flags
    (`--home`, `--database-url`, and `--max-mb` / `--parse-timeout` where the command has them)."""
    from app.services import workspace_home

    settings = Settings.load(
        home=workspace_home(args.home),
        max_file_mb=getattr(args, "max_mb", None),
        parse_timeout_s=getattr(args, "parse_timeout", None),
        database_url=getattr(args, "database_url", None),
        ocr=getattr(args, "ocr", None),
        ocr_languages=getattr(args, "ocr_languages", None),
    )
    return Services.create(settings=settings)


def where_words(page: int | None, seconds: tuple[float, float] | None) -> str:
    """'page 4', or 'at 12:34' in a recording ('' for neither)."""
    if seconds is not None:
        from ingest.audio import clock

        return f"at {clock(seconds[0])}"
    return f"page {page}" if page else ""


def write_out(text: str, output: str | None) -> None:
    if output:
        Path(output).write_text(text, encoding="utf-8")
        print(f"wrote {output}", file=sys.stderr)
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
