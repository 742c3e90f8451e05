"""The text-generation seam: what every model backend implements."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypedDict


class Message(TypedDict):
    """An OpenAI-shaped chat message."""

    role: str
    content: str


@dataclass(frozen=True)
class GenerationParams:
    """Sampling settings for one generation."""

    max_tokens: int = 512
    temperature: float = 0.2
    top_p: float = 0.95
    stop: Sequence[str] = field(default_factory=tuple)
    seed: int | None = None
    # The caller asked for a repeatable answer (a seed of its own): the whole prompt is read afresh,
    # since work reused from the cache differs in the last bits and sampling can then go another way.
    # Internal seeds (best-of-N candidates) leave it off and keep the cache.
    repeatable: bool = False
    # Faithful decoding: content words (numbers, identifiers, code, flags, names) only as this text
    # writes them; None leaves decoding free. Backends that cannot constrain decoding ignore it.
    sources: str | None = None
    # The answer's first words, written for the model: it continues from them (they are part of the
    # answer's text). Backends that cannot continue a reply ignore it.
    prefix: str = ""
    # OpenAI-shaped tool specs the chat template renders (models whose template supports tools).
    tools: Sequence[dict] | None = None  # type: ignore[type-arg]
    # A JSON schema the output must follow (llama.cpp grammar); None leaves the output free.
    json_schema: str | None = None


@dataclass
class GenerationStats:
    """Filled in while a generation streams; read it once the stream is exhausted."""

    prompt_tokens: int = 0
    evaluated_tokens: int = 0
    completion_tokens: int = 0
    time_to_first_token: float | None = None
    total_time: float = 0.0
    finish_reason: str = ""


class TextGenerator(Protocol):
    """A chat model: render messages, count tokens, stream text pieces."""

    @property
    def context_window(self) -> int: ...

    @property
    def waiting(self) -> int:
        """Requests waiting for this model now (answered one at a time, in arrival order)."""
        ...

    def count_tokens(self, text: str) -> int:
        """Number of tokens `text` takes in this model's vocabulary."""
        ...

    def tokenize_prompt(self, messages: Sequence[Message]) -> list[int]:
        """The prompt's tokens for `messages`, as the model will read them (the context budget
        counts these); a backend without a tokenizer returns a stated safe over-estimate."""
        ...

    def render(self, messages: Sequence[Message]) -> str:
        """The prompt text for `messages`, by the model's own chat template."""
        ...

    def stream(
        self, messages: Sequence[Message], params: GenerationParams, stats: GenerationStats | None = None
    ) -> Iterator[str]:
        """Yield the answer as text pieces, as they are generated."""
        ...
