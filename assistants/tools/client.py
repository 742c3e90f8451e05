"""A turn of a conversation whose caller brought its own tools (the OpenAI API's `tools`): the
model, shown those tools by its chat template, writes calls (or text), and the calls go back to the
caller, who runs them. Archivist runs none of them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from assistants.schema import Assistant
from retriever.context import system_prompt
from runtime.errors import ArchivistError
from runtime.protocol import GenerationParams, GenerationStats, Message, TextGenerator
from runtime.toolcalls import Call, parse_calls


class ToolsUnsupportedError(ArchivistError):
    """The assistant's model cannot be handed tools (its template or backend has no tool support)."""


@dataclass(frozen=True)
class ClientTurn:
    """What the model wrote: its text, the calls of the caller's tools it holds, and the figures."""

    text: str
    calls: list[Call]
    stats: GenerationStats = field(default_factory=GenerationStats)


def client_turn(
    model: TextGenerator,
    assistant: Assistant,
    turns: Sequence[dict[str, Any]],
    tools: list[dict[str, Any]],
    params: GenerationParams,
) -> ClientTurn:
    """The model's turn after `turns` (role, content and any tool_calls, tool_call_id, name), under
    the assistant's system prompt, with `tools` (OpenAI function specs) in its template."""
    native, why = getattr(model, "tool_support", (False, "this model backend reports no tool support"))
    if not native:
        raise ToolsUnsupportedError(f"tools cannot be used with assistant {assistant.name!r}: {why}")
    messages = [{"role": "system", "content": system_prompt(assistant.instructions, assistant.citation_style)}]
    messages += list(turns)
    stats = GenerationStats()
    # tool-call turns carry more keys than Message names; the chat template reads them all
    text = "".join(model.stream(cast("list[Message]", messages), params, stats))
    names = {t["function"].get("name") for t in tools}
    return ClientTurn(text, [c for c in parse_calls(text) if c.name in names], stats)
