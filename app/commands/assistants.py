"""Commands over assistant files: list, schema, new, import, export, duplicate, delete."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from app.commands.base import services, write_out
from app.commands.knowledge import (
    print_report,
)
from ingest.pipeline import IngestReport


def assistants_list(args: argparse.Namespace) -> int:
    svc = services(args)
    entries, errors = svc.library.entries()
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "name": e.assistant.name,
                        "description": e.assistant.description,
                        "source": e.source,
                        "path": str(e.path),
                    }
                    for e in entries
                ]
            )
        )
    else:
        for e in entries:
            print(f"{e.assistant.name}\t{e.assistant.description}\t({e.source}: {e.path})")
    for err in errors:
        print(f"warning: {err}", file=sys.stderr)
    return 0


def assistants_schema(args: argparse.Namespace) -> int:
    from assistants.schema import Assistant

    schema = Assistant.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    write_out(json.dumps(schema, indent=2), args.output)
    return 0


def assistants_new(args: argparse.Namespace) -> int:
    from assistants.loader import parse_assistant

    data = {
        "name": args.name,
        "description": args.description,
        "instructions": args.instructions,
        "knowledge": {"collections": args.collection},
        # the System-2 settings are the schema's defaults; short answers are what measured best with them
        "model": {"max_tokens": 100},
    }
    path = services(args).library.save(parse_assistant(data, "arguments"))
    print(f"created {path}")
    return 0


def assistants_import(args: argparse.Namespace) -> int:
    svc = services(args)
    path = Path(args.file)
    if path.suffix.lower() == ".zip":
        from assistants.bundle import import_bundle

        assistant, results = import_bundle(
            path,
            svc.store,
            svc.embedder,
            taken=svc.library.taken,
            overwrite=args.overwrite,
            allow_download=args.allow_download,
            allow_model_path=args.allow_model_path,
            allow_remote=args.allow_remote,
        )
        report = IngestReport(results)
        svc.library.save(assistant, overwrite=args.overwrite)
        _warn_shadowing(svc, assistant.name)
        print(f"imported {assistant.name} with {len(results)} documents")
        return print_report(report)
    assistant = svc.library.import_yaml(
        path,
        overwrite=args.overwrite,
        allow_download=args.allow_download,
        allow_model_path=args.allow_model_path,
        allow_remote=args.allow_remote,
    )
    _warn_shadowing(svc, assistant.name)
    print(f"imported {assistant.name} into {svc.library.path_for(assistant.name)}")
    return 0


def _warn_shadowing(svc: Any, name: str) -> None:
    if svc.library.shadows_example(name):
        print(
            f"warning: {name} now hides the shipped assistant of the same name (rename it to see both)", file=sys.stderr
        )


def assistants_export(args: argparse.Namespace) -> int:
    svc = services(args)
    if args.bundle:
        from assistants.bundle import export_bundle
        from runtime.errors import ArchivistError

        if not args.output:
            raise ArchivistError("--bundle needs -o FILE.zip")
        n = export_bundle(svc.library.get_by_name(args.name), svc.store, Path(args.output))
        print(f"wrote {args.output} ({n} documents)")
        return 0
    write_out(svc.library.export_yaml(args.name), args.output)
    return 0


def assistants_duplicate(args: argparse.Namespace) -> int:
    services(args).library.duplicate(args.name, args.new_name)
    print(f"duplicated {args.name} as {args.new_name}")
    return 0


def assistants_delete(args: argparse.Namespace) -> int:
    services(args).library.delete(args.name)
    print(f"deleted {args.name}")
    return 0
