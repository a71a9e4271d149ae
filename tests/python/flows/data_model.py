"""DataCard (pandas) + ModelCard (scikit-learn LinearRegression) linked to it, then both loaded
back by name/repository and by uid; compares rows and predictions in-process."""

import common  # noqa: F401  (records the client's requests; must come before opsml)

import numpy as np
import pandas as pd
from sklearn.linear_model import LinearRegression

from opsml import CardRegistry, DataCard, ModelCard, PandasData, SklearnModel


def make_frame() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    x = rng.normal(size=(40, 3))
    frame = pd.DataFrame(x, columns=["f0", "f1", "f2"])
    frame["y"] = 1.5 * frame["f0"] - 2.0 * frame["f1"] + 0.25 * frame["f2"] + 3.0
    frame["label"] = [f"row-{i}" for i in range(len(frame))]
    return frame


def run() -> dict:
    data_reg = CardRegistry("data")
    model_reg = CardRegistry("model")
    frame = make_frame()
    features = frame[["f0", "f1", "f2"]]

    datacard = DataCard(
        interface=PandasData(data=frame),
        name="My_Data",  # the client cleans it to my-data / test-repo
        repository="Test_Repo",
        contact="me@example.com",
        tags={"team": "a"},
    )
    data_reg.register_card(datacard)

    reg = LinearRegression().fit(features, frame["y"])
    modelcard = ModelCard(
        interface=SklearnModel(model=reg, sample_data=features[:5]),
        name="my-model",
        repository="test-repo",
        contact="me@example.com",
        datacard_uid=datacard.uid,
    )
    model_reg.register_card(modelcard)

    # Load the DataCard by name / repository and by uid.
    by_name = data_reg.load_card(name="my-data", repository="test-repo")
    by_name.load_data()
    by_uid = data_reg.load_card(uid=datacard.uid)
    by_uid.load_data()
    pd.testing.assert_frame_equal(by_name.interface.data, frame)
    pd.testing.assert_frame_equal(by_uid.interface.data, frame)

    # Load the ModelCard by uid and by name / repository; predict on the same inputs.
    m_uid = model_reg.load_card(uid=modelcard.uid)
    m_uid.load_model()
    m_name = model_reg.load_card(name="my-model", repository="test-repo")
    m_name.load_model()
    expected = reg.predict(features)
    pred_uid = m_uid.interface.model.predict(features)
    pred_name = m_name.interface.model.predict(features)

    datacard_files = [
        r["query"] for r in common.REQUESTS if r["route"] == "files/list" and "OPSML_DATA_REGISTRY" in r["query"]
    ]
    return {
        "datacard": {
            "uid": datacard.uid,
            "version": datacard.version,
            "name": datacard.name,
            "repository": datacard.repository,
        },
        "modelcard": {"uid": modelcard.uid, "version": modelcard.version},
        "loaded_data": {
            "by_name_uid": by_name.uid,
            "by_uid_name": by_uid.name,
            "by_name_version": by_name.version,
            "tags": by_name.tags,
            "rows": len(by_name.interface.data),
            "frames_equal": True,  # assert_frame_equal raised otherwise
        },
        "loaded_model": {
            "by_uid_name": m_uid.name,
            "by_name_uid": m_name.uid,
            "datacard_uid": m_name.datacard_uid,
            "model_type": type(m_name.interface.model).__name__,
            "predictions_close_uid": bool(np.allclose(pred_uid, expected)),
            "predictions_close_name": bool(np.allclose(pred_name, expected)),
            "coef": [float(c) for c in m_name.interface.model.coef_],
        },
        "data_file_lists": len(datacard_files),
        "records": {
            "data": data_reg.list_cards(name="my-data", repository="test-repo"),
            "model": model_reg.list_cards(uid=modelcard.uid),
        },
    }


if __name__ == "__main__":
    common.main(run)
