"""Assistant bundles: one zip with the assistant's YAML and the original files of its collections,
so the assistant can be rebuilt on another machine."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from assistants.errors import AssistantError
from assistants.loader import MAX_YAML_BYTES, dump_assistant, parse_assistant
from assistants.schema import Assistant
from ingest.catalog import DocumentStatus
from ingest.embed import Embedder
from ingest.pipeline import FileResult, IngestLimits, ingest_bytes
from ingest.store import Store
from runtime.errors import ArchivistError

MAX_BUNDLE_BYTES = 2 * 2**30  # uncompressed


def export_bundle(assistant: Assistant, store: Store, out: Path) -> int:
    """Write the bundle; returns the number of documents in it."""
    manifest: list[dict[str, str]] = []
    tmp = out.with_suffix(out.suffix + ".tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("assistant.yaml", dump_assistant(assistant))
        for collection in assistant.knowledge.collections:
            for doc in store.documents(collection):
                if doc.status != DocumentStatus.READY:
                    continue
                original = store.original(collection, doc.name)
                if original is None:
                    raise AssistantError(doc.name, [f"original file of {doc.name} is missing from the workspace"])
                member = f"documents/{len(manifest):05d}{Path(doc.name).suffix.lower()}"
                zf.write(original, member)
                manifest.append({"collection": collection, "name": doc.name, "member": member, "sha256": doc.sha256})
        zf.writestr("manifest.json", json.dumps({"format": 1, "documents": manifest}, indent=1))
    tmp.replace(out)
    return len(manifest)


MAX_RATIO = 200  # a member may not compress more than this (zip bombs compress ~1000x)


PRIVATE_NETWORK = "private-network"  # what --allow-remote names for the web reader's private addresses


def import_problems(
    assistant: Assistant,
    home: Path,
    *,
    allow_download: bool,
    allow_model_path: bool,
    allow_remote: Sequence[str] = (),
) -> list[str]:
    """What an imported assistant would do that its importer did not ask for: send the questions and
    passages to a model server, choose which secret goes with them, reach the private network, fetch a
    model from the network on its first question, or load a model file from outside the workspace.
    `allow_remote`: the servers (and `private-network`) the importer named."""
    from runtime.registry import backend_for
    from runtime.remote import KEY_ENV, parse_remote

    problems = []
    spec = assistant.model.path
    allowed = {u.strip().rstrip("/") for u in allow_remote}
    backend = backend_for(spec)
    try:
        servers = backend.destinations(spec)
    except ArchivistError as exc:
        return [f"model.path: {exc}"]
    if servers:
        key_env = parse_remote(spec).key_env if spec.startswith("openai:") else KEY_ENV
        if key_env != KEY_ENV:
            problems.append(
                f"model.path: key_env={key_env}: an imported assistant may not choose which "
                f"environment variable's secret is sent to a server; remove key_env (the key comes from {KEY_ENV})"
            )
        for url in servers:
            if url not in allowed:
                problems.append(
                    f"model.path: every question, the instructions and the passages of your documents would be "
                    f"sent to {url}; import with --allow-remote {url} to accept that"
                )
    elif spec.startswith("hf:") and not allow_download:
        problems.append(
            f"model.path: {spec} would be downloaded from the model hub on the first question; "
            "import with --allow-download to accept that, or change the model"
        )
    elif not spec.startswith(("bundled:", "hf:")) and not allow_model_path:
        models = (home / "models").resolve()
        target = (home / spec).resolve() if not Path(spec).is_absolute() else Path(spec).resolve()
        if not target.is_relative_to(models):
            problems.append(
                f"model.path: {spec} is outside the workspace's models folder ({models}); "
                "import with --allow-model-path to accept it, or copy the model there"
            )
    reranker = assistant.retrieval.reranker
    if reranker and not Path(reranker).exists() and not allow_download:
        problems.append(
            f"retrieval.reranker: {reranker} would be downloaded from the model hub; import with --allow-download"
        )
    web = assistant.tools.web
    if web is not None and web.allow_private and PRIVATE_NETWORK not in allowed:
        reach = "any private, loopback or link-local address" if web.allow_private is True else web.allow_private
        problems.append(
            f"tools.web.allow_private: the web reader could read {reach} of your network (routers, "
            f"local servers) from a URL in a question; import with --allow-remote {PRIVATE_NETWORK} to accept that"
        )
    return problems


def remote_destinations(problems: Sequence[str]) -> list[str]:
    """The servers (and `private-network`) that the import problems ask the user to allow."""
    return [p.rsplit("--allow-remote ", 1)[1].split()[0] for p in problems if "--allow-remote " in p]


def import_bundle(
    path: Path,
    store: Store,
    embedder: Embedder,
    *,
    taken: Callable[[str], bool] = lambda _name: False,
    overwrite: bool = False,
    allow_download: bool = False,
    allow_model_path: bool = False,
    allow_remote: Sequence[str] = (),
) -> tuple[Assistant, list[FileResult]]:
    """Read a bundle: check all of it first (sizes, the assistant, where its documents go), then
    ingest its documents (read in memory, never extracted). Nothing is written when a check fails.

    `taken(name)` says whether an assistant of that name exists; a bundle writes only into
    collections that do not exist yet, unless `overwrite`."""
    try:
        zf = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise AssistantError(str(path), [f"(file): not a bundle zip ({exc})"]) from None
    with zf:
        members = {i.filename: i for i in zf.infolist()}
        total = sum(i.file_size for i in members.values())
        if total > MAX_BUNDLE_BYTES:
            raise AssistantError(
                str(path),
                [f"(file): {total / 2**20:,.0f} MB uncompressed; the limit is {MAX_BUNDLE_BYTES / 2**20:,.0f} MB"],
            )
        for info in members.values():
            if info.file_size > 2**20 and info.file_size > MAX_RATIO * max(info.compress_size, 1):
                raise AssistantError(
                    str(path),
                    [
                        f"{info.filename}: expands {info.file_size / max(info.compress_size, 1):,.0f}x; the limit is "
                        f"{MAX_RATIO}x (zip bomb?)"
                    ],
                )
        yaml_info = members.get("assistant.yaml")
        if yaml_info is not None and yaml_info.file_size > MAX_YAML_BYTES:
            raise AssistantError(
                str(path), [f"assistant.yaml: {yaml_info.file_size / 2**20:,.1f} MB; the limit is 1 MB"]
            )
        try:
            data = yaml.safe_load(_read(zf, "assistant.yaml", MAX_YAML_BYTES))
            manifest = json.loads(_read(zf, "manifest.json", MAX_YAML_BYTES * 16))["documents"]
        except (KeyError, ValueError, TypeError, yaml.YAMLError) as exc:
            raise AssistantError(
                str(path), [f"(file): bundle lacks a valid assistant.yaml or manifest.json ({exc})"]
            ) from None
        assistant = parse_assistant(data, f"{path}:assistant.yaml")
        problems = import_problems(
            assistant,
            store.home,
            allow_download=allow_download,
            allow_model_path=allow_model_path,
            allow_remote=allow_remote,
        )
        if taken(assistant.name) and not overwrite:
            problems.append(
                f"name: an assistant named {assistant.name!r} exists; import with --overwrite to replace it"
            )
        limit = IngestLimits().max_file_bytes
        problems += _manifest_problems(manifest, members, assistant, set(store.collection_names()), overwrite, limit)
        if problems:
            raise AssistantError(str(path), problems)
        results: list[FileResult] = []
        with store.writer():
            for entry in manifest:
                name = document_name(str(entry["name"]))
                try:
                    content = _read(zf, str(entry["member"]), limit)
                    results.append(
                        ingest_bytes(content, name, str(entry["collection"]), store, embedder, limits=IngestLimits())
                    )
                except Exception as exc:
                    results.append(FileResult(name, "failed", error=str(exc)))
    return assistant, results


def _manifest_problems(
    manifest: Any,
    members: dict[str, zipfile.ZipInfo],
    assistant: Assistant,
    existing: set[str],
    overwrite: bool,
    limit: int,
) -> list[str]:
    """What is wrong with a bundle's list of documents: collections the assistant does not search,
    collections that exist here (unless `overwrite`), members missing or over the file limit."""
    problems: list[str] = []
    for n, entry in enumerate(manifest if isinstance(manifest, list) else []):
        collection, member = str(entry.get("collection", "")), str(entry.get("member", ""))
        if collection not in assistant.knowledge.collections:
            problems.append(f"manifest.json: document {n}: collection {collection!r} is not one the assistant searches")
        elif collection in existing and not overwrite:
            problems.append(
                f"manifest.json: collection {collection!r} exists in this workspace; import with --overwrite to "
                "add to it (same-named documents are replaced)"
            )
            existing.discard(collection)  # once per collection
        found = members.get(member)
        if found is None:
            problems.append(f"manifest.json: document {n}: member {member!r} is missing from the bundle")
        elif found.file_size > limit:
            problems.append(f"{member}: {found.file_size / 2**20:,.0f} MB; the file limit is {limit / 2**20:,.0f} MB")
    return problems


def document_name(raw: str) -> str:
    """A document's name from a manifest, as a relative path: folder ingests name files by their
    path (`a/index.html`, `b/index.html`), so the folders stay; nothing climbs out or starts at /."""
    parts = [p for p in PurePosixPath(raw.replace("\\", "/")).parts if p not in ("/", ".", "..")]
    return "/".join(parts) or "document"


def _read(zf: zipfile.ZipFile, member: str, budget: int) -> bytes:
    """A member's bytes, streamed with a budget: a header that understates the size cannot make it larger."""
    with zf.open(member) as f:
        data = f.read(budget + 1)
    if len(data) > budget:
        raise ValueError(f"{member} is larger than its limit of {budget:,} bytes")
    return data
