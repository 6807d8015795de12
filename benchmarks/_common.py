"""What the benchmark scripts share: the machine a result was measured on, and starting the
emulator in a process of its own.

The scripts are run as files (``.venv/bin/python benchmarks/bench_x.py``), so this is imported
as a sibling module (``from _common import machine``), not as a package.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any


def _first(path: str, prefix: str) -> str | None:
    """The first line of ``path`` that starts with ``prefix`` (None: no such line, unreadable)."""
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(prefix):
                return line
    except OSError:
        pass
    return None


def machine() -> dict[str, Any]:
    """The facts a benchmark result is quoted with: cores, CPU model, memory, versions."""
    model = _first("/proc/cpuinfo", "model name")
    mem_kb = _first("/proc/meminfo", "MemTotal:")
    return {
        "nproc": os.cpu_count(),
        "cpu": model.split(":", 1)[-1].strip()
        if model
        else (platform.processor() or platform.machine()),
        "memMB": int(mem_kb.split()[1]) // 1024 if mem_kb else 0,
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
    }


def start_emulator(
    snapshot: Path, *options: str, cwd: Path | None = None
) -> tuple[subprocess.Popen[str], str, str]:
    """``fleet emulator serve`` on a free loopback port: (process, endpoint, CA bundle path).

    The emulator prints one JSON line when it listens; the caller terminates the process.
    """
    cmd = [sys.executable, "-m", "fleet", "emulator", "serve", "--snapshot", str(snapshot)]
    cmd += ["--port", "0", *options]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=cwd
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        proc.kill()
        raise RuntimeError("the emulator did not start")
    ready = json.loads(line)
    return proc, ready["endpoint"], ready["caBundle"]
