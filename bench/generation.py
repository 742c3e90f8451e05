"""Decode speed and time to first token: Archivist's runtime against a raw llama-cpp-python loop,
and what faithful decoding (content words only as the sources write them) costs per token.

Same GGUF, threads, context size, prompt and greedy sampling, in the same process; runs are
interleaved and the medians compared. Usage:

    python bench/generation.py [--model bundled:smollm2-135m] [--tokens 128] [--runs 5]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from runtime import GenerationParams, GenerationStats, LlamaCppGenerator, resolve_model
from runtime.cpu import physical_cores

MESSAGES = [
    {"role": "system", "content": "You are a helpful assistant who writes long, detailed answers."},
    {"role": "user", "content": "Write a long story about a lighthouse keeper and the storms of one winter."},
]


def raw_run(llm, tokens: list[int], n: int) -> tuple[float, float, int]:  # type: ignore[no-untyped-def]
    import llama_cpp

    llm.reset()
    vocab = llm._model.vocab
    start = time.perf_counter()
    first = 0.0
    produced = 0
    for tok in llm.generate(tokens, temp=0.0, top_p=0.95, top_k=40, min_p=0.05, repeat_penalty=1.1):
        if llama_cpp.llama_vocab_is_eog(vocab, tok):
            break
        llm.detokenize([tok])
        produced += 1
        if produced == 1:
            first = time.perf_counter() - start
        if produced >= n:
            break
    total = time.perf_counter() - start
    return first, (produced - 1) / (total - first), produced


# The sources faithful decoding allows content words from: the prompt itself, as in an answer
# the passages and the question are.
SOURCES = "\n".join(m["content"] for m in MESSAGES)


def archivist_run(gen: LlamaCppGenerator, n: int, sources: str | None = None) -> tuple[float, float, int]:
    gen.raw.reset()
    stats = GenerationStats()
    for _ in gen.stream(MESSAGES, GenerationParams(max_tokens=n, temperature=0.0, sources=sources), stats):
        pass
    ttft = stats.time_to_first_token or 0.0
    return ttft, (stats.completion_tokens - 1) / (stats.total_time - ttft), stats.completion_tokens


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="bundled:smollm2-135m")
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--threads", type=int, default=physical_cores())
    args = ap.parse_args()

    from llama_cpp import Llama

    path = resolve_model(args.model)
    # no KV snapshots: every run evaluates the prompt from scratch, like the raw loop
    gen = LlamaCppGenerator(path, context_window=2048, n_threads=args.threads, cache_bytes=0)
    with open(os.devnull, "w") as devnull, contextlib.redirect_stderr(devnull):
        llm = Llama(str(path), n_ctx=2048, n_threads=args.threads, n_threads_batch=args.threads, verbose=False)
    tokens = gen.tokenize_prompt(MESSAGES)
    raw_runs, arc_runs, faithful_runs = [], [], []
    archivist_run(gen, 8), raw_run(llm, tokens, 8), archivist_run(gen, 8, SOURCES)  # warm-up (reads the vocabulary)
    for _ in range(args.runs):
        raw_runs.append(raw_run(llm, tokens, args.tokens))
        arc_runs.append(archivist_run(gen, args.tokens))
        faithful_runs.append(archivist_run(gen, args.tokens, SOURCES))

    def med(runs: list[tuple[float, float, int]], i: int) -> float:
        return statistics.median(r[i] for r in runs)

    print(
        f"model {path.name}, threads {args.threads}, prompt {len(tokens)} tokens, "
        f"{args.tokens} tokens generated, {args.runs} runs (medians)"
    )
    print(f"{'':12}{'decode tok/s':>14}{'TTFT ms':>10}{'tokens':>8}")
    print(f"{'raw loop':12}{med(raw_runs, 1):>14.1f}{med(raw_runs, 0) * 1000:>10.1f}{med(raw_runs, 2):>8.0f}")
    print(f"{'archivist':12}{med(arc_runs, 1):>14.1f}{med(arc_runs, 0) * 1000:>10.1f}{med(arc_runs, 2):>8.0f}")
    f = faithful_runs
    print(f"{'faithful':12}{med(f, 1):>14.1f}{med(f, 0) * 1000:>10.1f}{med(f, 2):>8.0f}")
    print(
        f"decode ratio archivist/raw: {med(arc_runs, 1) / med(raw_runs, 1):.3f}  "
        f"TTFT ratio archivist/raw: {med(arc_runs, 0) / med(raw_runs, 0):.3f}  "
        f"faithful/free decode: {med(f, 1) / med(arc_runs, 1):.3f}"
    )


if __name__ == "__main__":
    main()
