"""Answers of an assistant, sentence by sentence with the verifier's label, for reading by hand:
what a reader sees (the shown text), what was left out as unsupported, and the quotes.

    python bench/read_answers.py --home WORKSPACE --collection C --set bench/eval/third-dev.jsonl \
        [--ids radmin-01,py-ctl-03] [--first 10] [--assistant bench/eval/answer-settings/default.yaml]

Used for issue 39's "read 20 answers by hand" (10 questions each of the third and fourth sets, their
own workspaces): the reader judges each model-written sentence right or wrong and counts where the
label disagrees.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.services import Services
from assistants.loader import load_assistant
from assistants.schema import KnowledgeSettings


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--home", required=True)
    ap.add_argument("--collection", "-c", required=True)
    ap.add_argument("--set", required=True, help="a question set (JSONL with id, question, answer)")
    ap.add_argument("--ids", default="", help="comma-separated question ids (default: the first --first)")
    ap.add_argument("--first", type=int, default=10)
    ap.add_argument("--assistant", default=str(Path(__file__).parent / "eval" / "answer-settings" / "default.yaml"))
    args = ap.parse_args()

    svc = Services.create(args.home)
    bot = load_assistant(Path(args.assistant))
    bot = bot.model_copy(update={"knowledge": KnowledgeSettings(collections=[args.collection])})
    questions = [json.loads(line) for line in Path(args.set).read_text().splitlines() if line.strip()]
    wanted = [i for i in args.ids.split(",") if i]
    questions = [q for q in questions if q["id"] in wanted] if wanted else questions[: args.first]
    for q in questions:
        answer = svc.chat.ask(bot, q["question"], seed=0, grounding="mark").result()
        print(f"\n===== {q['id']}: {q['question']}\n  reference: {q.get('answer', '')}\n  shown: {answer.shown}")
        for s in answer.grounding.claims if answer.grounding else []:
            own = " (the documents' own words)" if s.reason == "the documents' own words" else ""
            print(f"  [{s.label}{'' if s.claim else ', no claim'}]{own} {' '.join(s.text.split())}")
        for left in answer.left_out:
            print(f"  [left out] {left}")
        print("  SHOWN:", " ".join(answer.text.split()))


if __name__ == "__main__":
    main()
