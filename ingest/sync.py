"""A collection that mirrors folders: `archivist sync FOLDER... --collection C`.

The files under the sources (folders searched recursively for supported types, filtered by
include/exclude globs on their path inside the folder, and single files) are compared with the
collection's documents by name and content hash:

- a new file is ingested; a changed one (another hash under the same name) ingested again;
- a file whose content is a document's that is no longer on disk under its own name was moved or
  renamed: the document takes the new name, nothing is read or embedded again;
- a document whose file is gone is removed (text, vectors and all); only documents the sources
  name are (`folder/...`): one added another way (an upload, `archivist ingest FILE`) stays;
- two files with the same content are one document (the first name); the other is reported.

Documents are named as `archivist ingest FOLDER` names them (`folder/sub/file.pdf`). Crash-safe
as an ingest is: renames first (each one statement), then the ingests (each document appears
whole or not at all), removals last, so a sync stopped at any point leaves every document either
as it was or as it will be, and the next sync finishes the job from a fresh comparison.
"""

from __future__ import annotations

import fnmatch
import hashlib
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ingest.catalog import DocumentStatus, forget
from ingest.embed import Embedder
from ingest.loaders import SUPPORTED_SUFFIXES
from ingest.pipeline import IngestLimits, IngestReport, ProgressCallback, ingest_named
from ingest.records import DocumentInfo, check_collection_name
from ingest.store import Store
from ingest.store_sources import SourceSpec


@dataclass
class SyncPlan:
    """What a sync changes (and what a dry run lists)."""

    added: list[tuple[str, Path]] = field(default_factory=list)  # (document name, file)
    changed: list[tuple[str, Path]] = field(default_factory=list)
    renamed: list[tuple[str, str]] = field(default_factory=list)  # (old name, new name)
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0
    duplicates: list[tuple[str, str]] = field(default_factory=list)  # (file's name, the document it repeats)
    problems: list[str] = field(default_factory=list)  # sources that cannot be read

    @property
    def changes(self) -> int:
        return len(self.added) + len(self.changed) + len(self.renamed) + len(self.removed)

    def summary(self) -> dict[str, Any]:
        return {
            "added": len(self.added),
            "changed": len(self.changed),
            "renamed": len(self.renamed),
            "removed": len(self.removed),
            "unchanged": self.unchanged,
            "duplicates": len(self.duplicates),
            "problems": list(self.problems),
        }


@dataclass
class SyncResult:
    plan: SyncPlan
    report: IngestReport
    seconds: float

    def summary(self) -> dict[str, Any]:
        return {**self.plan.summary(), "failed": [f"{r.name or r.path}: {r.error}" for r in self.report.failed]}


def _matches(rel: str, patterns: Sequence[str]) -> bool:
    return any(fnmatch.fnmatch(rel, p) or fnmatch.fnmatch(Path(rel).name, p) for p in patterns)


def source_files(sources: Sequence[SourceSpec], problems: list[str] | None = None) -> list[tuple[Path, str]]:
    """(file, document name) of every supported file the sources hold, named as `ingest` names them."""
    out: list[tuple[Path, str]] = []
    for spec in sources:
        p = Path(spec.path).expanduser()
        if p.is_dir():
            top = p.resolve()
            for f in sorted(x for x in p.rglob("*") if x.is_file() and x.suffix.lower() in SUPPORTED_SUFFIXES):
                rel = f.relative_to(p).as_posix()
                if spec.include and not _matches(rel, spec.include):
                    continue
                if spec.exclude and _matches(rel, spec.exclude):
                    continue
                out.append((f, f"{top.name}/{rel}"))
        elif p.is_file():
            out.append((p, p.name))
        elif problems is not None:
            problems.append(f"{spec.path}: no such folder or file")
    return out


def _covered(sources: Sequence[SourceSpec]) -> Callable[[str], bool]:
    """Whether a document name is one the sources would give (`folder/...` of a folder source, the
    file name of a file source): only those are removed when their file is gone; a document added
    another way (an upload, `archivist ingest FILE`) stays."""
    prefixes, names = [], set()
    for spec in sources:
        p = Path(spec.path).expanduser()
        if p.is_file() or p.suffix.lower() in SUPPORTED_SUFFIXES:
            names.add(p.name)
        else:
            prefixes.append(f"{p.resolve().name}/")
    return lambda name: name in names or name.startswith(tuple(prefixes))


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(2**20), b""):
            h.update(block)
    return h.hexdigest()


