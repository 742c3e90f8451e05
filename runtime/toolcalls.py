"""Tool calls in a model's own format: whether its chat template renders tools, and the calls it writes.

Templates that support tools use the `tools` variable (Qwen 2.5, Llama 3.1+, Mistral, Hermes,
Granite...). Models write calls as `<tool_call>{...}</tool_call>` (Hermes, Qwen), `[TOOL_CALLS][...]`
(Mistral), `<|python_tag|>{...}` (Llama 3.1) or a bare JSON object; all are read here.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_USES_TOOLS = re.compile(r"(\{%[^%]*\btools\b[^%]*%\})|(\{\{[^}]*\btools\b[^}]*\}\})", re.S)


def template_tool_support(template: str | None, model: str = "the model") -> tuple[bool, str]:
    """(supported, why not): a template supports tools when its Jinja code reads `tools`."""
    if not template:
        return False, f"{model} has no chat template"
    if _USES_TOOLS.search(template):
        return True, ""
    return False, f"the chat template of {model} has no tool support (it never reads `tools`)"


@dataclass
class Call:
    name: str
    arguments: dict[str, Any] = field(default_factory=dict)
    id: str = ""


def _as_call(obj: Any) -> Call | None:
    if not isinstance(obj, dict):
        return None
    if "function" in obj and isinstance(obj["function"], dict):  # OpenAI shape
        obj = obj["function"]
    name = obj.get("name")
    args = obj.get("arguments", obj.get("parameters", {}))
    if isinstance(args, str):
        try:
            args = json.loads(args)
        except json.JSONDecodeError:
            return None
    if not isinstance(name, str) or not isinstance(args, dict):
        return None
    return Call(name, args)


def _json_values(text: str) -> list[Any]:
    """Every JSON value that starts at a '{' or '[' of `text`, left to right, not overlapping."""
    out: list[Any] = []
    decoder = json.JSONDecoder()
    i = 0
    while i < len(text):
        if text[i] in "{[":
            try:
                value, end = decoder.raw_decode(text, i)
            except json.JSONDecodeError:
                i += 1
                continue
            out.append(value)
            i = end
        else:
            i += 1
    return out


def parse_calls(text: str) -> list[Call]:
    """The tool calls a model wrote (empty when it wrote an answer)."""
    stripped = text.strip()
    tagged = re.findall(r"<tool_call>(.*?)(?:</tool_call>|$)", stripped, re.S)
    if tagged:
        candidates = [v for t in tagged for v in _json_values(t)]
    elif stripped.startswith(("[TOOL_CALLS]", "<|python_tag|>", "{", "[")):
        candidates = _json_values(stripped)
    else:
        return []
    calls: list[Call] = []
    for value in candidates:
        for obj in value if isinstance(value, list) else [value]:
            call = _as_call(obj)
            if call is not None:
                calls.append(call)
    for i, c in enumerate(calls):
        c.id = c.id or f"call_{i}"
    return calls


def model_tool_support(spec: str, models_dir: Path | None = None) -> tuple[bool, str]:
    """Whether the model named by `spec` (bundled:NAME or a GGUF path) has a chat template that
    renders tools, read from the file's metadata without loading its weights."""
    import contextlib
    import os

    from runtime.errors import ArchivistError
    from runtime.hub import hub_path, split_spec
    from runtime.spec import resolve_model

    if spec.startswith("openai:"):
        return (
            False,
            "a model on a remote server is not given tools to call; the tools Archivist runs itself still work",
        )
    try:
        if spec.startswith("hf:"):  # never downloads: only a file the Models page fetched is read
            path = hub_path(models_dir, *split_spec(spec)) if models_dir else None
            if path is None or not path.is_file():
                return False, f"{spec} is not downloaded yet; its tool support is known once it is"
        else:
            path = resolve_model(spec)
        from llama_cpp import Llama

        with open(os.devnull, "w") as devnull, contextlib.redirect_stderr(devnull):
            llm = Llama(model_path=str(path), vocab_only=True, verbose=False)
        template = llm.metadata.get("tokenizer.chat_template")
        name = llm.metadata.get("general.name", path.stem)
        llm.close()
    except (ArchivistError, ValueError, OSError) as exc:
        return False, f"{spec} could not be read ({exc})"
    return template_tool_support(template, name)
