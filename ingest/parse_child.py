"""Entry point of the parser process: `python -m ingest.parse_child FD` (see `ingest.worker`)."""

from __future__ import annotations

import sys
from multiprocessing.connection import Connection

from ingest.worker import run_child

if __name__ == "__main__":
    conn = Connection(int(sys.argv[1]))
    data, name, limits = conn.recv()
    run_child(conn, data, name, limits)
