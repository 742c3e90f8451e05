"""Choose the encoder's precision by measuring it on this machine, never by a CPU flag.

Machines that list the same /proc/cpuinfo flags differ: MiniLM in bfloat16 was 2-3x faster than
float32 on one and 0.69x of it on another (77 vs 112 chunks/s), and on a CPU without AVX512-BF16
it was 0.16x. So the first embedding of real chunks in a workspace runs a short calibration: the
contenders (torch in float32 and bfloat16, and float32 run by ONNX Runtime, which gives float32's
vectors at 1.75x its speed on one CPU) on the same chunks, interleaved; another than float32 is
kept only when it is faster by a margin and its vectors stay interchangeable with float32's (mean
cosine >= MIN_COSINE, so one index can hold vectors from any). The result is kept in the
workspace per machine (CPU model, threads, library versions, embedder) and redone when any of
those change.
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

ONNX = "float32-onnx"  # float32 run by ONNX Runtime instead of torch (the same vectors, measured 1.75x faster here)
PRECISIONS = ("float32", "bfloat16", ONNX)
MIN_COSINE = 0.999  # mean cosine to float32 below which a precision is refused
MARGIN = 1.05  # another precision must be this much faster than float32 to be chosen
SAMPLE = 32  # chunks timed per precision in the last round
# (chunks, speed ratio beyond which this round decides): a precision 2x slower is known after 4
# chunks; one within 25% gets all three rounds.
ROUNDS = ((4, 2.0), (16, 1.25), (SAMPLE, 1.0))
DEFAULT_BATCH = 64
BATCHES = (16, 64)  # batch sizes timed at the chosen precision (16 was 1.15x of 64 on one CPU)
# chunks the calibration waits for, gathered over calls (a single text, a query, never counts):
# on 8 chunks ONNX Runtime came out ahead of bfloat16 (90 against 86 chunks/s), on 17 and more
# bfloat16 did (119 against 90), as over a whole ingest
MIN_TEXTS = 32
ENV = "ARCHIVIST_EMBED_PRECISION"
FILE = "calibration.json"
KEEP = 20  # entries kept per workspace (one per machine and library set)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def library_versions() -> dict[str, str]:
    """The versions of the libraries an encoder's speed depends on ("-" where not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    def v(pkg: str) -> str:
        try:
            return version(pkg)
        except PackageNotFoundError:
            return "-"

    return {
        "torch": v("torch"),
        "transformers": v("transformers"),
        "sentence_transformers": v("sentence-transformers"),
        "onnxruntime": v("onnxruntime"),
    }


def fingerprint(embedder: str, threads: int) -> dict[str, Any]:
    """What a measured speed depends on: a change in any of these redoes the calibration."""
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count() or 1,
        "threads": threads,
        **library_versions(),
        "embedder": embedder,
    }


@dataclass
class Calibration:
    """One measurement: speeds in chunks/s and mean cosine to float32, per precision."""

    fingerprint: dict[str, Any]
    speeds: dict[str, float]
    cosine: dict[str, float]
    chosen: str
    reason: str
    chunks: int
    seconds: float
    measured_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    batch_size: int = DEFAULT_BATCH
    batch_speeds: dict[str, float] = field(default_factory=dict)  # chunks/s at the chosen precision

    def plain(self) -> str:
        """What was measured, what was chosen and why it matters, in a reader's words (no jargon beyond
        the name of the number format)."""
        fast = self.speeds.get(self.chosen, 0.0)
        base = self.speeds.get("float32", 0.0)
        when = self.measured_at[:10]
        if self.chosen == "float32":
            why = (
                "the faster formats were not faster on this computer, or their search results differed"
                if len(self.speeds) > 1
                else "the standard format"
            )
        else:
            why = (
                f"{fast / base:.1f} times as fast as the standard float32 here, with the same search results"
                if base
                else "faster here"
            )
        return (
            f"Adding documents turns each passage into numbers for search. This computer was timed on "
            f"{self.chunks} passages ({when}): it handles about {fast:,.0f} passages a second with "
            f"{self.chosen}, chosen because it was {why}. This sets how long adding documents takes; "
            "answers and search results do not depend on it."
        )

    def summary(self) -> str:
        speeds = ", ".join(f"{p} {s:.0f} chunks/s" for p, s in self.speeds.items())
        batches = ", ".join(f"{b}: {s:.0f}" for b, s in self.batch_speeds.items())
        batch = f"; batch {self.batch_size}" + (f" (chunks/s by batch size {batches})" if batches else "")
        return f"{self.chosen} ({self.reason}; measured {speeds} on {self.chunks} chunks{batch}, {self.measured_at})"


