//! Cards: next version, create, list, uid, repositories and names, as the opsml 2.x client
//! drives them (protocol.md §8).

use e2e::harness::{
    create_request, data_card, detail, list_request, random_hex, version_request, Host,
};
use serde_json::{json, Value};

const NAME: &str = "my-data";
const REPO: &str = "test-repo";

fn next_version(host: &Host) -> String {
    let (status, body) = host.post_json(
        "/opsml/cards/version",
        &version_request("data", NAME, REPO, "minor"),
        &[],
    );
    assert_eq!(status, 200, "cards/version: {body}");
    body["version"]
        .as_str()
        .unwrap_or_else(|| panic!("cards/version: expected {{\"version\": \"...\"}}, got {body}"))
        .to_string()
}

fn create(host: &Host, card: &Value) -> (u16, Value) {
    host.post_json(
        "/opsml/cards/create",
        &create_request("data", card.clone()),
        &[],
    )
}

fn list(host: &Host, limit: Option<u64>) -> Vec<Value> {
    let (status, body) = host.post_json(
        "/opsml/cards/list",
        &list_request("data", Some(NAME), Some(REPO), limit),
        &[],
    );
    assert_eq!(status, 200, "cards/list: {body}");
    body["cards"]
        .as_array()
        .unwrap_or_else(|| panic!("cards/list: expected {{\"cards\": [...]}}, got {body}"))
        .clone()
}

fn uid_exists(host: &Host, uid: &str) -> bool {
    let (status, body) = host.post_json(
        "/opsml/cards/uid",
        &json!({"uid": uid, "registry_type": "data"}),
        &[],
    );
    assert_eq!(status, 200, "cards/uid: {body}");
    assert_eq!(
        body.as_object().map(|o| o.len()),
        Some(1),
        "cards/uid: {body}"
    );
    body["uid_exists"]
        .as_bool()
        .unwrap_or_else(|| panic!("cards/uid: expected {{\"uid_exists\": bool}}, got {body}"))
}

/// A listed row has every field the client sent, plus the server's `date` and `app_env`.
fn assert_row_matches(row: &Value, sent: &Value, app_env: &str) {
    for (key, value) in sent.as_object().expect("a card object") {
        assert_eq!(&row[key], value, "field {key:?} of listed card {row}");
    }
    let date = row["date"]
        .as_str()
        .unwrap_or_else(|| panic!("no date in {row}"));
    let bytes = date.as_bytes();
    assert!(
        bytes.len() == 10
            && bytes[4] == b'-'
            && bytes[7] == b'-'
            && bytes
                .iter()
                .enumerate()
                .all(|(i, b)| i == 4 || i == 7 || b.is_ascii_digit()),
        "date is YYYY-MM-DD: {date:?}"
    );
    assert_eq!(row["app_env"], app_env, "app_env of {row}");
}

#[test]
fn registry_tables_are_named_like_the_reference() {
    let host = Host::dev();
    for (registry_type, table) in [
        ("model", "OPSML_MODEL_REGISTRY"),
        ("data", "OPSML_DATA_REGISTRY"),
        ("run", "OPSML_RUN_REGISTRY"),
        ("project", "OPSML_PROJECT_REGISTRY"),
    ] {
        let (status, body) = host.get_json(&format!(
            "/opsml/registry/table?registry_type={registry_type}"
        ));
        assert_eq!(status, 200, "registry/table {registry_type}: {body}");
        assert_eq!(body, json!({"table_name": table}));
    }
}

