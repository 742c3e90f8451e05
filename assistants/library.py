"""The assistant library: the workspace's assistant files plus the shipped examples."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import yaml
from sqlalchemy import Engine, text

from assistants.errors import AssistantError
from assistants.loader import dump_assistant, load_assistant, parse_assistant
from assistants.schema import Assistant

EXAMPLES_DIR = Path(__file__).parent / "examples"


@dataclass(frozen=True)
class Entry:
    """An assistant and where it was read from."""

    assistant: Assistant
    path: Path
    source: str  # workspace | example
    modified: float = 0.0  # when it was last saved (seconds since the epoch)


class AssistantLibrary:
    """Assistants by name; the workspace's win over examples of the same name. The workspace's
    are YAML files in its folder, or, with an `engine` (a server database), rows of its
    `assistants` table that every machine shares."""

    def __init__(self, folder: Path, examples: Path = EXAMPLES_DIR, engine: Engine | None = None) -> None:
        self.folder, self.examples, self.engine = folder, examples, engine

    def entries(self) -> tuple[list[Entry], list[AssistantError]]:
        """Every valid assistant, and the errors of the files that are not."""
        found: dict[str, Entry] = {}
        errors: list[AssistantError] = []
        for entry in _load_folder(self.examples, "example", errors):
            found[entry.assistant.name] = entry
        mine = (
            _load_rows(self.engine, self.path_for, errors)
            if self.engine
            else _load_folder(self.folder, "workspace", errors)
        )
        for entry in mine:
            found[entry.assistant.name] = entry
        return sorted(found.values(), key=lambda e: e.assistant.name), errors

    def path_for(self, name: str) -> Path:
        """Where the workspace's assistant of this name is (shown to users; on a server database,
        a name for its row)."""
        if self.engine is not None:
            return Path(f"database:{self.engine.url.database}") / "assistants" / f"{name}.yaml"
        return self.folder / f"{name}.yaml"

    def get_by_name(self, name: str) -> Assistant:
        """An assistant by name only (never a path: safe for names from the network)."""
        entries, _ = self.entries()
        for e in entries:
            if e.assistant.name == name:
                return e.assistant
        names = ", ".join(e.assistant.name for e in entries) or "none"
        raise AssistantError(name, [f"no assistant of that name; available: {names}"])

    def get(self, name_or_path: str) -> Assistant:
        """An assistant by name, or from a YAML file path."""
        p = Path(name_or_path)
        if p.suffix.lower() in (".yaml", ".yml") or p.is_file():
            return load_assistant(p)
        return self.get_by_name(name_or_path)


class AssistantStore(AssistantLibrary):
    """The library with its write operations: create, update, duplicate, delete, import, export."""

    def save(self, assistant: Assistant, *, overwrite: bool = False) -> Path:
        """Write an assistant to the workspace (create, or update with overwrite=True)."""
        path = self.path_for(assistant.name)
        if self.taken(assistant.name) and not overwrite:
            raise AssistantError(
                assistant.name,
                [f"name: an assistant named {assistant.name!r} already exists; pick another name, or edit that one"],
            )
        if self.engine is not None:
            with self.engine.begin() as conn:
                conn.execute(text("DELETE FROM assistants WHERE name = :n"), {"n": assistant.name})
                conn.execute(
                    text("INSERT INTO assistants (name, yaml, updated_at) VALUES (:n, :y, :t)"),
                    {"n": assistant.name, "y": dump_assistant(assistant), "t": datetime.now(UTC).replace(tzinfo=None)},
                )
            return path
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".yaml.tmp")
        tmp.write_text(dump_assistant(assistant), encoding="utf-8")
        tmp.replace(path)
        return path

    def duplicate(self, name: str, new_name: str) -> Assistant:
        data = self.get_by_name(name).model_dump(mode="json")
        copy = parse_assistant({**data, "name": new_name}, new_name)  # the new name is validated too
        self.save(copy)
        return copy

    def delete(self, name: str) -> None:
        path = self.path_for(name)
        if not self.taken(name):
            entries, _ = self.entries()
            if any(e.assistant.name == name for e in entries):
                raise AssistantError(name, ["this is a shipped example; duplicate it to make your own copy"])
            raise AssistantError(name, ["no assistant of that name in the workspace"])
        if self.engine is not None:
            with self.engine.begin() as conn:
                conn.execute(text("DELETE FROM assistants WHERE name = :n"), {"n": name})
            return
        path.unlink()

    def import_yaml(
        self,
        path: Path,
        *,
        overwrite: bool = False,
        allow_download: bool = False,
        allow_model_path: bool = False,
        allow_remote: Sequence[str] = (),
    ) -> Assistant:
        """Validate an assistant file and add it to the workspace (refused when it would send data to a
        server, fetch a model from the network or load one from outside the workspace, unless allowed)."""
        from assistants.bundle import import_problems

        assistant = load_assistant(path)
        home = self.folder.parent
        problems = import_problems(
            assistant,
            home,
            allow_download=allow_download,
            allow_model_path=allow_model_path,
            allow_remote=allow_remote,
        )
        if problems:
            raise AssistantError(str(path), problems)
        self.save(assistant, overwrite=overwrite)
        return assistant

    def shadows_example(self, name: str) -> bool:
        """Whether a workspace assistant of this name hides a shipped example."""
        return any(e.assistant.name == name for e in _load_folder(self.examples, "example", []))

    def taken(self, name: str) -> bool:
        if self.engine is not None:
            with self.engine.connect() as conn:
                return conn.execute(text("SELECT 1 FROM assistants WHERE name = :n"), {"n": name}).first() is not None
        return self.path_for(name).exists()

    def export_yaml(self, name: str) -> str:
        return dump_assistant(self.get_by_name(name))


def _load_folder(folder: Path, source: str, errors: list[AssistantError]) -> list[Entry]:
    """The valid assistants of one folder; the files that are not go to `errors`."""
    out = []
    for path in sorted(folder.glob("*.y*ml")) if folder.is_dir() else []:
        try:
            out.append(Entry(load_assistant(path), path, source, path.stat().st_mtime))
        except AssistantError as exc:
            errors.append(exc)
    return out


def _load_rows(engine: Engine, where: Callable[[str], Path], errors: list[AssistantError]) -> list[Entry]:
    """The valid assistants of a server database's `assistants` table; the rows that are not go to `errors`."""
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT name, yaml, updated_at FROM assistants ORDER BY name")).all()
    out = []
    for name, body, updated in rows:
        try:
            assistant = parse_assistant(yaml.safe_load(body), str(where(name)))
            out.append(Entry(assistant, where(name), "workspace", updated.replace(tzinfo=UTC).timestamp()))
        except AssistantError as exc:
            errors.append(exc)
        except yaml.YAMLError as exc:
            errors.append(AssistantError(str(where(name)), [f"not valid YAML: {exc}"]))
    return out