def choose(speeds: dict[str, float], cosine: dict[str, float]) -> tuple[str, str]:
    """The precision to use and why, from measured speeds and cosines: the fastest whose vectors stay
    interchangeable with float32's and that beats float32 by the margin; else float32."""
    f32 = speeds.get("float32", 0.0)
    fit = _fit(speeds, cosine)
    if fit:
        best, others = fit[0], [f"{p} {speeds[p] / f32:.2f}x" for p in fit[1:]]
        return best, f"{best} {speeds[best] / f32:.2f}x faster than float32" + (
            f" ({', '.join(others)})" if others else ""
        )
    notes: list[str] = []
    for p in PRECISIONS[1:]:
        if p not in speeds:
            notes.append(f"{p} could not run here")
        elif not cosine.get(p, 0.0) >= MIN_COSINE:  # NaN counts as drift
            notes.append(f"{p} vectors drift from float32 (mean cosine {cosine[p]:.4f} < {MIN_COSINE})")
        else:
            notes.append(f"{p} {speeds[p] / f32:.2f}x of float32" if f32 > 0 else "float32 reference")
    return "float32", "; ".join(notes) or "float32 reference"


def _fit(speeds: dict[str, float], cosine: dict[str, float]) -> list[str]:
    """The contenders other than float32 that beat it by the margin with interchangeable vectors
    (NaN cosine counts as drift), fastest first."""
    f32 = speeds.get("float32", 0.0)
    fit = [
        p
        for p in PRECISIONS[1:]
        if p in speeds and cosine.get(p, 0.0) >= MIN_COSINE and f32 > 0 and speeds[p] >= f32 * MARGIN
    ]
    return sorted(fit, key=lambda p: -speeds[p])


def mean_cosine(a: np.ndarray, b: np.ndarray) -> float:
    a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    return float(np.mean(np.sum(a * b, axis=1)))


def measure(encoders: dict[str, Callable[[Sequence[str]], np.ndarray]], texts: Sequence[str]) -> Calibration:
    """Time every encoder on the same texts, interleaved, and compare their vectors with float32's.

    `encoders` maps a precision to a function returning unit vectors; float32 is the reference.
    Rounds grow (ROUNDS): a round whose speed ratio is beyond its bound decides, so a precision
    that is far slower costs a fraction of a second instead of a full sample; close cases get
    every round, alternating which precision goes first."""
    t_start = time.perf_counter()
    texts = list(texts)[:SAMPLE]
    names = [p for p in PRECISIONS if p in encoders]
    for p in names:  # first calls allocate and pick kernels: not part of the speed
        encoders[p](texts[:2])
    done = {p: 0 for p in names}
    spent = {p: 0.0 for p in names}
    cosine: dict[str, float] = {}
    speeds: dict[str, float] = {}
    for i, (size, bound) in enumerate(ROUNDS):
        batch = texts[:size]
        vectors: dict[str, np.ndarray] = {}
        for p in names if i % 2 == 0 else reversed(names):
            t0 = time.perf_counter()
            vectors[p] = encoders[p](batch)
            spent[p] += time.perf_counter() - t0
            done[p] += len(batch)
        speeds.update({p: done[p] / max(spent[p], 1e-9) for p in names})
        cosine.update({p: mean_cosine(vectors["float32"], vectors[p]) for p in names})
        ratios = {p: speeds[p] / max(speeds["float32"], 1e-9) for p in names if p != "float32"}
        # a loser is dropped at once; a winner is kept only after a round large enough to trust
        # its cosine too
        names = [p for p in names if p == "float32" or ratios[p] > 1 / bound]
        if len(names) < 2 or len(batch) == len(texts) or (i > 0 and all(ratios[p] >= bound for p in names[1:])):
            break
    chosen, reason = choose(speeds, cosine)
    return Calibration(
        fingerprint={},
        speeds={p: round(s, 1) for p, s in speeds.items()},
        cosine={p: round(c, 5) for p, c in cosine.items()},
        chosen=chosen,
        reason=reason,
        chunks=max(done.values()),
        seconds=round(time.perf_counter() - t_start, 2),
    )


def finalists(cal: Calibration) -> list[str]:
    """The contenders that beat float32 by the margin with interchangeable vectors, fastest first;
    [float32] when none does. Their second race, warm, on all the calibration's chunks, decides
    (the first, on a few chunks each, can rank them otherwise: ONNX Runtime 79 against bfloat16's
    77 chunks/s on 20 chunks, 95 against 148 over 64 chunks at batch 16)."""
    return _fit(cal.speeds, cal.cosine) or ["float32"]


