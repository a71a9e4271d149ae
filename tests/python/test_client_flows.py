"""The real opsml 2.2.4 client against our host: each flow runs in its own process (the client
reads OPSML_TRACKING_URI at import time) and prints what it observed; the assertions are here.

Most flows run against both servers (``any_server``: ours and the reference) with the same
assertions: the reference passing shows that the flow and its expectations are right. The
versions flow runs against ours only: its expectations include deliberate fixes (version
numbers, not text prefixes), which test_compare_reference.py names against the reference.

A flow that fails because the client got a 404 from a route that is not in spin.toml raises
``MissingRoute`` (the message names the route and what the client sent). To record a route
that is not implemented yet, mark the test with ``missing_route_xfail(...)``
(``xfail(strict=True, raises=MissingRoute)``): any other failure still fails, and an
unexpected pass fails the suite so the marker gets removed.
"""

from __future__ import annotations

import dataclasses

import httpx
import pytest

from conftest import ADMIN_TOKEN

from support.semver import assert_versions
from support.servers import FlowResult, run_flow


class MissingRoute(AssertionError):
    """The client needed a route that our host does not serve (404 from an unknown route)."""


def succeeded(out: FlowResult) -> dict:
    """The flow's result; raises MissingRoute when it failed on an unserved route, else fails."""
    if not out.ok and out.missing_routes:
        raise MissingRoute(f"missing route(s) {out.missing_routes}\n{out.explain()}")
    assert out.ok, out.explain()
    return out.result


def missing_route_xfail(routes: str, sends: str):
    return pytest.mark.xfail(
        reason=f"route {routes} not implemented on our host (the client sends {sends})",
        strict=True,
        raises=MissingRoute,
    )


@pytest.fixture(params=["ours", "reference"])
def any_server(request):
    """Our host, then the reference server (each shared by the whole session)."""
    return request.getfixturevalue("flow_host" if request.param == "ours" else "ref_flows_server")


@pytest.fixture(params=["ours", "reference"])
def login_server(request):
    """Our host, then the reference server, each with its login on."""
    return request.getfixturevalue("login_host" if request.param == "ours" else "login_reference")


def assert_all_200(out: FlowResult) -> None:
    bad = [r for r in out.requests if r["status"] != 200]
    assert not bad, out.explain()


# --- Login (OPSML_USERNAME / OPSML_PASSWORD) -------------------------------------------------------

def test_the_client_logs_in_and_registers_and_loads_a_model(login_server, flow):
    out = flow("data_model", login_server)
    res = succeeded(out)
    assert_all_200(out)
    assert res["modelcard"]["version"] == "1.0.0", res
    lm = res["loaded_model"]
    assert lm["predictions_close_uid"] and lm["predictions_close_name"], lm


def test_without_the_login_the_client_is_refused(login_server, flow):
    out = flow("data_model", dataclasses.replace(login_server, login=None))
    assert not out.ok, out.explain()
    statuses = {r["status"] for r in out.requests}
    assert statuses == {401}, out.explain()


# --- API tokens as OPSML_PASSWORD --------------------------------------------------------------------

def make_token(server, scope: str, repositories) -> tuple[str, str]:
    r = httpx.post(f"{server.api}/admin/tokens", timeout=10,
                   headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
                   json={"name": f"python {scope}", "scope": scope, "repositories": repositories})
    assert r.status_code == 200, r.text
    return r.json()["id"], r.json()["token"]


def test_a_write_token_for_one_repository_registers_and_loads_a_model(token_host, flow):
    token_id, token = make_token(token_host, "write", ["test-repo"])
    out = flow("data_model", dataclasses.replace(token_host, login=("ci", token)))
    res = succeeded(out)
    assert_all_200(out)
    assert res["modelcard"]["version"] == "1.0.0", res
    audit = httpx.get(f"{token_host.api}/admin/audit", timeout=10,
                      params={"identity": f"token:{token_id}", "limit": 1000},
                      headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}).json()["records"]
    created = sorted((r["registry"], r["name"]) for r in audit if r["action"] == "card.create")
    assert created == [("data", "my-data"), ("model", "my-model")], audit
    assert any(r["action"] == "file.upload" for r in audit), audit


def test_a_read_token_is_refused_the_writes(token_host, flow):
    _, token = make_token(token_host, "read", ["test-repo"])
    out = flow("data_model", dataclasses.replace(token_host, login=("ci", token)))
    assert not out.ok, out.explain()
    statuses = {r["status"] for r in out.requests}
    assert 403 in statuses and statuses <= {200, 403}, out.explain()


# --- DataCard + ModelCard ---------------------------------------------------------------------------

