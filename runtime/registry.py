"""Loaded models, shared by every assistant that names the same model and settings, resolved
through a registry of backends: a backend claims the specs it serves (OpenAI-compatible servers
claim `openai:` specs, llama.cpp everything else: bundled models, GGUF paths and `hf:` specs) and
loads a `TextGenerator`; another backend registers itself and slots in without the chat code
knowing."""

from __future__ import annotations

import atexit
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from runtime.cpu import physical_cores
from runtime.errors import ArchivistError
from runtime.protocol import TextGenerator
from runtime.spec import resolve_model

log = logging.getLogger("archivist.models")


@dataclass(frozen=True)
class ModelKey:
    """What makes two loaded models the same one: the backend's name for the model (for llama.cpp
    the resolved file, so two specs naming one file share it; for a remote model its servers and
    model name) and the settings."""

    ident: str
    context_window: int
    n_threads: int
    gpu_layers: int
    backend: str = "llama.cpp"

    @property
    def label(self) -> str:
        """How a person reads which model it is: the file's name, or the servers."""
        return Path(self.ident).name if self.backend == "llama.cpp" else self.ident


@dataclass(frozen=True)
class Backend:
    """A way to run models: which specs it serves, what names one model, and how to load it."""

    name: str
    claims: Callable[[str], bool]
    identity: Callable[[str, Path | None], str]  # spec, models folder -> what names the model
    load: Callable[[str, int, int, int], TextGenerator]  # identity, context, threads, GPU layers
    # where answering with the spec sends the question and passages off this machine (servers); a
    # malformed spec raises, with its reason
    destinations: Callable[[str], tuple[str, ...]] = lambda spec: ()


def _load_llama(ident: str, context_window: int, n_threads: int, gpu_layers: int) -> TextGenerator:
    from runtime.llama import LlamaCppGenerator

    path = Path(ident)
    try:
        return LlamaCppGenerator(path, context_window=context_window, n_threads=n_threads, gpu_layers=gpu_layers)
    except ValueError as exc:  # llama-cpp-python raises ValueError on a bad file
        raise ArchivistError(f"model {path} could not be loaded: {exc}") from exc


def _load_remote(ident: str, context_window: int, n_threads: int, gpu_layers: int) -> TextGenerator:
    from runtime.remote import RemoteGenerator, parse_remote

    return RemoteGenerator(parse_remote(ident), context_window=context_window)


def _remote_identity(spec: str, models_dir: Path | None) -> str:
    from runtime.remote import parse_remote

    return parse_remote(spec).ident  # a malformed spec fails here, before anything is loaded


def _local_destinations(spec: str) -> tuple[str, ...]:
    from runtime.spec import unclean_path

    why = "" if spec.startswith(("bundled:", "hf:")) else unclean_path(spec)
    if why:
        raise ArchivistError(f"model {spec!r} {why}")
    return ()


def _remote_destinations(spec: str) -> tuple[str, ...]:
    from runtime.remote import parse_remote

    return parse_remote(spec).urls


LLAMA = Backend(
    "llama.cpp",
    lambda spec: True,
    lambda spec, d: str(resolve_model(spec, d).resolve()),
    _load_llama,
    _local_destinations,
)
REMOTE = Backend(
    "openai", lambda spec: spec.startswith("openai:"), _remote_identity, _load_remote, _remote_destinations
)
BACKENDS: list[Backend] = [REMOTE, LLAMA]


def register_backend(backend: Backend) -> None:
    """Serve the specs `backend` claims (before the backends registered earlier)."""
    BACKENDS.insert(0, backend)


def backend_for(spec: str) -> Backend:
    return next(b for b in BACKENDS if b.claims(spec))


class ModelPool:
    """Loads each model once per process and hands the same instance to every caller."""

    def __init__(self, cache_dir: Path | None = None) -> None:
        self.cache_dir = cache_dir
        self._models: dict[ModelKey, TextGenerator] = {}
        self._lock = threading.Lock()
        atexit.register(self.close)  # free model contexts before the interpreter tears modules down

    def get(
        self, spec: str, *, context_window: int = 4096, n_threads: int | None = None, gpu_layers: int = 0
    ) -> TextGenerator:
        """The loaded model for `spec` with these settings, loading it on first use."""
        backend = backend_for(spec)
        key = ModelKey(
            backend.identity(spec, self.cache_dir),
            context_window,
            n_threads or physical_cores(),
            gpu_layers,
            backend.name,
        )
        with self._lock:
            model = self._models.get(key)
            if model is None:
                started = time.perf_counter()
                model = backend.load(key.ident, context_window, key.n_threads, gpu_layers)
                log.info(
                    "loaded model %s (context %d, %d threads, %d GPU layers) in %.1f s",
                    key.label,
                    context_window,
                    key.n_threads,
                    gpu_layers,
                    time.perf_counter() - started,
                )
                self._models[key] = model
            return model

    def close(self) -> None:
        """Free every loaded model."""
        with self._lock:
            for model in self._models.values():
                close = getattr(model, "close", None)
                if close is not None:
                    close()
            self._models.clear()

    def loaded(self) -> list[ModelKey]:
        """Keys of the models loaded so far."""
        with self._lock:
            return list(self._models)
