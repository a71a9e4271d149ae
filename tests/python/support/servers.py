"""Starts and stops the two servers under test on free loopback ports with temporary state:
OUR registry (`<runtime> up ...`, the runtime chosen by OPSML_TEST_RUNTIME as the Rust suite
chooses it: `opsml-host` by default, or real Spin) and the REFERENCE (`opsml-uvicorn-server` from
the venv), and runs client flows in subprocesses."""

from __future__ import annotations

import atexit
import json
import os
import shutil
import subprocess
import sys
import time
import tomllib
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import httpx

from .procs import clean_env, free_port, log_tail, stop_group

ROOT = Path(__file__).resolve().parents[3]  # the workspace (tests/python/support -> root)
FLOWS = Path(__file__).resolve().parents[1] / "flows"
HOST_BINARY = ROOT / "target" / "debug" / "opsml-host"
FIND_SPIN = ROOT / "scripts" / "find-spin"
STARTUP_TIMEOUT = 60.0


@dataclass
class Server:
    name: str
    port: int
    proc: subprocess.Popen
    workdir: Path
    log_path: Path
    # The HTTP Basic login the server requires, if any (OPSML_USERNAME, OPSML_PASSWORD).
    login: Optional[Tuple[str, str]] = None

    @property
    def url(self) -> str:
        """What the client gets as OPSML_TRACKING_URI."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def api(self) -> str:
        return f"{self.url}/opsml"

    def log_tail(self, n: int = 40) -> str:
        return log_tail(self.log_path, n)

    def stop(self) -> None:
        stop_group(self.proc, grace=10)


def _spawn(name: str, cmd: List[str], env: Dict[str, str], workdir: Path, port: int,
           login: Optional[Tuple[str, str]] = None) -> Server:
    workdir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / f"{name}.log"
    log = open(log_path, "wb")
    proc = subprocess.Popen(
        cmd, cwd=workdir, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log.close()
    server = Server(name, port, proc, workdir, log_path, login)
    atexit.register(server.stop)  # also when the session dies before its fixtures' teardown
    deadline = time.monotonic() + STARTUP_TIMEOUT
    last = ""
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode} during start-up:\n{server.log_tail()}")
        try:
            r = httpx.get(f"{server.api}/healthcheck", timeout=2, auth=login)
            if r.status_code == 200:
                return server
            last = f"{r.status_code} {r.text[:200]}"
        except httpx.HTTPError as e:
            last = repr(e)
        time.sleep(0.25)
    server.stop()
    raise RuntimeError(f"{name} did not answer GET /opsml/healthcheck with 200 within "
                       f"{STARTUP_TIMEOUT:.0f} s (last: {last}):\n{server.log_tail()}")


def backend_env(name: str) -> Dict[str, str]:
    """Our host's storage, from OPSML_TEST_BACKEND as the Rust end-to-end suite reads it
    (tests/src/backend.rs): nothing for `embedded`; for `postgres-s3` and `mysql-s3`, a fresh
    database on the shared server and a fresh bucket prefix, both named after `name`."""
    backend = os.environ.get("OPSML_TEST_BACKEND", "") or "embedded"
    if backend == "embedded":
        return {}
    need = lambda key: os.environ.get(key) or _missing(key)  # noqa: E731
    database = f"opsml_py_{name}_{os.getpid()}_{free_port()}"
    if backend == "postgres-s3":
        server = need("OPSML_TEST_POSTGRES_URL").rstrip("/")
        create = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", f"{server}/postgres",
                  "-c", f"CREATE DATABASE {database}"]
    elif backend == "mysql-s3":
        server = need("OPSML_TEST_MYSQL_URL").rstrip("/")
        url = urllib.parse.urlsplit(server)
        create = ["mariadb", "--protocol=TCP", f"--host={url.hostname}", f"--port={url.port or 3306}",
                  f"--user={url.username}", f"--password={url.password}", "--execute",
                  f"CREATE DATABASE {database}"]
    else:
        raise RuntimeError(f"OPSML_TEST_BACKEND={backend!r}: expected embedded, postgres-s3 or mysql-s3")
    subprocess.run(create, check=True, capture_output=True)
    return {
        "OPSML_DATABASE_URL": f"{server}/{database}",
        "OPSML_STORAGE_URI": f"s3://{need('OPSML_TEST_S3_BUCKET')}/{database}",
        "OPSML_S3_ENDPOINT": need("OPSML_TEST_S3_ENDPOINT"),
        "OPSML_S3_ACCESS_KEY_ID": need("OPSML_TEST_S3_ACCESS_KEY_ID"),
        "OPSML_S3_SECRET_ACCESS_KEY": need("OPSML_TEST_S3_SECRET_ACCESS_KEY"),
    }


def _missing(key: str) -> str:
    raise RuntimeError(f"OPSML_TEST_BACKEND={os.environ.get('OPSML_TEST_BACKEND')} needs {key}")


def runtime() -> Tuple[str, Path]:
    """The runtime that serves our registry, from OPSML_TEST_RUNTIME (as tests/src/runtime.rs
    reads it): `opsml-host` (default) or `spin` (found by scripts/find-spin)."""
    name = os.environ.get("OPSML_TEST_RUNTIME", "") or "opsml-host"
    if name == "opsml-host":
        if not HOST_BINARY.exists():
            raise RuntimeError(f"{HOST_BINARY} is missing: build the workspace first (./scripts/test.sh)")
        return name, HOST_BINARY
    if name == "spin":
        found = subprocess.run([str(FIND_SPIN)], capture_output=True, text=True)
        if found.returncode != 0:
            raise RuntimeError(f"OPSML_TEST_RUNTIME=spin, but {found.stderr.strip()}")
        return name, Path(found.stdout.strip())
    raise RuntimeError(f"OPSML_TEST_RUNTIME={name!r}: expected opsml-host or spin")


def start_host(workdir: Path, env: Optional[Dict[str, str]] = None,
               login: Optional[Tuple[str, str]] = None) -> Server:
    """OUR registry: spin.toml and the dev runtime-config under the runtime of this run, state
    in workdir; with `login`, every route needs that username and password."""
    name, binary = runtime()
    port = free_port()
    state = workdir / "state"
    state.mkdir(parents=True, exist_ok=True)
    cmd = [
        str(binary), "up", "-f", str(ROOT / "spin.toml"),
        "--listen", f"127.0.0.1:{port}",
        "--state-dir", str(state),
        "--runtime-config-file", str(ROOT / "runtime-config" / "dev.toml"),
    ]
    storage = backend_env(workdir.name.replace("-", "_").lower())
    credentials = {"OPSML_USERNAME": login[0], "OPSML_PASSWORD": login[1]} if login else {}
    return _spawn(name, cmd, clean_env(**{**storage, **(env or {}), **credentials}), workdir, port, login)


def start_reference(workdir: Path, login: Optional[Tuple[str, str]] = None) -> Server:
    """The REFERENCE: opsml 2.2.4's own server (SQLite + local storage), from this venv; with
    `login`, started with its login on (`--login`) and that username and password."""
    exe = Path(sys.executable).parent / "opsml-uvicorn-server"
    if not exe.exists():
        found = shutil.which("opsml-uvicorn-server")
        if not found:
            raise RuntimeError("opsml-uvicorn-server is not installed (pip install 'opsml[server]==2.2.4')")
        exe = Path(found)
    port = free_port()
    credentials = {"OPSML_USERNAME": login[0], "OPSML_PASSWORD": login[1]} if login else {}
    env = clean_env(
        OPSML_TRACKING_URI=f"sqlite:///{workdir}/ref.db",
        OPSML_STORAGE_URI=str(workdir / "store"),
        **credentials,
    )
    # Its --login flag is parsed with bool(): any non-empty value turns it on.
    flags = ["--login", "on"] if login else []
    return _spawn("reference", [str(exe), "--port", str(port), *flags], env, workdir, port, login)


# --- client flows ---------------------------------------------------------------------------------

@dataclass
class FlowResult:
    flow: str
    server: str
    ok: bool
    result: Any
    error: Optional[str]
    traceback: str
    requests: List[Dict[str, Any]]
    stderr: str
    seconds: float
    missing_routes: List[str] = field(default_factory=list)

    def explain(self) -> str:
        failed = [r for r in self.requests if r.get("status") != 200]
        lines = [f"flow {self.flow} against {self.server}: ok={self.ok} error={self.error}"]
        for r in failed[:10]:
            lines.append(f"  {r['method']} {r['route']}?{r['query']} -> {r['status']} "
                         f"request={r.get('request_body', '')[:300]!r} response={r.get('response_body', '')[:200]!r}")
        if self.traceback:
            lines.append(self.traceback[-3000:])
        if not self.ok and self.stderr:
            lines.append("stderr (tail):\n" + self.stderr[-2000:])
        return "\n".join(lines)


def served_routes() -> List[str]:
    """The routes of spin.toml, relative to /opsml/ (what our host serves)."""
    manifest = tomllib.loads((ROOT / "spin.toml").read_text())
    return sorted(t["route"].removeprefix("/opsml/") for t in manifest.get("trigger", {}).get("http", []))


def run_flow(flow: str, server: Server, workdir: Path, timeout: float = 240) -> FlowResult:
    """Runs flows/<flow>.py with the venv's python, OPSML_TRACKING_URI=<server> and workdir as
    its CWD; returns its JSON result and the requests it made."""
    workdir.mkdir(parents=True, exist_ok=True)
    # The client sends the server's login, as a data scientist would set it.
    credentials = {"OPSML_USERNAME": server.login[0], "OPSML_PASSWORD": server.login[1]} if server.login else {}
    env = clean_env(OPSML_TRACKING_URI=server.url, PYTHONPATH=str(FLOWS), PYTHONDONTWRITEBYTECODE="1",
                    **credentials)
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, str(FLOWS / f"{flow}.py")], cwd=workdir, env=env, stdin=subprocess.DEVNULL,
        capture_output=True, text=True, timeout=timeout,
    )
    seconds = time.monotonic() - started
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        raise AssertionError(f"flow {flow} printed no result (exit {proc.returncode}).\n"
                             f"stdout:\n{proc.stdout[-2000:]}\nstderr:\n{proc.stderr[-4000:]}")
    out = json.loads(lines[-1])
    result = FlowResult(
        flow=flow, server=server.name, ok=out["ok"], result=out.get("result"), error=out.get("error"),
        traceback=out.get("traceback", ""), requests=out.get("requests", []), stderr=proc.stderr,
        seconds=seconds,
    )
    served = set(served_routes())
    result.missing_routes = sorted({
        f"{r['method']} {r['route']}" for r in result.requests
        if r.get("status") == 404 and r["route"] not in served
    })
    return result
