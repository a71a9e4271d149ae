"""`opsml-registry copy` from the opsml 2.2.4 reference server (cards the real client registered:
project, run with parameters, metrics and an artifact, data, model with ONNX, pipeline, audit)
to our registry; the real client then loads every card from ours as from the reference. And
`download-model` writes what opsml-cli 0.4.x writes for that model, on both servers."""

from __future__ import annotations

import filecmp
import json
import os
import subprocess
from pathlib import Path
from typing import Dict, List

from conftest import CLI, run_script
from support.procs import clean_env
from support.servers import Server


def cli(*args: str, server: Server | None = None, **env: str) -> subprocess.CompletedProcess:
    extra = {"OPSML_TRACKING_URI": server.url} if server else {}
    return subprocess.run(
        [str(CLI), *args], capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=600,
        env=clean_env(**extra, **env),
    )


def test_copy_from_the_reference_then_the_client_loads_the_same_cards(reference: Server, ours: Server,
                                                                       seeded: Dict, tmp_path: Path) -> None:
    plan = cli("copy", "--from", reference.url, "--to", ours.url, "--spool-dir", str(tmp_path / "spool"), "--dry-run", "--json")
    assert plan.returncode == 0, plan.stderr
    planned = json.loads(plan.stdout)["cards"]
    assert {c["registry"] for c in planned} == {"project", "run", "data", "model", "pipeline", "audit"}
    assert all(c["outcome"] == "planned" for c in planned)

    done = cli("copy", "--from", reference.url, "--to", ours.url, "--spool-dir", str(tmp_path / "spool"))
    assert done.returncode == 0, done.stderr
    assert "6 cards copied" in done.stderr, done.stderr

    source = run_script("load_cards.py", reference, seeded["file"], str(tmp_path / "from-ref"), cwd=tmp_path / "a")
    target = run_script("load_cards.py", ours, seeded["file"], str(tmp_path / "from-ours"), cwd=tmp_path / "b")
    for key in source:
        assert target[key] == source[key], key
    # What the seed made is really there (not two empty answers).
    assert source["model"]["onnx_predictions"] == source["model"]["predictions"]
    assert source["run"]["metrics"]["loss"] and source["run"]["parameters"]["alpha"] == [0.5]
    assert source["audit"]["comments"] == [["reviewer", "looks fine"]]
    assert source["project"][0]["project_id"] == seeded["project_id"]

    again = cli("copy", "--from", reference.url, "--to", ours.url, "--spool-dir", str(tmp_path / "spool"))
    assert again.returncode == 0, again.stderr
    assert "nothing to copy" in again.stderr, again.stderr


def tree(root: Path) -> List[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_download_model_writes_the_same_files_as_opsml_cli_04(reference: Server, ours: Server,
                                                                 seeded: Dict, tmp_path: Path) -> None:
    opsml_cli = Path(os.environ.get("VIRTUAL_ENV", "")) / "bin" / "opsml-cli"
    if not opsml_cli.exists():
        opsml_cli = Path(__import__("sys").executable).parent / "opsml-cli"
    version = subprocess.run([str(opsml_cli), "version"], capture_output=True, text=True).stdout
    assert "0.4." in version, version
    # The copy test may not have run (-k): make sure ours has the model.
    cli("copy", "--from", reference.url, "--to", ours.url, "--spool-dir", str(tmp_path / "spool"), "--registry", "model")
    for server in (reference, ours):
        for flags in ([], ["--onnx"], ["--onnx", "--preprocessor"]):
            args = ["download-model", "--name", "copy-model", "--repository", seeded["repository"],
                    "--version", seeded["model_version"], *flags]
            theirs, mine = tmp_path / f"{server.name}-cli{''.join(flags)}", tmp_path / f"{server.name}-ours{''.join(flags)}"
            ran = subprocess.run([str(opsml_cli), *args, "--write-dir", str(theirs)], capture_output=True, text=True,
                                 env=clean_env(OPSML_TRACKING_URI=server.url), timeout=300)
            assert ran.returncode == 0, ran.stderr
            ours_ran = cli(*args, "--write-dir", str(mine), server=server)
            assert ours_ran.returncode == 0, ours_ran.stderr
            assert tree(mine) == tree(theirs), (server.name, flags)
            assert len(tree(mine)) == 2
            for rel in tree(theirs):
                if rel == "model-metadata.json":
                    # opsml-cli writes its struct's fields; feature maps in hash order.
                    assert json.loads((mine / rel).read_text()) == json.loads((theirs / rel).read_text())
                else:
                    assert filecmp.cmp(mine / rel, theirs / rel, shallow=False), rel


def test_opsml_cli_07_downloads_from_ours_through_presigned_urls(reference: Server, ours: Server,
                                                                  seeded: Dict, tmp_path: Path) -> None:
    """opsml-cli 0.7.1 asks `files/presigned` for a URL before each download, a route only the
    opsml 3 server had: against ours it writes what opsml-cli 0.4.x writes."""
    new_cli = Path(os.environ["OPSML_CLI_071"])
    version = subprocess.run([str(new_cli), "version"], capture_output=True, text=True).stdout
    assert "0.7.1" in version, version
    old_cli = Path(__import__("sys").executable).parent / "opsml-cli"
    cli("copy", "--from", reference.url, "--to", ours.url, "--spool-dir", str(tmp_path / "spool"), "--registry", "model")
    for flags in ([], ["--onnx"]):
        args = ["download-model", "--name", "copy-model", "--repository", seeded["repository"],
                "--version", seeded["model_version"], *flags]
        written = {}
        for name, binary in (("0.7.1", new_cli), ("0.4", old_cli)):
            out = tmp_path / f"{name}{''.join(flags)}"
            ran = subprocess.run([str(binary), *args, "--write-dir", str(out)], capture_output=True, text=True,
                                 env=clean_env(OPSML_TRACKING_URI=ours.url), timeout=300)
            assert ran.returncode == 0, (name, ran.stdout[-2000:], ran.stderr[-2000:])
            written[name] = out
        new, old = written["0.7.1"], written["0.4"]
        assert tree(new) == tree(old), flags
        for rel in tree(old):
            if rel.endswith(".json"):
                assert json.loads((new / rel).read_text()) == json.loads((old / rel).read_text()), rel
            else:
                assert filecmp.cmp(new / rel, old / rel, shallow=False), rel
