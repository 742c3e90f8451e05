"""Processes: assistants defined by YAML files, and the chat service that runs them.

Public API:
- `Assistant` (the schema), `load_assistant`, `parse_assistant`, `dump_assistant`
- `AssistantLibrary`: workspace assistants plus the shipped examples
- `ChatService.ask(assistant, question)` -> `AnswerStream` (text pieces, then `Answer` with `Citation`s)
- `AssistantError` (lists every bad field as `path: problem`)
"""

from assistants.answer import Answer, AnswerStream, Citation
from assistants.chat import ChatService
from assistants.errors import AssistantError
from assistants.library import EXAMPLES_DIR, AssistantLibrary, Entry
from assistants.loader import dump_assistant, load_assistant, parse_assistant
from assistants.schema import Assistant

__all__ = [
    "EXAMPLES_DIR",
    "Answer",
    "AnswerStream",
    "Assistant",
    "AssistantError",
    "AssistantLibrary",
    "ChatService",
    "Citation",
    "Entry",
    "dump_assistant",
    "load_assistant",
    "parse_assistant",
]
