#!/usr/bin/env python3
"""The benchmark: our registry on opsml-host and on real Spin (when scripts/find-spin finds a
Spin CLI), the opsml 2.2.4 reference server, MLflow and a native baseline, each started on
loopback, seeded with the same cards through its HTTP API and measured with the same load
generator (bench/src, `opsml-bench`) at the same concurrency, once per backend: the embedded
defaults (SQLite and local files) and the production path (PostgreSQL and an S3-compatible
server, both on loopback, started by scripts/services.sh). Prints one markdown table per backend
and writes them (and the raw figures as JSON) to bench/results/.

    python3 bench/run.py                 # the full run (~30 minutes)
    python3 bench/run.py --smoke         # a tiny run for CI: exits non-zero on any failure
    python3 bench/run.py --only ours,native --backends embedded

See bench/README.md for what is measured and how.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

ROOT = Path(__file__).resolve().parents[1]
# The conformance suite's standard-library helpers: server processes, the client's list body.
sys.path.insert(0, str(ROOT / "tests" / "python"))
from support.procs import clean_env, free_port, log_tail, stop_group  # noqa: E402
from support.seed import client_list_body  # noqa: E402

BENCH = ROOT / "bench"
CACHE = Path.home() / ".cache" / "opsml-on-spin"
REF_VENV = Path(os.environ.get("OPSML_PY_VENV", CACHE / "venv"))
# The reference with its S3 and PostgreSQL extras: s3fs 2023.x pins an older fsspec than the
# conformance suite's venv, so it gets a venv of its own.
REF_S3_VENV = Path(os.environ.get("OPSML_BENCH_REF_S3_VENV", CACHE / "bench-ref-s3-venv"))
BENCH_VENV = Path(os.environ.get("OPSML_BENCH_VENV", CACHE / "bench-venv"))
TOOL = BENCH / "target" / "release" / "opsml-bench"
# Every folder under components/ is a component package (as scripts/test.sh builds them).
COMPONENTS = sorted(p.name for p in (ROOT / "components").iterdir() if (p / "Cargo.toml").exists())
SERVERS = ["ours", "spin", "reference", "mlflow", "native"]
BACKENDS = {"embedded": "embedded defaults (SQLite, local files / key-value)",
            "postgres-s3": "production path (PostgreSQL 15 + s3s-fs, on loopback)",
            "postgres-s3-https": "production path over HTTPS (PostgreSQL 15 + s3s-fs behind haproxy's TLS, "
                                 "a certificate from a private CA)"}
LABELS = {"ours": "ours (opsml-host)", "spin": "ours on Spin", "reference": "opsml 2.2.4 reference",
          "mlflow": "MLflow", "native": "native limit"}
FIND_SPIN = ROOT / "scripts" / "find-spin"
T0_US = 1_700_000_000_000_000
MiB = 1 << 20


class BenchError(Exception):
    pass


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def run(cmd: List[str], **kw: Any) -> subprocess.CompletedProcess:
    log("$ " + " ".join(str(c) for c in cmd))
    return subprocess.run(cmd, check=True, **kw)


# --------------------------------------------------------------------------------------------
# Set-up: the bench tool, the host, the two venvs
# --------------------------------------------------------------------------------------------

def build_tool() -> None:
    run(["cargo", "build", "--release", "--quiet", "--manifest-path", str(BENCH / "Cargo.toml")])


def ensure_host(app: Path, binary: Path, build: bool, wasm_only: bool = False) -> None:
    """Builds the components and (unless `wasm_only`, for Spin) opsml-host, when missing."""
    wasm = [app / "target" / "wasm32-wasip2" / "release" / f"{c.replace('-', '_')}.wasm" for c in COMPONENTS]
    missing = [p for p in ([] if wasm_only else [binary]) + wasm if not p.exists()]
    if not missing:
        return
    if not build:
        raise BenchError(f"missing {', '.join(map(str, missing))}: build them (see bench/README.md) "
                         "or drop --no-build")
    if not wasm_only and not binary.exists():
        profile = ["--release"] if binary.parent.name == "release" else []
        run(["cargo", "build", *profile], cwd=app)
    run(["rustup", "target", "add", "wasm32-wasip2"], cwd=app, stdout=subprocess.DEVNULL)
    run(["cargo", "build", "--target", "wasm32-wasip2", "--release",
         *[a for c in COMPONENTS for a in ("-p", c)]], cwd=app)


def app_commit(app: Path) -> str:
    """The app's commit: `git rev-parse` in a checkout (marked `+dirty` when it has changes), or
    the commit a `git archive` export was made from (its pax header, kept in COMMIT by the
    README's recipe)."""
    if (app / "COMMIT").exists():
        return (app / "COMMIT").read_text().strip()[:12] + " (export)"
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=app, capture_output=True, text=True)
    if head.returncode != 0:
        return "?"
    dirty = subprocess.run(["git", "status", "--porcelain", "--", "crates", "components", "wit", "spin.toml",
                            "runtime-config", "Cargo.toml", "Cargo.lock"], cwd=app, capture_output=True, text=True)
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def python311() -> str:
    for candidate in (os.environ.get("PYTHON"), "python3.11", "python3"):
        if candidate and shutil.which(candidate):
            return candidate
    raise BenchError("no python3.11 found; set PYTHON")


def ensure_venv(venv: Path, requirements: List[Path], constraints: Optional[Path],
                drop_constraints: Tuple[str, ...] = ()) -> None:
    """Creates or refreshes one of the benchmark's own venvs when its requirement files changed
    (as scripts/venv.sh does for the test suites' venvs, which have one requirements file each).
    `drop_constraints` names packages whose pins in `constraints` do not apply to this venv."""
    files = requirements + ([constraints] if constraints else [])
    want = hashlib.sha256(b"".join(p.read_bytes() for p in files) + repr(drop_constraints).encode()).hexdigest()
    stamp = venv / ".opsml-on-spin-requirements"
    if (venv / "bin" / "python").exists() and stamp.exists() and stamp.read_text().strip() == want:
        return
    log(f"installing the venv {venv}")
    shutil.rmtree(venv, ignore_errors=True)
    venv.parent.mkdir(parents=True, exist_ok=True)
    run([python311(), "-m", "venv", str(venv)])
    cmd = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    for r in requirements:
        cmd += ["-r", str(r)]
    if constraints:
        if drop_constraints:
            kept = [ln for ln in constraints.read_text().splitlines()
                    if ln.split("==")[0].strip().lower() not in drop_constraints]
            constraints = venv / "constraints.txt"
            constraints.write_text("\n".join(kept) + "\n")
        cmd += ["-c", str(constraints)]
    run(cmd)
    stamp.write_text(want + "\n")


def ensure_reference_venv(backend: str) -> None:
    here = ROOT / "tests" / "python"
    if backend == "embedded":
        # The conformance suite's own venv: made by the same script as tests/python/run.sh, so
        # that neither finds the other's stamp foreign and reinstalls it.
        run(["bash", "-c", '. scripts/venv.sh && opsml_venv "$1" "$2"', "venv", str(REF_VENV), str(here)], cwd=ROOT)
    else:
        ensure_venv(REF_S3_VENV, [BENCH / "requirements-reference-s3.txt"], here / "constraints.txt",
                    drop_constraints=("fsspec", "python-dateutil", "wrapt"))


def reference_venv(backend: str) -> Path:
    return REF_VENV if backend == "embedded" else REF_S3_VENV


