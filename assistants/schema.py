"""The assistant YAML schema: every field described and bounded; unknown keys rejected."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from retriever.search import Mode
from runtime.spec import DEFAULT_MODEL

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"

# The closed vocabularies of an assistant, named once: the API, the CLI and the app import these.
CitationStyle = Literal["numbered", "document-page", "none"]
AnswerMode = Literal["generate", "extractive"]
Grounding = Literal["off", "mark", "retry"]
ContextMode = Literal["passages", "quotes-first", "quotes-only"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ModelSettings(_Strict):
    """Which model answers, and how."""

    path: str = Field(
        DEFAULT_MODEL, description="bundled:NAME, a GGUF file path, hf:org/repo/file.gguf, or openai:URL[,URL...]"
    )
    context_window: int = Field(4096, ge=512, le=262144, description="tokens the model sees at once")
    temperature: float = Field(0.2, ge=0.0, le=2.0, description="sampling temperature; 0 = greedy")
    top_p: float = Field(0.95, gt=0.0, le=1.0, description="nucleus sampling mass")
    max_tokens: int = Field(
        512,
        ge=1,
        le=32768,
        description="longest answer, in tokens (reserved in the budget); 100 suits the bundled model",
    )
    gpu_layers: int = Field(0, ge=-1, description="layers offloaded to the GPU; -1 = all, 0 = CPU only")
    threads: int | None = Field(None, ge=1, le=512, description="CPU threads; default: physical cores")
    seed: int | None = Field(
        None,
        ge=0,
        le=2**31 - 1,
        description="sampling seed: the same question gives the same answer (read without the model's cache, so "
        "follow-ups cost more); none: answers vary. A request's own seed wins",
    )


class KnowledgeSettings(_Strict):
    """Where the assistant's documents live."""

    collections: list[str] = Field(min_length=1, description="knowledge collections searched for every question")

    @model_validator(mode="before")
    @classmethod
    def _single(cls, data: Any) -> Any:
        if isinstance(data, dict) and "collection" in data and "collections" not in data:
            data = dict(data)
            data["collections"] = [data.pop("collection")]
        return data


class RetrievalSettings(_Strict):
    """How passages are found."""

    mode: Mode = Field("hybrid", description="dense (embeddings), keyword (BM25) or hybrid (both, fused)")
    top_k: int = Field(5, ge=1, le=50, description="passages retrieved per question")
    min_score: float | None = Field(
        None,
        ge=-1.0,
        le=1.0,
        description="relevance floor (cosine similarity of question and passage): below it the refusal text is given",
    )
    reranker: str | None = Field(None, description="cross-encoder (path or hub id) that reorders the passages")
    unknown_terms: Literal["refuse", "answer"] = Field(
        "refuse",
        description="refuse: give the refusal when the question names something (a capitalised name, an acronym, "
        "code) that no document of the collections contains, or when the documents use fewer than `min_coverage` "
        "of its words; answer: search and answer anyway",
    )
    min_coverage: float = Field(
        0.5, ge=0.0, le=1.0, description="share of the question's words the documents must use (with unknown_terms)"
    )


class CalculatorSettings(_Strict):
    """Arithmetic in the question is computed before the model answers (simpleeval, capped)."""

    max_expressions: int = Field(5, ge=1, le=20, description="expressions computed per question at most")


class CodeSettings(_Strict):
    """Code blocks run when the user presses Run: in the Pyodide sandbox, or, for code the user wrote
    when the sandbox is not installed, in a limited process on this machine."""

    timeout_s: float = Field(20.0, ge=1.0, le=300.0, description="seconds a run may take (the sandbox starts in ~5 s)")
    memory_mb: int = Field(512, ge=64, le=8192, description="memory a run may use, in MB")
    output_chars: int = Field(20000, ge=100, le=1_000_000, description="output kept, in characters")


class WebSettings(_Strict):
    """A URL in the question is read and its text used as passages, cited by URL."""

    allow_private: bool | list[str] = Field(
        False,
        description="read private, loopback and link-local addresses too: true, or a list of the addresses or "
        "networks allowed (e.g. ['10.1.2.3', '192.168.0.0/16']); default: public addresses only",
    )
    max_bytes: int = Field(2 * 2**20, ge=1024, le=50 * 2**20, description="bytes read from a page at most")
    timeout_s: float = Field(10.0, ge=1.0, le=120.0, description="seconds to read a page, redirects included")
    max_redirects: int = Field(3, ge=0, le=3, description="redirects followed, each target checked again")
    max_pages: int = Field(2, ge=1, le=5, description="URLs read per question at most")

    @field_validator("allow_private")
    @classmethod
    def _networks(cls, value: Any) -> Any:
        import ipaddress

        if isinstance(value, list):
            for item in value:
                try:
                    ipaddress.ip_network(item, strict=False)
                except ValueError as exc:
                    raise ValueError(f"{item!r} is not an address or network (e.g. 10.0.0.5 or 10.0.0.0/8)") from exc
        return value


