//! Every kind of lookup that finds nothing answers, on every runtime and database. Spin 4.0.x's
//! PostgreSQL interface never returns from a query that matches no row (spinframework/spin
//! issue 3671): there a request would hang, so each request here has a short read timeout and
//! a hang fails the test instead of stalling it.

use e2e::harness::{
    create_request, data_card, list_request, random_hex, version_request, with_query, Host,
};
use e2e::http::{self, Body, Timeouts};
use serde_json::{json, Value};
use std::io::Read;
use std::time::Duration;

/// A request that must answer within 20 s: (status, body as text).
fn ask(
    host: &Host,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> (u16, String) {
    let bytes = body.map(|b| serde_json::to_vec(b).unwrap());
    let mut all = headers.to_vec();
    if bytes.is_some() {
        all.push(("Content-Type", "application/json"));
    }
    let timeouts = Timeouts {
        connect: Duration::from_secs(5),
        io: Duration::from_secs(20),
    };
    let mut response = http::send(
        host.addr(),
        method,
        target,
        &all,
        bytes.as_deref().map(Body::bytes),
        timeouts,
    )
    .unwrap_or_else(|e| panic!("{method} {target}: no answer within 20 s: {e}"));
    let mut text = String::new();
    response
        .read_to_string(&mut text)
        .unwrap_or_else(|e| panic!("{method} {target}: the body did not come within 20 s: {e}"));
    (response.status, text)
}

fn json_of(what: &str, text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {text}"))
}

#[test]
fn lookups_that_find_nothing_answer() {
    let host = Host::dev();
    let model_root = "opsml-root:/OPSML_MODEL_REGISTRY";
    let missing_file = format!("{model_root}/team/none/v1.0.0/model.bin");
    let mut failures = Vec::new();
    let mut expect = |what: &str, (status, text): (u16, String), want: u16, body: Option<Value>| {
        if status != want {
            failures.push(format!("{what}: expected {want}, got {status} {text}"));
        } else if let Some(body) = body {
            let got = json_of(what, &text);
            if got != body {
                failures.push(format!("{what}: expected {body}, got {got}"));
            }
        }
    };
    let get = |target: &str| ask(&host, "GET", target, &[], None);
    let post = |target: &str, body: Value| ask(&host, "POST", target, &[], Some(&body));

    expect("readyz", get("/opsml/readyz"), 200, None);
    expect(
        "cards/uid of an unknown uid",
        post(
            "/opsml/cards/uid",
            json!({"uid": random_hex(), "registry_type": "model"}),
        ),
        200,
        Some(json!({"uid_exists": false})),
    );
    expect(
        "cards/list of an unknown name",
        post(
            "/opsml/cards/list",
            list_request("model", Some("none"), Some("team"), None),
        ),
        200,
        Some(json!({"cards": []})),
    );
    expect(
        "cards/list by an unknown uid",
        post(
            "/opsml/cards/list",
            json!({"registry_type": "model", "uid": random_hex()}),
        ),
        200,
        Some(json!({"cards": []})),
    );
    expect(
        "cards/version of a new name",
        post(
            "/opsml/cards/version",
            version_request("model", "none", "team", "minor"),
        ),
        200,
        Some(json!({"version": "1.0.0"})),
    );
    expect(
        "cards/names of an empty registry",
        get("/opsml/cards/names?registry_type=model"),
        200,
        Some(json!({"names": []})),
    );
    expect(
        "cards/repositories of an empty registry",
        get("/opsml/cards/repositories?registry_type=model"),
        200,
        Some(json!({"repositories": []})),
    );
    expect(
        "projects/id of a new project",
        get("/opsml/projects/id?project_name=none&repository=team"),
        200,
        Some(json!({"project_id": 1})),
    );
    expect(
        "cards/update of an unknown uid",
        post(
            "/opsml/cards/update",
            create_request("data", data_card("none", "team", "1.0.0", &random_hex())),
        ),
        200,
        Some(json!({"updated": false})),
    );
    expect(
        "files/list of an empty folder",
        get(&with_query("/opsml/files/list", &[("path", model_root)])),
        200,
        Some(json!({"files": []})),
    );
    expect(
        "files/list/info of an empty folder",
        get(&with_query(
            "/opsml/files/list/info",
            &[("path", model_root)],
        )),
        200,
        Some(json!({"files": []})),
    );
    expect(
        "files/exists of a missing file",
        get(&with_query(
            "/opsml/files/exists",
            &[("path", &missing_file)],
        )),
        200,
        Some(json!({"exists": false})),
    );
    expect(
        "files/download of a missing file",
        get(&with_query(
            "/opsml/files/download",
            &[("path", &missing_file)],
        )),
        404,
        None,
    );
    expect(
        "files/delete of a missing file",
        get(&with_query(
            "/opsml/files/delete",
            &[("path", &missing_file)],
        )),
        200,
        Some(json!({"deleted": true})),
    );
    expect(
        "metrics of an unknown run",
        post("/opsml/metrics", json!({"run_uid": random_hex()})),
        200,
        Some(json!({"metric": null})),
    );
    expect(
        "models/metadata of an unknown model",
        post("/opsml/models/metadata", json!({"uid": random_hex()})),
        404,
        None,
    );
    expect(
        "models/compare_metrics of an unknown model",
        post(
            "/opsml/models/compare_metrics",
            json!({"metric_name": ["mae"], "lower_is_better": true, "challenger_uid": random_hex()}),
        ),
        404,
        None,
    );
    expect(
        "the models page of an empty registry",
        get("/opsml/models/list/"),
        200,
        None,
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // An upload first collects dead uploads (none here) and looks its path up (not there).
    let path = format!("{model_root}/team/first/v1.0.0/model.bin");
    let (status, body) = host.upload(&path, &b"weights"[..], 7, &[]);
    assert_eq!(status, 200, "{body}");
    let (status, text) = get(&with_query("/opsml/files/exists", &[("path", &path)]));
    assert_eq!(
        (status, json_of("exists", &text)),
        (200, json!({"exists": true}))
    );
}

#[test]
fn token_and_login_lookups_that_find_nothing_answer() {
    let admin = "an-admin-token-of-at-least-32-characters";
    let host = Host::start(&[("OPSML_ADMIN_TOKEN", admin)]);
    let bearer = format!("Bearer {admin}");
    let as_admin = [("Authorization", bearer.as_str())];
    let (status, text) = ask(&host, "GET", "/opsml/admin/tokens", &as_admin, None);
    assert_eq!(
        (status, json_of("tokens", &text)),
        (200, json!({"tokens": []}))
    );
    let (status, text) = ask(
        &host,
        "GET",
        "/opsml/admin/audit?repository=none",
        &as_admin,
        None,
    );
    assert_eq!(status, 200, "{text}");
    assert_eq!(json_of("audit", &text)["records"], json!([]), "{text}");
    // An unknown token: its row is looked up, and so is the address's failure count.
    let unknown = format!("Bearer opsml_{}_{}", random_hex(), random_hex());
    let (status, text) = ask(
        &host,
        "GET",
        "/opsml/admin/whoami",
        &[("Authorization", unknown.as_str())],
        None,
    );
    assert_eq!(status, 401, "{text}");
    let (status, text) = ask(
        &host,
        "DELETE",
        "/opsml/admin/tokens/0123456789abcdef",
        &as_admin,
        None,
    );
    assert_eq!(status, 404, "revoking an unknown token: {text}");
}
