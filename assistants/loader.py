"""Read assistant YAML files (safe_load only) and report every problem with its path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from assistants.errors import AssistantError
from assistants.schema import NAME_PATTERN, Assistant


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
    return f"{path}: {plain_problem(err)}"


def plain_problem(err: Any) -> str:
    """A validation error in a reader's words, with the limit it broke ("use letters, digits ... up
    to 64 characters", "at most 8 items (this has 20)"), not the validator's wording."""
    kind, ctx = err["type"], err.get("ctx") or {}
    items = "items" if "List" in str(ctx.get("field_type", "")) else "characters"
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "missing":
        return "required field is missing"
    if kind == "string_pattern_mismatch" and ctx.get("pattern") == NAME_PATTERN:
        return "use letters, digits, '-', '_' and '.', starting with a letter or digit, up to 64 characters (no spaces)"
    if kind == "string_pattern_mismatch":
        return "holds characters that are not allowed here"
    if kind in ("too_short", "string_too_short"):
        n = ctx.get("min_length", 1)
        return "choose at least one" if n == 1 and items == "items" else f"needs at least {n} {items}"
    if kind in ("too_long", "string_too_long"):
        have = f" (this has {ctx['actual_length']})" if "actual_length" in ctx else ""
        return f"at most {ctx.get('max_length')} {items if kind == 'too_long' else 'characters'}{have}"
    bounds = {
        "less_than_equal": "at most",
        "greater_than_equal": "at least",
        "less_than": "under",
        "greater_than": "over",
    }
    if kind in bounds:
        limit = next(iter(ctx.values()), "")
        return f"must be {bounds[kind]} {limit:g}" if isinstance(limit, (int, float)) else str(err["msg"])
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return "must be a whole number"
    if kind in ("float_parsing", "float_type"):
        return "must be a number"
    if kind in ("bool_parsing", "bool_type"):
        return "must be true or false"
    if kind == "literal_error":
        return f"choose one of {ctx.get('expected', '')}".replace("'", "")
    return str(err["msg"]).removeprefix("Value error, ")


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
