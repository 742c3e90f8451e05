"""Arena: blind battles between assistants, stored with the other data, rated by Bradley-Terry.

A battle is one question answered in full by two assistants, shown side by side in random order
with the names hidden until the vote (a, b, tie, bad). Every battle is stored against each
assistant's name and a hash of its full configuration, so an edited assistant starts a new
leaderboard row and history survives its deletion. The automatic arena judges without a model:
a side wins when its shown answer holds more of the question's evidence and no fewer of its
sentences are supported, or the other way round (better on one, not worse on the other); on an
unanswerable question the side that refuses wins; anything else is a tie.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from itertools import combinations
from typing import Any

from sqlalchemy import Engine, Float, Integer, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from assistants.answer_eval import evidence_recall
from assistants.chat import ChatService
from assistants.ratings import MIN_VOTES, rate
from assistants.schema import Assistant
from ingest.catalog import Base
from retriever.evaluate import Question
from runtime.errors import ArchivistError

VOTES = {"a": 1.0, "b": 0.0, "tie": 0.5, "bad": 0.5}  # A's score; "both bad" is a tie
VOTE_LABELS = {"a": "A is better", "b": "B is better", "tie": "Tie", "bad": "Both are bad"}
MODES = ("human", "auto")


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def config_hash(assistant: Assistant) -> str:
    """A short hash of the assistant's full configuration (every field, defaults included)."""
    blob = json.dumps(assistant.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


class BattleRow(Base):
    __tablename__ = "arena_battles"
    id: Mapped[int] = mapped_column(primary_key=True)
    mode: Mapped[str] = mapped_column(String(10), index=True)
    question: Mapped[str] = mapped_column(Text)
    question_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    a_name: Mapped[str] = mapped_column(String(100), index=True)
    a_hash: Mapped[str] = mapped_column(String(12))
    b_name: Mapped[str] = mapped_column(String(100), index=True)
    b_hash: Mapped[str] = mapped_column(String(12))
    a_json: Mapped[str] = mapped_column(Text)
    b_json: Mapped[str] = mapped_column(Text)
    vote: Mapped[str | None] = mapped_column(String(4), nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=_now)
    voted_at: Mapped[datetime | None] = mapped_column(nullable=True)
    seconds: Mapped[float] = mapped_column(Float, default=0.0)
    seed: Mapped[int] = mapped_column(Integer, default=0)


@dataclass
class Side:
    """One assistant's answer in a battle, with what the automatic judge measures of it."""

    name: str
    hash: str
    text: str
    details: dict[str, Any]
    citations: list[dict[str, Any]]
    refused: bool
    evidence_recall: float | None  # share of the question's evidence words in the shown answer
    supported: float | None  # share of the shown answer's sentences the passages support
    seconds: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Battle:
    id: int
    mode: str
    question: str
    question_id: str | None
    a: Side
    b: Side
    vote: str | None
    created_at: datetime

    def to_json(self, reveal: bool = True) -> dict[str, Any]:
        """As exported; `reveal` False hides the names and hashes (before the vote)."""
        sides = {}
        for key, side in (("a", self.a), ("b", self.b)):
            d = side.to_json()
            if not reveal:
                d.pop("name"), d.pop("hash")
            sides[key] = d
        return {
            "id": self.id,
            "mode": self.mode,
            "question": self.question,
            "question_id": self.question_id,
            **sides,
            "vote": self.vote,
            "created_at": self.created_at.isoformat(timespec="seconds"),
        }


def _battle(row: BattleRow) -> Battle:
    return Battle(
        row.id,
        row.mode,
        row.question,
        row.question_id,
        Side(**json.loads(row.a_json)),
        Side(**json.loads(row.b_json)),
        row.vote,
        row.created_at,
    )


class ArenaStore:
    """Battles in the workspace's database, next to conversations and the catalog."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine  # the workspace's, with its tables made by the migrations (ingest.schema)

    def add(
        self,
        mode: str,
        question: str,
        a: Side,
        b: Side,
        *,
        question_id: str | None = None,
        vote: str | None = None,
        seconds: float = 0.0,
        seed: int = 0,
    ) -> Battle:
        if mode not in MODES:
            raise ArchivistError(f"arena mode {mode!r}: use one of {', '.join(MODES)}")
        if vote is not None and vote not in VOTES:
            raise ArchivistError(f"vote {vote!r}: use one of {', '.join(VOTES)}")
        with Session(self.engine, expire_on_commit=False) as s, s.begin():
            row = BattleRow(
                mode=mode,
                question=question,
                question_id=question_id,
                a_name=a.name,
                a_hash=a.hash,
                b_name=b.name,
                b_hash=b.hash,
                a_json=json.dumps(a.to_json()),
                b_json=json.dumps(b.to_json()),
                vote=vote,
                voted_at=_now() if vote else None,
                seconds=seconds,
                seed=seed,
            )
            s.add(row)
        return _battle(row)

    def get(self, battle_id: int) -> Battle:
        with Session(self.engine) as s:
            row = s.get(BattleRow, battle_id)
            if row is None:
                raise ArchivistError(f"no battle with id {battle_id}")
            return _battle(row)

    def vote(self, battle_id: int, vote: str) -> Battle:
        """Record the vote once; the names are revealed by the returned battle."""
        if vote not in VOTES:
            raise ArchivistError(f"vote {vote!r}: use one of {', '.join(VOTES)}")
        with Session(self.engine, expire_on_commit=False) as s, s.begin():
            row = s.get(BattleRow, battle_id)
            if row is None:
                raise ArchivistError(f"no battle with id {battle_id}")
            if row.vote is not None:
                raise ArchivistError(f"battle {battle_id} already has a vote ({row.vote})")
            row.vote, row.voted_at = vote, _now()
        return _battle(row)

    def battles(self, mode: str | None = None, voted: bool = True) -> list[Battle]:
        with Session(self.engine) as s:
            q = select(BattleRow).order_by(BattleRow.id)
            if mode:
                q = q.where(BattleRow.mode == mode)
            if voted:
                q = q.where(BattleRow.vote.is_not(None))
            return [_battle(r) for r in s.scalars(q)]

    def export_jsonl(self, mode: str | None = None) -> Iterator[str]:
        for b in self.battles(mode, voted=False):
            yield json.dumps(b.to_json(), ensure_ascii=False)


def answer_side(chat: ChatService, assistant: Assistant, question: str, evidence: Sequence[str] = ()) -> Side:
    """The assistant's full answer, as chat shows it, with the judge's two measures."""
    import time

    t0 = time.perf_counter()
    answer = chat.ask(assistant, question).result()
    seconds = time.perf_counter() - t0
    details = answer.details_json(context=True)
    if answer.refused:
        supported: float | None = None
    elif answer.grounding is not None:
        supported = answer.grounding.supported_share
    else:
        supported = 1.0 if answer.mode == "extractive" else None  # quotes are the documents' own words
    recall = None
    if evidence:
        recall = 0.0 if answer.refused else evidence_recall(answer.text, *evidence)
    return Side(
        assistant.name,
        config_hash(assistant),
        answer.text,
        details,
        [c.to_json() for c in answer.citations],
        answer.refused,
        recall,
        supported,
        round(seconds, 3),
    )


def judge(a: Side, b: Side, unanswerable: bool = False) -> str:
    """The automatic vote: better on one measure and not worse on the other wins; else a tie."""
    if unanswerable:
        return "tie" if a.refused == b.refused else ("a" if a.refused else "b")
    ra, rb = a.evidence_recall or 0.0, b.evidence_recall or 0.0
    sa = 0.0 if a.refused else (a.supported if a.supported is not None else 0.0)
    sb = 0.0 if b.refused else (b.supported if b.supported is not None else 0.0)
    eps = 1e-9
    if (ra > rb + eps and sa >= sb - eps) or (ra >= rb - eps and sa > sb + eps):
        return "a"
    if (rb > ra + eps and sb >= sa - eps) or (rb >= ra - eps and sb > sa + eps):
        return "b"
    return "tie"


class Arena:
    """Battles between assistants: the human arena (vote later) and the automatic one."""

    def __init__(self, chat: ChatService, store: ArenaStore, seed: int | None = None) -> None:
        self.chat, self.store = chat, store
        self.rng = random.Random(seed)

    def battle(
        self,
        assistants: Sequence[Assistant],
        question: str,
        *,
        question_id: str | None = None,
        evidence: Sequence[str] = (),
    ) -> Battle:
        """Two of `assistants` at random answer `question` in full; sides in random order; no vote yet."""
        if len({a.name for a in assistants}) < 2:
            raise ArchivistError("a battle needs two different assistants; pick at least two")
        if not question.strip():
            raise ArchivistError("a battle needs a question")
        first, second = self.rng.sample(list(assistants), 2)
        while second.name == first.name:
            first, second = self.rng.sample(list(assistants), 2)
        import time

        t0 = time.perf_counter()
        a = answer_side(self.chat, first, question, evidence)
        b = answer_side(self.chat, second, question, evidence)
        return self.store.add("human", question, a, b, question_id=question_id, seconds=time.perf_counter() - t0)

    def vote(self, battle_id: int, vote: str) -> Battle:
        return self.store.vote(battle_id, vote)

    def auto(
        self,
        assistants: Sequence[Assistant],
        questions: Sequence[Question],
        progress: Callable[[int, int], None] | None = None,
    ) -> list[Battle]:
        """Every pair answers every question (each assistant answers once per question) and is judged."""
        names = [a.name for a in assistants]
        if len(set(names)) < 2:
            raise ArchivistError("the automatic arena needs two or more different assistants")
        if not questions:
            raise ArchivistError("the automatic arena needs questions (--questions QA.jsonl)")
        out: list[Battle] = []
        steps = len(questions) * len(assistants)
        done = 0
        for q in questions:
            sides = []
            for assistant in assistants:
                sides.append(answer_side(self.chat, assistant, q.question, q.evidence))
                done += 1
                if progress:
                    progress(done, steps)
            for i, j in combinations(range(len(sides)), 2):
                a, b = (sides[i], sides[j]) if self.rng.random() < 0.5 else (sides[j], sides[i])
                out.append(
                    self.store.add(
                        "auto",
                        q.question,
                        a,
                        b,
                        question_id=q.id,
                        vote=judge(a, b, q.unanswerable),
                        seconds=a.seconds + b.seconds,
                    )
                )
        return out


@dataclass(frozen=True)
class Row:
    """One leaderboard line: an assistant's configuration, its rating and what was measured of it."""

    name: str
    hash: str
    rating: float
    lower: float
    upper: float
    rank: int
    votes: int
    win_rate: float
    shown: bool  # MIN_VOTES votes or more
    provisional: bool  # interval wider than +-100
    current: bool  # the workspace still has this name with this configuration
    evidence_recall: float | None
    supported: float | None
    answers: int

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("rating", "lower", "upper"):
            d[k] = round(d[k], 1)
        for k in ("win_rate", "evidence_recall", "supported"):
            d[k] = None if d[k] is None else round(d[k], 3)
        return d


def leaderboard(
    battles: Sequence[Battle], current: dict[str, str] | None = None, *, seed: int = 0, rounds: int = 200
) -> list[Row]:
    """Ratings per (name, configuration hash) from voted battles, best first. `current` maps the
    workspace's assistant names to their hashes now (to mark rows of deleted or edited ones)."""
    voted = [b for b in battles if b.vote in VOTES]
    players: dict[tuple[str, str], int] = {}
    measures: dict[tuple[str, str], dict[tuple[str, str], Side]] = {}
    games = []
    for b in voted:
        ia = players.setdefault((b.a.name, b.a.hash), len(players))
        ib = players.setdefault((b.b.name, b.b.hash), len(players))
        games.append((ia, ib, VOTES[b.vote or "tie"]))
        # an answer appears in several battles (auto: one per pair): count each once
        measures.setdefault((b.a.name, b.a.hash), {})[(b.question, b.a.text)] = b.a
        measures.setdefault((b.b.name, b.b.hash), {})[(b.question, b.b.text)] = b.b
    ratings = rate(games, len(players), seed=seed, rounds=rounds)
    rows = []
    for (name, h), i in players.items():
        r = ratings[i]
        unique = measures[(name, h)].values()
        rec = [s.evidence_recall for s in unique if s.evidence_recall is not None]
        sup = [s.supported for s in unique if s.supported is not None]
        rows.append(
            Row(
                name,
                h,
                r.rating,
                r.lower,
                r.upper,
                r.rank,
                r.votes,
                r.win_rate,
                r.votes >= MIN_VOTES,
                r.provisional,
                current is not None and current.get(name) == h,
                sum(rec) / len(rec) if rec else None,
                sum(sup) / len(sup) if sup else None,
                len(unique),
            )
        )
    return sorted(rows, key=lambda r: (r.rank, -r.rating))
