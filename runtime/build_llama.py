"""Build (once) and install a llama-cpp-python wheel that is safe on this CPU.

llama.cpp's default native build (GGML_NATIVE=ON) enables every instruction set the
compiler can see, AMX included; on some AVX-512 servers that crashes with SIGILL as soon
as a prompt is evaluated in a batch. This script turns GGML_NATIVE off and names the
CPU's features one by one from /proc/cpuinfo (never AMX), builds the wheel with
``pip wheel --no-cache-dir`` into a folder outside the repository keyed by version and
flags, and installs it from there. Fresh clones and CI reuse that wheel instead of
compiling again (about 8-10 minutes on 2 cores).

Stdlib only: it runs before any dependency is installed.

    python runtime/build_llama.py --python .venv/bin/python [--backend cpu|cuda|metal|vulkan]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import subprocess
import sys
from pathlib import Path

VERSION = "0.3.36"
PACKAGE = "llama-cpp-python"

# cpuinfo flag -> ggml CMake option (x86 only). AMX is deliberately absent.
_X86_FEATURES: list[tuple[str, str]] = [
    ("avx", "GGML_AVX"),
    ("avx2", "GGML_AVX2"),
    ("fma", "GGML_FMA"),
    ("f16c", "GGML_F16C"),
    ("bmi2", "GGML_BMI2"),
    ("avx_vnni", "GGML_AVX_VNNI"),
    ("avx512f", "GGML_AVX512"),
    ("avx512vbmi", "GGML_AVX512_VBMI"),
    ("avx512_vnni", "GGML_AVX512_VNNI"),
    ("avx512_bf16", "GGML_AVX512_BF16"),
]
_BACKENDS = {
    "cpu": [],
    "cuda": ["-DGGML_CUDA=ON"],
    "metal": ["-DGGML_METAL=ON"],
    "vulkan": ["-DGGML_VULKAN=ON"],
}


def cpu_flags() -> set[str]:
    """The CPU feature flags the kernel reports (empty off Linux)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def cmake_args(backend: str = "cpu", flags: set[str] | None = None) -> list[str]:
    """CMake options for a non-native build naming this CPU's features, AMX off."""
    args = ["-DGGML_NATIVE=OFF"]
    if platform.machine().lower() in {"x86_64", "amd64"}:
        flags = cpu_flags() if flags is None else flags
        for flag, option in _X86_FEATURES:
            args.append(f"-D{option}={'ON' if flag in flags else 'OFF'}")
        args += ["-DGGML_AMX_TILE=OFF", "-DGGML_AMX_INT8=OFF", "-DGGML_AMX_BF16=OFF"]
    args += ["-DLLAMA_BUILD_TESTS=OFF", "-DLLAMA_BUILD_EXAMPLES=OFF", "-DLLAMA_CURL=OFF"]
    return args + _BACKENDS[backend]


def wheel_dir(args: list[str]) -> Path:
    """Folder outside the clone that holds the wheel built with exactly these flags."""
    root = Path(os.environ.get("ARCHIVIST_WHEELS", Path.home() / ".cache" / "archivist" / "wheels"))
    key = hashlib.sha256(" ".join([VERSION, sys.version.split()[0][:4], *args]).encode()).hexdigest()[:12]
    return root / f"{PACKAGE}-{VERSION}-{key}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default=sys.executable, help="interpreter to install into")
    parser.add_argument(
        "--backend", choices=sorted(_BACKENDS), default=os.environ.get("ARCHIVIST_LLAMA_BACKEND", "cpu")
    )
    parser.add_argument("--print-args", action="store_true", help="print the CMake options and exit")
    opts = parser.parse_args(argv)

    args = cmake_args(opts.backend)
    if opts.print_args:
        print(" ".join(args))
        return 0
    target = wheel_dir(args)
    wheels = sorted(target.glob("llama_cpp_python-*.whl"))
    if not wheels:
        print(f"building {PACKAGE} {VERSION} ({opts.backend}) into {target}; about 8-10 minutes on 2 cores")
        print("CMAKE_ARGS=" + " ".join(args), flush=True)
        tmp = target.with_name(target.name + ".partial")
        tmp.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, CMAKE_ARGS=" ".join(args), FORCE_CMAKE="1")
        env.setdefault("CMAKE_BUILD_PARALLEL_LEVEL", str(os.cpu_count() or 2))
        subprocess.run(
            [opts.python, "-m", "pip", "wheel", "--no-cache-dir", "--no-deps", "-w", str(tmp), f"{PACKAGE}=={VERSION}"],
            env=env,
            check=True,
        )
        tmp.rename(target)  # the folder appears only once the wheel is complete
        wheels = sorted(target.glob("llama_cpp_python-*.whl"))
    subprocess.run([opts.python, "-m", "pip", "install", "--no-cache-dir", str(wheels[-1])], check=True)
    out = subprocess.run(
        [opts.python, "-c", "import llama_cpp; print(llama_cpp.llama_print_system_info().decode())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    if "AMX = 1" in out:
        print(
            f"error: the installed llama.cpp enables AMX ({out.strip()}); delete {target} and rebuild", file=sys.stderr
        )
        return 1
    print("llama.cpp:", out.strip())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
