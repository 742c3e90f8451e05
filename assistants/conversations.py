"""Conversations and messages, stored with SQLAlchemy next to the catalog."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, Float, ForeignKey, Integer, String, Text, delete, func, or_, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from ingest.catalog import Base, forget
from runtime.errors import ArchivistError


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class ConversationRow(Base):
    __tablename__ = "conversations"
    id: Mapped[int] = mapped_column(primary_key=True)
    assistant: Mapped[str] = mapped_column(String(100), index=True)
    title: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=_now)
    updated_at: Mapped[datetime] = mapped_column(default=_now)


class MessageRow(Base):
    __tablename__ = "messages"
    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(20))
    text: Mapped[str] = mapped_column(Text)
    # the user turn exactly as the model saw it (question with its passages), so later turns
    # repeat it verbatim and the KV cache of the conversation stays a valid prefix
    prompt_text: Mapped[str | None] = mapped_column(Text, nullable=True)
    citations_json: Mapped[str] = mapped_column(Text, default="[]")
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    evaluated_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    time_to_first_token: Mapped[float | None] = mapped_column(Float, nullable=True)
    total_time: Mapped[float] = mapped_column(Float, default=0.0)
    settings_json: Mapped[str] = mapped_column(Text, default="{}")
    # quotes, per-sentence grounding and timings (Answer.details_json) so past answers show them too
    details_json: Mapped[str] = mapped_column(Text, default="{}")
    feedback: Mapped[int | None] = mapped_column(Integer, nullable=True)  # +1 / -1
    feedback_comment: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=_now)


@dataclass(frozen=True)
class Conversation:
    id: int
    assistant: str
    title: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class StoredMessage:
    id: int
    role: str
    text: str
    prompt_text: str | None
    citations: list[dict[str, Any]]
    prompt_tokens: int
    evaluated_tokens: int
    completion_tokens: int
    time_to_first_token: float | None
    total_time: float
    settings: dict[str, Any]
    details: dict[str, Any]
    feedback: int | None
    feedback_comment: str | None
    created_at: datetime


class ConversationStore:
    """List, create, resume, rename, delete and export conversations."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine  # the workspace's, with its tables made by the migrations (ingest.schema)

    def create(self, assistant: str, title: str = "New conversation") -> Conversation:
        with Session(self.engine, expire_on_commit=False) as s, s.begin():
            row = ConversationRow(assistant=assistant, title=title[:200])
            s.add(row)
        return _conv(row)

    def get(self, conversation_id: int) -> Conversation:
        with Session(self.engine) as s:
            row = s.get(ConversationRow, conversation_id)
            if row is None:
                raise ArchivistError(f"no conversation with id {conversation_id}")
            return _conv(row)

    def all(self, assistant: str | None = None) -> list[Conversation]:
        with Session(self.engine) as s:
            q = select(ConversationRow).order_by(ConversationRow.updated_at.desc(), ConversationRow.id.desc())
            if assistant:
                q = q.where(ConversationRow.assistant == assistant)
            return [_conv(r) for r in s.scalars(q)]

    def search(self, assistant: str, text: str) -> list[Conversation]:
        """The assistant's conversations whose title or any message contains `text` (any case), newest first."""
        plain = text.strip().lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        needle = f"%{plain}%"
        with Session(self.engine) as s:
            hits = (
                select(MessageRow.conversation_id)
                .where(func.lower(MessageRow.text).like(needle, escape="\\"))
                .scalar_subquery()
            )
            q = (
                select(ConversationRow)
                .where(ConversationRow.assistant == assistant)
                .where(or_(func.lower(ConversationRow.title).like(needle, escape="\\"), ConversationRow.id.in_(hits)))
                .order_by(ConversationRow.updated_at.desc(), ConversationRow.id.desc())
            )
            return [_conv(r) for r in s.scalars(q)]

    def move_assistant(self, old: str, new: str) -> int:
        """The conversations of assistant `old` become `new`'s (the assistant was renamed); returns how many."""
        with Session(self.engine) as s, s.begin():
            rows = list(s.scalars(select(ConversationRow).where(ConversationRow.assistant == old)))
            for row in rows:
                row.assistant = new
            return len(rows)

    def rename(self, conversation_id: int, title: str) -> None:
        with Session(self.engine) as s, s.begin():
            row = s.get(ConversationRow, conversation_id)
            if row is None:
                raise ArchivistError(f"no conversation with id {conversation_id}")
            row.title = title[:200]

    def delete(self, conversation_id: int) -> None:
        with Session(self.engine) as s, s.begin():
            if s.get(ConversationRow, conversation_id) is None:
                raise ArchivistError(f"no conversation with id {conversation_id}")
            s.execute(delete(MessageRow).where(MessageRow.conversation_id == conversation_id))
            s.execute(delete(ConversationRow).where(ConversationRow.id == conversation_id))
        forget(self.engine)  # no copy left in SQLite's write-ahead log

    def messages(self, conversation_id: int) -> list[StoredMessage]:
        with Session(self.engine) as s:
            rows = s.scalars(
                select(MessageRow).where(MessageRow.conversation_id == conversation_id).order_by(MessageRow.id)
            )
            return [_msg(r) for r in rows]

    def add_turn(self, conversation_id: int, user: dict[str, Any], assistant: dict[str, Any]) -> tuple[int, int]:
        """Store a question and its answer together; returns their message ids."""
        with Session(self.engine, expire_on_commit=False) as s, s.begin():
            conv = s.get(ConversationRow, conversation_id)
            if conv is None:
                raise ArchivistError(f"no conversation with id {conversation_id}")
            u = MessageRow(conversation_id=conversation_id, role="user", **user)
            a = MessageRow(conversation_id=conversation_id, role="assistant", **assistant)
            s.add_all([u, a])
            if conv.title == "New conversation":
                conv.title = user["text"][:80]
            conv.updated_at = _now()
        return u.id, a.id

    def delete_last_turn(self, conversation_id: int) -> None:
        """Remove the last question and its answer (to regenerate it)."""
        with Session(self.engine) as s, s.begin():
            ids = list(
                s.scalars(
                    select(MessageRow.id)
                    .where(MessageRow.conversation_id == conversation_id)
                    .order_by(MessageRow.id.desc())
                    .limit(2)
                )
            )
            s.execute(delete(MessageRow).where(MessageRow.id.in_(ids)))

    def feedback(self, message_id: int, value: int, comment: str | None = None) -> None:
        if value not in (1, -1):
            raise ArchivistError("feedback must be +1 (thumbs up) or -1 (thumbs down)")
        with Session(self.engine) as s, s.begin():
            row = s.get(MessageRow, message_id)
            if row is None or row.role != "assistant":
                raise ArchivistError(f"no answer with message id {message_id}")
            row.feedback, row.feedback_comment = value, comment

    def export_markdown(self, conversation_id: int) -> str:
        """The conversation as Markdown, each answer followed by its sources."""
        conv = self.get(conversation_id)
        out = [f"# {conv.title}", "", f"Assistant: {conv.assistant} · {conv.created_at:%Y-%m-%d %H:%M} UTC", ""]
        for m in self.messages(conversation_id):
            out += [f"**{'You' if m.role == 'user' else conv.assistant}:**", "", m.text, ""]
            unsupported = [x["text"] for x in m.details.get("sentences", []) if not x.get("supported", True)]
            if unsupported:
                out += ["Not supported by the documents:", *[f"- {t}" for t in unsupported], ""]
            if m.details.get("quotes") and m.details.get("mode") != "extractive":
                out.append("What the documents say:")
                out += [
                    f"> {' '.join(q['text'].split())} ({q['document']}, page {q['page']})" for q in m.details["quotes"]
                ]
                out.append("")
            if m.citations:
                out.append("Sources:")
                for c in m.citations:
                    page = f", page {c['page']}" if c.get("page") else ""
                    out.append(f"- [{c['n']}] {c['document']}{page}")
                out.append("")
        return "\n".join(out)


def _conv(r: ConversationRow) -> Conversation:
    return Conversation(r.id, r.assistant, r.title, r.created_at, r.updated_at)


def _msg(r: MessageRow) -> StoredMessage:
    return StoredMessage(
        r.id,
        r.role,
        r.text,
        r.prompt_text,
        json.loads(r.citations_json),
        r.prompt_tokens,
        r.evaluated_tokens,
        r.completion_tokens,
        r.time_to_first_token,
        r.total_time,
        json.loads(r.settings_json),
        json.loads(r.details_json or "{}"),
        r.feedback,
        r.feedback_comment,
        r.created_at,
    )
