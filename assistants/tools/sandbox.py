"""The code runner: Python runs in Pyodide under Deno (a WebAssembly sandbox), with limits.

- Sandbox (`where == "sandbox"`): Deno gets read access to the Pyodide folder only: no file of the
  user's, no network, no environment, no subprocess. Time, memory (resident size, watched) and
  output are capped. Needs `deno` (PyPI) and npm's `pyodide` (`make setup` installs both; the
  folder is `ARCHIVIST_PYODIDE` or ~/.cache/archivist/pyodide/node_modules/pyodide).
- Without the sandbox, code the user wrote may run in a limited subprocess (`where == "this machine
  with limits"`): isolated Python, empty environment, a temporary folder, CPU-time, memory and
  file-size limits, and no network where a new network namespace can be made. Where a PID
  namespace can be made too, the code is its first process: when it ends or is stopped, every
  process it started ends with it (a detached child, one holding the output open), and as root it
  runs as `nobody` so the process limit holds (the kernel does not count root's processes).
  Without namespaces its session is killed, and every process that still carries the run's mark in
  its environment; the output is read for a second at most after the code ends. Code a model wrote never runs there (`trusted=False`).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
    processes: int = 16  # processes and threads the code may start, outside the sandbox


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
    reader = _Reader(proc, code.encode("utf-8"))
    deadline = time.monotonic() + limits.timeout_s
    try:
        proc.wait(timeout=limits.timeout_s)
    except subprocess.TimeoutExpired:
        _kill_session(proc)
        out, err = reader.result(deadline=time.monotonic() + 1)
        return None, out, err, f"stopped after {limits.timeout_s:g} s (time limit)"
    # the code ended: what it left running (a detached child holding the output) goes with it
    out, err = reader.result(deadline=min(deadline, time.monotonic() + 1))
    _kill_session(proc)
    if watch.over:
        return None, out, err, f"stopped: memory over {limits.memory_mb} MB"
    return proc.returncode, out, err, ""


class _Reader:
    """Feeds the code to a process and reads its output in threads, so a child that keeps the output
    open cannot hold the caller past a deadline."""

    def __init__(self, proc: subprocess.Popen[bytes], data: bytes) -> None:
        self.out: list[bytes] = []
        self.err: list[bytes] = []
        self._threads = [
            threading.Thread(target=self._read, args=(proc.stdout, self.out), daemon=True),
            threading.Thread(target=self._read, args=(proc.stderr, self.err), daemon=True),
            threading.Thread(target=self._write, args=(proc.stdin, data), daemon=True),
        ]
        for t in self._threads:
            t.start()

    @staticmethod
    def _read(pipe: Any, into: list[bytes]) -> None:
        with contextlib.suppress(OSError, ValueError):
            for chunk in iter(lambda: pipe.read1(65536), b""):
                into.append(chunk)

    @staticmethod
    def _write(pipe: Any, data: bytes) -> None:
        with contextlib.suppress(OSError, ValueError):
            pipe.write(data)
            pipe.close()

    def result(self, deadline: float) -> tuple[bytes, bytes]:
        for t in self._threads[:2]:
            t.join(max(0.0, deadline - time.monotonic()))
        return b"".join(self.out), b"".join(self.err)


def _kill_session(proc: subprocess.Popen[bytes]) -> None:
    """Kill the process and its session (it was started as a session leader)."""
    with contextlib.suppress(OSError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(OSError):
        proc.kill()
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)


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


_PREFIX: list[str] | None = None
NOBODY = 65534
# Namespaces tried in turn: no network and its own PIDs (as root, as `nobody`), the same in a user
# namespace, then no network only.
_NAMESPACES = (
    ["-n", "-p", "--kill-child", "-S", str(NOBODY), "-G", str(NOBODY)],
    ["-rn", "-p", "--kill-child"],
    ["-n"],
    ["-rn"],
)


def _interpreters() -> list[str]:
    """Pythons the code may run on: this one (`-I` leaves this environment's packages out anyway),
    then the system's, which `nobody` can run where this one's folder is private."""
    found = [os.path.realpath(sys.executable), shutil.which("python3", path="/usr/local/bin:/usr/bin") or ""]
    return [p for p in dict.fromkeys(found) if p]


def _no_network_prefix() -> list[str]:
    """The command that runs the code: `unshare` with the first of `_NAMESPACES` that works here,
    and the interpreter; just the interpreter when no namespace can be made."""
    global _PREFIX
    if _PREFIX is None:
        tool = shutil.which("unshare") or ""
        tries = [(f, py) for f in _NAMESPACES for py in _interpreters() if "-S" not in f or os.geteuid() == 0]
        _PREFIX = [_interpreters()[0]]
        for flags, python in tries if tool else []:
            probe: list[str] = [tool, *flags, "--", python, "-I", "-c", "pass"]
            if subprocess.run(probe, capture_output=True, timeout=10).returncode == 0:
                _PREFIX = probe[:-3]
                break
    return _PREFIX


RUN_MARK = "ARCHIVIST_RUN"


def _kill_marked(mark: str) -> None:
    """Kill the processes whose environment carries `mark` (children that left the run's session)."""
    needle = f"{RUN_MARK}={mark}".encode()
    for _ in range(10):  # again while a scan finds some: they may have been starting others
        found = 0
        for environ in Path("/proc").glob("[0-9]*/environ"):
            with contextlib.suppress(OSError, ValueError):
                if needle in environ.read_bytes().split(b"\0"):
                    os.kill(int(environ.parent.name), signal.SIGKILL)
                    found += 1
        if not found:
            return
        time.sleep(0.05)


def _processes_of(uid: int) -> int:
    """How many processes and threads `uid` runs now (the kernel's process limit counts them all)."""
    n = 0
    for status in Path("/proc").glob("[0-9]*/status"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            text = status.read_text()
            if int(text.split("\nUid:")[1].split()[0]) == uid:
                n += int(text.split("\nThreads:")[1].split()[0])
    return n


def _run_local(code: str, limits: CodeLimits) -> tuple[bool, str, str]:
    import resource

    def limit() -> None:
        mem = limits.memory_mb * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
        cpu = int(limits.timeout_s) + 2  # a backstop: the wall-clock timeout normally stops it first
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
        resource.setrlimit(resource.RLIMIT_FSIZE, (10 * 2**20, 10 * 2**20))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))

    prefix = _no_network_prefix()
    as_nobody = "-S" in prefix
    isolated = len(prefix) > 1  # in namespaces: no network
    # the limit counts every process of the user the code runs as: those it runs already, plus the
    # code's own (as root, unshare runs before it drops to nobody, and root is not counted)
    nproc = _processes_of(NOBODY if as_nobody else os.getuid()) + limits.processes
    with tempfile.TemporaryDirectory(prefix="archivist-run-") as tmp:
        if as_nobody:
            os.chmod(tmp, 0o777)
        cmd = [*prefix, "-I", "-"]
        mark = secrets.token_hex(8)
        env = {"HOME": tmp, "TMPDIR": tmp, RUN_MARK: mark}
        try:
            rc, out, err, stopped = _communicate(cmd, code, limits, env, tmp, limit)
        finally:
            _kill_marked(mark)
    text = out.decode("utf-8", "replace") + err.decode("utf-8", "replace")
    note = stopped or ("" if isolated else "the network is reachable (no network namespace here)")
    if rc is not None and rc < 0 and not stopped:
        import signal

        note = "stopped: CPU time limit" if -rc == signal.SIGXCPU else f"stopped by signal {-rc}"
    truncated = len(text) > limits.output_chars
    if truncated:
        note = (note + "; " if note else "") + "output cut at the limit"
    return rc == 0 and not stopped, _cap(text, limits), note


def _cap(text: str, limits: CodeLimits) -> str:
    return text[: limits.output_chars]
