//! The prod-token policy: with `APP_ENV=production` every write (cards create/update/delete,
//! files upload and delete, model registration) needs `X-Prod-Token` equal to the configured
//! token; with no token configured writes are refused outright; reads never need it; other
//! environments need no token.

use e2e::harness::{
    create_request, data_card, list_request, pseudo_random, random_hex, version_request,
    with_query, Host,
};
use serde_json::{json, Value};

const TOKEN: &str = "s3cret";
const REPO: &str = "test-repo";

fn token(value: &str) -> Vec<(&str, &str)> {
    vec![("X-Prod-Token", value)]
}

fn list_names(host: &Host, name: &str) -> Vec<Value> {
    let (status, body) = host.post_json(
        "/opsml/cards/list",
        &list_request("data", Some(name), Some(REPO), None),
        &[],
    );
    assert_eq!(status, 200, "cards/list needs no token: {body}");
    body["cards"].as_array().expect("cards").clone()
}

fn file_exists(host: &Host, path: &str) -> bool {
    let (status, body) = host.files_exists(path);
    assert_eq!(status, 200, "files/exists needs no token: {body}");
    body["exists"].as_bool().expect("exists")
}

fn file_path(name: &str) -> String {
    format!("opsml-root:/OPSML_MODEL_REGISTRY/{REPO}/{name}/v1.0.0/model.bin")
}

/// The reads the client makes, all without a token.
fn assert_reads_are_open(host: &Host) {
    let (status, body) = host.get_json("/opsml/healthcheck");
    assert_eq!((status, body), (200, json!({"is_alive": true})));
    let (status, body) = host.get_json("/opsml/registry/table?registry_type=data");
    assert_eq!(status, 200, "{body}");
    let (status, body) = host.post_json(
        "/opsml/cards/uid",
        &json!({"uid": "None", "registry_type": "data"}),
        &[],
    );
    assert_eq!((status, body), (200, json!({"uid_exists": false})));
    let (status, body) = host.post_json(
        "/opsml/cards/version",
        &version_request("data", "read-only", REPO, "minor"),
        &[],
    );
    assert_eq!((status, body), (200, json!({"version": "1.0.0"})));
    assert!(list_names(host, "read-only").is_empty());
    let (status, body) = host.files_list("opsml-root:/OPSML_MODEL_REGISTRY");
    assert_eq!(status, 200, "{body}");
    assert!(!file_exists(host, &file_path("read-only")));
}

