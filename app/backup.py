"""One archive of a workspace, and a workspace brought back from one.

`archivist backup -o FILE` writes a .tar.gz of the workspace while the app or server runs: the
SQLite catalog through SQLite's online backup (a consistent copy, never a file copy of a database
being written), the vector indexes (each written atomically; one older than the catalog is rebuilt
from it when opened), the original files, the assistants' YAML, the encoder calibration and the
answer-marker key, and a manifest with what the catalog holds (documents and chunks per
collection, conversations, messages, arena votes, API keys). Downloaded models, caches and logs
stay out (models come back from their source; the log never holds document text anyway).

`archivist restore FILE [--home H]` brings an archive back into an empty workspace: every member
is checked before anything is written (plain files and folders, no path leaving the workspace,
sizes within the archive's), the catalog passes SQLite's integrity check, and the restored
workspace is opened and counted against the manifest, with a keyword search of every collection.

On a PostgreSQL server database the catalog, vectors and conversations are the server's to back
up (`pg_dump`); the archive then holds the local parts only, and says so.
"""

from __future__ import annotations

import io
import json
import shutil
import sqlite3
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from runtime.errors import ArchivistError

FORMAT = 1
DB = "archivist.db"
KEPT = ("calibration.json", "marker.key", "files", "indexes", "assistants")  # besides the catalog
MAX_MEMBER_BYTES = 64 * 2**30


@dataclass
class BackupReport:
    path: Path
    counts: dict[str, Any]
    files: int
    size: int
    seconds: float
    note: str = ""


@dataclass
class RestoreReport:
    home: Path
    counts: dict[str, Any]
    searched: dict[str, int] = field(default_factory=dict)  # collection -> hits of its check search
    seconds: float = 0.0


def catalog_counts(db: Path) -> dict[str, Any]:
    """What a SQLite catalog holds: documents and chunks per collection, conversations, messages,
    arena votes and API keys."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}

        def count(table: str) -> int:
            return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]) if table in tables else 0

        collections = {
            name: {"documents": docs, "chunks": chunks or 0}
            for name, docs, chunks in conn.execute(
                "SELECT c.name, count(d.id), sum(d.n_chunks) FROM collections c "
                "LEFT JOIN documents d ON d.collection_id = c.id AND d.status = 'ready' GROUP BY c.name ORDER BY c.name"
            )
        }
        return {
            "collections": collections,
            "conversations": count("conversations"),
            "messages": count("messages"),
            "arena_votes": count("arena_battles"),
            "api_keys": count("api_keys"),
        }
    finally:
        conn.close()


def backup(home: Path, out: Path, *, server: bool = False) -> BackupReport:
    """Write the workspace at `home` into the archive `out` (.tar.gz), consistently while it is in use."""
    t0 = time.perf_counter()
    if not home.is_dir():
        raise ArchivistError(f"no workspace at {home}")
    out = out.expanduser().resolve()
    if out.is_relative_to(home.resolve()):
        raise ArchivistError(f"{out}: write the backup outside the workspace it backs up ({home})")
    out.parent.mkdir(parents=True, exist_ok=True)
    counts: dict[str, Any] = {}
    files = 0
    with tempfile.TemporaryDirectory(prefix="archivist-backup-") as tmp:
        snapshot = Path(tmp) / DB
        if not server and (home / DB).exists():
            src = sqlite3.connect(home / DB, timeout=30)
            dst = sqlite3.connect(snapshot)
            try:
                src.backup(dst)  # SQLite's online backup: consistent while others write
            finally:
                dst.close()
                src.close()
            counts = catalog_counts(snapshot)
        manifest = {"format": FORMAT, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "server": server}
        manifest["counts"] = counts
        part = out.with_name(out.name + ".part")
        with tarfile.open(part, "w:gz") as tar:
            data = json.dumps(manifest, indent=1).encode()
            info = tarfile.TarInfo("manifest.json")
            info.size, info.mtime = len(data), int(time.time())
            tar.addfile(info, io.BytesIO(data))
            if snapshot.exists():
                tar.add(snapshot, DB)
                files += 1
            for name in KEPT:
                path = home / name
                if path.is_file():
                    tar.add(path, name)
                    files += 1
                elif path.is_dir():
                    for f in sorted(
                        p for p in path.rglob("*") if p.is_file() and not p.name.endswith((".part", ".tmp"))
                    ):
                        tar.add(f, f.relative_to(home).as_posix())
                        files += 1
        part.replace(out)
    note = (
        "the documents, vectors and conversations are in the PostgreSQL server: back them up with pg_dump; "
        "this archive holds the workspace's local parts (original files, assistants' files, calibration)"
        if server
        else ""
    )
    return BackupReport(out, counts, files, out.stat().st_size, time.perf_counter() - t0, note)


def _checked_members(tar: tarfile.TarFile, archive: Path) -> list[tarfile.TarInfo]:
    """The archive's members, each a plain file or folder inside the workspace, or an error naming it."""
    out = []
    for m in tar.getmembers():
        p = PurePosixPath(m.name)
        if p.is_absolute() or ".." in p.parts or not p.parts:
            raise ArchivistError(f"{archive}: member {m.name!r} would be written outside the workspace")
        if not (m.isfile() or m.isdir()):
            raise ArchivistError(f"{archive}: member {m.name!r} is a link or device, not a file")
        if m.size > MAX_MEMBER_BYTES:
            raise ArchivistError(f"{archive}: member {m.name!r} is {m.size / 2**30:,.1f} GB; the limit is 64 GB")
        if p.parts[0] not in (*KEPT, DB, "manifest.json"):
            raise ArchivistError(f"{archive}: member {m.name!r} is not part of a workspace backup")
        out.append(m)
    return out


