"""`archivist sync`: a collection that mirrors folders and files."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from app.commands.base import services
from runtime.errors import ArchivistError


def _sources(args: argparse.Namespace, svc: Any, command: str) -> list[Any]:
    """The folders named on the command line (with its globs), else the ones the collection keeps."""
    from ingest.store_sources import SourceSpec

    if args.paths:
        return [SourceSpec(str(p), tuple(args.include), tuple(args.exclude)) for p in args.paths]
    specs = [s.spec for s in svc.store.sources(args.collection)]
    if not specs:
        raise ArchivistError(
            f"collection {args.collection!r} has no sources yet; name its folders once: "
            f"archivist {command} FOLDER... --collection {args.collection}"
        )
    return specs


def sync(args: argparse.Namespace) -> int:
    from ingest.sync import plan_sync
    from ingest.sync import sync as run_sync

    svc = services(args)
    specs = _sources(args, svc, "sync")
    if args.dry_run:
        plan = plan_sync(svc.store, args.collection, specs)
        for name, _ in plan.added:
            print(f"would add {name}")
        for name, _ in plan.changed:
            print(f"would ingest again {name} (changed)")
        for old, new in plan.renamed:
            print(f"would rename {old} -> {new} (not embedded again)")
        for name in plan.removed:
            print(f"would remove {name} (its file is gone)")
        for name, first in plan.duplicates:
            print(f"would skip {name}: same content as {first}")
        for problem in plan.problems:
            print(f"problem: {problem} (nothing is removed while a source cannot be read)", file=sys.stderr)
        print(f"{plan.changes} change(s), {plan.unchanged} unchanged (dry run: nothing was changed)")
        return 1 if plan.problems else 0
    result = run_sync(
        svc.store,
        svc.embedder,
        args.collection,
        specs,
        follow=args.follow,
        said=print,
        limits=svc.settings.ingest_limits(),
    )
    if args.follow is not None:
        where = "the app and `archivist serve` follow" if args.follow else "nothing follows"
        print(f"{where} these folders in the background from now on")
    s = result.summary()
    for name, first in result.plan.duplicates:
        print(f"skipped {name}: same content as {first}")
    for problem in s["problems"]:
        print(f"problem: {problem} (nothing was removed while a source cannot be read)", file=sys.stderr)
    print(
        f"synced {args.collection} in {result.seconds:.1f} s: {s['added']} added, {s['changed']} changed, "
        f"{s['renamed']} renamed, {s['removed']} removed, {s['unchanged']} unchanged"
        + (f", {len(s['failed'])} failed" if s["failed"] else "")
    )
    return 1 if s["failed"] or s["problems"] else 0


def watch(args: argparse.Namespace) -> int:
    from ingest.sync import SyncResult
    from ingest.watch import watch as follow

    svc = services(args)
    specs = _sources(args, svc, "watch")
    where = ", ".join(s.path for s in specs)
    print(f"following {where} into {args.collection} (Ctrl-C to stop)", flush=True)

    def done(result: SyncResult) -> None:
        s = result.summary()
        if result.plan.changes or s["failed"]:
            failed = f", {len(s['failed'])} failed" if s["failed"] else ""
            print(
                f"synced: {s['added']} added, {s['changed']} changed, {s['renamed']} renamed, "
                f"{s['removed']} removed{failed}",
                flush=True,
            )
        for problem in s["problems"]:
            print(f"problem: {problem} (nothing is removed while a source cannot be read)", file=sys.stderr, flush=True)

    try:
        follow(
            svc.store,
            svc.embedder,
            args.collection,
            specs,
            poll_s=args.poll,
            settle_s=args.settle,
            on_sync=done,
            said=print,
            limits=svc.settings.ingest_limits(),
        )
    except KeyboardInterrupt:
        print("stopped")
    return 0
