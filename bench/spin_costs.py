#!/usr/bin/env python3
"""Where a request's time goes, on each runtime: a probe component (tests/fixtures/spin-costs)
whose routes each ask the runtime for one kind of thing, and the registry's own routes, measured
one after the other at 1 connection with the benchmark's load generator. The difference between
a route and `/noop` is what its calls cost; `/noop` itself is the instance and the response.

    python3 bench/spin_costs.py [--duration 5] [--runtimes opsml-host,spin3,spin4]

Needs the workspace built (target/debug/opsml-host, the components, the probe) and the
benchmark's tool (bench/target/release/opsml-bench: `cargo build --release --manifest-path
bench/Cargo.toml`). Prints a markdown table: p50 and requests/s per route and runtime, and the
cost per call derived from them.
"""

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOOL = ROOT / "bench" / "target" / "release" / "opsml-bench"
PROBE = ROOT / "target" / "wasm32-wasip2" / "release" / "spin_costs.wasm"

# (label, path, calls): the probe's routes; `calls` divides the difference from /noop.
PROBE_ROUTES = [
    ("instance + response", "/noop", 0),
    ("1 variable", "/variable?n=1", 1),
    ("10 variables", "/variable?n=10", 10),
    ("SQLite open + 1 SELECT", "/sqlite?n=1", 1),
    ("SQLite open + 10 SELECTs", "/sqlite?n=10", 10),
    ("SQLite open + a write transaction", "/sqlite-write", 1),
    ("key-value open + 1 get", "/kv?n=1", 1),
    ("key-value open + 10 gets", "/kv?n=10", 10),
]
# Connections for the concurrent-write figure: the benchmark's creates at 16 connections.
WRITERS = 16
# The registry's own requests, for scale.
APP_ROUTES = [
    ("registry: GET healthcheck (3 variables)", "GET", "/opsml/healthcheck", None),
    ("registry: cards/list by uid (SQLite)", "POST", "/opsml/cards/list",
     {"registry_type": "model", "uid": "none"}),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def runtime_binary(name: str) -> Path:
    if name == "opsml-host":
        return ROOT / "target" / "debug" / "opsml-host"
    major = name.removeprefix("spin")
    found = subprocess.run([str(ROOT / "scripts" / "find-spin"), major], capture_output=True, text=True)
    if found.returncode != 0:
        sys.exit(f"spin_costs: {found.stderr.strip()}")
    return Path(found.stdout.strip())


def start(binary: Path, manifest: Path, workdir: Path) -> tuple:
    port = free_port()
    state = workdir / f"state-{port}"
    log = open(workdir / f"{port}.log", "wb")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("APP_", "OPSML_", "SPIN_VARIABLE_"))}
    proc = subprocess.Popen([str(binary), "up", "-f", str(manifest), "--listen", f"127.0.0.1:{port}",
                             "--state-dir", str(state), "--runtime-config-file",
                             str(ROOT / "runtime-config" / "dev.toml")],
                            cwd=ROOT, stdout=log, stderr=log, env=env, start_new_session=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/noop" if "probe" in manifest.name
                                   else f"http://127.0.0.1:{port}/opsml/healthcheck", timeout=2)
            return proc, port
        except Exception:
            if proc.poll() is not None:
                sys.exit(f"spin_costs: {binary} exited: {(workdir / f'{port}.log').read_text()[-2000:]}")
            time.sleep(0.2)
    sys.exit(f"spin_costs: {binary} did not start")


def stop(proc) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
    except Exception:
        os.killpg(proc.pid, signal.SIGKILL)


