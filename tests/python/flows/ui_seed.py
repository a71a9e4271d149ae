"""What a data scientist registers before opening the web UI: a project run logging a loss
curve, a DataCard, and two versions of a ModelCard trained on it (linked to the data and the
run). Returns what the browser test then looks for."""

import common  # noqa: F401  (records the client's requests; must come before opsml)

import numpy as np
import pandas as pd
from sklearn.linear_model import LinearRegression

from opsml import CardRegistry, DataCard, ModelCard, OpsmlProject, PandasData, ProjectInfo, SklearnModel

LOSS = {1: 0.9, 2: 0.55, 3: 0.35, 4: 0.3}


def run() -> dict:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(rng.normal(size=(30, 2)), columns=["f0", "f1"])
    frame["y"] = 2.0 * frame["f0"] - frame["f1"]
    datacard = DataCard(interface=PandasData(data=frame), name="churn-data", repository="team-ui",
                        contact="ds@example.com", tags={"stage": "dev"})
    CardRegistry("data").register_card(datacard)

    project = OpsmlProject(info=ProjectInfo(name="churn-project", repository="team-ui", contact="ds@example.com"))
    runs = []
    for run_name, scale in (("baseline", 1.0), ("tuned", 0.8)):
        with project.run(run_name=run_name) as active:
            for step, loss in LOSS.items():
                active.log_metric("loss", loss * scale, step=step)
            runs.append({"uid": active.run_id, "loss": {str(s): v * scale for s, v in LOSS.items()}})

    model_reg = CardRegistry("model")
    models = []
    for alpha in (1.0, 2.0):
        frame["y2"] = alpha * frame["y"]
        model = LinearRegression().fit(frame[["f0", "f1"]], frame["y2"])
        card = ModelCard(interface=SklearnModel(model=model, sample_data=frame[["f0", "f1"]][:5]),
                         name="churn-model", repository="team-ui", contact="ds@example.com",
                         datacard_uid=datacard.uid, tags={"alpha": str(alpha)})
        model_reg.register_card(card)
        models.append({"uid": card.uid, "version": card.version})
    return {"data_uid": datacard.uid, "runs": runs, "models": models}


if __name__ == "__main__":
    common.main(run)