def _extract(archive: Path, staging: Path) -> dict[str, Any]:
    """Check every member, then extract the archive into `staging`; returns its manifest."""
    import zlib

    try:
        with tarfile.open(archive, "r:gz") as tar:
            members = _checked_members(tar, archive)
            member = tar.extractfile("manifest.json")
            if member is None:
                raise KeyError("manifest.json")
            manifest: dict[str, Any] = json.loads(member.read())
            if manifest.get("format") != FORMAT:
                raise ArchivistError(
                    f"{archive}: backup format {manifest.get('format')!r}; this version reads {FORMAT}"
                )
            staging.mkdir(parents=True)
            tar.extractall(staging, members=members, filter="data")
    except ArchivistError:
        raise
    except (KeyError, ValueError, tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        raise ArchivistError(f"{archive}: damaged or not a workspace backup ({exc})") from None
    return manifest


def restore(archive: Path, home: Path) -> RestoreReport:
    """Bring the archive back into `home`, which must be empty or absent; check what it restored."""
    t0 = time.perf_counter()
    if home.exists() and any(p.name != "logs" for p in home.iterdir()):  # the CLI's own log may be there
        raise ArchivistError(f"{home} is not empty: restore into a new workspace (--home NEW_FOLDER)")
    if not archive.is_file():
        raise ArchivistError(f"{archive}: no such file")
    staging = home.with_name(home.name + ".restoring")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        manifest = _extract(archive, staging)
        counts: dict[str, Any] = {}
        db = staging / DB
        if db.exists():
            conn = sqlite3.connect(db)
            try:
                ok = conn.execute("PRAGMA integrity_check").fetchone()[0]
            except sqlite3.DatabaseError as exc:
                ok = str(exc)
            finally:
                conn.close()
            if ok != "ok":
                raise ArchivistError(f"{archive}: the catalog in it is damaged ({ok})")
            counts = catalog_counts(db)
            if counts != manifest.get("counts"):
                raise ArchivistError(
                    f"{archive}: the catalog holds {counts}, the manifest says {manifest.get('counts')}"
                )
        home.mkdir(parents=True, exist_ok=True)
        for item in staging.iterdir():
            item.replace(home / item.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    report = RestoreReport(home, counts)
    report.searched = _search_each(home, counts)
    report.seconds = time.perf_counter() - t0
    return report


def _search_each(home: Path, counts: dict[str, Any]) -> dict[str, int]:
    """A keyword search of every restored collection with a word of its first chunk: its hits."""
    from ingest.catalog import make_engine
    from ingest.fulltext import keyword_index
    from retriever.keyword import content_words

    if not counts.get("collections"):
        return {}
    engine = make_engine(home / DB)
    out: dict[str, int] = {}
    try:
        with engine.connect() as conn:
            for name in counts["collections"]:
                row = conn.exec_driver_sql(
                    "SELECT ch.text FROM chunks ch JOIN documents d ON d.id = ch.document_id "
                    "JOIN collections c ON c.id = d.collection_id WHERE c.name = ? AND d.status = 'ready' "
                    "ORDER BY ch.id LIMIT 1",
                    (name,),
                ).first()
                words = content_words(row[0]) if row else []
                out[name] = len(keyword_index(engine).search([name], " ".join(words[:3]), 5)) if words else 0
    finally:
        engine.dispose()
    return out
