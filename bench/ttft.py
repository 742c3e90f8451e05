"""Time to first token over a 5-turn conversation, with the KV cache and without it, in one run.

Ingests R-intro.pdf (Debian's r-doc-pdf) into a temporary workspace, then runs the same
conversation twice, turn by turn: once on a model that keeps KV snapshots across turns and
once on a model that evaluates every prompt from scratch (greedy decoding, so both see the
same prompts, up to the random passage marker). Prints per turn: prompt tokens, tokens actually evaluated, and time to first
token for both, and their ratio.

    python bench/ttft.py [--pdf /usr/share/R/doc/manual/R-intro.pdf] [--max-tokens 48]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.services import Services
from assistants import parse_assistant
from assistants.chat import ChatService
from assistants.conversation_service import ConversationService
from ingest import ingest_paths
from runtime import LlamaCppGenerator, resolve_model

TURNS = [
    "How do I create a vector of numbers in R?",
    "And how do I find out its length?",
    "How can I sort it?",
    "How do I write a data frame to a file?",
    "And how do I read it back in later?",
]


class OnePool:
    """A pool that always hands out one given model."""

    def __init__(self, model: LlamaCppGenerator) -> None:
        self.model = model

    def get(self, *_a: object, **_k: object) -> LlamaCppGenerator:
        return self.model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pdf", type=Path, default=Path("/usr/share/R/doc/manual/R-intro.pdf"))
    ap.add_argument("--max-tokens", type=int, default=48)
    ap.add_argument("--context", type=int, default=8192)
    args = ap.parse_args()

    svc = Services.create(tempfile.mkdtemp(prefix="archivist-ttft-"))
    ingest_paths([args.pdf], "manual", svc.store, svc.embedder)
    assistant = parse_assistant(
        {
            "name": "manual",
            "knowledge": {"collections": ["manual"]},
            "retrieval": {"top_k": 4},
            "model": {"context_window": args.context, "max_tokens": args.max_tokens, "temperature": 0},
        },
        "bench",
    )
    path = resolve_model(assistant.model.path)
    runs = {}
    for label, cache in (("cache", 512 * 2**20), ("no cache", 0)):
        model = LlamaCppGenerator(path, context_window=args.context, cache_bytes=cache)
        chat = ChatService(svc.store, svc.embedder, OnePool(model))  # type: ignore[arg-type]
        runs[label] = (ConversationService(chat, svc.conversations), svc.conversations.create("manual").id)
    print(f"model {path.name}, {args.pdf.name}, context {args.context}, answers up to {args.max_tokens} tokens")
    print(f"{'turn':>4}{'prompt':>8}{'evaluated':>11}{'TTFT cache':>12}{'evaluated':>11}{'TTFT none':>11}{'ratio':>7}")
    for i, q in enumerate(TURNS, start=1):
        out = {}
        for label, (conv, cid) in runs.items():
            out[label] = conv.ask(assistant, cid, q).result()
        c, n = out["cache"].stats, out["no cache"].stats
        ratio = (c.time_to_first_token or 0) / (n.time_to_first_token or 1)
        print(
            f"{i:>4}{c.prompt_tokens:>8}{c.evaluated_tokens:>11}{(c.time_to_first_token or 0) * 1000:>10.0f}ms"
            f"{n.evaluated_tokens:>11}{(n.time_to_first_token or 0) * 1000:>9.0f}ms{ratio:>7.2f}"
        )


if __name__ == "__main__":
    main()
