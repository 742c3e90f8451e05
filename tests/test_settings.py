"""Settings: one object; the environment, then flags; the limits it sets hold every way in."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.settings import Settings
from runtime.errors import ArchivistError

ROOT = Path(__file__).parent.parent


def test_environment_then_flags(tmp_path: Path) -> None:
    env = {"ARCHIVIST_HOME": str(tmp_path / "ws"), "ARCHIVIST_MAX_FILE_MB": "1", "ARCHIVIST_PARSE_TIMEOUT_S": "30"}
    s = Settings.load(env)
    assert s.home == (tmp_path / "ws").resolve() and s.max_file_mb == 1 and s.parse_timeout_s == 30
    assert s.ingest_limits().max_file_bytes == 2**20 and s.ingest_limits().parse_timeout_s == 30
    flagged = Settings.load(env, max_file_mb=2, parse_timeout_s=None)  # None: the flag was not given
    assert flagged.max_file_mb == 2 and flagged.parse_timeout_s == 30
    with pytest.raises(ArchivistError, match=r"max_file_mb \(ARCHIVIST_MAX_FILE_MB='lots'\)"):
        Settings.load({"ARCHIVIST_MAX_FILE_MB": "lots"})
    with pytest.raises(ArchivistError, match="log_level"):
        Settings.load({"ARCHIVIST_LOG_LEVEL": "chatty"})


@pytest.mark.slow
def test_the_file_limit_from_the_environment_holds_in_the_cli(tmp_path: Path) -> None:
    big = tmp_path / "big.txt"
    big.write_text("Owls hunt at night. " * 200)  # 4 KB
    env = dict(os.environ, ARCHIVIST_HOME=str(tmp_path / "ws"), ARCHIVIST_MAX_FILE_MB="0.001", HF_HUB_OFFLINE="1")
    out = subprocess.run(
        [sys.executable, "-m", "app.cli", "ingest", str(big), "-c", "notes", "--quiet"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 1 and "big.txt: file is 0.0 MB; the limit is 0 MB" in out.stdout + out.stderr
