"""CLI command bodies: parse nothing, compute nothing; call services and print. One module per
group of commands; `app.cli` maps each subcommand to one of these functions."""

from __future__ import annotations

from app.commands.answers import (
    ask,
    chat,
    conversations_delete,
    conversations_export,
    conversations_list,
    conversations_rename,
    feedback,
    print_details,
    print_quotes,
    print_tools,
    run,
)
from app.commands.assistants import (
    assistants_delete,
    assistants_duplicate,
    assistants_export,
    assistants_import,
    assistants_list,
    assistants_new,
    assistants_schema,
)
from app.commands.backup import backup, restore
from app.commands.base import services
from app.commands.knowledge import (
    collections,
    collections_delete,
    collections_rename,
    delete,
    documents,
    evaluate,
    ingest,
    jobs,
    migrate,
    reindex,
    search,
    verify,
    worker,
)
from app.commands.sync import sync, watch
from app.commands.system import arena, calibration_texts, doctor, keys_create, keys_list, keys_revoke, serve, ui
from app.commands.voice import say, transcribe

__all__ = [
    "arena",
    "ask",
    "assistants_delete",
    "assistants_duplicate",
    "assistants_export",
    "assistants_import",
    "assistants_list",
    "assistants_new",
    "assistants_schema",
    "backup",
    "calibration_texts",
    "chat",
    "collections",
    "collections_delete",
    "collections_rename",
    "conversations_delete",
    "conversations_export",
    "conversations_list",
    "conversations_rename",
    "delete",
    "doctor",
    "documents",
    "evaluate",
    "feedback",
    "ingest",
    "jobs",
    "keys_create",
    "keys_list",
    "keys_revoke",
    "migrate",
    "print_details",
    "print_quotes",
    "print_tools",
    "reindex",
    "restore",
    "run",
    "say",
    "search",
    "serve",
    "services",
    "sync",
    "transcribe",
    "ui",
    "verify",
    "watch",
    "worker",
]