def race_batches(
    encoders: Mapping[str, Callable[[Sequence[str], int], np.ndarray]],
    texts: Sequence[str],
    sizes: Sequence[int] = BATCHES,
    warm: bool = False,
) -> tuple[dict[str, dict[int, float]], dict[str, np.ndarray]]:
    """chunks/s of each encoder at each batch size on the same texts, interleaved, and each one's
    vectors of its last run. Each is warm (it has just been timed); with `warm`, each first runs
    once on these very texts untimed: bfloat16 prepares its kernels per input shape, which a long
    ingest pays once but a sample of a few chunks pays on every batch (measured here: bfloat16 77
    and ONNX Runtime 79 chunks/s on 20 chunks, 148 and 95 over a longer run)."""
    texts = list(texts)
    if warm:
        for encode in encoders.values():
            encode(texts, DEFAULT_BATCH)
    speeds: dict[str, dict[int, float]] = {p: {} for p in encoders}
    vectors: dict[str, np.ndarray] = {}
    for i, b in enumerate(sizes):
        for p in encoders if i % 2 == 0 else reversed(list(encoders)):
            t0 = time.perf_counter()
            vectors[p] = encoders[p](texts, b)
            speeds[p][b] = round(len(texts) / max(time.perf_counter() - t0, 1e-9), 1)
    return speeds, vectors


def decide(cal: Calibration, speeds: dict[str, dict[int, float]], cal_texts: int) -> None:
    """Set the calibration's precision and batch size from the finalists' second race (on `cal_texts` chunks)."""
    best = max(speeds, key=lambda p: speeds[p][choose_batch(speeds[p])])
    if len(speeds) > 1:
        race = ", ".join(f"{p} {max(v.values()):.0f}" for p, v in speeds.items())
        if best != cal.chosen:
            f32 = cal.speeds.get("float32", 0.0)
            cal.reason = f"{best} {cal.speeds[best] / f32:.2f}x faster than float32" if f32 > 0 else best
        cal.reason += f"; racing again warm on all {cal_texts} chunks: {race} chunks/s"
    cal.chosen = best
    cal.batch_speeds = {str(b): v for b, v in speeds[best].items()}
    cal.batch_size = choose_batch(speeds[best])


def choose_batch(speeds: dict[int, float]) -> int:
    """The fastest batch size, if it beats the default by the margin."""
    best = max(speeds, key=lambda b: speeds[b])
    return best if speeds[best] >= speeds.get(DEFAULT_BATCH, 0.0) * MARGIN else DEFAULT_BATCH


class CalibrationFile:
    """The workspace's calibrations, one per fingerprint; the newest first."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _entries(self) -> list[dict[str, Any]]:
        try:
            data = json.loads(self.path.read_text())
            return [e for e in data.get("entries", []) if isinstance(e, dict)]
        except (OSError, ValueError, AttributeError):
            return []  # missing or damaged: calibrate again, it costs seconds

    def find(self, fp: dict[str, Any]) -> Calibration | None:
        for e in self._entries():
            if e.get("fingerprint") == fp:
                try:
                    return Calibration(**e)
                except TypeError:
                    return None
        return None

    def save(self, cal: Calibration) -> None:
        entries = [e for e in self._entries() if e.get("fingerprint") != cal.fingerprint]
        entries.insert(0, asdict(cal))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"entries": entries[:KEEP]}, indent=1))
        os.replace(tmp, self.path)

    def latest(self) -> Calibration | None:
        entries = self._entries()
        try:
            return Calibration(**entries[0]) if entries else None
        except TypeError:
            return None


def for_this_machine(home: Path, embedder: str) -> Calibration | None:
    """The workspace's calibration for this machine and library set, if it has one."""
    import torch

    return CalibrationFile(home / FILE).find(fingerprint(embedder, torch.get_num_threads()))


def setting(value: str | None = None) -> str:
    """The precision setting: an explicit value, else $ARCHIVIST_EMBED_PRECISION, else "auto"."""
    raw = (value or os.environ.get(ENV) or "auto").strip().lower()
    if raw not in ("auto", *PRECISIONS):
        from runtime.errors import ArchivistError

        raise ArchivistError(
            f"embedder precision {raw!r} (from {ENV} or --precision): use auto, {', '.join(PRECISIONS)}"
        )
    return raw
