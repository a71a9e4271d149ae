"""Server processes for the Python harnesses (this conformance suite and bench/run.py): a clean
environment, a free port, a log's tail, stopping a server's process group. Standard library
only, so that bench/run.py can import it without this suite's venv."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from pathlib import Path
from typing import Dict, Tuple

# Environment variables that configure the servers or the client: never inherited.
SCRUB_PREFIXES: Tuple[str, ...] = ("APP_", "OPSML_", "SPIN_VARIABLE_", "MLFLOW_", "PROMETHEUS_")


def clean_env(**extra: str) -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(SCRUB_PREFIXES)}
    env.update(extra)
    return env


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def log_tail(path: Path, n: int) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "<no log>"


def stop_group(proc: subprocess.Popen, grace: float) -> None:
    """Ends a server started with `start_new_session=True`: only its process group, SIGTERM
    first, SIGKILL after `grace` seconds."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