def test_datacard_and_modelcard_roundtrip(any_server, flow):
    out = flow("data_model", any_server)
    res = succeeded(out)
    assert_all_200(out)
    dc, mc = res["datacard"], res["modelcard"]
    assert (dc["name"], dc["repository"], dc["version"]) == ("my-data", "test-repo", "1.0.0")
    assert mc["version"] == "1.0.0"
    ld = res["loaded_data"]
    assert ld["by_name_uid"] == dc["uid"]
    assert ld["by_uid_name"] == "my-data"
    assert ld["by_name_version"] == "1.0.0"
    assert ld["tags"] == {"team": "a"}
    assert ld["rows"] == 40 and ld["frames_equal"] is True
    lm = res["loaded_model"]
    assert lm["by_uid_name"] == "my-model"
    assert lm["by_name_uid"] == mc["uid"]
    assert lm["datacard_uid"] == dc["uid"]
    assert lm["model_type"] == "LinearRegression"
    assert lm["predictions_close_uid"] and lm["predictions_close_name"]
    assert lm["coef"] == pytest.approx([1.5, -2.0, 0.25])
    [data_rec] = res["records"]["data"]
    assert data_rec["uid"] == dc["uid"]
    assert data_rec["data_type"] == "pandas.core.frame.DataFrame"
    assert data_rec["contact"] == "me@example.com"
    assert data_rec["app_env"] == "development"
    [model_rec] = res["records"]["model"]
    assert model_rec["datacard_uid"] == dc["uid"]
    assert model_rec["model_type"] == "LinearRegression"
    assert model_rec["sample_data_type"] == "pandas.core.frame.DataFrame"
    # the sequence of the reference capture (protocol.md §8): uploads, then create
    routes = [f"{r['method']} {r['route']}" for r in out.requests]
    assert routes[:7] == ["GET registry/table", "GET registry/table", "POST cards/uid", "POST cards/version",
                          "POST files/upload", "POST files/upload", "POST cards/create"]


# --- versions and list_cards ----------------------------------------------------------------------

ALL_VERSIONS = ["10.1.0", "10.0.0", "4.0.0", "3.0.0", "2.1.0-rc.2", "2.1.0-rc.1", "2.0.0+build.1", "2.0.0",
                "1.10.0", "1.2.0-rc.1+build.1", "1.1.2", "1.1.1", "1.1.0", "1.0.0"]


@pytest.fixture(scope="module")
def versions_flow(flow_host, tmp_path_factory):
    return run_flow("versions", flow_host, tmp_path_factory.mktemp("versions-flow"))


def test_register_version_types(versions_flow):
    res = succeeded(versions_flow)
    assert_all_200(versions_flow)
    assert res["registered"] == [
        "1.0.0",               # minor, first
        "1.1.0",               # minor
        "1.1.1",               # patch
        "2.0.0",               # major
        "2.0.0+build.1",       # build on 2.0.0
        "2.1.0-rc.1",          # pre on 2.1.0
        "2.1.0-rc.2",          # pre on 2.1.0 again
        "3.0.0",               # explicit
        "1.10.0",              # explicit
        "10.0.0",              # explicit
        "4.0.0",               # explicit partial "4"
        "1.2.0-rc.1+build.1",  # pre_build on 1.2.0
        "1.1.2",               # patch on partial "1.1": numbers, not the text prefix (the reference gives 1.10.1)
        "10.1.0",              # minor: after the highest version
    ]
    # explicit full versions need no cards/version call (2 explicit full + 12 others)
    assert res["version_calls"] == 12


@pytest.mark.parametrize(
    "query, expected",
    [
        ("all", ALL_VERSIONS),
        ("name only", ALL_VERSIONS),
        ("v1", ["1.10.0", "1.2.0-rc.1+build.1", "1.1.2", "1.1.1", "1.1.0", "1.0.0"]),
        ("v1.*", ["1.10.0", "1.2.0-rc.1+build.1", "1.1.2", "1.1.1", "1.1.0", "1.0.0"]),
        ("v1.1", ["1.1.2", "1.1.1", "1.1.0"]),
        ("~1.1.0", ["1.1.2"]),
        ("^1.0.0", ["1.10.0"]),
        ("^2.0.0", ["2.1.0-rc.2"]),
        ("exact 1.1.1", ["1.1.1"]),
        ("exact 3.0.0", ["3.0.0"]),
        ("exact 2.1.0-rc.1", ["2.1.0-rc.1"]),
        ("exact 2.0.0+build.1", ["2.0.0+build.1"]),
        ("v2", ["2.1.0-rc.2", "2.1.0-rc.1", "2.0.0+build.1", "2.0.0"]),
        ("v2 no rc", ["2.0.0+build.1", "2.0.0"]),
        ("tags stage=prod", ["10.1.0"]),
        ("tags only", ["10.1.0"]),
        ("limit 3", ["10.1.0", "10.0.0", "4.0.0"]),
        ("v1 limit 2", ["1.10.0", "1.2.0-rc.1+build.1"]),
        ("dated all", ["1.2.0", "1.1.0", "1.0.0"]),
        ("dated max 2019-01-01", []),
    ],
)
def test_list_cards_filters(versions_flow, query, expected):
    res = succeeded(versions_flow)
    assert_versions(res["lists"][query], expected, query)


@pytest.mark.parametrize(
    "query, expected",
    [("dated max 2021-01-01", ["1.0.0"]), ("dated max 2023-01-01", ["1.1.0", "1.0.0"])],
)
def test_list_cards_max_date(versions_flow, query, expected):
    res = succeeded(versions_flow)
    assert_versions(res["lists"][query], expected, query)