def load(port: int, method: str, path: str, body, duration: float, workdir: Path, connections: int = 1) -> dict:
    line = {"method": method, "path": path}
    if body is not None:
        line["json"] = body
    requests = workdir / "requests.jsonl"
    requests.write_text(json.dumps(line) + "\n")
    run = subprocess.run([str(TOOL), "load", "--base", f"http://127.0.0.1:{port}", "--requests-file",
                          str(requests), "--connections", str(connections), "--duration", str(duration), "--warmup", "1"],
                         capture_output=True, text=True)
    if run.returncode != 0:
        sys.exit(f"spin_costs: load {path}: {run.stderr[-500:]}")
    result = json.loads(run.stdout.strip().splitlines()[-1])
    if result.get("failures"):
        sys.exit(f"spin_costs: {path} failed: {result.get('errors', [])[:3]}")
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--runtimes", default="opsml-host,spin3,spin4")
    args = parser.parse_args()
    for needed in (TOOL, PROBE, ROOT / "target" / "debug" / "opsml-host"):
        if not needed.exists():
            sys.exit(f"spin_costs: {needed} is missing: build it first (see this script's help)")
    runtimes = [r.strip() for r in args.runtimes.split(",") if r.strip()]
    workdir = Path(tempfile.mkdtemp(prefix="opsml-spin-costs-"))
    manifest = workdir / "probe-spin.toml"
    manifest.write_text(f"""spin_manifest_version = 2
[application]
name = "spin-costs"
[variables]
probe = {{ default = "x" }}
[[trigger.http]]
route = "/..."
component = "probe"
[component.probe]
source = "{PROBE}"
sqlite_databases = ["default"]
key_value_stores = ["default"]
[component.probe.variables]
probe = "{{{{ probe }}}}"
""")
    p50 = {}  # (label, runtime) -> ms
    rate = {}
    concurrent_writes = {}  # runtime -> the load result of /sqlite-write at WRITERS connections
    try:
        for runtime in runtimes:
            binary = runtime_binary(runtime)
            proc, port = start(binary, manifest, workdir)
            try:
                for label, path, _ in PROBE_ROUTES:
                    r = load(port, "GET", path, None, args.duration, workdir)
                    p50[label, runtime], rate[label, runtime] = r["p50_ms"], r["rate"]
                    print(f"[spin_costs] {runtime:10} {label:36} p50 {r['p50_ms']:.3f} ms  {r['rate']:.0f}/s",
                          file=sys.stderr)
                # Concurrent writers, as in the benchmark's creates at 16 connections, with no
                # registry code in the way: what the runtime's SQLite makes them wait.
                r = load(port, "GET", "/sqlite-write", None, args.duration, workdir, WRITERS)
                concurrent_writes[runtime] = r
                print(f"[spin_costs] {runtime:10} /sqlite-write x{WRITERS:<31} p99 {r['p99_ms']:.1f} ms  "
                      f"{r['rate']:.0f}/s", file=sys.stderr)
            finally:
                stop(proc)
            proc, port = start(binary, ROOT / "spin.toml", workdir)
            try:
                for label, method, path, body in APP_ROUTES:
                    r = load(port, method, path, body, args.duration, workdir)
                    p50[label, runtime], rate[label, runtime] = r["p50_ms"], r["rate"]
                    print(f"[spin_costs] {runtime:10} {label:36} p50 {r['p50_ms']:.3f} ms  {r['rate']:.0f}/s",
                          file=sys.stderr)
            finally:
                stop(proc)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    head = "| request | " + " | ".join(f"{r} p50 ms | {r} req/s" for r in runtimes) + " |"
    print(head)
    print("| --- |" + " ---: | ---: |" * len(runtimes))
    for label, *_ in PROBE_ROUTES + [(a[0],) for a in APP_ROUTES]:
        cells = " | ".join(f"{p50[label, r]:.3f} | {rate[label, r]:,.0f}" for r in runtimes)
        print(f"| {label} | {cells} |")
    print()
    print("| cost per call (p50 above `/noop`, divided by calls) | " + " | ".join(runtimes) + " |")
    print("| --- |" + " ---: |" * len(runtimes))
    for label, _, calls in PROBE_ROUTES:
        if calls:
            cells = " | ".join(f"{(p50[label, r] - p50['instance + response', r]) * 1000 / calls:.0f} µs"
                               for r in runtimes)
            print(f"| {label} | {cells} |")
    print()
    print(f"| a write transaction, {WRITERS} connections | " + " | ".join(runtimes) + " |")
    print("| --- |" + " ---: |" * len(runtimes))
    for unit, field, spec in (("writes/s", "rate", ",.0f"), ("p50 ms", "p50_ms", ".1f"),
                              ("p99 ms", "p99_ms", ".1f")):
        cells = " | ".join(format(concurrent_writes[r][field], spec) for r in runtimes)
        print(f"| {unit} | {cells} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
