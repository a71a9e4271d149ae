"""update_card: change a registered card's tags and contact, then read them back by uid, through
a tag filter, and check that the card's files were re-written in place."""

import common  # noqa: F401  (records the client's requests; must come before opsml)

import pandas as pd

from opsml import CardRegistry, DataCard, PandasData


def run() -> dict:
    reg = CardRegistry("data")
    frame = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]})
    card = DataCard(interface=PandasData(data=frame), name="upd-data", repository="upd-repo",
                    contact="before@example.com", tags={"stage": "dev"})
    reg.register_card(card)
    before = reg.list_cards(uid=card.uid)[0]

    card.add_tag("stage", "prod")
    card.add_tag("owner", "team-b")
    card.contact = "after@example.com"
    reg.update_card(card)

    after = reg.list_cards(uid=card.uid)[0]
    loaded = reg.load_card(uid=card.uid)
    loaded.load_data()
    pd.testing.assert_frame_equal(loaded.interface.data, frame)
    uploads = [r["route"] for r in common.REQUESTS].count("files/upload")
    return {
        "uid": card.uid,
        "version_before": before["version"],
        "version_after": after["version"],
        "tags_before": before["tags"],
        "tags_after": after["tags"],
        "contact_after": after["contact"],
        "loaded_tags": loaded.tags,
        "loaded_contact": loaded.contact,
        "by_tag": [c["uid"] for c in reg.list_cards(tags={"owner": "team-b"})],
        "by_old_tag": [c["uid"] for c in reg.list_cards(tags={"stage": "dev"})],
        "same_count": len(reg.list_cards(name="upd-data", repository="upd-repo")),
        "uploads": uploads,
    }


if __name__ == "__main__":
    common.main(run)
