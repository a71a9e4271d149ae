"""The usual way to make a RunCard in opsml 2.x: an OpsmlProject run. Creating the project asks
`GET projects/id`; logging a metric sends `PUT metrics`; reading them back sends `POST metrics`."""

import common  # noqa: F401  (records the client's requests; must come before opsml)

from pathlib import Path

from opsml import CardRegistry, OpsmlProject, ProjectInfo


def run() -> dict:
    existing = [c["project_id"] for c in CardRegistry("project").list_cards(limit=100)]
    project = OpsmlProject(info=ProjectInfo(name="exp-project", repository="exp-repo", contact="me@example.com"))
    artifact = Path("notes.txt")
    artifact.write_text("hello from a run\n")
    with project.run(run_name="first-run") as active:
        active.log_parameter("alpha", "0.5")
        active.log_metric("loss", 0.75, step=1)
        active.log_metrics({"loss": 0.5, "acc": 0.8}, step=2)
        active.log_artifact_from_file(name="notes", local_path=artifact)
        run_uid = active.run_id

    runcard = CardRegistry("run").load_card(uid=run_uid)
    runcard.load_metrics()
    return {
        "project_id": project.project_id,
        "expected_project_id": max(existing, default=0) + 1,
        "run_uid": run_uid,
        "run_project": runcard.project,
        "parameters": {k: [p.value for p in v] for k, v in runcard.parameters.items()},
        "metrics": {k: sorted(([m.step, m.value] for m in v), key=str) for k, v in runcard.metrics.items()},
        "artifacts": sorted(runcard.artifact_uris),
    }


if __name__ == "__main__":
    common.main(run)
