"""Loads an audit card with the opsml client, as an auditor's script would after the web form
saved it: `args.json` in the working directory names its uid. Returns its approval, every
answer by section and number, and its comments."""

import json
from pathlib import Path

import common  # noqa: F401  (records the client's requests; must come before opsml)

from opsml import CardRegistry


def run() -> dict:
    uid = json.loads(Path("args.json").read_text())["uid"]
    card = CardRegistry("audit").load_card(uid=uid)
    answers = {
        section: {str(n): q.response for n, q in questions.items()}
        for section, questions in card.audit
    }
    return {
        "name": card.name,
        "version": card.version,
        "approved": card.approved,
        "answers": answers,
        "comments": [{"name": c.name, "comment": c.comment} for c in card.comments],
        "modelcards": [{"name": m.name, "version": m.version} for m in card.metadata.modelcards],
    }


if __name__ == "__main__":
    common.main(run)
