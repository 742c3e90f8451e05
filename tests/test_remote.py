"""Remote models: an assistant answers through OpenAI-compatible servers (`openai:URL[,URL...]`),
tested against llama.cpp's own server (`llama_cpp.server`) serving the bundled GGUF on loopback."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from assistants import parse_assistant
from runtime.errors import ArchivistError
from runtime.protocol import GenerationParams, GenerationStats
from runtime.remote import RemoteGenerator, parse_remote
from runtime.spec import resolve_model
from tests.shared import free_port


class LlamaServer:
    """`python -m llama_cpp.server` on a free loopback port, its log (uvicorn's access lines) in a file."""

    def __init__(self, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.log = log
        model = resolve_model("bundled:smollm2-135m")
        cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1"]
        cmd += ["--port", str(self.port), "--n_ctx", "2048", "--n_threads", "1", "--verbose", "False"]
        self._out = log.open("wb")
        self.proc = subprocess.Popen(cmd, stdout=self._out, stderr=subprocess.STDOUT)
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                if httpx.get(self.url + "/models", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.3)
            if self.proc.poll() is not None:
                raise RuntimeError(f"llama.cpp's server exited: {log.read_text()[-2000:]}")
        raise RuntimeError("llama.cpp's server did not start in 120 s")

    def completions_served(self) -> int:
        return self.log.read_text(errors="replace").count("POST /v1/chat/completions")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        self._out.close()


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[LlamaServer]]:
    folder = tmp_path_factory.mktemp("llama-servers")
    started = [LlamaServer(folder / f"server-{i}.log") for i in range(2)]
    yield started
    for s in started:
        s.stop()


def test_specs_are_read_and_bad_ones_named() -> None:
    spec = parse_remote("openai:http://10.0.0.5:8080/v1/, https://gpu-box/v1;model=qwen;key_env=TEAM_KEY")
    assert spec.urls == ("http://10.0.0.5:8080/v1", "https://gpu-box/v1")
    assert spec.model == "qwen" and spec.key_env == "TEAM_KEY"
    assert "key" not in spec.ident.replace("key_env", "")  # the variable's name, never a key
    for bad, says in (
        ("openai:", "at least one server"),
        ("openai:ftp://x/v1", "not an http:// or https:// address"),
        ("openai:http://x/v1;temperature=1", "unknown option"),
    ):
        with pytest.raises(ArchivistError, match=says):
            parse_remote(bad)


@pytest.mark.slow
def test_the_servers_tokenizer_counts_and_the_answer_streams(servers: list[LlamaServer], small_model) -> None:  # type: ignore[no-untyped-def]
    model = RemoteGenerator(parse_remote(f"openai:{servers[0].url}"), context_window=2048)
    text = "The lens of the Greywater lighthouse is cleaned every Tuesday by the keeper."
    assert model.count_tokens(text) == small_model.count_tokens(text)  # the same vocabulary, asked over HTTP
    for messages in (
        [{"role": "user", "content": "Say hello to the lighthouse keeper."}],  # the template adds a system line
        [{"role": "system", "content": "Answer from the passages."}, {"role": "user", "content": text}],
    ):
        served = len(small_model.tokenize_prompt(messages))
        assert served <= len(model.tokenize_prompt(messages)) <= served + 64  # never under, not far over
    stats = GenerationStats()
    pieces = list(model.stream(messages, GenerationParams(max_tokens=24, temperature=0, seed=1), stats))
    assert len(pieces) > 1 and "".join(pieces).strip()  # streamed piece by piece
    assert stats.time_to_first_token is not None and stats.completion_tokens > 0 and stats.finish_reason
    model.close()


def test_round_robin_with_failover_and_a_clear_error_when_none_answers(servers: list[LlamaServer]) -> None:
    dead = f"http://127.0.0.1:{free_port()}/v1"
    a, b = servers
    model = RemoteGenerator(parse_remote(f"openai:{a.url},{dead},{b.url}"), context_window=2048)
    before = [a.completions_served(), b.completions_served()]
    params = GenerationParams(max_tokens=4, temperature=0)
    for _ in range(3):  # a, then the dead one (skipped for b), then b
        assert "".join(model.stream([{"role": "user", "content": "Hi"}], params)).strip()
    time.sleep(0.5)  # the access log is written after the response
    served = [a.completions_served() - before[0], b.completions_served() - before[1]]
    assert served == [1, 2], served
    model.close()

    nobody = RemoteGenerator(parse_remote(f"openai:{dead},http://127.0.0.1:{free_port()}/v1"))
    with pytest.raises(ArchivistError, match="no model server answered") as err:
        list(nobody.stream([{"role": "user", "content": "Hi"}], params))
    assert dead in str(err.value)
    assert nobody.count_tokens("four words right here") > 0  # no tokenizer reachable: the estimate


@pytest.mark.slow
def test_an_assistant_answers_through_a_remote_server_with_citations(harbor, servers: list[LlamaServer]) -> None:  # type: ignore[no-untyped-def]
    """The whole chat path (retrieval, context budget, quotes, grounding, citations) with the model
    on another server, named in the assistant's YAML."""
    svc, _ = harbor
    os.environ.pop("ARCHIVIST_OPENAI_API_KEY", None)
    bot = parse_assistant(
        {
            "name": "remote-bot",
            "knowledge": {"collections": ["harbor"]},
            "model": {"path": f"openai:{servers[0].url},{servers[1].url}", "max_tokens": 60, "context_window": 2048},
            "thinking": "off",
            "fallback": "off",
            "retrieval": {"unknown_terms": "answer"},
        },
        "test",
    )
    answer = svc.chat.ask(bot, "How often is the Greywater lighthouse lens cleaned?").result()
    assert answer.text.strip() and answer.citations and answer.citations[0].page == 2
    assert answer.stats.prompt_tokens > 0 and answer.stats.completion_tokens > 0
    loaded = [k for k in svc.models.loaded() if k.backend == "openai"]
    assert loaded and servers[0].url in loaded[0].label


@pytest.mark.slow
def test_a_server_killed_mid_conversation_leaves_the_next_answers_to_the_other(tmp_path: Path) -> None:
    a, b = (LlamaServer(tmp_path / f"own-{i}.log") for i in range(2))
    try:
        model = RemoteGenerator(parse_remote(f"openai:{a.url},{b.url}"), context_window=2048)
        params = GenerationParams(max_tokens=6, temperature=0)
        messages: list[dict[str, str]] = []
        replies = []
        for turn, question in enumerate(["Hi, who are you?", "Name a colour.", "Name a fruit.", "Name a city."]):
            if turn == 2:
                a.proc.kill()  # a is gone for good, between two turns of one conversation
                a.proc.wait(10)
            messages.append({"role": "user", "content": question})
            reply = "".join(model.stream(messages, params)).strip()
            assert reply, f"turn {turn} got no answer"
            replies.append(reply)
            messages.append({"role": "assistant", "content": reply})
        time.sleep(0.5)  # the access log is written after the response
        # turn 0 went to a, turn 1 to b; after the kill, turns 2 (a's turn in the rotation) and 3 went to b
        assert a.completions_served() == 1 and b.completions_served() == 3
        model.close()
    finally:
        for s in (a, b):
            if s.proc.poll() is None:
                s.proc.terminate()
                s.proc.wait(10)
            s._out.close()
