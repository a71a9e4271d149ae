"""Versions of one DataCard: major / minor / patch / pre / build / pre_build steps and explicit
versions, then `list_cards` with version filters, tags, max_date and limit, and `load_card`.

Two cards with old timestamps are created with raw `cards/create` requests first (the client
stamps every card of a process with the same timestamp), so that `max_date` has something to
cut."""

import common  # noqa: F401  (records the client's requests; must come before opsml)

import os
import uuid

import httpx
import pandas as pd

from opsml import CardRegistry, DataCard, PandasData

NAME, REPO = "semver-data", "ver-repo"

# (version_type, explicit card version or None, tags)
STEPS = [
    ("minor", None, {}),
    ("minor", None, {}),
    ("patch", None, {}),
    ("major", None, {}),
    ("build", "2.0.0", {}),
    ("pre", "2.1.0", {}),
    ("pre", "2.1.0", {}),
    ("minor", "3.0.0", {}),
    ("minor", "1.10.0", {}),
    ("minor", "10.0.0", {}),
    ("minor", "4", {}),
    ("pre_build", "1.2.0", {}),
    ("patch", "1.1", {}),
    ("minor", None, {"stage": "prod"}),
]

# timestamps in microseconds: 2020-06-01 and 2022-06-01 (UTC noon)
OLD = [("1.0.0", 1590998400000000 + 12 * 3600 * 10**6), ("1.1.0", 1654084800000000 + 12 * 3600 * 10**6)]


def frame(i: int) -> pd.DataFrame:
    return pd.DataFrame({"step": [i, i + 1], "value": [float(i), i / 2]})


def run() -> dict:
    reg = CardRegistry("data")
    base = os.environ["OPSML_TRACKING_URI"] + "/opsml"
    dated = []
    for version, ts in OLD:
        uid = uuid.uuid4().hex
        r = httpx.post(
            f"{base}/cards/create",
            json={
                "registry_type": "data",
                "card": {"name": "dated-data", "repository": REPO, "contact": "c", "uid": uid,
                         "version": version, "tags": {}, "data_type": "pandas.core.frame.DataFrame",
                         "timestamp": ts},
            },
        )
        assert r.status_code == 200, r.text
        dated.append(uid)

    registered = []
    for i, (version_type, version, tags) in enumerate(STEPS):
        kwargs = {"version": version} if version is not None else {}
        card = DataCard(interface=PandasData(data=frame(i)), name=NAME, repository=REPO,
                        contact="me@example.com", tags=tags, **kwargs)
        reg.register_card(card, version_type=version_type)
        registered.append(card.version)
    # the third dated card, through the client (timestamp: now)
    reg.register_card(DataCard(interface=PandasData(data=frame(0)), name="dated-data", repository=REPO,
                               contact="me@example.com"))

    def lst(**kw):
        return common.versions(reg.list_cards(**kw))

    q = {"name": NAME, "repository": REPO}
    lists = {
        "all": lst(**q),
        "v1": lst(**q, version="1"),
        "v1.*": lst(**q, version="1.*"),
        "v1.1": lst(**q, version="1.1"),
        "~1.1.0": lst(**q, version="~1.1.0"),
        "^1.0.0": lst(**q, version="^1.0.0"),
        "^2.0.0": lst(**q, version="^2.0.0"),
        "exact 1.1.1": lst(**q, version="1.1.1"),
        "exact 3.0.0": lst(**q, version="3.0.0"),
        "exact 2.1.0-rc.1": lst(**q, version="2.1.0-rc.1"),
        "exact 2.0.0+build.1": lst(**q, version="2.0.0+build.1"),
        "v2 no rc": lst(**q, version="2", ignore_release_candidates=True),
        "v2": lst(**q, version="2"),
        "tags stage=prod": lst(**q, tags={"stage": "prod"}),
        "tags only": lst(tags={"stage": "prod"}),
        "limit 3": lst(**q, limit=3),
        "v1 limit 2": lst(**q, version="1", limit=2),
        "name only": lst(name=NAME),
        "dated all": lst(name="dated-data", repository=REPO),
        "dated max 2021-01-01": lst(name="dated-data", repository=REPO, max_date="2021-01-01"),
        "dated max 2023-01-01": lst(name="dated-data", repository=REPO, max_date="2023-01-01"),
        "dated max 2019-01-01": lst(name="dated-data", repository=REPO, max_date="2019-01-01"),
    }
    latest = reg.load_card(name=NAME, repository=REPO)
    latest_1 = reg.load_card(name=NAME, repository=REPO, version="1")
    latest_11 = reg.load_card(name=NAME, repository=REPO, version="~1.1.0")
    version_bodies = [
        r for r in common.REQUESTS if r["route"] == "cards/version"
    ]
    return {
        "registered": registered,
        "lists": lists,
        "load_latest": latest.version,
        "load_v1": latest_1.version,
        "load_~1.1.0": latest_11.version,
        "version_calls": len(version_bodies),
    }


if __name__ == "__main__":
    common.main(run)
