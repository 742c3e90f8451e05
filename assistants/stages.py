"""The values an answer passes between its stages (assistants/chat.py): what was gathered to answer
from, then what the model is given. Frozen: a stage reads them and makes new ones."""

from __future__ import annotations

from dataclasses import dataclass

from assistants.tools import ToolStep
from retriever.context import PromptPlan
from retriever.passages import PassageSentences
from retriever.quotes import Quote
from retriever.search import Hit
from runtime.protocol import GenerationParams


@dataclass(frozen=True)
class Gathered:
    """What an answer is built from: the passages and the tools' results (none: `why` says what
    was missing, for the refusal), the tools' steps, and the seconds it took."""

    hits: list[Hit]
    steps: list[ToolStep]
    why: str
    seconds: float


@dataclass(frozen=True)
class Prepared:
    """What the model is given: the generation settings (with the answer's opening and the
    faithful-decoding sources), the plan whose whole passages the citations keep, the passages'
    sentences and the supporting quotes (and the seconds they took), and the prompt it reads."""

    params: GenerationParams
    plan: PromptPlan
    ps: PassageSentences
    quotes: list[Quote]
    quote_time: float
    prompt: PromptPlan