#[test]
fn production_writes_need_the_prod_token() {
    let host = Host::start(&[("APP_ENV", "production"), ("OPSML_PROD_TOKEN", TOKEN)]);
    assert_reads_are_open(&host);

    // With the token: accepted, and the row records the environment.
    let uid = random_hex();
    let card = data_card("allowed", REPO, "1.0.0", &uid);
    let (status, body) = host.post_json(
        "/opsml/cards/create",
        &create_request("data", card.clone()),
        &token(TOKEN),
    );
    assert_eq!((status, &body), (200, &json!({"registered": true})));
    let rows = list_names(&host, "allowed");
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["app_env"], "production", "{}", rows[0]);
    let path = file_path("allowed");
    let (status, body) = host.upload(&path, &b"weights"[..], 7, &token(TOKEN));
    assert_eq!(status, 200, "{body}");
    assert!(file_exists(&host, &path));

    // Without it, or with another one: 401, and nothing is written.
    let mut failures = Vec::new();
    for (label, headers) in [
        ("no token", vec![]),
        ("a wrong token", token("s3cre")),
        ("the client's default token", token("staging")),
        ("an empty token", token("")),
    ] {
        let name = format!("denied-{}", random_hex());
        let denied = data_card(&name, REPO, "1.0.0", &random_hex());
        let (status, body) = host.post_json(
            "/opsml/cards/create",
            &create_request("data", denied),
            &headers,
        );
        check_denied(
            &mut failures,
            &format!("cards/create with {label}"),
            401,
            status,
            &body,
        );
        if !list_names(&host, &name).is_empty() {
            failures.push(format!("cards/create with {label} wrote a card"));
        }

        let path = file_path(&name);
        let (status, body) = host.upload(&path, &b"weights"[..], 7, &headers);
        check_denied(
            &mut failures,
            &format!("files/upload with {label}"),
            401,
            status,
            &body,
        );
        if file_exists(&host, &path) {
            failures.push(format!("files/upload with {label} stored the file"));
        }

        // Changing or deleting the card registered above.
        let mut changed = data_card("allowed", REPO, "1.0.0", &uid);
        changed["contact"] = json!("intruder");
        let (status, body) = host.post_json(
            "/opsml/cards/update",
            &create_request("data", changed),
            &headers,
        );
        check_denied(
            &mut failures,
            &format!("cards/update with {label}"),
            401,
            status,
            &body,
        );
        let (status, body) = host.post_json(
            "/opsml/cards/delete",
            &json!({"card": {"name": "allowed", "version": "1.0.0", "uid": uid}, "registry_type": "data"}),
            &headers,
        );
        check_denied(
            &mut failures,
            &format!("cards/delete with {label}"),
            401,
            status,
            &body,
        );
        let rows = list_names(&host, "allowed");
        if rows.len() != 1 || rows[0]["contact"] != card["contact"] {
            failures.push(format!("after update/delete with {label}: {rows:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // A large upload with a wrong token: the refusal arrives while the body is still being sent
    // (the server need not read 32 MiB to say no), and the client still gets the 401.
    let big = file_path("big-denied");
    let (status, body) = host.upload(&big, pseudo_random(3, 32 << 20), 32 << 20, &token("nope"));
    assert_eq!(status, 401, "{body}");
    assert!(!file_exists(&host, &big));

    // The right token also updates and deletes.
    let mut changed = card.clone();
    changed["contact"] = json!("owner@x.com");
    let (status, body) = host.post_json(
        "/opsml/cards/update",
        &create_request("data", changed),
        &token(TOKEN),
    );
    assert_eq!((status, &body), (200, &json!({"updated": true})));
    assert_eq!(list_names(&host, "allowed")[0]["contact"], "owner@x.com");
    let (status, body) = host.post_json(
        "/opsml/cards/delete",
        &json!({"card": {"name": "allowed", "version": "1.0.0", "uid": uid}, "registry_type": "data"}),
        &token(TOKEN),
    );
    assert_eq!((status, &body), (200, &json!({"deleted": true})));
    assert!(list_names(&host, "allowed").is_empty());
}

fn check_denied(failures: &mut Vec<String>, what: &str, expected: u16, status: u16, body: &Value) {
    let detail = body.get("detail").and_then(Value::as_str).unwrap_or("");
    if status != expected || detail.is_empty() {
        failures.push(format!(
            "{what}: expected {expected} {{\"detail\": ...}}, got {status} {body}"
        ));
    }
    if detail.contains(TOKEN) {
        failures.push(format!("{what}: the detail leaks the token: {detail:?}"));
    }
}

/// In production with no token configured, every write is refused (fail closed), whatever
/// the caller sends, and says why.
fn assert_writes_fail_closed(host: &Host) {
    assert_reads_are_open(host);
    let uid = random_hex();
    let mut failures = Vec::new();
    for (label, headers) in [
        ("no token", vec![]),
        ("the client's default token", token("staging")),
        ("an empty token", token("")),
    ] {
        for (route, (status, body)) in every_write(host, "closed", &uid, &headers) {
            let what = format!("{route} with {label}");
            check_denied(&mut failures, &what, 403, status, &body);
            let text = detail_text(&body).to_lowercase();
            if !(text.contains("token") && text.contains("configured")) {
                failures.push(format!(
                    "{what}: the detail should say that no prod token is configured: {body}"
                ));
            }
        }
    }
    if !list_names(host, "closed").is_empty() {
        failures.push("a card was written".into());
    }
    if file_exists(host, &file_path("closed")) {
        failures.push("a file was written".into());
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Create, update and delete of a data card `name` 1.0.0 with `uid`, and an upload under it.
fn every_write(
    host: &Host,
    name: &str,
    uid: &str,
    headers: &[(&str, &str)],
) -> Vec<(&'static str, (u16, Value))> {
    let card = data_card(name, REPO, "1.0.0", uid);
    vec![
        (
            "cards/create",
            host.post_json(
                "/opsml/cards/create",
                &create_request("data", card.clone()),
                headers,
            ),
        ),
        (
            "cards/update",
            host.post_json("/opsml/cards/update", &create_request("data", card), headers),
        ),
        (
            "cards/delete",
            host.post_json(
                "/opsml/cards/delete",
                &json!({"card": {"name": name, "version": "1.0.0", "uid": uid}, "registry_type": "data"}),
                headers,
            ),
        ),
        (
            "files/upload",
            host.upload(&file_path(name), &b"weights"[..], 7, headers),
        ),
    ]
}

fn detail_text(body: &Value) -> &str {
    body.get("detail").and_then(Value::as_str).unwrap_or("")
}

#[test]
fn production_without_a_configured_token_refuses_every_write() {
    let host = Host::start(&[("APP_ENV", "production")]);
    assert_writes_fail_closed(&host);
}

#[test]
fn production_with_an_empty_token_refuses_every_write() {
    // An empty value counts as set for Spin's env provider: it must not make "" a valid token.
    let host = Host::start(&[("APP_ENV", "production"), ("OPSML_PROD_TOKEN", "")]);
    assert_writes_fail_closed(&host);
}

#[test]
fn development_writes_need_no_token() {
    let host = Host::start(&[("APP_ENV", "development"), ("OPSML_PROD_TOKEN", TOKEN)]);
    assert_reads_are_open(&host);
    // No header, and the client's default header (it always sends one).
    for (name, headers) in [("dev-none", vec![]), ("dev-default", token("staging"))] {
        let card = data_card(name, REPO, "1.0.0", &random_hex());
        let (status, body) = host.post_json(
            "/opsml/cards/create",
            &create_request("data", card),
            &headers,
        );
        assert_eq!(
            (status, &body),
            (200, &json!({"registered": true})),
            "{name}"
        );
        let rows = list_names(&host, name);
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!(rows[0]["app_env"], "development");
        let path = file_path(name);
        let (status, body) = host.upload(&path, &b"weights"[..], 7, &headers);
        assert_eq!(status, 200, "{name}: {body}");
        assert!(file_exists(&host, &path));
    }
}

/// The writes outside the client's register flow: `files/delete` (a GET that deletes) and
/// `models/register` (copies a model into the deployment folder). Without the token they are
/// refused and nothing is deleted or copied; with it they happen.
#[test]
fn production_file_deletes_and_model_registration_need_the_prod_token() {
    let host = Host::start(&[("APP_ENV", "production"), ("OPSML_PROD_TOKEN", TOKEN)]);
    let folder = "opsml-root:/OPSML_MODEL_REGISTRY/team/clf/v1.0.0";
    let model_uri = format!("{folder}/trained-model.joblib");
    let card =
        json!({"name": "clf", "repository": "team", "version": "1.0.0", "uid": random_hex()});
    let (status, body) = host.post_json(
        "/opsml/cards/create",
        &create_request("model", card),
        &token(TOKEN),
    );
    assert_eq!(status, 200, "{body}");
    let metadata = serde_json::to_vec(&json!({"model_name": "clf", "model_version": "1.0.0",
        "model_repository": "team", "model_uri": model_uri, "onnx_uri": null}))
    .unwrap();
    for (path, bytes) in [
        (model_uri.clone(), b"weights".to_vec()),
        (format!("{folder}/model-metadata.json"), metadata),
        (format!("{folder}/scratch.txt"), b"scratch".to_vec()),
    ] {
        let (status, body) =
            host.upload(&path, bytes.as_slice(), bytes.len() as u64, &token(TOKEN));
        assert_eq!(status, 200, "{path}: {body}");
    }
    let scratch = format!("{folder}/scratch.txt");
    let delete = |path: &str, headers: &[(&str, &str)]| {
        let reply = host.request(
            "GET",
            &with_query("/opsml/files/delete", &[("path", path)]),
            headers,
            None,
        );
        (reply.status, reply.json())
    };
    let register = |headers: &[(&str, &str)]| {
        host.post_json(
            "/opsml/models/register",
            &json!({"name": "clf", "repository": "team", "version": "1", "onnx": false}),
            headers,
        )
    };
    let deployed = "opsml-root:/model_registry/team/clf/v1";

    let mut failures = Vec::new();
    for (label, headers) in [
        ("no token", vec![]),
        ("a wrong token", token("s3cre")),
        ("an empty token", token("")),
    ] {
        let (status, body) = delete(&scratch, &headers);
        check_denied(
            &mut failures,
            &format!("files/delete of a file with {label}"),
            401,
            status,
            &body,
        );
        let (status, body) = delete(folder, &headers);
        check_denied(
            &mut failures,
            &format!("files/delete of a folder with {label}"),
            401,
            status,
            &body,
        );
        let (status, body) = register(&headers);
        check_denied(
            &mut failures,
            &format!("models/register with {label}"),
            401,
            status,
            &body,
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(
        file_exists(&host, &scratch),
        "a refused delete deleted the file"
    );
    assert!(
        file_exists(&host, &model_uri),
        "a refused folder delete deleted a file"
    );
    let (status, listed) = host.files_list("opsml-root:/model_registry");
    assert_eq!(
        (status, listed),
        (200, json!({"files": []})),
        "a refused registration copied files"
    );

    // With the token: done.
    let (status, body) = register(&token(TOKEN));
    assert_eq!((status, &body), (200, &json!(deployed)));
    let (_, listed) = host.files_list(deployed);
    assert_eq!(
        listed,
        json!({"files": [format!("{deployed}/model-settings.json"), format!("{deployed}/trained-model.joblib")]})
    );
    assert_eq!(
        delete(&scratch, &token(TOKEN)),
        (200, json!({"deleted": true}))
    );
    assert!(!file_exists(&host, &scratch));
    assert!(
        file_exists(&host, &model_uri),
        "deleting one file left the others"
    );
}
