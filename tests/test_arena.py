"""Arena: blind battles stored against each assistant's configuration, votes revealed once,
the automatic judge, the leaderboard, and the CLI, on the real store, embedder and search."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from assistants.arena import Arena, Side, config_hash, judge, leaderboard
from assistants.loader import parse_assistant
from retriever.evaluate import Question
from runtime.errors import ArchivistError

QUESTIONS = [
    Question(
        "q1", "harbor.pdf", "How often is the lighthouse lens cleaned?", (2,), ("cleaned every Tuesday by the keeper",)
    ),
    Question(
        "q2", "harbor.pdf", "When do puffins nest on the cliffs?", (4,), ("Puffins nest on the cliffs below the tower",)
    ),
    Question("q3", "harbor.pdf", "What voltage does the lamp run on?", (2,), ("The lamp runs on a 24 volt supply",)),
    Question("q4", "harbor.pdf", "Who designed the harbor's submarine base?", (), (), unanswerable=True),
]


def extractive(name: str, mode: str, **extra: Any) -> Any:
    data = {
        "name": name,
        "knowledge": {"collections": ["harbor"]},
        "answer_mode": "extractive",
        "retrieval": {"mode": mode, "top_k": 2},
        **extra,
    }
    return parse_assistant(data, "test")


def side(name: str, recall: float | None, supported: float | None, refused: bool = False) -> Side:
    return Side(name, "h" + name, "text", {}, [], refused, recall, supported, 0.1)


def test_the_judge_needs_better_on_one_measure_and_not_worse_on_the_other() -> None:
    assert judge(side("a", 0.8, 1.0), side("b", 0.4, 1.0)) == "a"
    assert judge(side("a", 0.4, 0.5), side("b", 0.4, 1.0)) == "b"
    assert judge(side("a", 0.8, 0.5), side("b", 0.4, 1.0)) == "tie"  # more evidence, less support
    assert judge(side("a", 0.5, 1.0), side("b", 0.5, 1.0)) == "tie"
    assert judge(side("a", 0.0, None, refused=True), side("b", 0.6, 0.5)) == "b"  # refusing an answerable one
    assert judge(side("a", None, None, refused=True), side("b", None, 0.5), unanswerable=True) == "a"
    assert judge(side("a", None, None, refused=True), side("b", None, None, refused=True), unanswerable=True) == "tie"


def test_a_battle_hides_the_names_until_the_single_vote(harbor) -> None:  # type: ignore[no-untyped-def]
    svc, _ = harbor
    kw, dense = extractive("kw", "keyword"), extractive("dense", "dense")
    arena = Arena(svc.chat, svc.arena_store, seed=3)
    battle = arena.battle([kw, dense], "How often is the lighthouse lens cleaned?")
    assert battle.vote is None and {battle.a.name, battle.b.name} == {"kw", "dense"}
    assert "cleaned every Tuesday" in battle.a.text and "cleaned every Tuesday" in battle.b.text
    assert battle.a.citations and battle.a.details["quotes"]  # shown with citations and quotes, as in chat
    hidden = json.dumps(battle.to_json(reveal=False))
    assert '"kw"' not in hidden and '"dense"' not in hidden and config_hash(kw) not in hidden
    assert svc.arena_store.battles() == []  # not voted: not rated
    voted = arena.vote(battle.id, "a")
    assert voted.vote == "a" and voted.a.name == battle.a.name
    with pytest.raises(ArchivistError, match="already has a vote"):
        arena.vote(battle.id, "b")
    other = arena.battle([kw, dense], "When do puffins nest?")
    with pytest.raises(ArchivistError, match="a, b, tie, bad"):
        arena.vote(other.id, "left")
    with pytest.raises(ArchivistError, match="two different assistants"):
        arena.battle([kw, kw], "anything")


def test_edits_start_a_new_row_and_history_survives_deletion(harbor) -> None:  # type: ignore[no-untyped-def]
    svc, _ = harbor
    kw, dense = extractive("kw", "keyword"), extractive("dense", "dense")
    kw2 = extractive("kw", "keyword", retrieval={"mode": "keyword", "top_k": 3})  # same name, edited
    assert config_hash(kw) != config_hash(kw2) and config_hash(kw) == config_hash(extractive("kw", "keyword"))
    arena = Arena(svc.chat, svc.arena_store, seed=1)
    for pair, vote in (([kw, dense], "tie"), ([kw2, dense], "bad"), ([kw2, dense], "a")):
        arena.vote(arena.battle(pair, "How often is the lighthouse lens cleaned?").id, vote)
    current = {"kw": config_hash(kw2)}  # kw was edited into kw2; dense was deleted
    rows = leaderboard(svc.arena_store.battles("human"), current)
    by = {(r.name, r.hash): r for r in rows}
    assert set(by) == {("kw", config_hash(kw)), ("kw", config_hash(kw2)), ("dense", config_hash(dense))}
    assert by[("kw", config_hash(kw2))].current and not by[("kw", config_hash(kw))].current
    assert not by[("dense", config_hash(dense))].current  # gone from the workspace, still rated
    assert by[("dense", config_hash(dense))].votes == 3 and sum(r.votes for r in rows) == 6
    assert all(not r.shown for r in rows)  # fewer than 10 votes each
    lines = list(svc.arena_store.export_jsonl())
    assert len(lines) == 3 and all(json.loads(x)["a"]["name"] in ("kw", "dense") for x in lines)


def test_the_automatic_arena_answers_once_per_assistant_and_judges_every_pair(harbor) -> None:  # type: ignore[no-untyped-def]
    svc, _ = harbor
    players = [extractive("kw", "keyword"), extractive("dense", "dense"), extractive("hybrid", "hybrid")]
    seen: list[tuple[int, int]] = []
    battles = Arena(svc.chat, svc.arena_store, seed=0).auto(
        players, QUESTIONS, progress=lambda d, n: seen.append((d, n))
    )
    assert len(battles) == len(QUESTIONS) * 3 and seen[-1] == (len(QUESTIONS) * 3, len(QUESTIONS) * 3)
    assert all(b.mode == "auto" and b.vote in ("a", "b", "tie") for b in battles)
    q1 = [b for b in battles if b.question_id == "q1"]
    assert all(b.a.evidence_recall == 1.0 and b.b.evidence_recall == 1.0 for b in q1)  # each finds the sentence
    assert all(b.vote == "tie" for b in q1)
    rows = leaderboard(svc.arena_store.battles("auto"))
    assert {r.name for r in rows} == {"kw", "dense", "hybrid"} and all(r.answers == len(QUESTIONS) for r in rows)
    assert svc.arena_store.battles("human") == []


@pytest.mark.slow
def test_cli_battle_vote_leaderboard_and_export(harbor, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import yaml

    svc, _ = harbor
    folder = svc.home / "assistants"
    folder.mkdir(parents=True, exist_ok=True)
    for a in (extractive("kw", "keyword"), extractive("dense", "dense")):
        (folder / f"{a.name}.yaml").write_text(yaml.safe_dump(a.model_dump(mode="json", exclude_defaults=True)))
    qa = tmp_path / "qa.jsonl"
    qa.write_text("\n".join(json.dumps(q.__dict__ | {"pages": list(q.pages)}) for q in QUESTIONS[:2]) + "\n")
    cli = [sys.executable, "-m", "app.cli", "--home", str(svc.home)]
    run = subprocess.run(
        [*cli, "arena", "kw", "dense", "--questions", str(qa)],
        input="a\nt\n",
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr
    out = run.stdout
    assert out.count("Assistant A") == 2 and out.count("Assistant B") == 2
    assert out.index("Assistant B") < out.index("A was")  # both answers before the names
    assert "cleaned every Tuesday" in out
    board = json.loads(
        subprocess.run([*cli, "arena", "leaderboard", "--json"], capture_output=True, text=True, check=True).stdout
    )
    assert board["mode"] == "human" and sorted(r["votes"] for r in board["rows"]) == [2, 2]
    assert all(r["current"] for r in board["rows"])
    auto = json.loads(
        subprocess.run(
            [*cli, "arena", "kw", "dense", "--auto", "--questions", str(qa), "--json"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    assert auto["mode"] == "auto" and sorted(r["votes"] for r in auto["rows"]) == [2, 2]
    dump = tmp_path / "battles.jsonl"
    subprocess.run([*cli, "arena", "export", "-o", str(dump)], check=True, capture_output=True)
    rows = [json.loads(x) for x in dump.read_text().splitlines()]
    assert len(rows) == 4 and {r["mode"] for r in rows} == {"human", "auto"}
    bad = subprocess.run([*cli, "arena", "kw"], capture_output=True, text=True)
    assert bad.returncode == 1 and "two or more different assistants" in bad.stderr
