"""RunCard metrics: log_metric / log_metrics (the client sends `PUT metrics` at once), register,
then read them back from the server with load_metrics (`POST metrics`)."""

import common  # noqa: F401  (records the client's requests; must come before opsml)

import uuid

from opsml import CardRegistry, RunCard


def run() -> dict:
    run_reg = CardRegistry("run")
    # Outside a project run the card needs its uid before logging (the metrics carry run_uid).
    card = RunCard(name="metric-run", repository="run-repo", contact="me@example.com", uid=uuid.uuid4().hex)
    card.log_metric("loss", 0.5, step=1)
    card.log_metric("loss", 0.25, step=2)
    # log_metrics passes its step positionally into log_metric's `timestamp` (a 2.2.4 client quirk).
    card.log_metrics({"accuracy": 0.9, "f1": 0.8}, step=2)
    run_reg.register_card(card)

    loaded = run_reg.load_card(uid=card.uid)
    loaded.load_metrics()
    metrics = {
        name: sorted(([m.step, m.value] for m in values), key=str) for name, values in loaded.metrics.items()
    }
    return {"uid": card.uid, "version": card.version, "metrics": metrics}


if __name__ == "__main__":
    common.main(run)