def ensure_mlflow_venv() -> None:
    ensure_venv(BENCH_VENV, [BENCH / "requirements.txt"], None)


# --------------------------------------------------------------------------------------------
# Servers and their memory
# --------------------------------------------------------------------------------------------

def proc_stats() -> Dict[int, Tuple[str, List[str]]]:
    """Every process's name and the fields of /proc/<pid>/stat after it (state, ppid, …)."""
    stats: Dict[int, Tuple[str, List[str]]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        stats[int(entry)] = (stat[stat.index("(") + 1:stat.rindex(")")], stat.rsplit(")", 1)[1].split())
    return stats


def process_tree(root: int) -> List[int]:
    children: Dict[int, List[int]] = {}
    for pid, (_, fields) in proc_stats().items():
        children.setdefault(int(fields[1]), []).append(pid)
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def cpu_seconds(root: int) -> float:
    """User and system CPU seconds of `root` and its descendants so far."""
    ticks = os.sysconf("SC_CLK_TCK")
    stats = proc_stats()
    # Fields after the name: state, ppid, …; utime and stime are the 12th and 13th of them.
    return sum((int(stats[pid][1][11]) + int(stats[pid][1][12])) / ticks
               for pid in process_tree(root) if pid in stats)


def status_kib(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class ForeignCpu:
    """CPU time used by processes that are not this script or its descendants (the servers, the
    load generator): other builds or tests on the machine. Each figure records how many cores
    such processes used while it was measured; `wait_quiet` holds a measurement back until the
    machine is quiet."""

    def __init__(self) -> None:
        self.me = os.getpid()
        # Daemons started for the benchmark (PostgreSQL, s3s-fs) count as ours, with their children.
        self.roots = {self.me}
        self.hz = os.sysconf("SC_CLK_TCK")
        self.total = 0.0  # foreign CPU seconds so far
        self.busy: Dict[int, str] = {}  # pid -> name, of the last interval's foreign CPU users
        self._last: Dict[int, int] = {}
        self._lock = threading.Lock()
        self._sample()
        threading.Thread(target=self._run, daemon=True).start()

    def _sample(self) -> None:
        ticks: Dict[int, int] = {}
        names: Dict[int, str] = {}
        parents: Dict[int, int] = {}
        for pid, (name, rest) in proc_stats().items():
            parents[pid] = int(rest[1])
            ticks[pid] = int(rest[11]) + int(rest[12])
            names[pid] = name
        mine = set()
        for pid in ticks:
            p, seen = pid, 0
            while p > 1 and seen < 64:
                if p in self.roots:
                    mine.add(pid)
                    break
                p, seen = parents.get(p, 0), seen + 1
        used, busy = 0, {}
        for pid, t in ticks.items():
            # Kernel threads (children of kthreadd, pid 2) do our servers' writeback too: not counted.
            if pid in mine or pid == self.me or pid == 2 or parents.get(pid) == 2:
                continue
            delta = t - self._last.get(pid, t if not self._last else 0)
            if delta > 0:
                used += delta
                busy[pid] = names[pid]
        with self._lock:
            self.total += used / self.hz
            self.busy = busy
        self._last = ticks

    def _run(self) -> None:
        while True:
            time.sleep(0.5)
            self._sample()

    def seconds(self) -> float:
        with self._lock:
            return self.total

    def wait_quiet(self, limit: float) -> None:
        """Waits (at most `limit` s) until others used under 0.1 core for 3 s in a row."""
        if limit <= 0:
            return
        deadline, quiet_since, announced = time.monotonic() + limit, None, False
        while time.monotonic() < deadline:
            before = self.seconds()
            time.sleep(1.0)
            if self.seconds() - before < 0.1:
                quiet_since = quiet_since or time.monotonic()
                if time.monotonic() - quiet_since >= 3:
                    return
            else:
                quiet_since = None
                if not announced:
                    log(f"waiting for the machine to be quiet (busy: {sorted(set(self.busy.values()))[:6]})")
                    announced = True
        log(f"the machine stayed busy for {limit:.0f} s; measuring anyway")


FOREIGN: Optional[ForeignCpu] = None


class RssSampler:
    """Samples the summed VmRSS of a process and all its descendants every 50 ms, and resets
    and reads each process's VmHWM (its own peak) around the measured interval."""

    def __init__(self, root: int):
        self.root = root
        self.peak_kib = 0
        self.pids = process_tree(root)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "RssSampler":
        for pid in self.pids:
            try:  # "5" resets the peak resident set size (VmHWM) to the current RSS
                Path(f"/proc/{pid}/clear_refs").write_text("5")
            except OSError:
                pass
        self._thread.start()
        return self

    def _run(self) -> None:
        last_scan = time.monotonic()
        while not self._stop.is_set():
            if time.monotonic() - last_scan > 1.0:
                self.pids = process_tree(self.root)
                last_scan = time.monotonic()
            self.peak_kib = max(self.peak_kib, sum(status_kib(p, "VmRSS") for p in self.pids))
            self._stop.wait(0.05)

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        self.hwm_sum_kib = sum(status_kib(p, "VmHWM") for p in self.pids)

    @property
    def peak_mib(self) -> float:
        return max(self.peak_kib, getattr(self, "hwm_sum_kib", 0)) / 1024


def rss_mib(root: int) -> float:
    return sum(status_kib(p, "VmRSS") for p in process_tree(root)) / 1024


@dataclass
class Server:
    name: str
    proc: subprocess.Popen
    port: int
    workdir: Path
    log_path: Path
    health: str
    extra: Dict[str, Any] = field(default_factory=dict)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def tail(self, n: int = 30) -> str:
        return log_tail(self.log_path, n)

    def alive(self) -> None:
        if self.proc.poll() is not None:
            raise BenchError(f"{self.name} exited with {self.proc.returncode}:\n{self.tail()}")

    def stop(self) -> None:
        stop_group(self.proc, grace=20)


def spawn(name: str, cmd: List[str], env: Dict[str, str], workdir: Path, port: int, health: str,
          timeout: float) -> Server:
    workdir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / f"{name}.log"
    log(f"starting {name}: {' '.join(cmd)}")
    with open(log_path, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=workdir, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    server = Server(name, proc, port, workdir, log_path, health)
    STARTED.append(server)
    started = time.monotonic()
    last = ""
    while time.monotonic() - started < timeout:
        server.alive()
        try:
            with urllib.request.urlopen(server.base + health, timeout=5) as r:
                if r.status == 200:
                    server.extra["startup_s"] = time.monotonic() - started
                    log(f"{name} answers on {server.base} after {server.extra['startup_s']:.1f} s")
                    return server
        except (urllib.error.URLError, OSError) as e:
            last = repr(e)
        time.sleep(0.2)
    server.stop()
    raise BenchError(f"{name} did not answer {health} within {timeout:.0f} s ({last}):\n{server.tail()}")


STARTED: List[Server] = []


class Services:
    """The production path's backends on loopback: PostgreSQL and s3s-fs, started by
    scripts/services.sh as the test legs start them (PostgreSQL with fsync off, as there), held
    by one bash process that stops them when its stdin closes."""

    SCRIPT = r"""
set -e
. scripts/services.sh
trap opsml_services_stop EXIT
opsml_services_start s3 postgres $EXTRA_SERVICES >&2
env | grep '^OPSML_TEST_'
echo "SERVICES_DIR=$opsml_services_dir"
echo READY
read -r _ || true
"""

    def __init__(self, workdir: Path, https: bool = False):
        workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = workdir / "services.log"
        log("starting PostgreSQL and s3s-fs (scripts/services.sh)")
        with open(self.log_path, "wb") as err:
            self.proc = subprocess.Popen(["bash", "-c", self.SCRIPT], cwd=ROOT, stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=err, text=True, start_new_session=True,
                                         env={**os.environ, "EXTRA_SERVICES": "s3_tls" if https else ""})
        assert self.proc.stdout is not None
        self.env: Dict[str, str] = {}
        for line in self.proc.stdout:
            if line.strip() == "READY":
                break
            key, _, value = line.rstrip("\n").partition("=")
            self.env[key] = value
        else:
            raise BenchError(f"scripts/services.sh failed:\n{log_tail(self.log_path, 30)}")
        self.pg = self.env["OPSML_TEST_POSTGRES_URL"].rstrip("/")
        # Over HTTPS every client reaches the store through the TLS terminator and trusts its CA.
        self.endpoint = self.env["OPSML_TEST_S3_TLS_ENDPOINT" if https else "OPSML_TEST_S3_ENDPOINT"]
        self.ca: Optional[str] = self.env["OPSML_TEST_S3_CA"] if https else None
        self.bucket = self.env["OPSML_TEST_S3_BUCKET"]
        self.key_id = self.env["OPSML_TEST_S3_ACCESS_KEY_ID"]
        self.secret = self.env["OPSML_TEST_S3_SECRET_ACCESS_KEY"]
        # PostgreSQL's postmaster and s3s-fs detach from the script: their CPU is the workload's.
        services_dir = Path(self.env["SERVICES_DIR"])
        for pid_file in (services_dir / "pg" / "data" / "postmaster.pid", services_dir / "s3.pid",
                         *([services_dir / "tls" / "haproxy.pid"] if https else [])):
            try:
                if FOREIGN is not None:
                    FOREIGN.roots.add(int(pid_file.read_text().split()[0]))
            except (OSError, ValueError, IndexError):
                log(f"cannot read {pid_file}: that service's CPU counts as other processes'")

    def psql(self, sql: str) -> None:
        subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", f"{self.pg}/postgres", "-c", sql],
                       check=True, capture_output=True)

    def database(self, name: str, template: Optional[str] = None) -> str:
        """A new database (a copy of `template`, once its last session has ended); its URL."""
        sql = f"CREATE DATABASE {name}" + (f" TEMPLATE {template}" if template else "")
        for attempt in range(50):
            try:
                self.psql(sql)
                break
            except subprocess.CalledProcessError as e:
                if attempt == 49 or b"being accessed by other users" not in e.stderr:
                    raise BenchError(f"{sql}: {e.stderr.decode(errors='replace')}") from None
                time.sleep(0.2)
        return f"{self.pg}/{name}"

    def aws_env(self) -> Dict[str, str]:
        """The AWS SDK settings for the peers' own S3 clients (boto3, s3fs)."""
        return {"AWS_ACCESS_KEY_ID": self.key_id, "AWS_SECRET_ACCESS_KEY": self.secret,
                "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL_S3": self.endpoint,
                "AWS_ENDPOINT_URL": self.endpoint, **({"AWS_CA_BUNDLE": self.ca} if self.ca else {})}

    def stop(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                stop_group(self.proc, grace=5)


def start_ours(app: Path, binary: Path, workdir: Path, name: str = "ours",
               storage: Optional[Dict[str, str]] = None) -> Server:
    """Our registry served by `binary up` (opsml-host, or the Spin CLI: the same flags and
    files): the embedded defaults, or the production backends that `storage` (OPSML_* variables)
    names."""
    port = free_port()
    state = workdir / "state"
    runtime_config = app / "runtime-config" / "dev.toml"
    storage = dict(storage or {})
    ca = storage.pop("CA", None)
    if ca:
        # As an operator trusts an internal CA: a [[client_tls]] table for the store's host.
        workdir.mkdir(parents=True, exist_ok=True)
        custom = workdir / "runtime-config.toml"
        custom.write_text(runtime_config.read_text() + "\n[[client_tls]]\n"
                          'component_ids = ["upload", "download", "models", "ui"]\n'
                          f'hosts = ["localhost"]\nca_roots_file = "{ca}"\n')
        runtime_config = custom
    cmd = [str(binary), "up", "-f", str(app / "spin.toml"), "--listen", f"127.0.0.1:{port}",
           "--state-dir", str(state), "--runtime-config-file", str(runtime_config)]
    server = spawn(name, cmd, clean_env(**storage), workdir, port, "/opsml/healthcheck", timeout=600)
    server.extra["db"] = state / "sqlite_db.db"
    return server


def ours_storage(services: Optional[Services], database: str) -> Optional[Dict[str, str]]:
    """Our registry's variables for the production path: its own database and bucket prefix."""
    if services is None:
        return None
    return {"OPSML_DATABASE_URL": services.database(database),
            "OPSML_STORAGE_URI": f"s3://{services.bucket}/{database}",
            "OPSML_S3_ENDPOINT": services.endpoint, "OPSML_S3_ACCESS_KEY_ID": services.key_id,
            "OPSML_S3_SECRET_ACCESS_KEY": services.secret, **({"CA": services.ca} if services.ca else {})}


def find_spin() -> Optional[Tuple[Path, str]]:
    """The Spin CLI (scripts/find-spin) and its version, or None when there is none."""
    found = subprocess.run([str(FIND_SPIN)], capture_output=True, text=True)
    if found.returncode != 0:
        log(found.stderr.strip())
        return None
    binary = Path(found.stdout.strip())
    version = subprocess.run([str(binary), "--version"], capture_output=True, text=True).stdout.split()
    return binary, " ".join(version[:2]) if version else "spin"


def start_reference(workdir: Path, services: Optional[Services]) -> Server:
    """opsml's documented production command: gunicorn with uvicorn workers and opsml's own
    gunicorn_conf.py, here with 2 workers; SQLite metadata and local storage, or PostgreSQL
    (psycopg2) and S3 through opsml's own S3 storage client (s3fs, boto3)."""
    port = free_port()
    venv = REF_VENV if services is None else REF_S3_VENV
    conf = next(venv.glob("lib/python*/site-packages/opsml/app/gunicorn_conf.py"))
    workdir.mkdir(parents=True, exist_ok=True)
    prom = workdir / "prometheus"
    prom.mkdir(parents=True, exist_ok=True)
    if services is None:
        env = clean_env(OPSML_TRACKING_URI=f"sqlite:///{workdir}/ref.db", OPSML_STORAGE_URI=str(workdir / "store"),
                        PROMETHEUS_MULTIPROC_DIR=str(prom))
    else:
        database = services.database("bench_reference")
        env = clean_env(OPSML_TRACKING_URI=database.replace("postgres://", "postgresql+psycopg2://", 1),
                        OPSML_STORAGE_URI=f"s3://{services.bucket}/bench_reference",
                        PROMETHEUS_MULTIPROC_DIR=str(prom), **services.aws_env())
    # A deployment's database exists before its workers start. On a fresh SQLite file both workers
    # create the tables at once and one of them can fail to boot ("table ... already exists"),
    # which takes gunicorn down: create the schema first, the way each worker's startup does.
    init = subprocess.run([str(venv / "bin" / "python"), "-c",
                           "from opsml.registry.registry import CardRegistries; CardRegistries()"],
                          cwd=workdir, env=env, capture_output=True, text=True)
    if init.returncode != 0:
        raise BenchError(f"reference: creating its database failed:\n{init.stderr[-2000:]}")
    cmd = [str(venv / "bin" / "gunicorn"), "-k", "uvicorn.workers.UvicornWorker", f"--config={conf}",
           f"--bind=127.0.0.1:{port}", "--workers=2", "opsml.app.main:run_app(login=False)"]
    server = spawn("reference", cmd, env, workdir, port, "/opsml/healthcheck", timeout=180)
    # The health check needs one worker; measure only once both have started.
    deadline = time.monotonic() + 120
    while server.log_path.read_text(errors="replace").count("Application startup complete") < 2:
        server.alive()
        if time.monotonic() > deadline:
            raise BenchError(f"reference: its second worker did not start:\n{server.tail()}")
        time.sleep(0.2)
    return server


def start_mlflow(workdir: Path, workers: int, services: Optional[Services]) -> Server:
    """The MLflow tracking server with proxied artifacts: SQLite and a local directory, or
    PostgreSQL (psycopg2) and S3 (boto3, MLFLOW_S3_ENDPOINT_URL)."""
    port = free_port()
    if services is None:
        store, artifacts, env = f"sqlite:///{workdir}/mlflow.db", str(workdir / "artifacts"), clean_env()
        (workdir / "artifacts").mkdir(parents=True, exist_ok=True)
    else:
        store = services.database("bench_mlflow").replace("postgres://", "postgresql+psycopg2://", 1)
        artifacts = f"s3://{services.bucket}/bench_mlflow"
        env = clean_env(MLFLOW_S3_ENDPOINT_URL=services.endpoint, **services.aws_env())
    cmd = [str(BENCH_VENV / "bin" / "mlflow"), "server", "--backend-store-uri", store,
           "--serve-artifacts", "--artifacts-destination", artifacts, "--host", "127.0.0.1",
           "--port", str(port), "--workers", str(workers)]
    return spawn("mlflow", cmd, env, workdir, port, "/health", timeout=300)


def start_native(db: str, files: Path, workdir: Path) -> Server:
    """The native limit on a copy of our host's database: a SQLite file, or a PostgreSQL URL."""
    port = free_port()
    files.mkdir(parents=True, exist_ok=True)
    source = ["--postgres", db] if db.startswith("postgres://") else ["--db", db]
    cmd = [str(TOOL), "serve", "--listen", f"127.0.0.1:{port}", *source, "--files-dir", str(files),
           "--threads", "2"]
    return spawn("native", cmd, clean_env(), workdir, port, "/opsml/healthcheck", timeout=30)


def snapshot(db: Path, to: Path) -> Path:
    """A consistent copy of our host's SQLite database (the live file is in WAL mode)."""
    to.parent.mkdir(parents=True, exist_ok=True)
    src = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    dst = sqlite3.connect(to)
    with dst:
        src.backup(dst)
    src.close()
    dst.close()
    return to


# --------------------------------------------------------------------------------------------
# HTTP helpers and the load generator
# --------------------------------------------------------------------------------------------

def http(method: str, url: str, body: Any = None, headers: Optional[Dict[str, str]] = None) -> Any:
    data = None
    hdrs = dict(headers or {})
    if body is not None:
        data = json.dumps(body).encode()
        hdrs["content-type"] = "application/json"
    req = urllib.request.Request(url, data=data, method=method, headers=hdrs)
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        raise BenchError(f"{method} {url} -> {e.code}: {e.read()[:300]!r}") from None


def write_jsonl(path: Path, lines: List[Dict[str, Any]]) -> Path:
    with open(path, "w") as f:
        for line in lines:
            f.write(json.dumps(line, separators=(",", ":")) + "\n")
    return path


class Runner:
    def __init__(self, args: argparse.Namespace, workdir: Path):
        self.args = args
        self.workdir = workdir
        self.failures: List[str] = []

    def measured(self, fn: Callable[[], Dict[str, Any]]) -> Dict[str, Any]:
        """Runs one measurement, after waiting for a quiet machine (--wait-quiet), and records how
        many cores other processes used meanwhile."""
        assert FOREIGN is not None
        FOREIGN.wait_quiet(self.args.wait_quiet)
        before, started = FOREIGN.seconds(), time.monotonic()
        result = fn()
        result["foreign_cores"] = round((FOREIGN.seconds() - before) / max(time.monotonic() - started, 1e-3), 3)
        if result["foreign_cores"] > 0.2:
            log(f"  (other processes used {result['foreign_cores']:.2f} cores meanwhile)")
        return result

    def load(self, server: Server, label: str, extra: List[str], connections: int,
             duration: Optional[float] = None, once: bool = False) -> Dict[str, Any]:
        return self.measured(lambda: self._load(server, label, extra, connections, duration, once))

    def _load(self, server: Server, label: str, extra: List[str], connections: int,
              duration: Optional[float] = None, once: bool = False) -> Dict[str, Any]:
        cmd = [str(TOOL), "load", "--base", server.base, "--connections", str(connections), *extra]
        if once:
            cmd.append("--once")
        else:
            d = duration if duration is not None else self.args.duration
            cmd += ["--duration", str(d), "--warmup", str(self.args.warmup)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
        if not lines:
            raise BenchError(f"{server.name} {label}: the load generator printed nothing "
                             f"(exit {proc.returncode}): {proc.stderr[-2000:]}")
        result = json.loads(lines[-1])
        log(f"{server.name:9} {label:28} c={connections:<3} {result['rate']:9.1f}/s  p50 {result['p50_ms']:.2f} ms"
            f"  p99 {result['p99_ms']:.2f} ms  ({result['ops']} ok, {result['failures']} failed)")
        if result["failures"] or proc.returncode != 0:
            self.failures.append(f"{server.name} {label} c={connections}: {result['failures']} failed requests; "
                                 f"first errors: {result['errors'][:3]}")
        server.alive()
        return result

    def transfer(self, server: Server, label: str, cmd: List[str]) -> Dict[str, Any]:
        return self.measured(lambda: self._transfer(server, label, cmd))

    def _transfer(self, server: Server, label: str, cmd: List[str]) -> Dict[str, Any]:
        cpu_before = cpu_seconds(server.proc.pid)
        with RssSampler(server.proc.pid) as sampler:
            proc = subprocess.run([str(TOOL), *cmd], capture_output=True, text=True)
        cpu = cpu_seconds(server.proc.pid) - cpu_before
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
        result = json.loads(lines[-1]) if lines else {"mb_per_s": 0.0}
        result["peak_rss_mib"] = sampler.peak_mib
        # What the server itself spent per GiB moved (not the S3 server, TLS terminator or client).
        if result.get("bytes"):
            result["cpu_s_per_gib"] = cpu / (result["bytes"] / (1 << 30))
        result["sampled_peak_rss_mib"] = sampler.peak_kib / 1024
        if proc.returncode != 0:
            self.failures.append(f"{server.name} {label}: {proc.stderr.strip()[-500:]}")
            log(f"{server.name:9} {label:28} FAILED: {proc.stderr.strip()[-500:]}")
        else:
            log(f"{server.name:9} {label:28} {result['mb_per_s']:9.1f} MB/s  peak RSS {result['peak_rss_mib']:.0f} MiB"
                f"  ({result['seconds']:.2f} s)")
        server.alive()
        return result


# --------------------------------------------------------------------------------------------
# The cards every server is seeded with
# --------------------------------------------------------------------------------------------

def uid_of(name: str, version: str) -> str:
    return hashlib.md5(f"{name}@{version}".encode()).hexdigest()  # 32 hex, like uuid4().hex


def model_card(name: str, version: str, i: int) -> Dict[str, Any]:
    return {"name": name, "repository": "bench", "contact": "bench@example.com", "uid": uid_of(name, version),
            "version": version, "tags": {"team": "bench", "idx": str(i)}, "datacard_uid": None,
            "sample_data_type": "pandas.core.frame.DataFrame", "model_type": "LinearRegression",
            "timestamp": T0_US + i * 1_000_000, "runcard_uid": None, "pipelinecard_uid": None,
            "auditcard_uid": None}


def model_list_body(**kw: Any) -> Dict[str, Any]:
    """A cards/list body for the model registry, in the opsml 2.x client's shape."""
    return client_list_body(registry_type="model", **kw)


@dataclass
class Seed:
    names: List[str]
    versions: List[str]

    def cards(self) -> List[Dict[str, Any]]:
        out, i = [], 0
        for v in self.versions:  # version-major order: each name grows one version at a time
            for n in self.names:
                out.append(model_card(n, v, i))
                i += 1
        return out


def shuffled(items: List[Any], seed: int = 7) -> List[Any]:
    items = list(items)
    random.Random(seed).shuffle(items)
    return items


# --------------------------------------------------------------------------------------------
# Measurements
# --------------------------------------------------------------------------------------------

def seed_opsml(r: Runner, server: Server, cards: List[Dict[str, Any]], connections: int, tag: str) -> Dict[str, Any]:
    f = write_jsonl(r.workdir / f"seed-{server.name}-{tag}.jsonl",
                    [{"method": "POST", "path": "/opsml/cards/create",
                      "json": {"registry_type": "model", "table_name": None, "card": c}} for c in cards])
    return r.load(server, f"seed {len(cards)} cards", ["--requests-file", str(f)], connections, once=True)


def opsml_reads(r: Runner, server: Server, seed: Seed, res: Dict[str, Any]) -> None:
    # Check the answers once before measuring: a fast wrong answer is not a result.
    name, version = seed.names[0], seed.versions[-1]
    got = http("POST", server.base + "/opsml/cards/list", model_list_body(name=name))
    if len(got.get("cards", [])) != len(seed.versions):
        raise BenchError(f"{server.name}: cards/list {name} returned {len(got.get('cards', []))} cards, "
                         f"expected {len(seed.versions)}")
    got = http("POST", server.base + "/opsml/cards/list", model_list_body(uid=uid_of(name, version)))
    if [c.get("version") for c in got.get("cards", [])] != [version]:
        raise BenchError(f"{server.name}: cards/list by uid returned {got}")
    lists = write_jsonl(r.workdir / f"list-{server.name}.jsonl",
                        [{"method": "POST", "path": "/opsml/cards/list", "json": model_list_body(name=n)}
                         for n in shuffled(seed.names)])
    gets = write_jsonl(r.workdir / f"get-{server.name}.jsonl",
                       [{"method": "POST", "path": "/opsml/cards/list",
                         "json": model_list_body(uid=uid_of(n, v))}
                        for n, v in shuffled([(n, v) for n in seed.names for v in seed.versions])])
    for c in r.args.connections:
        res[f"list_c{c}"] = r.load(server, "cards/list by name", ["--requests-file", str(lists)], c)
        res[f"get_c{c}"] = r.load(server, "cards/list by uid", ["--requests-file", str(gets)], c)


def opsml_creates(r: Runner, server: Server, res: Dict[str, Any]) -> None:
    for c in r.args.connections:
        res[f"create_c{c}"] = r.load(server, "cards/version + cards/create",
                                     ["--scenario", "opsml-create", "--prefix", f"create{c}",
                                      "--names-per-connection", "10"], c)


def opsml_files(r: Runner, server: Server, big: Path, res: Dict[str, Any]) -> None:
    path = "opsml-root:/OPSML_MODEL_REGISTRY/bench/big/v1.0.0/model.bin"
    res["upload"] = r.transfer(server, "files/upload (multipart)",
                               ["upload", "--url", f"{server.base}/opsml/files/upload", "--file", str(big),
                                "--multipart", "model.bin", "--header", f"write_path: {path}"])
    url = f"{server.base}/opsml/files/download?path={urllib.parse.quote(path, safe=':/')}"
    res["download"] = r.transfer(server, "files/download",
                                 ["download", "--url", url, "--expect-bytes", str(big.stat().st_size)])


def opsml_all(r: Runner, server: Server, seed: Seed, big: Path, res: Dict[str, Any]) -> None:
    """Seeds an opsml server, then measures its idle RSS, reads, creates and file transfers."""
    seed_opsml(r, server, seed.cards(), 1, "small")
    res["idle"] = {"rss_mib": rss_mib(server.proc.pid)}
    opsml_reads(r, server, seed, res)
    opsml_creates(r, server, res)
    opsml_files(r, server, big, res)


def seed_mlflow(r: Runner, server: Server, seed: Seed) -> None:
    # MLflow registers a model version from a run's artifacts (log_model, then register): one run
    # holds every version's source folder.
    run = http("POST", server.base + "/api/2.0/mlflow/runs/create",
               {"experiment_id": "0", "run_name": "bench", "start_time": int(time.time() * 1000)})["run"]["info"]
    server.extra["run_id"], server.extra["artifact_uri"] = run["run_id"], run["artifact_uri"]
    models = write_jsonl(r.workdir / "mlflow-models.jsonl",
                         [{"method": "POST", "path": "/api/2.0/mlflow/registered-models/create",
                           "json": {"name": n, "tags": [{"key": "team", "value": "bench"}]}} for n in seed.names])
    r.load(server, f"seed {len(seed.names)} models", ["--requests-file", str(models)], 1, once=True)
    versions = write_jsonl(r.workdir / "mlflow-versions.jsonl", [
        {"method": "POST", "path": "/api/2.0/mlflow/model-versions/create",
         "json": {"name": c["name"], "source": f"{run['artifact_uri']}/{c['name']}/{c['version']}",
                  "run_id": run["run_id"], "description": c["version"],
                  "tags": [{"key": "team", "value": "bench"}, {"key": "idx", "value": c["tags"]["idx"]}]}}
        for c in seed.cards()])
    r.load(server, f"seed {len(seed.cards())} versions", ["--requests-file", str(versions)], 1, once=True)


def mlflow_reads(r: Runner, server: Server, seed: Seed, res: Dict[str, Any]) -> None:
    def search(n: str) -> str:
        return "/api/2.0/mlflow/model-versions/search?" + urllib.parse.urlencode({"filter": f"name='{n}'"})

    def get(n: str, v: int) -> str:
        return "/api/2.0/mlflow/model-versions/get?" + urllib.parse.urlencode({"name": n, "version": v})

    got = http("GET", server.base + search(seed.names[0]))
    if len(got.get("model_versions", [])) != len(seed.versions):
        raise BenchError(f"mlflow: search returned {len(got.get('model_versions', []))} versions")
    got = http("GET", server.base + get(seed.names[0], len(seed.versions)))
    if not got.get("model_version"):
        raise BenchError(f"mlflow: model-versions/get returned {got}")
    lists = write_jsonl(r.workdir / "list-mlflow.jsonl",
                        [{"method": "GET", "path": search(n)} for n in shuffled(seed.names)])
    gets = write_jsonl(r.workdir / "get-mlflow.jsonl",
                       [{"method": "GET", "path": get(n, v)}
                        for n, v in shuffled([(n, v) for n in seed.names for v in range(1, len(seed.versions) + 1)])])
    for c in r.args.connections:
        res[f"list_c{c}"] = r.load(server, "model-versions/search name", ["--requests-file", str(lists)], c)
        res[f"get_c{c}"] = r.load(server, "model-versions/get", ["--requests-file", str(gets)], c)


def mlflow_creates(r: Runner, server: Server, res: Dict[str, Any]) -> None:
    for c in r.args.connections:
        prefix = f"create{c}"
        models = write_jsonl(r.workdir / f"mlflow-create-models-{c}.jsonl",
                             [{"method": "POST", "path": "/api/2.0/mlflow/registered-models/create",
                               "json": {"name": f"{prefix}-c{i}-n{k}"}} for i in range(c) for k in range(10)])
        r.load(server, "registered models for create", ["--requests-file", str(models)], 1, once=True)
        res[f"create_c{c}"] = r.load(server, "model-versions/create",
                                     ["--scenario", "mlflow-create", "--prefix", prefix,
                                      "--names-per-connection", "10", "--run-id", server.extra["run_id"],
                                      "--artifact-uri", server.extra["artifact_uri"]], c)


def mlflow_files(r: Runner, server: Server, big: Path, res: Dict[str, Any]) -> None:
    url = f"{server.base}/api/2.0/mlflow-artifacts/artifacts/bench/big/model.bin"
    res["upload"] = r.transfer(server, "artifacts PUT", ["upload", "--method", "PUT", "--url", url, "--file", str(big)])
    res["download"] = r.transfer(server, "artifacts GET",
                                 ["download", "--url", url, "--expect-bytes", str(big.stat().st_size)])


def native_files(r: Runner, server: Server, big: Path, res: Dict[str, Any]) -> None:
    res["upload"] = r.transfer(server, "PUT /files (raw)",
                               ["upload", "--method", "PUT", "--url", f"{server.base}/files/upload.bin",
                                "--file", str(big)])
    res["download"] = r.transfer(server, "GET /files",
                                 ["download", "--url", f"{server.base}/files/{big.name}",
                                  "--expect-bytes", str(big.stat().st_size)])


def scale_seed() -> Callable[[int, int], Seed]:
    def make(cards: int, names: int) -> Seed:
        per = max(1, cards // names)
        # 25 minors per major: 1.0.0 … 1.24.0, 2.0.0 …; the filter "1.*" matches 25 of each name's 100.
        versions = [f"{1 + j // 25}.{j % 25}.0" for j in range(per)]
        return Seed([f"scale-{i:04d}" for i in range(names)], versions)
    return make


def scale_reads(r: Runner, server: Server, seed: Seed, res: Dict[str, Any]) -> None:
    expected = sum(1 for v in seed.versions if v.startswith("1."))
    got = http("POST", server.base + "/opsml/cards/list", model_list_body(name=seed.names[0], version="1.*"))
    if len(got.get("cards", [])) != expected:
        raise BenchError(f"{server.name}: scale list returned {len(got.get('cards', []))}, expected {expected}")
    lists = write_jsonl(r.workdir / f"scale-list-{server.name}.jsonl",
                        [{"method": "POST", "path": "/opsml/cards/list",
                          "json": model_list_body(name=n, version="1.*")} for n in shuffled(seed.names)])
    for c in r.args.connections:
        res[f"scale_list_c{c}"] = r.load(server, 'scale: list name + "1.*"', ["--requests-file", str(lists)], c)


def make_big_file(path: Path, size: int) -> Path:
    block = random.Random(42).randbytes(MiB)
    with open(path, "wb") as f:
        left = size
        while left > 0:
            f.write(block[:min(left, MiB)])
            left -= MiB
    return path


# --------------------------------------------------------------------------------------------
# The table
# --------------------------------------------------------------------------------------------

def fmt(v: Optional[float]) -> str:
    if v is None:
        return "—"
    if v >= 100:
        return f"{v:,.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def ratio(a: Optional[float], b: Optional[float]) -> str:
    if a is None or b is None or b == 0:
        return "—"
    return f"{a / b:.2f}×"


def table(results: Dict[str, Dict[str, Any]], conns: List[int], scale: Seed, big_size: int) -> str:
    size = f"{big_size / (1 << 30):g} GiB" if big_size >= (1 << 30) else f"{big_size / MiB:g} MiB"
    rows = []  # (label, unit, key, field)
    for c in conns:
        for key, what in (("list", "card list by name"), ("get", "card get by uid")):
            rows += [(f"{what}, {c} conn", "req/s", f"{key}_c{c}", "rate"),
                     (f"{what}, {c} conn", "p50 ms", f"{key}_c{c}", "p50_ms"),
                     (f"{what}, {c} conn", "p99 ms", f"{key}_c{c}", "p99_ms")]
    for c in conns:
        rows += [(f"card create, {c} conn", "ops/s", f"create_c{c}", "rate"),
                 (f"card create, {c} conn", "p50 ms", f"create_c{c}", "p50_ms"),
                 (f"card create, {c} conn", "p99 ms", f"create_c{c}", "p99_ms")]
    rows += [(f"{size} upload", "MB/s", "upload", "mb_per_s"),
             (f"{size} upload", "server CPU s/GiB", "upload", "cpu_s_per_gib"),
             (f"{size} upload", "peak RSS MiB", "upload", "peak_rss_mib"),
             (f"{size} download", "MB/s", "download", "mb_per_s"),
             (f"{size} download", "server CPU s/GiB", "download", "cpu_s_per_gib"),
             (f"{size} download", "peak RSS MiB", "download", "peak_rss_mib"),
             ("idle after seeding", "RSS MiB", "idle", "rss_mib")]
    scale_label = f"{len(scale.names) * len(scale.versions):,} cards / {len(scale.names):,} names"
    rows += [(f"scale: seed {scale_label} (cards/create)", "cards/s", "scale_seed", "rate")]
    for c in conns:
        rows += [(f'scale: list name + version "1.*", {c} conn', "req/s", f"scale_list_c{c}", "rate"),
                 (f'scale: list name + version "1.*", {c} conn', "p50 ms", f"scale_list_c{c}", "p50_ms"),
                 (f'scale: list name + version "1.*", {c} conn', "p99 ms", f"scale_list_c{c}", "p99_ms")]

    def val(server: str, key: str, fld: str) -> Optional[float]:
        m = results.get(server, {}).get(key)
        if not m or fld not in m:
            return None
        if m.get("failures"):
            return None
        return float(m[fld])

    def cell(server: str, key: str, fld: str) -> str:
        m = results.get(server, {}).get(key) or {}
        mark = " †" if m.get("foreign_cores", 0) > 0.2 else ""
        return fmt(val(server, key, fld)) + (mark if val(server, key, fld) is not None else "")

    # Spin first: it is what production runs (SpinKube's shim embeds Spin 3.6.3).
    out = ["| measurement | unit | ours on Spin | ours on opsml-host | Spin ÷ host | reference | Spin ÷ ref "
           "| host ÷ ref | MLflow | Spin ÷ MLflow | native limit | Spin ÷ native | host ÷ native |",
           "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for label, unit, key, fld in rows:
        o, sp, rf, ml, na = (val(s, key, fld) for s in SERVERS)
        if o is None and sp is None and rf is None and ml is None and na is None:
            continue
        c = {s: cell(s, key, fld) for s in SERVERS}
        out.append(f"| {label} | {unit} | {c['spin']} | {c['ours']} | {ratio(sp, o)} | {c['reference']} | "
                   f"{ratio(sp, rf)} | {ratio(o, rf)} | {c['mlflow']} | {ratio(sp, ml)} | {c['native']} | "
                   f"{ratio(sp, na)} | {ratio(o, na)} |")
    return "\n".join(out)


# --------------------------------------------------------------------------------------------

def measure_backend(r: Runner, args: argparse.Namespace, app: Path, binary: Path, spin: Optional[Tuple[Path, str]],
                    services: Optional[Services], only: List[str], seed: Seed, scale: Seed, big: Path,
                    workdir: Path, results: Dict[str, Dict[str, Any]], info: Dict[str, Any]) -> None:
    """Every server of `only` on one backend: the embedded defaults (`services` None) or the
    production path."""
    # -- ours (and, from its database, the native baseline) ------------------------------------
    native_small = native_scale = None
    if "ours" in only or "native" in only:
        storage = ours_storage(services, "bench_ours")
        ours = start_ours(app, binary, workdir / "ours", storage=storage)
        res = results.setdefault("ours", {})
        res["startup"] = {"seconds": ours.extra["startup_s"]}
        seed_opsml(r, ours, seed.cards(), 1, "small")
        res["idle"] = {"rss_mib": rss_mib(ours.proc.pid)}
        if services is None:
            native_small = str(snapshot(ours.extra["db"], workdir / "native" / "small.db"))
        else:
            # PostgreSQL copies a database only while nobody is connected to it: stop our host
            # for the copy, then serve the same database again.
            ours.stop()
            native_small = services.database("bench_native_small", template="bench_ours")
            ours = start_ours(app, binary, workdir / "ours", storage=storage)
        if "ours" in only:
            opsml_reads(r, ours, seed, res)
            opsml_creates(r, ours, res)
            opsml_files(r, ours, big, res)
        res["scale_seed"] = seed_opsml(r, ours, scale.cards(), 16, "scale")
        if services is None:
            native_scale = str(snapshot(ours.extra["db"], workdir / "native" / "scale.db"))
        if "ours" in only:
            scale_reads(r, ours, scale, res)
        else:
            results.pop("ours")
        ours.stop()
        if services is not None:
            native_scale = services.database("bench_native_scale", template="bench_ours")

    # -- the same components on real Spin, what production runs -------------------------------
    if spin:
        on_spin = start_ours(app, spin[0], workdir / "spin", name="spin",
                             storage=ours_storage(services, "bench_spin"))
        results["spin"]["startup"] = {"seconds": on_spin.extra["startup_s"]}
        opsml_all(r, on_spin, seed, big, results["spin"])
        on_spin.stop()

    if "native" in only:
        res = results["native"]
        for db, measure in ((native_small, lambda s: opsml_reads(r, s, seed, res)),
                            (native_scale, lambda s: scale_reads(r, s, scale, res))):
            assert db is not None
            server = start_native(db, workdir / "native" / "files", workdir / "native")
            if db is native_small:
                res["idle"] = {"rss_mib": rss_mib(server.proc.pid)}
            measure(server)
            # The loopback file copy does not depend on the backend: measured once.
            if db is native_small and services is None:
                shutil.copy(big, workdir / "native" / "files" / big.name)
                native_files(r, server, big, res)
            server.stop()

    if "reference" in only:
        ref = start_reference(workdir / "reference", services)
        opsml_all(r, ref, seed, big, results["reference"])
        ref.stop()

    if "mlflow" in only:
        ml = start_mlflow(workdir / "mlflow", args.mlflow_workers, services)
        res = results["mlflow"]
        seed_mlflow(r, ml, seed)
        res["idle"] = {"rss_mib": rss_mib(ml.proc.pid)}
        mlflow_reads(r, ml, seed, res)
        mlflow_creates(r, ml, res)
        mlflow_files(r, ml, big, res)
        ml.stop()
        info["mlflow"] = subprocess.run([str(BENCH_VENV / "bin" / "mlflow"), "--version"], capture_output=True,
                                        text=True).stdout.strip()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--smoke", action="store_true", help="tiny run for CI (few cards, 1 MiB file, 1 s per measurement)")
    p.add_argument("--only", default=None,
                   help="servers to run: ours,spin,reference,mlflow,native (default: all; spin only when "
                        "scripts/find-spin finds a Spin CLI)")
    p.add_argument("--backends", default=None,
                   help="backends to run each server on: embedded,postgres-s3 (default: both; smoke: embedded)")
    p.add_argument("--host-binary", type=Path, default=None,
                   help="opsml-host to run (default <app-dir>/target/debug/opsml-host: the build that "
                        "scripts/serve.sh serves and the tests run)")
    p.add_argument("--app-dir", type=Path, default=ROOT,
                   help="the app to serve: its spin.toml, runtime-config/dev.toml and built components "
                        "(default: this checkout; e.g. a `git archive` export of one commit)")
    p.add_argument("--duration", type=float, default=None, help="seconds per measurement (default 10; smoke 1)")
    p.add_argument("--warmup", type=float, default=None, help="warm-up seconds before each (default 2; smoke 0.3)")
    p.add_argument("--connections", default="1,16", help="connection counts (default 1,16)")
    p.add_argument("--file-mib", type=int, default=None, help="size of the upload/download file (default 1024; smoke 1)")
    p.add_argument("--seed-names", type=int, default=None, help="card names seeded for reads (default 20; smoke 3)")
    p.add_argument("--seed-versions", type=int, default=None, help="versions per name (default 10; smoke 3)")
    p.add_argument("--scale-cards", type=int, default=None, help="cards for the scale test (default 100000; smoke 200)")
    p.add_argument("--scale-names", type=int, default=None, help="names for the scale test (default 1000; smoke 4)")
    p.add_argument("--mlflow-workers", type=int, default=2, help="MLflow's --workers (default 2, as the reference)")
    p.add_argument("--out", type=Path, default=None,
                   help="markdown output (default bench/results/<date>-full.md; smoke: bench/results/smoke.md)")
    p.add_argument("--no-build", action="store_true", help="do not build anything; fail if something is missing")
    p.add_argument("--wait-quiet", type=float, default=0.0,
                   help="before each measurement, wait up to this many seconds for other processes "
                        "(builds, tests) to stop using the CPU (default 0: do not wait)")
    p.add_argument("--keep", action="store_true", help="keep the working directory (servers' state, logs)")
    args = p.parse_args()

    smoke = args.smoke
    args.duration = args.duration if args.duration is not None else (1.0 if smoke else 10.0)
    args.warmup = args.warmup if args.warmup is not None else (0.3 if smoke else 2.0)
    args.connections = [int(c) for c in args.connections.split(",")]
    file_size = (args.file_mib if args.file_mib is not None else (1 if smoke else 1024)) * MiB
    seed = Seed([f"bench-model-{i:03d}" for i in range(args.seed_names or (3 if smoke else 20))],
                [f"1.{j}.0" for j in range(args.seed_versions or (3 if smoke else 10))])
    scale = scale_seed()(args.scale_cards or (200 if smoke else 100_000), args.scale_names or (4 if smoke else 1000))
    only = [s.strip() for s in (args.only or ",".join(SERVERS)).split(",") if s.strip()]
    if unknown := set(only) - set(SERVERS):
        p.error(f"unknown servers {sorted(unknown)}; choose from {SERVERS}")
    args.backends = [b.strip() for b in (args.backends or ("embedded" if smoke else ",".join(BACKENDS))).split(",")
                     if b.strip()]
    if unknown := set(args.backends) - set(BACKENDS):
        p.error(f"unknown backends {sorted(unknown)}; choose from {list(BACKENDS)}")
    spin = find_spin() if "spin" in only else None
    if "spin" in only and spin is None:
        if args.only:
            p.error("--only asks for spin, but scripts/find-spin found no Spin CLI (above)")
        log("no Spin CLI: the 'ours on Spin' column is left out")
        only.remove("spin")
    app = args.app_dir.resolve()
    binary = args.host_binary or app / "target" / "debug" / "opsml-host"
    binary = binary if binary.is_absolute() else (app / binary)

    global FOREIGN
    FOREIGN = ForeignCpu()
    workdir = Path(tempfile.mkdtemp(prefix="opsml-bench-"))
    r = Runner(args, workdir)
    results: Dict[str, Dict[str, Dict[str, Any]]] = {b: {s: {} for s in only} for b in args.backends}
    started = time.monotonic()
    info: Dict[str, Any] = {}
    status = 0
    try:
        if not args.no_build:
            build_tool()
        elif not TOOL.exists():
            raise BenchError(f"{TOOL} is missing (cargo build --release --manifest-path bench/Cargo.toml)")
        if "ours" in only or "native" in only:
            ensure_host(app, binary, not args.no_build)
        if "spin" in only:
            ensure_host(app, binary, not args.no_build, wasm_only=True)
        if "reference" in only:
            for backend in args.backends:
                ensure_reference_venv(backend)
        if "mlflow" in only:
            ensure_mlflow_venv()
        big = make_big_file(workdir / "big.bin", file_size)
        info = {
            "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
            "mode": "smoke" if smoke else "full",
            "commit": app_commit(app),
            "host_binary": str(binary.relative_to(app)) if binary.is_relative_to(app) else str(binary),
            "spin": spin[1] if spin else None,
            "cpu": next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                         if ln.startswith("model name")), platform.processor()),
            "cores": os.cpu_count(),
            "mem_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / (1 << 30)),
            "duration_s": args.duration, "warmup_s": args.warmup, "connections": args.connections,
            "seed": f"{len(seed.names)} names x {len(seed.versions)} versions",
            "file_bytes": file_size,
        }

        for backend in args.backends:
            services = (Services(workdir / backend / "services", https=backend.endswith("https"))
                        if backend != "embedded" else None)
            try:
                measure_backend(r, args, app, binary, spin, services, only, seed, scale, big,
                                workdir / backend, results[backend], info)
            finally:
                for server in STARTED:
                    server.stop()
                STARTED.clear()
                if services:
                    services.stop()
    except BenchError as e:
        log(f"FAILED: {e}")
        r.failures.append(str(e))
    finally:
        for s in STARTED:
            s.stop()

    info["total_s"] = round(time.monotonic() - started)
    md = render(info, results, args, scale, file_size, r.failures)
    print(md)
    out = args.out or BENCH / "results" / ("smoke.md" if smoke else f"{time.strftime('%Y-%m-%d-%H%M')}-full.md")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(md + "\n")
    out.with_suffix(".json").write_text(json.dumps({"info": info, "results": results, "failures": r.failures},
                                                   indent=1) + "\n")
    log(f"wrote {out} and {out.with_suffix('.json')}")
    if args.keep:
        log(f"kept {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    if r.failures:
        log(f"{len(r.failures)} failure(s):\n  " + "\n  ".join(r.failures))
        status = 1
    return status


def render(info: Dict[str, Any], results: Dict[str, Dict[str, Dict[str, Any]]], args: argparse.Namespace, scale: Seed,
           file_size: int, failures: List[str]) -> str:
    lines = [f"## opsml-on-spin benchmark ({info.get('mode', '?')}, {info.get('date', '?')})", ""]
    lines.append(f"Machine: {info.get('cpu', '?')}, {info.get('cores', '?')} cores, {info.get('mem_gib', '?')} GiB; "
                 f"commit {info.get('commit', '?')}; host `{info.get('host_binary', '?')}`; "
                 f"{info.get('spin') or 'no Spin CLI'}; "
                 f"{info.get('mlflow', 'MLflow')} ({args.mlflow_workers} uvicorn workers); opsml 2.2.4 (gunicorn, 2 uvicorn workers). "
                 f"Load: `opsml-bench load`, keep-alive HTTP/1.1, {args.duration:g} s per figure after "
                 f"{args.warmup:g} s warm-up, on the same cores as the servers. Seed: {info.get('seed', '?')}.")
    for backend, by_server in results.items():
        lines += ["", f"### {BACKENDS[backend]}", "", table(by_server, args.connections, scale, file_size)]
    lines.append("")
    lines.append("Ratios are the first ÷ the second (\"Spin\": the components on the Spin CLI; \"host\": the "
                 "same components on opsml-host): above 1 is better for req/s, ops/s, MB/s; below 1 is better for "
                 "ms and MiB. \"card get by uid\" is `cards/list` with a `uid` (how the opsml client loads a card) "
                 "and MLflow's `model-versions/get`; \"list by name\" is `cards/list` with a `name` and MLflow's "
                 "`model-versions/search` on the name. A create is `cards/version` + `cards/create` "
                 "(MLflow: `model-versions/create`). Peak RSS: all processes of a server (gunicorn/uvicorn "
                 "master and workers) summed, sampled every 50 ms and cross-checked with each process's VmHWM; "
                 "on the production path PostgreSQL and s3s-fs are not counted. On the production path every "
                 "server has its own database on one PostgreSQL (fsync off, as in the tests) and its own prefix "
                 "in one s3s-fs bucket; the reference stores through its own S3 client (s3fs), MLflow through "
                 "boto3, ours through its components' SigV4 client over wasi:http, and the native limit reads a "
                 "copy of our host's database. "
                 f"Total run time {info.get('total_s', '?')} s.")
    # The stall shows as a 1-connection p50 of tens of ms; some runs of the same versions lack it.
    mlflow_p50 = [m["p50_ms"] for by_server in results.values()
                  for k, m in by_server.get("mlflow", {}).items()
                  if k.endswith("_c1") and isinstance(m, dict) and "p50_ms" in m]
    if mlflow_p50 and args.mlflow_workers > 1 and max(mlflow_p50) < 30:
        lines += ["", f"MLflow's 1-connection figures show no keep-alive stall in this run (p50 at most "
                  f"{max(mlflow_p50):.1f} ms), unlike earlier runs of the same versions (see bench/README.md)."]
    elif mlflow_p50 and args.mlflow_workers > 1:
        lines += ["", "MLflow with more than one worker answers every keep-alive request after a connection's first "
                  "one about 40 ms late: uvicorn's multi-process mode leaves TCP_NODELAY off (uvicorn#3149), so "
                  "MLflow's response body waits for the client's delayed ACK. That dominates its 1-connection "
                  "latencies; the 16-connection figures are CPU-bound and barely change with `--mlflow-workers 1`, "
                  "which avoids the stall (see bench/README.md)."]
    disturbed = [f"{b} {s} {k} ({m['foreign_cores']:.2f} cores)" for b, by_server in results.items()
                 for s, res in by_server.items() for k, m in res.items()
                 if isinstance(m, dict) and m.get("foreign_cores", 0) > 0.2]
    if disturbed:
        lines += ["", "† other processes (builds, tests) used more than 0.2 of the 2 cores while this figure "
                  "was measured: " + ", ".join(disturbed) + "."]
    if failures:
        lines += ["", "**Failures** (their figures are left out):", ""] + [f"- {f}" for f in failures]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
