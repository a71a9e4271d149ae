"""delete_card: the client sends `POST cards/delete` and then `GET files/delete?path=<card dir>`;
afterwards the card is gone from the registry and its files from storage."""

import common  # noqa: F401  (records the client's requests; must come before opsml)

import os

import httpx
import pandas as pd

from opsml import CardRegistry, DataCard, PandasData


def run() -> dict:
    base = os.environ["OPSML_TRACKING_URI"] + "/opsml"
    reg = CardRegistry("data")
    frame = pd.DataFrame({"a": [1, 2, 3]})
    keep = DataCard(interface=PandasData(data=frame), name="del-data", repository="del-repo", contact="c")
    reg.register_card(keep)
    doomed = DataCard(interface=PandasData(data=frame), name="del-data", repository="del-repo", contact="c")
    reg.register_card(doomed)
    card_dir = f"opsml-root:/OPSML_DATA_REGISTRY/del-repo/del-data/v{doomed.version}"
    files_before = httpx.get(f"{base}/files/list", params={"path": card_dir}).json()["files"]

    reg.delete_card(doomed)

    files_after = httpx.get(f"{base}/files/list", params={"path": card_dir}).json()["files"]
    exists_after = httpx.get(f"{base}/files/exists", params={"path": f"{card_dir}/card.joblib"}).json()
    kept_dir = f"opsml-root:/OPSML_DATA_REGISTRY/del-repo/del-data/v{keep.version}"
    return {
        "versions": [keep.version, doomed.version],
        "files_before": sorted(f.rsplit("/", 1)[-1] for f in files_before),
        "files_after": files_after,
        "exists_after": exists_after,
        "by_uid_after": reg.list_cards(uid=doomed.uid),
        "remaining": common.versions(reg.list_cards(name="del-data", repository="del-repo")),
        "kept_files": sorted(f.rsplit("/", 1)[-1] for f in httpx.get(f"{base}/files/list", params={"path": kept_dir}).json()["files"]),
    }


if __name__ == "__main__":
    common.main(run)
