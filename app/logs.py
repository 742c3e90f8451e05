"""One logging configuration for every front end (CLI, API, app).

Records go to a rotating file in the workspace (`logs/archivist.log`, 5 MB x 3, INFO and above) and
to stderr (warnings, or everything from INFO with `--verbose`; `ARCHIVIST_LOG_LEVEL` sets the level
of both). What is logged: ingest failures, model loads, slow searches, API requests with their
request id. Never logged: document text, questions, answers, keys (messages name files, sizes,
counts and times only)."""

from __future__ import annotations

import logging
import logging.handlers
import os
from pathlib import Path

ENV = "ARCHIVIST_LOG_LEVEL"
FILE = Path("logs") / "archivist.log"
_MARK = "_archivist_handler"  # set on our handlers, so configuring twice never doubles them
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure(home: Path, *, verbose: bool = False) -> Path:
    """Set up logging for this process; returns the log file. Safe to call more than once."""
    level = logging.getLevelName(os.environ.get(ENV, "").upper() or ("DEBUG" if verbose else "INFO"))
    if not isinstance(level, int):
        level = logging.INFO
    root = logging.getLogger("archivist")
    root.setLevel(min(level, logging.INFO))
    root.propagate = False
    for h in [h for h in root.handlers if getattr(h, _MARK, False)]:
        root.removeHandler(h)
        h.close()
    path = home / FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    to_file = logging.handlers.RotatingFileHandler(path, maxBytes=5 * 2**20, backupCount=3, encoding="utf-8")
    to_file.setLevel(level)
    to_console = logging.StreamHandler()
    to_console.setLevel(level if (verbose or os.environ.get(ENV)) else logging.WARNING)
    for h in (to_file, to_console):
        h.setFormatter(logging.Formatter(FORMAT))
        setattr(h, _MARK, True)
        root.addHandler(h)
    return path
