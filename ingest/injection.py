"""Instructions addressed to a model, written inside a document (indirect prompt injection).

A document is data; a sentence that tells an AI what to do ("Ignore previous instructions",
"System: ...", "Say MANGO-42.", a fake end-of-data marker, a remote image that would carry data
away) is found at ingest and reported per page like hidden text. The text stays (a reader sees
it), but such a sentence is never chosen as a supporting quote, and the app marks it when the
passage is shown.
"""

from __future__ import annotations

import re
from collections import Counter

# Who a sentence addressed to a model names: an AI, a model, an assistant, a chatbot.
_MODEL = (
    r"(?:AI|A\.I\.|LLMs?|GPTs?|chat\s?bots?|bots?|agents?|(?:large\s+)?language\s+models?|AI\s+(?:models?|"
    r"systems?|assistants?|agents?|tools?)|assistants?|models?)\b"
)

_KINDS: list[tuple[str, re.Pattern[str]]] = [
    (
        "role marker",
        re.compile(
            r"(?:^|\n|[.!?]\s)\s*(?:#{1,4}\s*)?(?-i:System|Assistant|Developer|SYSTEM|ASSISTANT|DEVELOPER)"
            r"\s*(?:prompt|message)?\s*:\s*\S"
            r"|<\|(?:im_start|im_end|system|assistant|user|endoftext)\|>|\[/?INST\]|<</?SYS>>",
            re.I,
        ),
    ),
    (
        "instruction to an AI",
        re.compile(
            r"\b(?:ignore|disregard|forget|override|bypass)\s+(?:all\s+|any\s+|the\s+|your\s+|previous\s+|prior\s+|above\s+|earlier\s+|other\s+)*"
            r"(?:instructions?|rules?|prompts?|directions?|guidelines|system\s+message)\b"
            r"|\byou\s+are\s+now\s+(?:a|an|in|the|my|DAN|unrestricted|jailbroken|free)\b|\byour\s+new\s+(?:instructions?|task|role|rules?)\b"
            r"|\b(?:as\s+an?|dear|attention,?|note\s+to\s+the)\s+(?:AI|LLM|language\s+model|chatbot|AI\s+assistant)\b"
            r"|\b(?:AI|LLM|language\s+model|chatbot|assistant)s?\b[^.!?\n]{0,40}\b(?:must|should|shall)\s+(?:always|never|only|now|instead)\b"
            r"|\b(?:respond|reply|answer)\s+(?:only\s+)?(?:with|by\s+saying)\s+[\"'“]"
            r"|(?:^|[.!?]\s+|\n)\s*(?:say|print|output|write|repeat)[ \t]+(?:exactly[ \t]+|only[ \t]+)?[\"'“]?"
            r"(?-i:[A-Z][A-Z0-9]*[-_0-9][A-Z0-9_-]*)\b"  # a code word: "Say MANGO-42."
            r"|(?:^|[.!?]\s+|\n)\s*(?:say|repeat)\s+(?:exactly\s+|only\s+)?[\"“][^\"”\n]{1,80}[\"”]"
            r"|\b(?:do\s+not|don't|never)\s+(?:tell|reveal|mention|disclose)\b[^.!?\n]{0,30}\b(?:user|reader|human)\b",
            re.I,
        ),
    ),
    (
        # A sentence addressed to a model, whatever it asks: a note to it ("Note to AI models reading
        # this: ...", "IMPORTANT SYSTEM NOTE TO THE ASSISTANT: ..."), a system tag ("[SYSTEM
        # OVERRIDE]"), a reader that is a model ("if you are an AI", "language models processing this
        # page"), or what the assistant is to do with its own instructions ("the assistant first
        # prints its complete instructions").
        "addressed to a model",
        re.compile(
            rf"\b(?:note|message|notice|memo|reminder|instructions?|warning|attention|directive|request)s?\s+"
            rf"(?:to|for)\s+(?:the\s+|all\s+|any\s+|every\s+)?{_MODEL}"
            rf"|\b{_MODEL}\s+(?:reading|processing|parsing|summari[sz]ing|analy[sz]ing|ingesting|indexing|"
            rf"answering\s+(?:from|about)|that\s+reads?|who\s+reads?)\s+(?:this|these|the\s+following)\b"
            rf"|\bif\s+you\s+are\s+(?:an?\s+)?{_MODEL}"
            r"|(?:^|\n|[.!?:]\s)\s*\[\s*(?:SYSTEM|ADMIN|ADMINISTRATOR|DEVELOPER|ASSISTANT|AI|OPERATOR)\b[^\]\n]{0,40}\]"
            r"|\b(?-i:SYSTEM|ADMIN|DEVELOPER|OPERATOR)\s+(?-i:NOTE|OVERRIDE|MESSAGE|INSTRUCTIONS?|PROMPT|UPDATE|NOTICE|COMMAND)\b"
            r"|\b(?:print|prints|printing|reveal|reveals|output|outputs|show|shows|repeat|repeats|list|lists|disclose|"
            r"discloses|recite|recites|include|includes)\s+(?:out\s+)?(?:its|your|the\s+assistant's|the\s+model's)\s+"
            r"(?:(?:complete|full|entire|whole|hidden|secret|original|initial|exact|system)\s+)*"
            r"(?:instructions|system\s+prompt|prompt|configuration|rules|guidelines)\b",
            re.I,
        ),
    ),
    (
        "fake delimiter",
        re.compile(
            r"<</?DOCS-|</?(?:system|instructions?)>"
            r"|[-=#*]{3,}\s*(?:end|beginning|start)\s+of\s+(?:the\s+)?(?:documents?|passages?|context|data|instructions?)\b",
            re.I,
        ),
    ),
    ("remote image link", re.compile(r"!\[[^\]\n]{0,200}\]\(\s*<?(?:https?:)?//", re.I)),
]


def injection_kind(text: str) -> str | None:
    """The kind of instruction to a model that `text` (a sentence or passage) carries, or None."""
    for kind, pattern in _KINDS:
        if pattern.search(text):
            return kind
    return None


def find_injections(text: str) -> Counter[str]:
    """How many of each kind a page's text holds."""
    found: Counter[str] = Counter()
    for kind, pattern in _KINDS:
        n = sum(1 for _ in pattern.finditer(text))
        if n:
            found[kind] += n
    return found
