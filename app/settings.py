"""Every setting of a workspace's services in one object. Environment variables (ARCHIVIST_*) and
the CLI's flags map onto it; docs/settings.md lists them all in one table."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ingest.embed import DEFAULT_EMBEDDER
from ingest.errors import IngestError
from ingest.ocr import OcrSettings
from ingest.pipeline import IngestLimits
from runtime.errors import ArchivistError

# setting -> environment variable (the CLI's --home, --max-mb, --parse-timeout, --verbose override them)
ENV: dict[str, str] = {
    "home": "ARCHIVIST_HOME",
    "embedder": "ARCHIVIST_EMBEDDER",
    "max_file_mb": "ARCHIVIST_MAX_FILE_MB",
    "parse_timeout_s": "ARCHIVIST_PARSE_TIMEOUT_S",
    "log_level": "ARCHIVIST_LOG_LEVEL",
    "database_url": "ARCHIVIST_DATABASE_URL",
    "ocr": "ARCHIVIST_OCR",
    "ocr_languages": "ARCHIVIST_OCR_LANGUAGES",
    "ocr_engine": "ARCHIVIST_OCR_ENGINE",
}


class Settings(BaseModel):
    """What the services of one workspace run with."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    home: Path = Field(default_factory=lambda: Path.home() / ".archivist", description="the workspace folder")
    embedder: str = Field(DEFAULT_EMBEDDER, description="sentence-transformers model (name or folder)")
    max_file_mb: float = Field(200.0, gt=0, le=10_000, description="largest file ingested, every way in")
    parse_timeout_s: float = Field(600.0, gt=0, le=86_400, description="seconds one file may take to parse")
    log_level: str = Field("INFO", pattern=r"(?i)^(DEBUG|INFO|WARNING|ERROR)$", description="log file level")
    database_url: str | None = Field(
        None,
        description="a PostgreSQL server (with pgvector) holding the catalog, vectors and full text, "
        "e.g. postgresql+psycopg://user:password@host:5432/archivist (default: the SQLite file in the workspace)",
    )

    ocr: Literal["auto", "always", "off"] = Field(
        "auto",
        description="reading pictures: auto (scanned pages, image files), always (every PDF page from its image), off",
    )
    ocr_languages: str = Field(
        "en", description="languages OCR reads, comma-separated (the engine's codes: en, de, fr ...)"
    )
    ocr_engine: Literal["rapidocr", "tesseract"] = Field(
        "rapidocr", description="OCR engine: rapidocr (bundled) or tesseract (where installed)"
    )

    @field_validator("database_url")
    @classmethod
    def _postgres_only(cls, v: str | None) -> str | None:
        if v is not None and not re.match(r"^postgres(ql)?(\+psycopg)?://", v):
            raise ValueError("must be a PostgreSQL URL such as postgresql+psycopg://user:password@host:5432/archivist")
        return v

    @classmethod
    def load(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Defaults, then the environment, then explicit values (flags); None means 'not given'."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {k: env[v] for k, v in ENV.items() if env.get(v)}
        values.update({k: v for k, v in overrides.items() if v is not None})
        try:
            settings = cls.model_validate(values)
        except ValidationError as exc:
            problems = []
            for e in exc.errors():
                field = str(e["loc"][0]) if e["loc"] else "?"
                shown = _without_password(str(values.get(field)))
                problems.append(f"{field} ({ENV.get(field, 'flag')}={shown!r}): {e['msg']}")
            raise ArchivistError("bad setting: " + "; ".join(problems)) from None
        return settings.model_copy(update={"home": Path(settings.home).expanduser().resolve()})

    def ingest_limits(self) -> IngestLimits:
        """The limits every way in (CLI, API, app) applies to a file."""
        return IngestLimits(
            max_file_bytes=int(self.max_file_mb * 2**20), parse_timeout_s=self.parse_timeout_s, ocr=self.ocr_settings()
        )

    def ocr_settings(self) -> OcrSettings:
        """How pictures are read, checked (an unknown language or a missing engine named)."""
        langs = tuple(x.strip() for x in self.ocr_languages.split(",") if x.strip())
        try:
            return OcrSettings(self.ocr, langs, self.ocr_engine).check()
        except IngestError as exc:
            raise ArchivistError(f"bad setting: {exc}") from None


def _without_password(value: str) -> str:
    """A setting as an error may show it: a URL's password starred out."""
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", value)