class ToolSettings(_Strict):
    """The assistant's peripherals. A tool is on when it is named (`tools: [calculator, code, web]`) or
    given settings (`tools: {web: {allow_private: true}}`)."""

    calculator: CalculatorSettings | None = Field(None, description="compute arithmetic found in the question")
    code: CodeSettings | None = Field(None, description="run code blocks when the user presses Run")
    web: WebSettings | None = Field(None, description="read a URL written in the question")
    calls: Literal["auto", "off", "forced"] = Field(
        "auto",
        description="model-driven calls: auto: models whose chat template supports tools may call the tools and "
        "search_documents themselves (at most 3 rounds); forced: every answer starts with one call the model "
        "chooses under a grammar (any llama.cpp model); off: never",
    )

    @model_validator(mode="before")
    @classmethod
    def _names(cls, data: Any) -> Any:
        if isinstance(data, list):
            known = ("calculator", "code", "web")
            bad = [t for t in data if t not in known]
            if bad:
                raise ValueError(f"unknown tool {bad[0]!r}; the tools are {', '.join(known)}")
            return {t: {} for t in data}
        if isinstance(data, dict):
            return {k: ({} if v is True else None if v is False else v) for k, v in data.items()}
        return data

    @property
    def names(self) -> list[str]:
        return [t for t in ("calculator", "code", "web") if getattr(self, t) is not None]


class Assistant(_Strict):
    """A custom assistant: instructions, knowledge, model and retrieval settings."""

    name: str = Field(pattern=NAME_PATTERN, description="identifier used by the CLI, API and UI")
    display_name: str = Field(
        "", max_length=80, description="the name people see in the app (the name when empty); may hold spaces"
    )
    description: str = Field("", max_length=500, description="one line shown in lists")
    instructions: str = Field("", max_length=20000, description="what the assistant should do and how")
    model: ModelSettings = Field(default_factory=ModelSettings)
    knowledge: KnowledgeSettings
    retrieval: RetrievalSettings = Field(default_factory=RetrievalSettings)
    starters: list[str] = Field(default_factory=list, max_length=8, description="suggested first questions")
    tools: ToolSettings = Field(default_factory=ToolSettings, description="calculator, code runner, web reader")
    citation_style: CitationStyle = Field(
        "numbered", description="how answers cite passages: [1], (file.pdf, p. 12), or not inline"
    )
    answer_mode: AnswerMode = Field(
        "generate",
        description="generate: the model writes the answer; extractive: the supporting quotes only, no model "
        "(instant and exact)",
    )
    grounding: Grounding = Field(
        "mark",
        description="check each answer sentence against the passages: off; mark the unsupported ones; retry: "
        "regenerate once more strictly when most lack support, then fall back to the quotes",
    )
    context: ContextMode = Field(
        "quotes-only",
        description="what the model reads: the passages; the supporting quotes first, then the passages; or the "
        "quotes only (short contexts keep small models on the documents)",
    )
    decoding: Literal["free", "faithful"] = Field(
        "faithful",
        description="faithful: numbers, identifiers, code, flags and names can only be written as the passages or "
        "the question write them (llama.cpp models); free: no constraint",
    )
    anchor: Literal["off", "best-quote", "quote"] = Field(
        "quote",
        description="best-quote: the answer opens with 'According to [n],' naming the passage of the best "
        "supporting quote, and the model continues from there (small models then restate it); quote: the answer "
        "opens with the best supporting quote itself, in quotation marks and cited, and the model goes on from "
        "there; off: no opening",
    )
    # One answer, judged: on the four question sets (bench/eval/keys, seeded, bundled model) best of 3 named
    # the key terms no more often (dev 0.800 both, second 0.700 against one's 0.750, third 0.667 both,
    # fourth 0.558 both) and took 1.9-3.6 s per answer against 1.7-2.2 s, once the verifier stopped
    # passing the model's loose sentences.
    thinking: Literal["off", "best_of_n"] = Field(
        "off",
        description="best_of_n: write up to `candidates` answers, judge each with the grounding check and the "
        "quotes, show the best (stops early when one is fully supported)",
    )
    candidates: int = Field(3, ge=2, le=8, description="answers written at most, with thinking: best_of_n")
    fallback: Literal["off", "quotes", "trim"] = Field(
        "trim",
        description="quotes: when the answer is still mostly unsupported, show the supporting quotes instead, "
        "saying the model's answer was not supported; trim: the same, and from an answer kept, leave out the "
        "sentences the documents do not support (listed under it); off: show the answer with its sentences marked",
    )
    refusal: str = Field(
        "The documents I have don't answer that.", min_length=1, description="reply when nothing relevant is found"
    )

    @field_validator("grounding", "thinking", "fallback", "anchor", mode="before")
    @classmethod
    def _off(cls, value: Any) -> Any:
        """YAML reads a bare `off` as false: take it as the choice the user wrote."""
        return "off" if value is False else value
