"""`archivist backup` and `archivist restore`: one archive of a workspace, and a workspace from one."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from app.settings import Settings


def _describe(counts: dict[str, Any]) -> str:
    cols = counts.get("collections", {})
    docs = sum(c["documents"] for c in cols.values())
    return (
        f"{len(cols)} collection(s), {docs} document(s), {counts.get('conversations', 0)} conversation(s), "
        f"{counts.get('arena_votes', 0)} arena vote(s), {counts.get('api_keys', 0)} API key(s)"
    )


def backup(args: argparse.Namespace) -> int:
    from app.backup import backup as write_backup
    from app.services import workspace_home
    from ingest.catalog import is_server_url

    home = workspace_home(args.home)
    url = getattr(args, "database_url", None) or Settings.load(home=home).database_url
    report = write_backup(home, Path(args.output), server=bool(url and is_server_url(url)))
    if report.note:
        print(f"note: {report.note}")
    print(
        f"wrote {report.path} ({report.size / 2**20:,.1f} MB, {report.files} files, {report.seconds:.1f} s): "
        f"{_describe(report.counts)}"
    )
    return 0


def restore(args: argparse.Namespace) -> int:
    from app.backup import restore as read_backup
    from app.services import workspace_home

    report = read_backup(Path(args.file), workspace_home(args.home))
    print(f"restored {report.home} in {report.seconds:.1f} s: {_describe(report.counts)}; counts match the backup")
    empty = [name for name, hits in report.searched.items() if not hits]
    for name, hits in report.searched.items():
        print(f"  {name}: a search finds {hits} passage(s)")
    if empty:
        print(f"warning: a search of {', '.join(empty)} found nothing")
    return 1 if empty else 0
