"""What a data scientist registers before opening the web UI: a project run logging a loss
curve, a DataCard, two versions of a ModelCard trained on it (linked to the data and the run),
and an AuditCard of the first version with one answer and one comment. Returns what the
browser test then looks for."""

import common  # noqa: F401  (records the client's requests; must come before opsml)

import numpy as np
import pandas as pd
from sklearn.linear_model import LinearRegression

from opsml.cards.audit import AuditCard
from opsml import CardRegistry, DataCard, ModelCard, OpsmlProject, PandasData, ProjectInfo, SklearnModel

LOSS = {1: 0.9, 2: 0.55, 3: 0.35, 4: 0.3}


def run() -> dict:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(rng.normal(size=(30, 2)), columns=["f0", "f1"])
    frame["y"] = 2.0 * frame["f0"] - frame["f1"]
    data = PandasData(data=frame, dependent_vars=["y"], feature_descriptions={"f0": "tenure in months"})
    data.add_sql(name="train", query="SELECT f0, f1, y FROM churn")
    datacard = DataCard(interface=data, name="churn-data", repository="team-ui",
                        contact="ds@example.com", tags={"stage": "dev"})
    CardRegistry("data").register_card(datacard)

    project = OpsmlProject(info=ProjectInfo(name="churn-project", repository="team-ui", contact="ds@example.com"))
    runs = []
    for run_name, scale in (("baseline", 1.0), ("tuned", 0.8)):
        with project.run(run_name=run_name) as active:
            for step, loss in LOSS.items():
                active.log_metric("loss", loss * scale, step=step)
            active.log_parameter("learning_rate", 0.1 * scale)
            active.log_parameter("solver", "lbfgs")
            runs.append({"uid": active.run_id, "loss": {str(s): v * scale for s, v in LOSS.items()},
                         "learning_rate": 0.1 * scale})

    model_reg = CardRegistry("model")
    models = []
    cards = []
    for alpha in (1.0, 2.0):
        frame["y2"] = alpha * frame["y"]
        model = LinearRegression().fit(frame[["f0", "f1"]], frame["y2"])
        card = ModelCard(interface=SklearnModel(model=model, sample_data=frame[["f0", "f1"]][:5]),
                         name="churn-model", repository="team-ui", contact="ds@example.com",
                         datacard_uid=datacard.uid, tags={"alpha": str(alpha)})
        model_reg.register_card(card)
        cards.append(card)
        models.append({"uid": card.uid, "version": card.version})

    audit = AuditCard(name="churn-audit", repository="team-ui", contact="auditor@example.com")
    audit.answer_question(section="business", question_nbr=1, response="Prices contract renewals")
    audit.add_comment(name="ann", comment="Data sources confirmed with the owners")
    audit.add_card(cards[0])
    CardRegistry("audit").register_card(audit)
    questions = {
        section: {str(n): q.question for n, q in getattr(audit.audit, section).items()}
        for section in ("business_understanding", "data_understanding")
    }
    return {"data_uid": datacard.uid, "runs": runs, "models": models,
            "audit": {"uid": audit.uid, "version": audit.version, "questions": questions}}


if __name__ == "__main__":
    common.main(run)
