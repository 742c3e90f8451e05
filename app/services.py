"""The composition root: builds every service of a workspace from its settings."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from app.ingest_jobs import IngestJobs
from app.settings import Settings
from assistants.arena import Arena, ArenaStore
from assistants.chat import ChatService
from assistants.conversation_service import ConversationService
from assistants.conversations import ConversationStore
from assistants.errors import AssistantError
from assistants.library import AssistantStore
from assistants.schema import Assistant
from ingest.embed import Embedder, SentenceTransformerEmbedder, embedder_identity
from ingest.jobs import JobQueue
from ingest.pipeline import FileResult, IngestReport, ProgressCallback, ingest_bytes, ingest_files
from ingest.precision import FILE as CALIBRATION_FILE
from ingest.store import Store, check_collection_name
from retriever.filters import SearchFilter
from retriever.search import Hit, Mode, search
from runtime.hub import Downloads
from runtime.registry import ModelPool


def workspace_home(explicit: str | Path | None = None) -> Path:
    """The workspace folder: --home, else $ARCHIVIST_HOME, else ~/.archivist."""
    raw = explicit or os.environ.get("ARCHIVIST_HOME") or Path.home() / ".archivist"
    return Path(raw).expanduser().resolve()


@dataclass
class Services:
    """Everything a front end needs; expensive parts are built on first use. The embedder and the
    model pool can be given (tests, or a process that shares them); otherwise they are built from
    the settings."""

    settings: Settings
    _embedder: Embedder | None = None
    _models: ModelPool | None = None

    @classmethod
    def create(
        cls,
        home: str | Path | None = None,
        *,
        embedder: Embedder | None = None,
        models: ModelPool | None = None,
        settings: Settings | None = None,
    ) -> Services:
        settings = settings or Settings.load(home=workspace_home(home))
        s = cls(settings, embedder, models)
        s.home.mkdir(parents=True, exist_ok=True)
        return s

    def using_models(self, models: ModelPool) -> Services:
        """The same workspace and embedder answering with another model pool (a process that shares
        loaded models, or a test's scripted ones); its services are built afresh."""
        return Services(self.settings, self._embedder, models)

    @property
    def home(self) -> Path:
        return self.settings.home

    @property
    def embedder_spec(self) -> str:
        return self.settings.embedder

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = SentenceTransformerEmbedder(self.embedder_spec, calibration=self.home / CALIBRATION_FILE)
        return self._embedder

    @cached_property
    def store(self) -> Store:
        # The catalog only needs the embedder's identity: read it from its files where possible,
        # so commands that don't embed (keys, documents, delete) start without loading the model.
        ident = None if self._embedder is not None else embedder_identity(self.embedder_spec)
        name, dim = ident if ident else (self.embedder.name, self.embedder.dim)
        return Store(self.home, name, dim, self.settings.database_url)

    @property
    def models(self) -> ModelPool:
        if self._models is None:
            self._models = ModelPool(cache_dir=self.home / "models")
        return self._models

    @cached_property
    def library(self) -> AssistantStore:
        # on a server database the workspace's assistants are its rows, shared by every machine
        return AssistantStore(self.home / "assistants", engine=self.store.engine if self.store.server else None)

    @cached_property
    def chat(self) -> ChatService:
        return ChatService(self.store, self.embedder, self.models)

    @cached_property
    def conversations(self) -> ConversationStore:
        return ConversationStore(self.store.engine)

    @cached_property
    def arena_store(self) -> ArenaStore:
        return ArenaStore(self.store.engine)

    @cached_property
    def arena(self) -> Arena:
        return Arena(self.chat, self.arena_store)

    @cached_property
    def conversation(self) -> ConversationService:
        return ConversationService(self.chat, self.conversations)

    @cached_property
    def ingest_jobs(self) -> IngestJobs:
        """Background ingest of uploads (the app): jobs outlive the page that started them."""
        return IngestJobs(self.store, self.add_document, self.jobs if self.store.server else None, self.add_documents)

    @cached_property
    def jobs(self) -> JobQueue:
        """The server database's ingest job queue (workers on any machine take its jobs)."""
        return JobQueue(self.store)

    def add_document(
        self, collection: str, name: str, data: bytes, notify: Callable[..., None] | None = None
    ) -> FileResult:
        """One uploaded file into a collection: the one way in for the API's uploads and the app's
        background jobs. The collection name is checked before any work, and the workspace's
        limits (size, parse time) apply. The caller holds the store's writer."""
        check_collection_name(collection)
        limits = self.settings.ingest_limits()
        return ingest_bytes(data, name, collection, self.store, self.embedder, limits=limits, notify=notify)

    def add_documents(
        self, collection: str, files: Sequence[tuple[str, bytes]], progress: ProgressCallback | None = None
    ) -> IngestReport:
        """Several uploaded files at once, as `archivist ingest` does files on disk (the next files
        parsed ahead, small ones embedded together); the workspace's limits apply. The caller holds
        the store's writer."""
        limits = self.settings.ingest_limits()
        return ingest_files(files, collection, self.store, self.embedder, limits=limits, progress=progress)

    def rename_collection(self, old: str, new: str) -> list[str]:
        """Rename a collection and make the workspace's assistants that search it follow; returns
        the shipped assistants that still name the old one (they cannot be rewritten)."""
        self.store.rename_collection(old, new)
        stuck = []
        for entry in self.library.entries()[0]:
            cols = entry.assistant.knowledge.collections
            if old not in cols:
                continue
            if entry.source != "workspace":
                stuck.append(entry.assistant.name)
                continue
            knowledge = entry.assistant.knowledge.model_copy(
                update={"collections": [new if c == old else c for c in cols]}
            )
            self.library.save(entry.assistant.model_copy(update={"knowledge": knowledge}), overwrite=True)
        return stuck

    def rename_assistant(self, old: str, assistant: Assistant) -> None:
        """Save `assistant` (its new name must be free) in place of the workspace's assistant `old`: its
        conversations follow it, and `old` is gone. A shipped assistant cannot be renamed (save a copy)."""
        if not self.library.taken(old):
            raise AssistantError(old, [f"name: {old} is a shipped assistant; save it under a new name as a copy"])
        self.library.save(assistant)
        self.conversations.move_assistant(old, assistant.name)
        self.library.delete(old)

    def follow_folders(self, stop: threading.Event, *, poll_s: float = 5.0, settle_s: float = 2.0) -> list[str]:
        """Follow the folders of every collection switched on for it (`archivist sync --follow`), each
        in a background thread until `stop` is set; returns the collections followed."""
        from ingest.watch import watch

        followed = self.store.followed()
        for name in followed:
            specs = [s.spec for s in self.store.sources(name)]
            threading.Thread(
                target=_follow,
                args=(
                    watch,
                    self.store,
                    self.embedder,
                    name,
                    specs,
                    stop,
                    poll_s,
                    settle_s,
                    self.settings.ingest_limits(),
                ),
                daemon=True,
                name=f"archivist-follow-{name}",
            ).start()
        return followed

    def collection_users(self, name: str) -> list[str]:
        """The assistants that search a collection."""
        return [e.assistant.name for e in self.library.entries()[0] if name in e.assistant.knowledge.collections]

    def search(
        self,
        collections: Sequence[str],
        query: str,
        k: int = 5,
        mode: Mode = "hybrid",
        where: SearchFilter | None = None,
    ) -> list[Hit]:
        """The k best passages for `query`: the one search of the CLI, the API and the app."""
        return search(self.store, self.embedder, collections, query, k, mode=mode, where=where)

    @cached_property
    def downloads(self) -> Downloads:
        """Model downloads from the hub (the app's Models page): they outlive the page too."""
        return Downloads(self.home / "models")


REPO_DOCS = Path(__file__).resolve().parent.parent / "docs"
EXAMPLE_COLLECTION = "archivist-docs"
# pages of docs/ written for people who work on Archivist, not for its users: the example
# assistant (a guide to using Archivist) is not to quote the layer diagram or bench figures
DEVELOPER_PAGES = ("architecture.md", "benchmarks.md")


def ensure_example_knowledge(services: Services, docs: Path = REPO_DOCS) -> None:
    """Ingest Archivist's own user guide (docs/ less the developer pages) into the example
    assistant's collection (no work when unchanged); developer pages an earlier version put
    there are taken out."""
    if docs.is_dir():
        from ingest.pipeline import ingest_paths

        ingest_paths([docs], EXAMPLE_COLLECTION, services.store, services.embedder, exclude=DEVELOPER_PAGES)
        held = {d.name for d in services.store.documents(EXAMPLE_COLLECTION)}
        for page in DEVELOPER_PAGES:
            if f"{docs.name}/{page}" in held:
                services.store.delete_document(EXAMPLE_COLLECTION, f"{docs.name}/{page}")


def _follow(
    watch: Callable[..., None],
    store: Store,
    embedder: Embedder,
    name: str,
    specs: Any,
    stop: threading.Event,
    poll_s: float,
    settle_s: float,
    limits: Any,
) -> None:
    """One collection's follower: a failure is logged and the follower starts again after a pause."""
    import logging

    log = logging.getLogger("archivist.watch")
    while not stop.is_set():
        try:
            watch(store, embedder, name, specs, stop=stop, poll_s=poll_s, settle_s=settle_s, limits=limits)
        except Exception:
            log.exception("following the folders of %s failed; trying again in 30 s", name)
            stop.wait(30)
