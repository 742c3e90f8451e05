"""The API's request bodies, with the limits each one holds."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from assistants.schema import AnswerMode, Grounding
from retriever.search import Mode

MAX_MESSAGES = 1000  # messages in one chat request
MAX_MESSAGE_CHARS = 2_000_000  # their text together (the prompt keeps what fits the context window)


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(str(p.get("text", "")) for p in self.content if p.get("type") == "text")
        return self.content or ""


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="allow")  # OpenAI clients send fields Archivist does not use
    model: str
    messages: list[ChatMessage] = Field(min_length=1, max_length=MAX_MESSAGES)
    stream: bool = False
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    max_tokens: int | None = Field(None, ge=1, le=32768)
    max_completion_tokens: int | None = Field(None, ge=1, le=32768)
    stop: str | list[str] | None = None
    # the same request with the same seed gives the same answer (same model and machine)
    seed: int | None = Field(None, ge=0, le=2**31 - 1)
    # OpenAI tools: passed to a model whose chat template supports them; 400 otherwise
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    # Archivist extensions (OpenAI clients pass them with extra_body)
    answer_mode: AnswerMode | None = None
    grounding: Grounding | None = None

    @model_validator(mode="after")
    def _total_text(self) -> ChatRequest:
        total = sum(len(m.text()) for m in self.messages)
        if total > MAX_MESSAGE_CHARS:
            raise ValueError(f"the messages hold {total:,} characters; the limit is {MAX_MESSAGE_CHARS:,}")
        return self


class EmbeddingRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    input: str | list[str]
    model: str = "all-MiniLM-L6-v2"


class VerifyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    claim: str = Field(min_length=1, max_length=4000, description="a sentence or a few, each checked on its own")
    k: int = Field(5, ge=1, le=50, description="passages searched for the claim")


class RenameRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=64, description="the collection's new name")


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    query: str = Field(min_length=1)
    k: int = Field(5, ge=1, le=100)
    mode: Mode = "hybrid"
