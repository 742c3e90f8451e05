"""Entry point of the parser process: `python -m ingest.parse_child FD` (see `ingest.worker`)."""

from __future__ import annotations

import sys
from multiprocessing.connection import Connection

from ingest.worker import serve

if __name__ == "__main__":
    serve(Connection(int(sys.argv[1])))
