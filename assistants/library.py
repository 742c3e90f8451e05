"""The assistant library: the workspace's assistant files plus the shipped examples."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from assistants.errors import AssistantError
from assistants.loader import load_assistant
from assistants.schema import Assistant

EXAMPLES_DIR = Path(__file__).parent / "examples"


@dataclass(frozen=True)
class Entry:
    """An assistant and where it was read from."""

    assistant: Assistant
    path: Path
    source: str  # workspace | example


class AssistantLibrary:
    """Assistants by name; workspace files win over examples of the same name."""

    def __init__(self, folder: Path, examples: Path = EXAMPLES_DIR) -> None:
        self.folder, self.examples = folder, examples

    def entries(self) -> tuple[list[Entry], list[AssistantError]]:
        """Every valid assistant, and the errors of the files that are not."""
        found: dict[str, Entry] = {}
        errors: list[AssistantError] = []
        for source, folder in (("example", self.examples), ("workspace", self.folder)):
            for path in sorted(folder.glob("*.y*ml")) if folder.is_dir() else []:
                try:
                    a = load_assistant(path)
                except AssistantError as exc:
                    errors.append(exc)
                    continue
                found[a.name] = Entry(a, path, source)
        return sorted(found.values(), key=lambda e: e.assistant.name), errors

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
