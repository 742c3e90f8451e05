"""The runtime on the real bundled GGUF."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from runtime import ContextOverflowError, GenerationParams, GenerationStats, ModelNotFoundError, resolve_model
from runtime.cpu import physical_cores

MSGS = [{"role": "system", "content": "You are brief."}, {"role": "user", "content": "Name a colour."}]


def test_chat_template_comes_from_the_gguf(small_model) -> None:
    prompt = small_model.render(MSGS)
    assert prompt.startswith("<|im_start|>system\nYou are brief.<|im_end|>")
    assert prompt.endswith("<|im_start|>assistant\n")


def test_stream_yields_pieces_and_counts(small_model) -> None:
    stats = GenerationStats()
    pieces = list(small_model.stream(MSGS, GenerationParams(max_tokens=12, temperature=0), stats))
    assert len(pieces) > 1 and "".join(pieces).strip()
    assert stats.prompt_tokens == len(small_model.tokenize_prompt(MSGS))
    assert 0 < stats.completion_tokens <= 12
    assert stats.time_to_first_token is not None and stats.time_to_first_token <= stats.total_time


def test_stop_strings_end_the_answer(small_model) -> None:
    ask = [{"role": "user", "content": "Count from 1 to 10 separated by commas."}]
    free = small_model.generate(ask, GenerationParams(max_tokens=40, temperature=0))
    assert "5" in free  # without the stop string the model writes it: the test below can fail
    text = small_model.generate(ask, GenerationParams(max_tokens=40, temperature=0, stop=["5"]))
    assert "5" not in text and text.strip() == free[: free.index("5")].strip()  # cut right where it came


def test_count_tokens_matches_tokenizer(small_model) -> None:
    assert small_model.count_tokens("") == 0
    assert small_model.count_tokens("hello world") == len(small_model.raw.tokenize(b"hello world", add_bos=False))


def test_prompt_over_context_window_is_refused_with_both_numbers(small_model) -> None:
    long = [{"role": "user", "content": "word " * 3000}]
    with pytest.raises(ContextOverflowError) as err:
        small_model.stream(long, GenerationParams(max_tokens=8))
    n = len(small_model.tokenize_prompt(long))
    assert f"{n:,} tokens" in str(err.value) and "2,048" in str(err.value)


def test_pool_shares_one_model_per_spec_and_settings(model_pool, small_model) -> None:
    assert model_pool.get("bundled:smollm2-135m", context_window=2048) is small_model
    assert small_model.n_threads == physical_cores()


@pytest.mark.slow
def test_concurrent_calls_are_serialized_and_each_gets_its_own_answer() -> None:
    from runtime import LlamaCppGenerator

    # Without KV reuse every prompt is evaluated in one batch, so greedy answers are bit-exact and
    # any cross-talk between concurrent calls would show. (Reusing a prefix evaluated in another
    # batch shape can change the last float bits, and so a greedy token, so the cached model is
    # checked for first tokens in test_conversations instead.)
    small_model = LlamaCppGenerator(resolve_model("bundled:smollm2-135m"), context_window=1024, cache_bytes=0)
    questions = [f"What is {i} plus {i}?" for i in range(4)]
    params = GenerationParams(max_tokens=10, temperature=0, seed=1)
    serial = [small_model.generate([{"role": "user", "content": q}], params) for q in questions]
    results: dict[int, str] = {}
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            results[i] = small_model.generate([{"role": "user", "content": questions[i]}], params)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert [results[i] for i in range(4)] == serial


def test_specs_resolve_or_explain(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_model("bundled:smollm2-135m").name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    with pytest.raises(ModelNotFoundError, match="bundled models: smollm2-135m"):
        resolve_model("bundled:nope")
    with pytest.raises(ModelNotFoundError, match="missing.gguf"):
        resolve_model(str(tmp_path / "missing.gguf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotFoundError) as err:
        resolve_model("hf:someorg/somerepo/model.Q4_0.gguf", tmp_path / "models")
    msg = str(err.value)
    assert "hf:someorg/somerepo/model.Q4_0.gguf" in msg and "name the file by its path" in msg


def test_hf_spec_uses_the_workspace_model_cache(tmp_path: Path) -> None:
    """A model already in the hub cache layout loads offline through huggingface_hub."""
    gguf = resolve_model("bundled:smollm2-135m")
    cache = tmp_path / "models"
    repo = cache / "models--acme--tiny"
    snap = repo / "snapshots" / ("a" * 40)
    snap.mkdir(parents=True)
    (snap / "tiny.gguf").symlink_to(gguf)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("a" * 40)
    path = resolve_model("hf:acme/tiny/tiny.gguf", cache)
    assert path.resolve() == gguf.resolve()


def test_another_backend_slots_in_through_the_registry(harbor) -> None:  # type: ignore[no-untyped-def]
    """A backend that claims `echo:` specs: the pool loads it once, and an assistant naming such a
    model answers through it (prompt budget, quotes and citations included), no llama.cpp involved."""
    from collections.abc import Iterator, Sequence

    from assistants import parse_assistant
    from runtime.protocol import Message
    from runtime.registry import BACKENDS, Backend, ModelPool, register_backend

    class Echo:
        context_window, waiting = 2048, 0
        loads = 0

        def count_tokens(self, text: str) -> int:
            return len(text.split())

        def tokenize_prompt(self, messages: Sequence[Message]) -> list[int]:
            return list(range(sum(len(m["content"].split()) for m in messages)))

        def render(self, messages: Sequence[Message]) -> str:
            return "\n".join(m["content"] for m in messages)

        def stream(
            self, messages: Sequence[Message], params: GenerationParams, stats: GenerationStats | None = None
        ) -> Iterator[str]:
            yield "The lens is cleaned every Tuesday [1]."

    def load(name: str, context: int, threads: int, gpu: int) -> Echo:
        Echo.loads += 1
        return Echo()

    backend = Backend("echo", lambda s: s.startswith("echo:"), lambda s, d: s.removeprefix("echo:"), load)
    register_backend(backend)
    try:
        pool = ModelPool()
        assert pool.get("echo:one", context_window=2048) is pool.get("echo:one", context_window=2048)
        assert Echo.loads == 1
        svc, _ = harbor
        svc = svc.using_models(pool)
        bot = parse_assistant(
            {
                "name": "echo-bot",
                "model": {"path": "echo:one", "context_window": 2048},
                "anchor": "off",
                "thinking": "off",
                "fallback": "off",
                "knowledge": {"collections": ["harbor"]},
            },
            "t",
        )
        answer = svc.chat.ask(bot, "When is the lens of the lighthouse cleaned?").result()
        assert answer.text == "The lens is cleaned every Tuesday [1]." and Echo.loads == 1
        assert answer.citations and answer.citations[0].document == "harbor.pdf"
    finally:
        BACKENDS.remove(backend)
