"""Fixtures: the opsml 2.2.4 reference server seeded by the real client, and our registry, each on
a free loopback port with its own temporary folder. Servers are started with tests/python's
helpers (support/servers.py), so they run exactly as the conformance suite runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Dict, Iterator

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[3]
sys.path.insert(0, str(ROOT / "tests" / "python"))

from support.procs import clean_env  # noqa: E402
from support.servers import Server, start_host, start_reference  # noqa: E402

CLI = ROOT / "target" / "debug" / "opsml-registry"


def run_script(script: str, server: Server, *args: str, cwd: Path) -> Dict:
    """Runs one of this folder's client scripts against `server`; its last stdout line is JSON."""
    cwd.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        [sys.executable, str(HERE / script), *args], cwd=cwd, capture_output=True, text=True,
        env=clean_env(OPSML_TRACKING_URI=server.url), stdin=subprocess.DEVNULL, timeout=600,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise AssertionError(f"{script} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return json.loads(lines[-1])


@pytest.fixture(scope="session")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_reference(tmp_path_factory.mktemp("reference"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def ours(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    if not CLI.exists():
        raise RuntimeError(f"{CLI} is missing: run crates/opsml-registry/tests/run.sh")
    server = start_host(tmp_path_factory.mktemp("ours"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def seeded(reference: Server, tmp_path_factory: pytest.TempPathFactory) -> Dict:
    """The uids of the cards seed_cards.py registered on the reference with the real client."""
    work = tmp_path_factory.mktemp("seed")
    uids = run_script("seed_cards.py", reference, str(work / "files"), cwd=work)
    (work / "uids.json").write_text(json.dumps(uids))
    uids["file"] = str(work / "uids.json")
    return uids
