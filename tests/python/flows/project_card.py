"""ProjectCard id assignment: the client asks `GET projects/id` for every ProjectCard it
registers (an existing project keeps its id; a new one gets max + 1)."""

import common  # noqa: F401  (records the client's requests; must come before opsml)

from opsml import CardRegistry, ProjectCard


def run() -> dict:
    reg = CardRegistry("project")
    first = ProjectCard(name="proj-one", repository="proj-repo", contact="me@example.com")
    reg.register_card(first)
    second = ProjectCard(name="proj-two", repository="proj-repo", contact="me@example.com")
    reg.register_card(second)
    again = ProjectCard(name="proj-one", repository="proj-repo", contact="me@example.com")
    reg.register_card(again)  # already registered: only its id is looked up
    records = reg.list_cards(repository="proj-repo")
    return {
        "ids": [first.project_id, second.project_id, again.project_id],
        "versions": [first.version, second.version],
        "records": sorted((r["name"], r["project_id"], r["version"]) for r in records),
    }


if __name__ == "__main__":
    common.main(run)
