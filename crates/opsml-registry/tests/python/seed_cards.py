"""Registers one card of every type with the real opsml 2.2.4 client against the server named by
OPSML_TRACKING_URI, linked to each other as users link them, and prints their uids as JSON on the
last line of stdout:

- a project (through an OpsmlProject run: project id, run with parameters, metrics, an artifact);
- a DataCard (pandas) linked to the run;
- a ModelCard (scikit-learn, converted to ONNX) linked to the data card and the run;
- a PipelineCard naming the data, model and run cards;
- an AuditCard with answers and a comment, naming the model (whose auditcard_uid is then set).
"""

import json
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import LinearRegression

from opsml import (
    CardRegistry,
    DataCard,
    ModelCard,
    OpsmlProject,
    PandasData,
    PipelineCard,
    ProjectInfo,
    SklearnModel,
)
from opsml.cards.audit import AuditCard

REPO = os.environ.get("SEED_REPOSITORY", "copy-repo")


def frame() -> pd.DataFrame:
    rng = np.random.default_rng(11)
    x = rng.normal(size=(64, 3)).astype(np.float32)
    out = pd.DataFrame(x, columns=["f0", "f1", "f2"])
    out["y"] = (2.0 * out["f0"] - out["f1"] + 0.5 * out["f2"] + 1.0).astype(np.float32)
    return out


def main() -> None:
    work = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
    work.mkdir(parents=True, exist_ok=True)
    data = frame()
    features = data[["f0", "f1", "f2"]]

    project = OpsmlProject(info=ProjectInfo(name="copy-project", repository=REPO, contact="me@example.com"))
    notes = work / "notes.txt"
    notes.write_text("notes of the training run\n" * 100)
    with project.run(run_name="train") as run:
        run.log_parameters({"alpha": 0.5, "solver": "lstsq"})
        run.log_metric("loss", 0.75, step=1)
        run.log_metrics({"loss": 0.5, "r2": 0.9}, step=2)
        run.log_artifact_from_file(name="notes", local_path=notes)
        run_uid = run.run_id

    datacard = DataCard(
        interface=PandasData(data=data, dependent_vars=["y"]),
        name="copy-data",
        repository=REPO,
        contact="me@example.com",
        tags={"team": "copy", "stage": "raw"},
    )
    datacard.metadata.runcard_uid = run_uid
    CardRegistry("data").register_card(datacard)

    model = LinearRegression().fit(features, data["y"])
    modelcard = ModelCard(
        interface=SklearnModel(model=model, sample_data=features[:5]),
        name="copy-model",
        repository=REPO,
        contact="me@example.com",
        tags={"framework": "sklearn"},
        datacard_uid=datacard.uid,
        to_onnx=True,
    )
    modelcard.metadata.runcard_uid = run_uid
    CardRegistry("model").register_card(modelcard)

    pipeline = PipelineCard(
        name="copy-pipeline",
        repository=REPO,
        contact="me@example.com",
        datacard_uids=[datacard.uid],
        modelcard_uids=[modelcard.uid],
        runcard_uids=[run_uid],
    )
    CardRegistry("pipeline").register_card(pipeline)

    audit = AuditCard(name="copy-audit", repository=REPO, contact="me@example.com")
    audit.add_card(modelcard)
    audit.answer_question(section="business", question_nbr=1, response="Predict y")
    audit.add_comment(name="reviewer", comment="looks fine")
    CardRegistry("audit").register_card(audit)

    print(json.dumps({
        "project_id": project.project_id,
        "run": run_uid,
        "data": datacard.uid,
        "model": modelcard.uid,
        "pipeline": pipeline.uid,
        "audit": audit.uid,
        "model_version": modelcard.version,
        "repository": REPO,
    }))
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
