"""Read assistant YAML files (safe_load only) and report every problem with its path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from assistants.errors import AssistantError
from assistants.schema import Assistant


def parse_assistant(data: Any, source: str) -> Assistant:
    """Validate already-parsed YAML; raises AssistantError listing each bad field as 'path: problem'."""
    if not isinstance(data, dict):
        raise AssistantError(source, [f"(top level): expected a mapping of fields, got {type(data).__name__}"])
    try:
        return Assistant.model_validate(data)
    except ValidationError as exc:
        raise AssistantError(source, [_problem(e) for e in exc.errors()]) from None


def _problem(err: Any) -> str:
    path = ".".join(str(p) for p in err["loc"]) or "(top level)"
    msg = "unknown field" if err["type"] == "extra_forbidden" else err["msg"]
    if err["type"] == "missing":
        msg = "required field is missing"
    return f"{path}: {msg}"


MAX_YAML_BYTES = 2**20  # an assistant is a few KB; a larger file is refused before it is parsed


def load_assistant(path: Path) -> Assistant:
    """Load and validate one assistant file."""
    if not path.is_file():
        raise AssistantError(str(path), ["file not found"])
    size = path.stat().st_size
    if size > MAX_YAML_BYTES:
        raise AssistantError(
            str(path),
            [f"(file): {size / 2**20:,.1f} MB; an assistant file may have at most {MAX_YAML_BYTES // 2**20} MB"],
        )
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise AssistantError(str(path), [f"(yaml): {exc}".replace("\n", " ")]) from None
    except UnicodeDecodeError:
        raise AssistantError(str(path), ["(file): not UTF-8 text"]) from None
    if data is None:
        raise AssistantError(str(path), ["(file): the file is empty"])
    return parse_assistant(data, str(path))


def dump_assistant(assistant: Assistant) -> str:
    """YAML text for an assistant, defaults included, in schema order."""
    return yaml.safe_dump(assistant.model_dump(mode="json"), sort_keys=False, allow_unicode=True)
