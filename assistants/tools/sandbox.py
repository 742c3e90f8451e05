"""The code runner: Python runs in Pyodide under Deno (a WebAssembly sandbox), with limits.

- Sandbox (`where == "sandbox"`): Deno gets read access to the Pyodide folder only: no file of the
  user's, no network, no environment, no subprocess. Time, memory (resident size, watched) and
  output are capped. Needs `deno` (PyPI) and npm's `pyodide` (`make setup` installs both; the
  folder is `ARCHIVIST_PYODIDE` or ~/.cache/archivist/pyodide/node_modules/pyodide).
- Without the sandbox, code the user wrote may run in a limited subprocess (`where == "this machine
  with limits"`): isolated Python, empty environment, a temporary folder, CPU-time, memory and
  file-size limits, and no network where a new network namespace can be made. Code a model wrote
  never runs there (`trusted=False`).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from assistants.tools import ToolStep
from runtime.errors import ArchivistError

SANDBOX = "sandbox"
LOCAL = "this machine with limits"
RUNNER = Path(__file__).with_name("pyodide_runner.mjs")
PYODIDE_VERSION = "0.28.3"


@dataclass(frozen=True)
class CodeLimits:
    timeout_s: float = 20.0  # Pyodide itself takes ~5 s to start
    memory_mb: int = 512
    output_chars: int = 20000
    max_code_chars: int = 100_000


class SandboxMissing(ArchivistError):
    """Code a model wrote cannot run: the sandbox is not installed."""


def pyodide_dir() -> Path:
    env = os.environ.get("ARCHIVIST_PYODIDE")
    if env:
        return Path(env)
    return Path.home() / ".cache" / "archivist" / "pyodide" / "node_modules" / "pyodide"


def deno_bin() -> str | None:
    try:
        import deno  # type: ignore[import-untyped]

        found = deno.find_deno_bin()
        if found and Path(found).exists():
            return str(found)
    except Exception:  # the wheel is optional: fall back to PATH
        pass
    return shutil.which("deno")


def sandbox_status() -> tuple[bool, str]:
    """(available, why not) for the Pyodide sandbox."""
    if deno_bin() is None:
        return False, "deno is not installed (pip install deno)"
    if not (pyodide_dir() / "pyodide.mjs").exists():
        return (
            False,
            f"Pyodide is not installed at {pyodide_dir()} (make setup, or npm install pyodide@{PYODIDE_VERSION})",
        )
    return True, ""


def run_code(code: str, *, trusted: bool, limits: CodeLimits | None = None, by: str = "user") -> ToolStep:
    """Run `code` and return a step with its output. `trusted`: the user wrote it (it may run in the
    limited subprocess when the sandbox is missing); code from a model runs only in the sandbox."""
    limits = limits or CodeLimits()
    if len(code) > limits.max_code_chars:
        return ToolStep(
            "code",
            code[:200],
            f"the code is {len(code):,} characters; the limit is {limits.max_code_chars:,}",
            False,
            "not run: too long",
            by=by,
        )
    available, why = sandbox_status()
    t0 = time.perf_counter()
    if available:
        ok, out, note = _run_sandbox(code, limits)
        where = SANDBOX
    elif trusted:
        ok, out, note = _run_local(code, limits)
        where = LOCAL
    else:
        raise SandboxMissing(f"code written by a model runs only in the sandbox, and {why}")
    seconds = time.perf_counter() - t0
    card = f"ran in the {where}" if where == SANDBOX else f"ran on {where}"
    if note:
        card += f": {note}"
    return ToolStep("code", code, out, ok, card, where, by, seconds)


class _Watch:
    """Kill a process whose resident memory passes the limit (WebAssembly memory is outside V8's
    heap flags, and an address-space limit would break V8's reservations)."""

    def __init__(self, proc: subprocess.Popen[bytes], limit_mb: int) -> None:
        self.proc, self.limit_kb, self.over = proc, limit_mb * 1024, False
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self) -> None:
        status = Path(f"/proc/{self.proc.pid}/status")
        while self.proc.poll() is None:
            try:
                rss = next(
                    (int(line.split()[1]) for line in status.read_text().splitlines() if line.startswith("VmRSS:")), 0
                )
            except (OSError, ValueError):
                return
            if rss > self.limit_kb:
                self.over = True
                self.proc.kill()
                return
            time.sleep(0.02)


