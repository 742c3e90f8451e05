"""The llama-cpp-python backend of the text-generation seam."""

from __future__ import annotations

import codecs
import contextlib
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from runtime.errors import ContextOverflowError
from runtime.faithful import FaithfulLogits
from runtime.fifo import FifoLock
from runtime.kvcache import KVCache, common_prefix
from runtime.protocol import GenerationParams, GenerationStats, Message

_FALLBACK_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


class LlamaCppGenerator:
    """A GGUF model in-process. One llama.cpp context, so every call is serialized in arrival order."""

    def __init__(
        self,
        path: Path,
        *,
        context_window: int = 4096,
        n_threads: int | None = None,
        gpu_layers: int = 0,
        seed: int = 0,
        cache_bytes: int = 512 * 2**20,
    ) -> None:
        from llama_cpp import Llama
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        from runtime.cpu import physical_cores

        self.path = path
        self.n_threads = n_threads or physical_cores()
        self.gpu_layers = gpu_layers
        self.lock = FifoLock()
        # KV snapshots let a conversation (or an assistant's instructions) resume where it left
        # off even after other requests used the context; 0 turns prefix reuse off entirely.
        self.cache: KVCache | None = KVCache(cache_bytes) if cache_bytes > 0 else None
        with open(os.devnull, "w") as devnull, contextlib.redirect_stderr(devnull):
            self._llm = Llama(
                model_path=str(path),
                n_ctx=context_window,
                n_threads=self.n_threads,
                n_threads_batch=self.n_threads,
                n_gpu_layers=gpu_layers,
                seed=seed,
                verbose=False,
            )
        meta: dict[str, str] = self._llm.metadata
        template = meta.get("tokenizer.chat_template") or _FALLBACK_TEMPLATE
        vocab = self._llm._model
        bos = vocab.token_get_text(self._llm.token_bos()) if self._llm.token_bos() >= 0 else ""
        eos = vocab.token_get_text(self._llm.token_eos()) if self._llm.token_eos() >= 0 else ""
        self._formatter = Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos)
        self.chat_template = template
        self.name = meta.get("general.name", path.stem)
        self._vocab: tuple[list[str], list[int]] | None = None

    @property
    def context_window(self) -> int:
        return int(self._llm.n_ctx())

    def count_tokens(self, text: str) -> int:
        return len(self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def render(self, messages: Sequence[Message], tools: Sequence[dict] | None = None) -> str:  # type: ignore[type-arg]
        return str(self._formatter(messages=list(messages), tools=list(tools) if tools else None).prompt)  # type: ignore[arg-type]

    @property
    def tool_support(self) -> tuple[bool, str]:
        """(whether the model's chat template renders tools, why not)."""
        from runtime.toolcalls import template_tool_support

        return template_tool_support(self.chat_template, self.name)

    @property
    def waiting(self) -> int:
        """Requests waiting for this model now."""
        return self.lock.waiting

    def tokenize_prompt(self, messages: Sequence[Message]) -> list[int]:
        """The exact tokens the model evaluates for `messages`."""
        return list(self._llm.tokenize(self.render(messages).encode("utf-8"), add_bos=True, special=True))

    def stream(
        self, messages: Sequence[Message], params: GenerationParams, stats: GenerationStats | None = None
    ) -> Iterator[str]:
        stats = stats if stats is not None else GenerationStats()
        if params.prefix or params.tools:
            text = self.render(messages, params.tools) + params.prefix
            tokens = list(self._llm.tokenize(text.encode("utf-8"), add_bos=True, special=True))
        else:
            tokens = self.tokenize_prompt(messages)
        stats.prompt_tokens = len(tokens)
        if len(tokens) >= self.context_window:
            raise ContextOverflowError(len(tokens), self.context_window)
        return self._stream_tokens(tokens, params, stats)

    def _stream_tokens(self, tokens: list[int], params: GenerationParams, stats: GenerationStats) -> Iterator[str]:
        import llama_cpp

        llm = self._llm
        budget = min(params.max_tokens, self.context_window - len(tokens))
        stops = [s for s in params.stop if s]
        hold = max((len(s) for s in stops), default=1) - 1
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        vocab = llm._model.vocab
        guard, processors, grammar = self._constraints(params)
        if params.prefix:
            if guard is not None:
                guard.feed(params.prefix)
            yield params.prefix
        with self.lock:
            start = time.perf_counter()
            if self.cache is None or params.repeatable:
                # a repeatable request reads its whole prompt afresh: logits from a reused prefix
                # differ in the last bits (other batch shapes), enough for sampling to go another way
                llm.reset()  # type: ignore[no-untyped-call]
            else:
                self.cache.restore_best(llm, tokens)
            stats.evaluated_tokens = len(tokens) - common_prefix(llm._input_ids[: llm.n_tokens], tokens)
            if stats.evaluated_tokens == 0:
                stats.evaluated_tokens = 1  # llama.cpp re-evaluates the last token to get fresh logits
            if params.seed is not None:
                llm.set_seed(params.seed)
            pending = ""
            stats.finish_reason = "length"
            produced = 0
            try:
                for token in llm.generate(
                    tokens,
                    temp=params.temperature,
                    top_p=params.top_p,
                    top_k=40,
                    min_p=0.05,
                    repeat_penalty=1.1,
                    logits_processor=processors,
                    grammar=grammar,
                ):
                    if llama_cpp.llama_vocab_is_eog(vocab, token):
                        stats.finish_reason = "stop"
                        break
                    produced += 1
                    if guard is not None:
                        guard.feed(guard.token_texts[token])
                    if stats.time_to_first_token is None:
                        stats.time_to_first_token = time.perf_counter() - start
                    pending += decoder.decode(llm.detokenize([token], special=False))
                    if stops:
                        cut = min((i for i in (pending.find(s) for s in stops) if i >= 0), default=-1)
                        if cut >= 0:
                            pending = pending[:cut]
                            stats.finish_reason = "stop"
                            break
                        safe = len(pending) - hold
                    else:
                        safe = len(pending)
                    if safe > 0:
                        yield pending[:safe]
                        pending = pending[safe:]
                    if produced >= budget:
                        break
                pending += decoder.decode(b"", final=True)
                if pending:
                    yield pending
            finally:
                stats.completion_tokens = produced
                stats.total_time = time.perf_counter() - start
                if self.cache is not None and produced:
                    self.cache.save(llm)

    def _constraints(self, params: GenerationParams) -> tuple[FaithfulLogits | None, Any, Any]:
        """What narrows the sampling: the faithful-copy guard over the sources (and its logits
        processor list) and a grammar from the JSON schema; None where not asked for."""
        import llama_cpp

        guard = None
        if params.sources is not None:
            texts, eog = self._vocabulary()
            guard = FaithfulLogits(texts, params.sources, always=eog)
        processors = llama_cpp.LogitsProcessorList([guard]) if guard is not None else None
        grammar = None
        if params.json_schema:
            from llama_cpp.llama_grammar import LlamaGrammar

            grammar = LlamaGrammar.from_json_schema(params.json_schema, verbose=False)
        return guard, processors, grammar

    def _vocabulary(self) -> tuple[list[str], list[int]]:
        """Every token's text and the end-of-generation tokens, read once (faithful decoding needs them)."""
        if self._vocab is None:
            import llama_cpp

            llm = self._llm
            n = llm.n_vocab()
            texts = [llm.detokenize([t], special=False).decode("utf-8", errors="replace") for t in range(n)]
            eog = [t for t in range(n) if llama_cpp.llama_vocab_is_eog(llm._model.vocab, t)]
            self._vocab = (texts, eog)
        return self._vocab

    def generate(self, messages: Sequence[Message], params: GenerationParams) -> str:
        """The whole answer at once."""
        return "".join(self.stream(messages, params))

    def close(self) -> None:
        """Free the llama.cpp context and weights."""
        with self.lock:
            self._llm.close()

    @property
    def raw(self) -> Any:
        """The underlying `llama_cpp.Llama` (benchmarks and tests only)."""
        return self._llm
