"""The cards both servers are seeded with for the comparison, as the raw `cards/create` bodies
the client would send (same uids and timestamps on both sides), and multipart uploads framed
exactly as the opsml client (httpx) frames them."""

from __future__ import annotations

import secrets
from typing import Any, Dict, List, Tuple

DAY_US = 86_400 * 10**6
T0 = 1_700_000_000_000_000  # 2023-11-14T22:13:20Z, in microseconds (the client's unit)


def uid(tag: str, i: int) -> str:
    """A 32-hex uid, the same on both servers (like uuid4().hex)."""
    return f"{sum(map(ord, tag)) % 0xFFFF:04x}{i:028x}"


# name=lc, repository=cmp-repo: versions created in this order, one day apart.
LC_VERSIONS = ["1.0.0", "1.1.0", "1.1.1", "1.2.0-rc.1", "1.2.0", "2.0.0", "10.0.0", "1.10.0", "1.1.10",
               "2.0.0+build.1", "2.1.0-rc.1", "1.1.1-rc.1"]
# name=pt: the text order of the patch puts 1.0.9 above 1.0.10 in the reference's SQL
PT_VERSIONS = ["1.0.9", "1.0.10", "1.0.2"]


def data_card(name: str, repository: str, version: str, i: int, **extra: Any) -> Dict[str, Any]:
    card = {
        "name": name, "repository": repository, "contact": "me@example.com", "uid": uid(name + repository, i),
        "version": version, "tags": {"idx": str(i), "even": str(i % 2 == 0)},
        "data_type": "t1" if i % 3 == 0 else "pandas.core.frame.DataFrame", "timestamp": T0 + i * DAY_US,
        "runcard_uid": None, "pipelinecard_uid": None, "auditcard_uid": None,
    }
    card.update(extra)
    return card


def seed_requests() -> List[Tuple[str, Dict[str, Any]]]:
    """(label, cards/create body) in creation order."""
    out: List[Tuple[str, Dict[str, Any]]] = []
    for i, v in enumerate(LC_VERSIONS):
        out.append((f"data lc {v}", {"card": data_card("lc", "cmp-repo", v, i), "registry_type": "data"}))
    out.append(("data other", {"card": data_card("other", "cmp-repo", "3.0.0", 20), "registry_type": "data"}))
    out.append(("data lc in cmp-repo2", {"card": data_card("lc", "cmp-repo2", "5.0.0", 21), "registry_type": "data"}))
    for j, v in enumerate(PT_VERSIONS):
        out.append((f"data pt {v}", {"card": data_card("pt", "cmp-repo", v, 30 + j), "registry_type": "data"}))
    # The server lower-cases names and repositories and turns `_` into `-` on create.
    out.append(("data Mixed_Case", {"card": data_card("Mixed_Case", "Cmp_Repo", "1.0.0", 40), "registry_type": "data"}))
    lc0 = uid("lccmp-repo", 0)
    out.append(("model", {"registry_type": "model", "card": {
        "name": "cmp-model", "repository": "cmp-repo", "contact": "me@example.com", "uid": uid("model", 1),
        "version": "1.0.0", "tags": {}, "datacard_uid": lc0, "sample_data_type": "pandas.core.frame.DataFrame",
        "model_type": "LinearRegression", "timestamp": T0, "runcard_uid": None, "pipelinecard_uid": None,
        "auditcard_uid": None}}))
    out.append(("model 1.1.0", {"registry_type": "model", "card": {
        "name": "cmp-model", "repository": "cmp-repo", "contact": "me@example.com", "uid": uid("model", 2),
        "version": "1.1.0", "tags": {"stage": "prod"}, "datacard_uid": "undefined",
        "sample_data_type": "numpy.ndarray", "model_type": "LinearRegression", "timestamp": T0 + DAY_US,
        "runcard_uid": None, "pipelinecard_uid": None, "auditcard_uid": None}}))
    out.append(("run", {"registry_type": "run", "card": {
        "name": "cmp-run", "repository": "cmp-repo", "contact": "me@example.com", "uid": uid("run", 1),
        "version": "1.0.0", "tags": {"a": "1", "n": 2}, "datacard_uids": [lc0], "modelcard_uids": [uid("model", 1)],
        "pipelinecard_uid": None, "project": "cmp-project",
        "artifact_uris": {"x": {"name": "x", "local_path": "a/x.txt",
                                "remote_path": "opsml-root:/OPSML_RUN_REGISTRY/cmp-repo/cmp-run/v1.0.0/artifacts/x.txt"}},
        "timestamp": T0}}))
    out.append(("pipeline", {"registry_type": "pipeline", "card": {
        "name": "cmp-pipe", "repository": "cmp-repo", "contact": "me@example.com", "uid": uid("pipe", 1),
        "version": "1.0.0", "tags": {}, "pipeline_code_uri": "git://x", "datacard_uids": [lc0],
        "modelcard_uids": [], "runcard_uids": [uid("run", 1)], "timestamp": T0}}))
    out.append(("audit", {"registry_type": "audit", "card": {
        "name": "cmp-audit", "repository": "cmp-repo", "contact": "me@example.com", "uid": uid("audit", 1),
        "version": "1.0.0", "tags": {}, "approved": False,
        "datacards": [{"name": "lc", "version": "1.0.0", "card_type": "data"}], "modelcards": [], "runcards": [],
        "timestamp": T0}}))
    # project: no normalisation of name/repository, project_id given by the client
    out.append(("project", {"registry_type": "project", "card": {
        "uid": uid("proj", 1), "name": "Proj_One", "repository": "cmp-repo", "project_id": 1,
        "version": "1.0.0", "timestamp": T0}}))
    out.append(("project 2", {"registry_type": "project", "card": {
        "uid": uid("proj", 2), "name": "proj-two", "repository": "cmp-repo", "project_id": 2,
        "version": "1.0.0", "timestamp": T0 + DAY_US}}))
    return out


def client_list_body(**kw: Any) -> Dict[str, Any]:
    """A cards/list body in the client's 11-key shape (every key sent, nulls included)."""
    body = {"name": None, "repository": None, "version": None, "uid": None, "max_date": None, "limit": None,
            "tags": None, "registry_type": "data", "ignore_release_candidates": False, "query_terms": None,
            "sort_by_timestamp": False}
    body.update(kw)
    return body


def client_version_body(name: str, repository: str, version_type: str, version: str | None = None,
                        registry_type: str = "data", pre_tag: str = "rc", build_tag: str = "build") -> Dict[str, Any]:
    """A cards/version body as the client sends it (CardVersion object or null)."""
    supplied = None
    if version is not None:
        splits = version.split(".")
        supplied = {"version": version, "version_splits": splits, "is_full_semver": len(splits) >= 3}
    return {"name": name, "repository": repository, "version": supplied, "version_type": version_type,
            "registry_type": registry_type, "pre_tag": pre_tag, "build_tag": build_tag}


def multipart(filename: str, data: bytes, content_type: str = "application/octet-stream") -> Tuple[bytes, str]:
    """The multipart body httpx builds for files={"file": open(path, "rb")}: one part named
    `file`, a 32-hex boundary. Returns (body, content-type header)."""
    boundary = secrets.token_hex(16)
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n"
            f"Content-Type: {content_type}\r\n\r\n").encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    return head + data + tail, f"multipart/form-data; boundary={boundary}"


def blob(seed: int, size: int) -> bytes:
    """Deterministic pseudo-random bytes."""
    import random

    return random.Random(seed).randbytes(size)
