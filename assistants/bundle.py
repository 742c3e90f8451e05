"""Assistant bundles: one zip with the assistant's YAML and the original files of its collections,
so the assistant can be rebuilt on another machine."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path, PurePosixPath

import yaml

from assistants.errors import AssistantError
from assistants.loader import dump_assistant, parse_assistant
from assistants.schema import Assistant
from ingest.embed import Embedder
from ingest.pipeline import FileResult, IngestLimits, ingest_bytes
from ingest.store import Store

MAX_BUNDLE_BYTES = 2 * 2**30  # uncompressed


def export_bundle(assistant: Assistant, store: Store, out: Path) -> int:
    """Write the bundle; returns the number of documents in it."""
    manifest: list[dict[str, str]] = []
    tmp = out.with_suffix(out.suffix + ".tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("assistant.yaml", dump_assistant(assistant))
        for collection in assistant.knowledge.collections:
            for doc in store.documents(collection):
                if doc.status != "ready":
                    continue
                original = next((store.home / "files").glob(f"{doc.sha256}*"), None)
                if original is None:
                    raise AssistantError(doc.name, [f"original file of {doc.name} is missing from the workspace"])
                member = f"documents/{len(manifest):05d}{Path(doc.name).suffix.lower()}"
                zf.write(original, member)
                manifest.append({"collection": collection, "name": doc.name, "member": member, "sha256": doc.sha256})
        zf.writestr("manifest.json", json.dumps({"format": 1, "documents": manifest}, indent=1))
    tmp.replace(out)
    return len(manifest)


def import_bundle(path: Path, store: Store, embedder: Embedder) -> tuple[Assistant, list[FileResult]]:
    """Read a bundle: validate its assistant and ingest its documents (read in memory, never extracted)."""
    try:
        zf = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise AssistantError(str(path), [f"(file): not a bundle zip ({exc})"]) from None
    with zf:
        total = sum(i.file_size for i in zf.infolist())
        if total > MAX_BUNDLE_BYTES:
            raise AssistantError(
                str(path),
                [f"(file): {total / 2**20:,.0f} MB uncompressed; the limit is {MAX_BUNDLE_BYTES / 2**20:,.0f} MB"],
            )
        try:
            data = yaml.safe_load(zf.read("assistant.yaml"))
            manifest = json.loads(zf.read("manifest.json"))["documents"]
        except (KeyError, ValueError, yaml.YAMLError) as exc:
            raise AssistantError(
                str(path), [f"(file): bundle lacks a valid assistant.yaml or manifest.json ({exc})"]
            ) from None
        assistant = parse_assistant(data, f"{path}:assistant.yaml")
        results: list[FileResult] = []
        with store.writer():
            for entry in manifest:
                name = PurePosixPath(str(entry["name"]).replace("\\", "/")).name or "document"
                content = io.BytesIO(zf.read(str(entry["member"]))).getvalue()
                try:
                    results.append(
                        ingest_bytes(content, name, str(entry["collection"]), store, embedder, limits=IngestLimits())
                    )
                except Exception as exc:
                    results.append(FileResult(name, "failed", error=str(exc)))
    return assistant, results
