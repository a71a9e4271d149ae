"""RunCard with parameters and a file artifact (no metrics): register, load back by uid, check
the parameters, the artifact uri and the artifact's bytes."""

import common  # noqa: F401  (records the client's requests; must come before opsml)

import hashlib
import os
from pathlib import Path

from opsml import CardRegistry, RunCard

ARTIFACT = b"epoch,loss\n1,0.9\n2,0.5\n3,0.25\n" * 50


def run() -> dict:
    run_reg = CardRegistry("run")
    card = RunCard(name="train-run", repository="run-repo", contact="me@example.com", tags={"kind": "train"})
    card.log_parameters({"lr": 0.01, "epochs": 3, "optimizer": "adam"})
    card.log_parameter("lr", 0.02)  # a second value for the same parameter

    local = Path("work/history.csv")
    local.parent.mkdir(parents=True, exist_ok=True)
    local.write_bytes(ARTIFACT)
    card.log_artifact_from_file(name="history", local_path=local)
    remote_path = card.artifact_uris["history"].remote_path

    run_reg.register_card(card)

    loaded = run_reg.load_card(uid=card.uid)
    by_name = run_reg.load_card(name="train-run", repository="run-repo")
    os.remove(local)
    loaded.load_artifacts(name="history")
    restored = local.read_bytes()

    record = run_reg.list_cards(uid=card.uid)[0]
    return {
        "uid": card.uid,
        "version": card.version,
        "by_name_uid": by_name.uid,
        "loaded_version": loaded.version,
        "tags": loaded.tags,
        "parameters": {k: [p.value for p in v] for k, v in loaded.parameters.items()},
        "artifact_remote_path": remote_path,
        "loaded_artifact_uris": {k: v.remote_path for k, v in loaded.artifact_uris.items()},
        "artifact_sha256": hashlib.sha256(restored).hexdigest(),
        "expected_sha256": hashlib.sha256(ARTIFACT).hexdigest(),
        "record": record,
    }


if __name__ == "__main__":
    common.main(run)
