"""The models a workspace can use: the bundled one, hub downloads and GGUF files the user added.

Everything lives in the workspace's `models/` folder: `hub/<org>--<repo>/<file>` for downloads
(named by their `hf:` spec), and files added by hand at its top level, copied in or linked to
where they already are (a linked file is never deleted, only its link).
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

from runtime.errors import ArchivistError, ModelNotFoundError
from runtime.hub import HUB_FOLDER, RECOMMENDED, is_gguf
from runtime.spec import BUNDLED

Kind = Literal["bundled", "downloaded", "added", "linked"]
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._+-]+")


@dataclass(frozen=True)
class InstalledModel:
    """A model file this workspace has, and the spec an assistant names it by."""

    spec: str
    path: Path
    kind: Kind
    size: int

    @property
    def title(self) -> str:
        for r in RECOMMENDED:
            if r.spec == self.spec:
                return r.title
        return self.path.name


def installed(models_dir: Path) -> list[InstalledModel]:
    """The bundled models, then hub downloads, then files added by hand (partial downloads skipped)."""
    out: list[InstalledModel] = []
    for name, where in BUNDLED.items():
        try:
            p = where()
        except ModelNotFoundError:
            continue
        out.append(InstalledModel(f"bundled:{name}", p, "bundled", p.stat().st_size if p.is_file() else 0))
    hub = models_dir / HUB_FOLDER
    if hub.is_dir():
        for p in sorted(hub.glob("*/*.gguf")):
            repo = p.parent.name.replace("--", "/", 1)
            out.append(InstalledModel(f"hf:{repo}/{p.name}", p, "downloaded", p.stat().st_size))
    if models_dir.is_dir():
        for p in sorted(models_dir.glob("*.gguf")):
            if p.is_file():  # a link whose file is gone is left out
                out.append(InstalledModel(str(p), p, "linked" if p.is_symlink() else "added", p.stat().st_size))
    return out


def _free_name(models_dir: Path, name: str) -> Path:
    stem = _SAFE_NAME.sub("-", Path(name).stem).strip("-.") or "model"
    target = models_dir / f"{stem}.gguf"
    n = 2
    while target.exists() or target.is_symlink():
        target, n = models_dir / f"{stem}-{n}.gguf", n + 1
    return target


def add_by_path(models_dir: Path, source: str | Path) -> Path:
    """Link a GGUF file where it is into the models folder (no copy of several gigabytes)."""
    src = Path(source).expanduser()
    if not src.is_file():
        raise ArchivistError(f"no file at {src}: give the full path of a .gguf model file")
    if not is_gguf(src):
        raise ArchivistError(f"{src.name} is not a GGUF model file (it does not start with 'GGUF')")
    src = src.resolve()
    models_dir.mkdir(parents=True, exist_ok=True)
    for m in installed(models_dir):
        if m.path.resolve() == src:
            raise ArchivistError(f"{src.name} is already in the list, as {m.spec}")
    target = _free_name(models_dir, src.name)
    target.symlink_to(src)
    return target


def add_upload(models_dir: Path, name: str, data: BinaryIO) -> Path:
    """Copy an uploaded GGUF into the models folder, checked before it is kept."""
    models_dir.mkdir(parents=True, exist_ok=True)
    target = _free_name(models_dir, name)
    part = target.with_name(target.name + ".part")
    with part.open("wb") as f:
        shutil.copyfileobj(data, f, 1 << 20)
    if not is_gguf(part):
        part.unlink()
        raise ArchivistError(f"{name} is not a GGUF model file (it does not start with 'GGUF'); nothing was added")
    part.replace(target)
    return target


def remove(models_dir: Path, model: InstalledModel) -> None:
    """Delete a downloaded or added model; a linked one loses only its link."""
    if model.kind == "bundled":
        raise ArchivistError(f"{model.spec} comes with Archivist and cannot be deleted")
    p = model.path
    if models_dir.resolve() not in p.absolute().parents:
        raise ArchivistError(f"{p} is not in the models folder {models_dir}; nothing was deleted")
    p.unlink()
    if model.kind == "downloaded" and not any(p.parent.iterdir()):
        p.parent.rmdir()


def same_model(spec: str, model: InstalledModel) -> bool:
    """Whether an assistant's model spec names this installed model."""
    if spec == model.spec:
        return True
    if spec.startswith(("bundled:", "hf:")):
        return False
    try:
        return Path(spec).expanduser().resolve() == model.path.resolve()
    except OSError:
        return False
