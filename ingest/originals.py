"""The original file of every document, kept by content hash (never by the name it came with):
in the workspace's `files/` folder, and on a server database also in its `originals` table,
where every machine that shares the database can fetch it."""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path

from sqlalchemy import Engine, text

from ingest.loaders import SUPPORTED_SUFFIXES


def safe_suffix(name: str) -> str:
    """The suffix an original is stored under: the name's, when it is a supported one; else none."""
    suffix = Path(name).suffix.lower()
    return suffix if suffix in SUPPORTED_SUFFIXES else ""


class Originals:
    """Originals of one workspace; `shared`: the server database's engine (None for a local one)."""

    def __init__(self, home: Path, shared: Engine | None = None) -> None:
        self.folder = home / "files"
        self.shared = shared

    def keep(self, sha256: str, name: str, data: bytes) -> None:
        """Keep a document's content (`name` gives the suffix only)."""
        suffix = safe_suffix(name)
        target = self.folder / f"{sha256}{suffix}"
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_suffix(".tmp")
            tmp.write_bytes(data)
            shutil.move(tmp, target)
        self.share(sha256, suffix, data)

    def share(self, sha256: str, suffix: str, data: bytes) -> None:
        """On a server database, keep the content where every machine can read it."""
        if self.shared is None:
            return
        with self.shared.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO originals (sha256, suffix, data, created_at) VALUES (:h, :s, :d, now()) "
                    "ON CONFLICT (sha256) DO NOTHING"
                ),
                {"h": sha256, "s": suffix, "d": data},
            )

    def path(self, sha256: str) -> Path | None:
        """The original of this content on this machine (None when it was never kept or is gone); on
        a server database one kept by another machine is fetched into `files/` first."""
        here = next(self.folder.glob(f"{sha256}*"), None)
        if here is not None or self.shared is None:
            return here
        with self.shared.connect() as conn:
            row = conn.execute(text("SELECT suffix, data FROM originals WHERE sha256 = :h"), {"h": sha256}).first()
        if row is None:
            return None
        target = self.folder / f"{sha256}{row[0]}"
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".part")
        tmp.write_bytes(bytes(row[1]))
        tmp.replace(target)
        return target

    def drop(self, hashes: Iterable[str]) -> None:
        """Remove the originals of these contents (no document has them any more)."""
        hashes = set(hashes)
        for sha in hashes:
            for f in self.folder.glob(f"{sha}*"):
                f.unlink(missing_ok=True)
        if self.shared is not None and hashes:
            with self.shared.begin() as conn:
                conn.execute(text("DELETE FROM originals WHERE sha256 = :h"), [{"h": h} for h in hashes])