def _communicate(
    cmd: list[str],
    code: str,
    limits: CodeLimits,
    env: dict[str, str],
    cwd: str,
    preexec: Callable[[], None] | None = None,
) -> tuple[int | None, bytes, bytes, str]:
    proc = subprocess.Popen(
        cmd,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=cwd,
        preexec_fn=preexec,
        start_new_session=True,
    )
    watch = _Watch(proc, limits.memory_mb)
    try:
        out, err = proc.communicate(code.encode("utf-8"), timeout=limits.timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        return None, out, err, f"stopped after {limits.timeout_s:g} s (time limit)"
    if watch.over:
        return None, out, err, f"stopped: memory over {limits.memory_mb} MB"
    return proc.returncode, out, err, ""


def _run_sandbox(code: str, limits: CodeLimits) -> tuple[bool, str, str]:
    deno = deno_bin()
    assert deno is not None
    folder = pyodide_dir().resolve()
    with tempfile.TemporaryDirectory(prefix="archivist-sandbox-") as tmp:
        cmd = [
            deno,
            "run",
            "--no-prompt",
            "--no-config",
            "--no-lock",
            "--no-remote",
            "--unstable-detect-cjs",
            f"--allow-read={folder},{RUNNER}",
            f"--v8-flags=--max-old-space-size={max(64, limits.memory_mb // 2)}",
            str(RUNNER),
            str(folder),
            str(limits.output_chars),
        ]
        env = {"DENO_DIR": tmp, "HOME": tmp, "DENO_NO_UPDATE_CHECK": "1", "NO_COLOR": "1"}
        rc, out, err, stopped = _communicate(cmd, code, limits, env, tmp)
    if stopped:
        return False, _cap(out.decode("utf-8", "replace"), limits), stopped
    last = out.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
    try:
        result = json.loads(last[0])
    except json.JSONDecodeError:
        return False, _cap(err.decode("utf-8", "replace"), limits), f"the sandbox failed (exit {rc})"
    text = result.get("out", "")
    if not result.get("ok"):
        text += result.get("error", "")
    note = "output cut at the limit" if result.get("truncated") else ""
    return bool(result.get("ok")), _cap(text, limits), note


_NETNS: list[str] | None = None


def _no_network_prefix() -> list[str]:
    """`unshare -n` (root) or `unshare -rn` (a user namespace), whichever works here; [] if neither."""
    global _NETNS
    if _NETNS is None:
        _NETNS = []
        tool = shutil.which("unshare")
        for flags in (["-n"], ["-rn"]):
            if tool and subprocess.run([tool, *flags, "true"], capture_output=True, timeout=10).returncode == 0:
                _NETNS = [tool, *flags, "--"]
                break
    return _NETNS


def _run_local(code: str, limits: CodeLimits) -> tuple[bool, str, str]:
    import resource

    def limit() -> None:
        mem = limits.memory_mb * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
        cpu = int(limits.timeout_s) + 2  # a backstop: the wall-clock timeout normally stops it first
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
        resource.setrlimit(resource.RLIMIT_FSIZE, (10 * 2**20, 10 * 2**20))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    prefix = _no_network_prefix()
    with tempfile.TemporaryDirectory(prefix="archivist-run-") as tmp:
        cmd = [*prefix, sys.executable, "-I", "-"]
        rc, out, err, stopped = _communicate(cmd, code, limits, {"HOME": tmp, "TMPDIR": tmp}, tmp, limit)
    text = out.decode("utf-8", "replace") + err.decode("utf-8", "replace")
    note = stopped or ("" if prefix else "the network is reachable (no network namespace here)")
    if rc is not None and rc < 0 and not stopped:
        import signal

        note = "stopped: CPU time limit" if -rc == signal.SIGXCPU else f"stopped by signal {-rc}"
    truncated = len(text) > limits.output_chars
    if truncated:
        note = (note + "; " if note else "") + "output cut at the limit"
    return rc == 0 and not stopped, _cap(text, limits), note


def _cap(text: str, limits: CodeLimits) -> str:
    return text[: limits.output_chars]