def test_load_card_latest(versions_flow):
    res = succeeded(versions_flow)
    assert res["load_latest"] == "10.1.0"
    assert res["load_v1"] == "1.10.0"  # `1` is 1.x, not 10.x
    assert res["load_~1.1.0"] == "1.1.2"  # >=1.1.0,<1.2.0


# --- RunCard ----------------------------------------------------------------------------------------

def test_runcard_parameters_and_artifact(any_server, flow):
    out = flow("run_card", any_server)
    res = succeeded(out)
    assert_all_200(out)
    assert res["version"] == "1.0.0" and res["loaded_version"] == "1.0.0"
    assert res["by_name_uid"] == res["uid"]
    assert res["tags"] == {"kind": "train"}
    assert res["parameters"] == {"lr": [0.01, 0.02], "epochs": [3], "optimizer": ["adam"]}
    expected_path = f"opsml-root:/OPSML_RUN_REGISTRY/run-repo/train-run/{res['uid']}/artifacts/history.csv"
    assert res["artifact_remote_path"] == expected_path
    assert res["loaded_artifact_uris"] == {"history": expected_path}
    assert res["artifact_sha256"] == res["expected_sha256"]
    rec = res["record"]
    assert rec["artifact_uris"]["history"]["remote_path"] == expected_path
    assert (rec["datacard_uids"], rec["modelcard_uids"], rec["project"]) == ([], [], None)


RUN_METRICS = {"loss": [[1, 0.5], [2, 0.25]], "accuracy": [[None, 0.9]], "f1": [[None, 0.8]]}


def test_runcard_metrics(any_server, flow):
    """PUT metrics on every log_metric ({"metric": [{name, value, step, timestamp, run_uid}]}),
    POST metrics {"run_uid": ...} on load_metrics."""
    out = flow("run_metrics", any_server)
    res = succeeded(out)
    assert_all_200(out)
    assert res["version"] == "1.0.0"
    assert res["metrics"] == RUN_METRICS
    routes = [f"{r['method']} {r['route']}" for r in out.requests]
    assert routes.count("PUT metrics") == 4 and routes.count("POST metrics") == 1


# --- ProjectCard ------------------------------------------------------------------------------------

def test_projectcard_id_assignment(any_server, flow):
    """GET projects/id?project_name=&repository= for every ProjectCard registered: an existing
    project keeps its id, a new one gets max + 1 (this is the first project flow of the session)."""
    out = flow("project_card", any_server)
    res = succeeded(out)
    assert_all_200(out)
    assert res["ids"] == [1, 2, 1]
    assert res["versions"] == ["1.0.0", "1.0.0"]
    assert res["records"] == [["proj-one", 1, "1.0.0"], ["proj-two", 2, "1.0.0"]]


PROJECT_RUN_METRICS = {"loss": [[1, 0.75], [None, 0.5]], "acc": [[None, 0.8]]}


def test_project_run(any_server, flow):
    """OpsmlProject + run: GET projects/id, PUT/POST metrics, artifact upload, RunCard."""
    out = flow("project_run", any_server)
    res = succeeded(out)
    assert_all_200(out)
    assert res["project_id"] == res["expected_project_id"]  # max + 1 (3 after the ProjectCard flow)
    assert res["run_project"] == "exp-project"
    assert res["parameters"] == {"alpha": ["0.5"]}
    assert res["metrics"] == PROJECT_RUN_METRICS
    assert res["artifacts"] == ["notes"]


# --- update and delete ------------------------------------------------------------------------------

def test_update_card_tags(any_server, flow):
    out = flow("update_card", any_server)
    res = succeeded(out)
    assert_all_200(out)
    assert res["version_before"] == res["version_after"] == "1.0.0"
    assert res["tags_before"] == {"stage": "dev"}
    assert res["tags_after"] == {"stage": "prod", "owner": "team-b"}
    assert res["loaded_tags"] == {"stage": "prod", "owner": "team-b"}
    assert res["contact_after"] == res["loaded_contact"] == "after@example.com"
    assert res["by_tag"] == [res["uid"]]
    assert res["by_old_tag"] == []
    assert res["same_count"] == 1
    assert res["uploads"] == 4  # 2 at registration, 2 re-written by update_card


DELETE_EXPECTED = {
    "versions": ["1.0.0", "1.1.0"],
    "files_before": ["card.joblib", "data.parquet"],
    "files_after": [],
    "exists_after": {"exists": False},
    "by_uid_after": [],
    "remaining": ["1.0.0"],
    "kept_files": ["card.joblib", "data.parquet"],
}


def test_delete_card(any_server, flow):
    """POST cards/delete, then GET files/delete?path=<card dir>: the record and the files go,
    the other version's files stay."""
    out = flow("delete_card", any_server)
    res = succeeded(out)
    assert_all_200(out)
    assert res == DELETE_EXPECTED
    routes = [f"{r['method']} {r['route']}" for r in out.requests]
    i = routes.index("POST cards/delete")
    assert routes[i + 1] == "GET files/delete"
