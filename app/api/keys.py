"""API keys: created and revoked with the CLI, stored hashed (SHA-256), optionally limited to some assistants."""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from ingest.catalog import Base
from runtime.errors import ArchivistError

PREFIX = "ak-"


class ApiKey(Base):
    __tablename__ = "api_keys"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    hint: Mapped[str] = mapped_column(String(20))
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    assistants_json: Mapped[str] = mapped_column(Text, default="[]")
    created_at: Mapped[datetime] = mapped_column(default=lambda: datetime.now(UTC).replace(tzinfo=None))
    revoked_at: Mapped[datetime | None] = mapped_column(nullable=True)


@dataclass(frozen=True)
class KeyInfo:
    """A key as listed (never the secret itself)."""

    name: str
    hint: str
    assistants: list[str]
    created_at: datetime
    revoked: bool

    def allows(self, assistant: str) -> bool:
        return not self.assistants or assistant in self.assistants


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class KeyStore:
    """API keys in the workspace database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine  # the workspace's, with its tables made by the migrations (ingest.schema)

    def create(self, name: str, assistants: list[str] | None = None) -> str:
        """A new key; the secret is returned once and only its hash is kept."""
        secret = PREFIX + secrets.token_urlsafe(32)
        with Session(self.engine) as s, s.begin():
            if s.scalar(select(ApiKey).where(ApiKey.name == name)) is not None:
                raise ArchivistError(f"an API key named {name!r} already exists; revoke it or pick another name")
            s.add(
                ApiKey(
                    name=name,
                    hint=secret[:7] + "...",
                    digest=_digest(secret),
                    assistants_json=json.dumps(assistants or []),
                )
            )
        return secret

    def revoke(self, name: str) -> None:
        with Session(self.engine) as s, s.begin():
            key = s.scalar(select(ApiKey).where(ApiKey.name == name, ApiKey.revoked_at.is_(None)))
            if key is None:
                raise ArchivistError(f"no active API key named {name!r}")
            key.revoked_at = datetime.now(UTC).replace(tzinfo=None)

    def list(self) -> list[KeyInfo]:
        with Session(self.engine) as s:
            return [_info(k) for k in s.scalars(select(ApiKey).order_by(ApiKey.name))]

    def active_count(self) -> int:
        return sum(1 for k in self.list() if not k.revoked)

    def ever_created(self) -> bool:
        """Whether any key was ever made: once one was, the API stays closed even with all revoked."""
        return bool(self.list())

    def check(self, secret: str) -> KeyInfo | None:
        """The active key with this secret, or None."""
        with Session(self.engine) as s:
            key = s.scalar(select(ApiKey).where(ApiKey.digest == _digest(secret), ApiKey.revoked_at.is_(None)))
            return _info(key) if key is not None else None


def _info(k: ApiKey) -> KeyInfo:
    return KeyInfo(k.name, k.hint, json.loads(k.assistants_json), k.created_at, k.revoked_at is not None)
