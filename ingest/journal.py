"""The ingest journal: files noted before a writer ingests them, so an ingest stopped half-way is
recorded as failed by the next writer instead of vanishing."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Sequence
from pathlib import Path


class Journal:
    """The journal side of `Store` (mixed in): notes under `home/journal/`."""

    home: Path

    def journal(self, collection: str, files: Sequence[tuple[str, bytes]]) -> Path:
        """Note files about to be ingested into `collection` (name, content), inside `writer()`. A file
        still noted when its writer stops (the process was killed or the app stopped) is recorded as
        failed, with that reason, by the next writer: an ingest never vanishes. Returns the note."""
        folder = self.home / "journal"
        folder.mkdir(parents=True, exist_ok=True)
        entries = [{"name": n, "sha256": hashlib.sha256(d).hexdigest(), "size": len(d)} for n, d in files]
        path = folder / f"{uuid.uuid4().hex}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"collection": collection, "files": entries}))
        tmp.replace(path)
        return path

    def journal_done(self, path: Path, name: str) -> None:
        """`name` of the note at `path` was ingested or recorded as failed: forget it."""
        try:
            note = json.loads(path.read_text())
        except (OSError, ValueError):
            return
        note["files"] = [f for f in note["files"] if f["name"] != name]
        if not note["files"]:
            path.unlink(missing_ok=True)
            return
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(note))
        tmp.replace(path)

    def in_progress(self, collection: str | None = None) -> list[tuple[str, str, int]]:
        """(collection, name, size) of the files a running writer has noted and not finished."""
        out: list[tuple[str, str, int]] = []
        for path in sorted((self.home / "journal").glob("*.json")):
            try:
                note = json.loads(path.read_text())
                if collection is None or note["collection"] == collection:
                    out.extend((note["collection"], f["name"], int(f["size"])) for f in note["files"])
            except (OSError, ValueError, KeyError, TypeError):
                continue
        return out
