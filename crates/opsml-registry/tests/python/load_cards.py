"""Loads every card seed_cards.py registered (uids in the JSON file named by argv[1]) with the real
opsml 2.2.4 client from the server named by OPSML_TRACKING_URI, and prints what a user gets back
as JSON on the last line of stdout: fields, links, data, model and ONNX predictions, run
parameters, metrics and artifact bytes, audit answers, project id."""

import hashlib
import json
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from opsml import CardRegistry


def main() -> None:
    uids = json.loads(Path(sys.argv[1]).read_text())
    work = Path(sys.argv[2])
    work.mkdir(parents=True, exist_ok=True)
    os.chdir(work)
    out = {}

    data = CardRegistry("data").load_card(uid=uids["data"])
    data.load_data()
    frame = data.interface.data
    out["data"] = {
        "name": data.name, "version": data.version, "tags": data.tags,
        "runcard_uid": data.metadata.runcard_uid,
        "rows": len(frame), "hash": int(pd.util.hash_pandas_object(frame, index=True).sum()),
    }

    model = CardRegistry("model").load_card(uid=uids["model"])
    model.load_model()
    model.load_onnx_model()
    features = frame[["f0", "f1", "f2"]]
    predicted = model.interface.model.predict(features)
    session = model.interface.onnx_model.sess
    onnx = session.run(None, {session.get_inputs()[0].name: features.to_numpy(dtype=np.float32)})[0]
    out["model"] = {
        "name": model.name, "version": model.version, "tags": model.tags,
        "datacard_uid": model.datacard_uid, "runcard_uid": model.metadata.runcard_uid,
        "predictions": [round(float(v), 5) for v in predicted[:10]],
        "onnx_predictions": [round(float(v), 5) for v in np.ravel(onnx)[:10]],
    }

    run = CardRegistry("run").load_card(uid=uids["run"])
    run.load_metrics()
    run.load_artifacts()
    notes = run.artifact_uris["notes"]
    local = Path(notes.local_path)
    out["run"] = {
        "name": run.name, "version": run.version, "project": run.project,
        "parameters": {k: [p.value for p in v] for k, v in sorted(run.parameters.items())},
        "metrics": {k: sorted(([m.step, m.value, m.timestamp] for m in v), key=str) for k, v in sorted(run.metrics.items())},
        "artifact_remote_path": notes.remote_path,
        "artifact_sha256": hashlib.sha256(local.read_bytes()).hexdigest() if local.exists() else None,
    }

    project = CardRegistry("project").list_cards(name="copy-project", repository=uids["repository"])
    out["project"] = [{"project_id": p["project_id"], "uid": p["uid"], "version": p["version"]} for p in project]

    pipeline = CardRegistry("pipeline").load_card(uid=uids["pipeline"])
    out["pipeline"] = {
        "name": pipeline.name, "version": pipeline.version,
        "datacard_uids": pipeline.datacard_uids, "modelcard_uids": pipeline.modelcard_uids,
        "runcard_uids": pipeline.runcard_uids,
    }

    audit = CardRegistry("audit").load_card(uid=uids["audit"])
    out["audit"] = {
        "name": audit.name, "version": audit.version, "approved": audit.approved,
        "answers": {s: {str(n): q.response for n, q in qs.items() if q.response} for s, qs in audit.audit},
        "comments": [[c.name, c.comment] for c in audit.comments],
        "modelcards": [[m.name, m.version] for m in audit.metadata.modelcards],
    }
    out["records"] = {
        registry: CardRegistry(registry).list_cards(uid=uids[key])
        for registry, key in [("data", "data"), ("model", "model"), ("run", "run"), ("pipeline", "pipeline"), ("audit", "audit")]
    }
    print(json.dumps(out, default=str, sort_keys=True))
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
