#!/usr/bin/env python3
"""The web pages with many cards: how long a page takes to render, at p50/p90/p99.

Serves the registry as `scripts/serve.sh` does (opsml-host, the dev build, embedded SQLite),
registers `--cards` model cards through the API (`cards/version` + `cards/create`, the
opsml-create scenario of the load generator: 4 connections, `--names` names each, so every
name gets cards/names/4 versions), then loads each page on one keep-alive connection for
`--duration` seconds and prints one line per page and a Markdown table.

    python3 bench/ui.py                     # 100,000 cards, 10 s per page
    python3 bench/ui.py --cards 2000 --duration 1   # a quick look
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as bench  # noqa: E402  (the benchmark harness: build, start, load)

CONNECTIONS = 4


def load(server: bench.Server, extra: list, connections: int, duration: float | None = None,
         requests: int | None = None) -> dict:
    cmd = [str(bench.TOOL), "load", "--base", server.base, "--connections", str(connections), *extra]
    cmd += ["--requests", str(requests)] if requests else ["--duration", str(duration), "--warmup", "1"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise bench.BenchError(f"load {extra}: exit {proc.returncode}: {proc.stderr[-2000:]}")
    result = json.loads(lines[-1])
    if result["failures"]:
        raise bench.BenchError(f"load {extra}: {result['failures']} failed: {result['errors'][:3]}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cards", type=int, default=100_000)
    parser.add_argument("--names", type=int, default=2_500, help="names per seeding connection")
    parser.add_argument("--duration", type=float, default=10.0)
    args = parser.parse_args()

    binary = bench.ROOT / "target" / "debug" / "opsml-host"
    bench.build_tool()
    bench.ensure_host(bench.ROOT, binary, build=True)
    workdir = Path(tempfile.mkdtemp(prefix="opsml-ui-bench-"))
    server = bench.start_ours(bench.ROOT, binary, workdir)
    try:
        started = time.monotonic()
        seeded = load(server, ["--scenario", "opsml-create", "--prefix", "ui",
                               "--names-per-connection", str(args.names)], CONNECTIONS, requests=args.cards)
        bench.log(f"seeded {seeded['ops']} cards in {time.monotonic() - started:.0f} s")
        name = "ui-c0-n7"
        deep = f"ui-c{CONNECTIONS - 1}-n9"
        pages = [
            ("models list, first page", "/opsml/models/list/"),
            (f"models list, the page after {deep}", f"/opsml/models/list/?after_name={deep}&after_repository=bench"),
            ("models list, one repository", "/opsml/models/list/?repository=bench"),
            ("models list, search 'n7'", "/opsml/models/list/?q=n7"),
            ("models list, tag filter", "/opsml/models/list/?tag=bench:create"),
            (f"a model's versions ({name})", f"/opsml/models/versions/?name={name}&repository=bench"),
        ]
        rows = []
        for label, path in pages:
            requests = workdir / "requests.jsonl"
            requests.write_text(json.dumps({"path": path}) + "\n")
            result = load(server, ["--requests-file", str(requests)], 1, duration=args.duration)
            bench.log(f"{label:42} p50 {result['p50_ms']:7.2f} ms  p90 {result['p90_ms']:7.2f} ms  "
                      f"p99 {result['p99_ms']:7.2f} ms  ({result['ops']} pages)")
            rows.append((label, path, result))
        print(f"\n{seeded['ops']} model cards, {CONNECTIONS * args.names} names; opsml-host (dev build), "
              f"embedded SQLite; one connection, {args.duration:g} s per page\n")
        print("| page | URL | p50 ms | p90 ms | p99 ms |")
        print("| --- | --- | ---: | ---: | ---: |")
        for label, path, r in rows:
            print(f"| {label} | `{path}` | {r['p50_ms']:.2f} | {r['p90_ms']:.2f} | {r['p99_ms']:.2f} |")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