#[test]
fn register_two_versions_then_list_and_look_them_up() {
    let host = Host::dev();
    let (status, body) = host.get_json("/opsml/healthcheck");
    assert_eq!((status, body), (200, json!({"is_alive": true})));

    // A new card: the client first asks whether its uid exists (it sends the string "None").
    assert!(!uid_exists(&host, "None"));

    let v1 = next_version(&host);
    assert_eq!(v1, "1.0.0");
    let uid1 = random_hex();
    let card1 = data_card(NAME, REPO, &v1, &uid1);
    let (status, body) = create(&host, &card1);
    assert_eq!(
        (status, &body),
        (200, &json!({"registered": true})),
        "create {v1}"
    );

    let v2 = next_version(&host);
    assert_eq!(v2, "1.1.0", "the next minor version after 1.0.0");
    let uid2 = random_hex();
    let card2 = data_card(NAME, REPO, &v2, &uid2);
    let (status, body) = create(&host, &card2);
    assert_eq!(
        (status, &body),
        (200, &json!({"registered": true})),
        "create {v2}"
    );

    // Both, highest version first.
    let cards = list(&host, None);
    assert_eq!(cards.len(), 2, "{cards:#?}");
    assert_row_matches(&cards[0], &card2, "development");
    assert_row_matches(&cards[1], &card1, "development");

    // What `load_card` asks for: the latest one.
    let cards = list(&host, Some(1));
    assert_eq!(cards.len(), 1, "{cards:#?}");
    assert_row_matches(&cards[0], &card2, "development");

    // By uid (the client's `load_card(uid=...)` shape: name and repository null).
    let mut by_uid = list_request("data", None, None, Some(1));
    by_uid["uid"] = json!(uid1);
    let (status, body) = host.post_json("/opsml/cards/list", &by_uid, &[]);
    assert_eq!(status, 200, "{body}");
    let rows = body["cards"].as_array().expect("cards");
    assert_eq!(rows.len(), 1, "{body}");
    assert_row_matches(&rows[0], &card1, "development");

    assert!(uid_exists(&host, &uid1));
    assert!(uid_exists(&host, &uid2));
    assert!(!uid_exists(&host, &random_hex()));
    // Another registry does not see data cards.
    let (status, body) = host.post_json(
        "/opsml/cards/uid",
        &json!({"uid": uid1, "registry_type": "model"}),
        &[],
    );
    assert_eq!((status, body), (200, json!({"uid_exists": false})));

    let (status, body) = host.get_json("/opsml/cards/repositories?registry_type=data");
    assert_eq!((status, body), (200, json!({"repositories": [REPO]})));
    let (status, body) =
        host.get_json("/opsml/cards/names?registry_type=data&repository=test-repo");
    assert_eq!((status, body), (200, json!({"names": [NAME]})));
    let (status, body) = host.get_json("/opsml/cards/repositories?registry_type=model");
    assert_eq!((status, body), (200, json!({"repositories": []})));
}

#[test]
fn the_same_name_repository_and_version_cannot_be_registered_twice() {
    let host = Host::dev();
    let v = next_version(&host);
    assert_eq!(v, "1.0.0");
    let first = data_card(NAME, REPO, &v, &random_hex());
    let (status, body) = create(&host, &first);
    assert_eq!((status, &body), (200, &json!({"registered": true})));

    // Same (name, repository, version), a fresh uid: a conflict, and nothing is written.
    let second_uid = random_hex();
    let second = data_card(NAME, REPO, &v, &second_uid);
    let (status, body) = create(&host, &second);
    assert_eq!(status, 409, "duplicate version: {body}");
    assert!(!detail(&body).is_empty(), "{body}");
    assert!(!uid_exists(&host, &second_uid));
    let cards = list(&host, None);
    assert_eq!(cards.len(), 1, "{cards:#?}");
    assert_row_matches(&cards[0], &first, "development");

    // The next version is still allocated past it.
    assert_eq!(next_version(&host), "1.1.0");
}

#[test]
fn cards_survive_a_restart() {
    let mut host = Host::dev();
    let v = next_version(&host);
    let card = data_card(NAME, REPO, &v, &random_hex());
    let (status, body) = create(&host, &card);
    assert_eq!(status, 200, "{body}");
    let (port, old_pid) = (host.port(), host.pid());

    host.restart();
    assert_ne!(host.pid(), old_pid, "a new process");
    // The old process is gone, so whatever answers on the port now is the new one.
    let old_pid = old_pid.expect("the host was running") as libc::pid_t;
    // SAFETY: `kill` with signal 0 only checks that the process exists.
    let alive = unsafe { libc::kill(old_pid, 0) } == 0;
    assert!(!alive, "the old process {old_pid} still runs");
    assert_eq!(
        host.get_json("/opsml/healthcheck").0,
        200,
        "served on port {port}"
    );
    let cards = list(&host, None);
    assert_eq!(cards.len(), 1, "{cards:#?}");
    assert_row_matches(&cards[0], &card, "development");
    assert_eq!(next_version(&host), "1.1.0");
}
