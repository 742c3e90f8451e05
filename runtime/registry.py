"""Loaded models, shared by every assistant that names the same spec and settings."""

from __future__ import annotations

import atexit
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from runtime.cpu import physical_cores
from runtime.errors import ArchivistError
from runtime.llama import LlamaCppGenerator
from runtime.spec import resolve_model

log = logging.getLogger("archivist.models")


@dataclass(frozen=True)
class ModelKey:
    """What makes two loaded models the same one."""

    path: Path
    context_window: int
    n_threads: int
    gpu_layers: int


class ModelPool:
    """Loads each model once per process and hands the same instance to every caller."""

    def __init__(self, cache_dir: Path | None = None) -> None:
        self.cache_dir = cache_dir
        self._models: dict[ModelKey, LlamaCppGenerator] = {}
        self._lock = threading.Lock()
        atexit.register(self.close)  # free llama.cpp contexts before the interpreter tears modules down

    def get(
        self, spec: str, *, context_window: int = 4096, n_threads: int | None = None, gpu_layers: int = 0
    ) -> LlamaCppGenerator:
        """The loaded model for `spec` with these settings, loading it on first use."""
        path = resolve_model(spec, self.cache_dir).resolve()
        key = ModelKey(path, context_window, n_threads or physical_cores(), gpu_layers)
        with self._lock:
            model = self._models.get(key)
            if model is None:
                started = time.perf_counter()
                try:
                    model = LlamaCppGenerator(
                        path, context_window=context_window, n_threads=key.n_threads, gpu_layers=gpu_layers
                    )
                except ValueError as exc:  # llama-cpp-python raises ValueError on a bad file
                    raise ArchivistError(f"model {spec!r} ({path}) could not be loaded: {exc}") from exc
                log.info(
                    "loaded model %s (context %d, %d threads, %d GPU layers) in %.1f s",
                    path.name,
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
                model.close()
            self._models.clear()

    def loaded(self) -> list[ModelKey]:
        """Keys of the models loaded so far."""
        with self._lock:
            return list(self._models)