def plan_sync(store: Store, collection: str, sources: Sequence[SourceSpec], hold: Collection[Path] = ()) -> SyncPlan:
    """Compare the sources' files with the collection's documents (nothing is changed). Files in
    `hold` (still being written) are left for a later sync: not read, not added, not removed."""
    check_collection_name(collection)
    plan = SyncPlan()
    files = source_files(sources, plan.problems)
    held = {name for path, name in files if path in hold}
    files = [(path, name) for path, name in files if name not in held]
    versions: dict[str, list[DocumentInfo]] = {}
    for d in store.documents(collection) if collection in store.collection_names() else []:
        versions.setdefault(d.name, []).append(d)
    ready = {d.sha256: d.name for vs in versions.values() for d in vs if d.status == DocumentStatus.READY}
    on_disk: dict[str, tuple[Path, str]] = {}  # name -> (file, hash)
    seen_hash: dict[str, str] = {}
    for path, name in files:
        try:
            sha = _sha256(path)
        except OSError as exc:
            plan.problems.append(f"{path}: cannot be read ({exc.strerror or exc})")
            continue
        if sha in seen_hash:
            plan.duplicates.append((name, seen_hash[sha]))
            continue
        seen_hash[sha] = name
        on_disk[name] = (path, sha)
    taken_by_rename: set[str] = set()
    for name, (path, sha) in on_disk.items():
        have = versions.get(name, [])
        if any(d.sha256 == sha and d.status == DocumentStatus.READY for d in have):
            plan.unchanged += 1
        elif have:  # another content, or this one failed or left half-done by a stopped run: again
            plan.changed.append((name, path))
        elif sha in ready and ready[sha] not in on_disk and ready[sha] not in taken_by_rename:
            plan.renamed.append((ready[sha], name))  # moved or renamed: same content, old name gone
            taken_by_rename.add(ready[sha])
        else:
            plan.added.append((name, path))
    if not plan.problems:  # a source that cannot be read removes nothing
        mine = _covered(sources)
        plan.removed = sorted(
            n for n in versions if n not in on_disk and n not in taken_by_rename and n not in held and mine(n)
        )
    return plan


def sync(
    store: Store,
    embedder: Embedder,
    collection: str,
    sources: Sequence[SourceSpec],
    *,
    dry_run: bool = False,
    hold: Collection[Path] = (),
    follow: bool | None = None,
    limits: IngestLimits | None = None,
    progress: ProgressCallback | None = None,
    said: Callable[[str], None] | None = None,
) -> SyncResult:
    """Make the collection mirror `sources` once, and keep them as its sources (see the module's
    notes); `dry_run`: plan only; `follow`: follow them in the background from now on (None: as
    before). `said` gets one line per change as it is made."""
    t0 = time.perf_counter()
    plan = plan_sync(store, collection, sources, hold)
    report = IngestReport()
    if dry_run:
        return SyncResult(plan, report, time.perf_counter() - t0)
    tell = said or (lambda _line: None)
    store.set_sources(collection, sources, follow)  # the collection keeps them: `archivist sync -c C` syncs again
    for old, new in plan.renamed:
        store.rename_document(collection, old, new)
        tell(f"renamed {old} -> {new} (not embedded again)")
    todo = [*plan.added, *plan.changed]
    if todo:
        report = ingest_named(todo, collection, store, embedder, limits=limits, progress=progress)
        for r in report.results:
            tell(f"failed {r.path}: {r.error}" if r.status == "failed" else f"ingested {r.name or r.path}")
    for name in plan.removed:
        store.delete_document(collection, name, scrub=False)
        tell(f"removed {name} (its file is gone)")
    if plan.removed:
        forget(store.engine, full_text=True)  # once for all the removals: no copy of them left behind
    result = SyncResult(plan, report, time.perf_counter() - t0)
    store.record_sync(collection, result.summary())
    return result
