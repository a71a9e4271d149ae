//! Scoped API tokens and the audit trail (issue 11): who may do what on which route, tokens
//! refused at once when revoked or expired, bad input refused without a change, repeated
//! failures refused, and an audit trail that matches concurrent writes one for one.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use base64::Engine;
use e2e::harness::{
    create_request, data_card, list_request, pseudo_random, with_query, Host, Reply,
};
use serde_json::{json, Value};

const ADMIN: &str = "e2e-admin-token-0123456789abcdef-0123";
const USER: &str = "ci-user";
const PASSWORD: &str = "ci-password";

fn basic(credentials: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(credentials)
    )
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// A registry with the shared login and the first admin.
fn start(extra: &[(&str, &str)]) -> Host {
    let mut envs = vec![
        ("OPSML_ADMIN_TOKEN", ADMIN),
        ("OPSML_USERNAME", USER),
        ("OPSML_PASSWORD", PASSWORD),
    ];
    envs.extend_from_slice(extra);
    Host::start(&envs)
}

fn auth(header: &str) -> Vec<(&str, &str)> {
    vec![("Authorization", header)]
}

fn post(host: &Host, path: &str, body: &Value, authorization: &str) -> Reply {
    let body = body.to_string();
    host.request(
        "POST",
        path,
        &[
            ("Content-Type", "application/json"),
            ("Authorization", authorization),
        ],
        Some(body.as_bytes()),
    )
}

/// Makes a token as the first admin; returns (id, token).
fn make_token(host: &Host, request: Value) -> (String, String) {
    let reply = post(host, "/opsml/admin/tokens", &request, &bearer(ADMIN));
    assert_eq!(reply.status, 200, "{}", reply.text());
    let body = reply.json();
    (
        body["id"].as_str().unwrap().to_string(),
        body["token"].as_str().unwrap().to_string(),
    )
}

fn revoke(host: &Host, id: &str, authorization: &str) -> Reply {
    host.request(
        "DELETE",
        &format!("/opsml/admin/tokens/{id}"),
        &auth(authorization),
        None,
    )
}

fn file_path(repository: &str, name: &str) -> String {
    format!("opsml-root:/OPSML_DATA_REGISTRY/{repository}/{name}/v1.0.0/data.bin")
}

static UNIQUE: AtomicUsize = AtomicUsize::new(0);

fn unique(prefix: &str) -> String {
    format!("{prefix}{}", UNIQUE.fetch_add(1, Ordering::Relaxed))
}

/// Registers a data card; returns the reply.
fn create_card(host: &Host, repository: &str, authorization: &str) -> Reply {
    let name = unique("card");
    let card = data_card(&name, repository, "1.0.0", &unique("uid-"));
    post(
        host,
        "/opsml/cards/create",
        &create_request("data", card),
        authorization,
    )
}

fn upload(host: &Host, repository: &str, authorization: &str) -> u16 {
    let path = file_path(repository, &unique("file"));
    host.upload(&path, pseudo_random(3, 64), 64, &auth(authorization))
        .0
}

/// The routes of the matrix: each a request made as the given `Authorization`.
type Route = (&'static str, fn(&Host, &str) -> u16);

fn routes() -> Vec<Route> {
    vec![
        ("whoami", |h, a| {
            h.request("GET", "/opsml/admin/whoami", &auth(a), None)
                .status
        }),
        ("list team-a", |h, a| {
            post(
                h,
                "/opsml/cards/list",
                &list_request("data", None, Some("team-a"), None),
                a,
            )
            .status
        }),
        ("list team-b", |h, a| {
            post(
                h,
                "/opsml/cards/list",
                &list_request("data", None, Some("team-b"), None),
                a,
            )
            .status
        }),
        ("create in team-a", |h, a| {
            create_card(h, "team-a", a).status
        }),
        ("create in team-b", |h, a| {
            create_card(h, "team-b", a).status
        }),
        ("upload to team-a", |h, a| upload(h, "team-a", a)),
        ("upload to team-b", |h, a| upload(h, "team-b", a)),
        ("download from team-a", |h, a| {
            let target = with_query(
                "/opsml/files/download",
                &[("path", &file_path("team-a", "seed"))],
            );
            h.request("GET", &target, &auth(a), None).status
        }),
        ("download from team-b", |h, a| {
            let target = with_query(
                "/opsml/files/download",
                &[("path", &file_path("team-b", "seed"))],
            );
            h.request("GET", &target, &auth(a), None).status
        }),
        ("list every repository's files", |h, a| {
            let target = with_query(
                "/opsml/files/list",
                &[("path", "opsml-root:/OPSML_DATA_REGISTRY")],
            );
            h.request("GET", &target, &auth(a), None).status
        }),
        ("record metrics of an unregistered run", |h, a| {
            let body = json!({"metric": [{"run_uid": unique("run-"), "name": "m", "value": 1.0}]});
            h.request(
                "PUT",
                "/opsml/metrics",
                &[("Content-Type", "application/json"), ("Authorization", a)],
                Some(body.to_string().as_bytes()),
            )
            .status
        }),
        ("list tokens", |h, a| {
            h.request("GET", "/opsml/admin/tokens", &auth(a), None)
                .status
        }),
        ("read the audit trail", |h, a| {
            h.request("GET", "/opsml/admin/audit", &auth(a), None)
                .status
        }),
    ]
}

#[test]
fn identities_by_routes_by_status() {
    let host = start(&[("OPSML_MAX_LOGIN_FAILURES", "0")]);
    for repository in ["team-a", "team-b"] {
        let path = file_path(repository, "seed");
        let (status, body) = host.upload(&path, &b"seed"[..], 4, &auth(&bearer(ADMIN)));
        assert_eq!(status, 200, "{body}");
    }
    let token = |scope: &str, repositories: Value| {
        make_token(
            &host,
            json!({"name": format!("{scope} {repositories}"), "scope": scope, "repositories": repositories}),
        )
        .1
    };
    let identities: Vec<(&str, Option<String>)> = vec![
        ("nobody", None),
        ("a wrong password", Some(basic(&format!("{USER}:nope")))),
        (
            "a made-up token",
            Some(bearer(&format!(
                "opsml_{}_{}",
                "0".repeat(16),
                "1".repeat(64)
            ))),
        ),
        ("the login", Some(basic(&format!("{USER}:{PASSWORD}")))),
        ("the admin token", Some(bearer(ADMIN))),
        (
            "read team-a",
            Some(bearer(&token("read", json!(["team-a"])))),
        ),
        (
            "write team-a",
            Some(bearer(&token("write", json!(["Team_A"])))),
        ),
        ("read all", Some(bearer(&token("read", Value::Null)))),
        // As the opsml client sends a token: the Basic password.
        (
            "write all, as Basic",
            Some(basic(&format!("ci:{}", token("write", Value::Null)))),
        ),
        ("admin", Some(bearer(&token("admin", Value::Null)))),
    ];
    // Who gets 200; any other authenticated identity gets 403, the rest 401.
    let allowed: BTreeMap<&str, &[&str]> = BTreeMap::from([
        (
            "whoami",
            &[
                "the login",
                "the admin token",
                "read team-a",
                "write team-a",
                "read all",
                "write all, as Basic",
                "admin",
            ][..],
        ),
        (
            "list team-a",
            &[
                "the login",
                "the admin token",
                "read team-a",
                "write team-a",
                "read all",
                "write all, as Basic",
                "admin",
            ][..],
        ),
        (
            "list team-b",
            &[
                "the login",
                "the admin token",
                "read all",
                "write all, as Basic",
                "admin",
            ][..],
        ),
        (
            "create in team-a",
            &[
                "the login",
                "the admin token",
                "write team-a",
                "write all, as Basic",
                "admin",
            ][..],
        ),
        (
            "create in team-b",
            &[
                "the login",
                "the admin token",
                "write all, as Basic",
                "admin",
            ][..],
        ),
        (
            "upload to team-a",
            &[
                "the login",
                "the admin token",
                "write team-a",
                "write all, as Basic",
                "admin",
            ][..],
        ),
        (
            "upload to team-b",
            &[
                "the login",
                "the admin token",
                "write all, as Basic",
                "admin",
            ][..],
        ),
        (
            "download from team-a",
            &[
                "the login",
                "the admin token",
                "read team-a",
                "write team-a",
                "read all",
                "write all, as Basic",
                "admin",
            ][..],
        ),
        (
            "download from team-b",
            &[
                "the login",
                "the admin token",
                "read all",
                "write all, as Basic",
                "admin",
            ][..],
        ),
        (
            "list every repository's files",
            &[
                "the login",
                "the admin token",
                "read all",
                "write all, as Basic",
                "admin",
            ][..],
        ),
        (
            "record metrics of an unregistered run",
            &[
                "the login",
                "the admin token",
                "write team-a",
                "write all, as Basic",
                "admin",
            ][..],
        ),
        ("list tokens", &["the admin token", "admin"][..]),
        ("read the audit trail", &["the admin token", "admin"][..]),
    ]);
    let authenticated =
        |who: &str| !matches!(who, "nobody" | "a wrong password" | "a made-up token");
    let mut wrong = Vec::new();
    for (route, request) in routes() {
        for (who, header) in &identities {
            let status = request(&host, header.as_deref().unwrap_or(""));
            let expected = if allowed[route].contains(who) {
                200
            } else if authenticated(who) {
                403
            } else {
                401
            };
            if status != expected {
                wrong.push(format!("{who} on {route}: {status}, expected {expected}"));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));

    // A listing without a repository shows a limited token only its repositories.
    let team_a_reader = identities[5].1.clone().unwrap();
    let listed = post(
        &host,
        "/opsml/cards/list",
        &list_request("data", None, None, None),
        &team_a_reader,
    )
    .json();
    let repositories: Vec<&str> = listed["cards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["repository"].as_str().unwrap())
        .collect();
    assert!(
        !repositories.is_empty() && repositories.iter().all(|r| *r == "team-a"),
        "{repositories:?}"
    );
    let reply = host.request(
        "GET",
        "/opsml/cards/repositories?registry_type=data",
        &auth(&team_a_reader),
        None,
    );
    assert_eq!(reply.json()["repositories"], json!(["team-a"]));
    let refused = post(
        &host,
        "/opsml/cards/list",
        &list_request("data", None, Some("team-b"), None),
        &team_a_reader,
    );
    let detail = refused.json()["detail"].as_str().unwrap().to_string();
    assert!(
        detail.contains("may not read in repository team-b"),
        "{detail}"
    );
    let whoami = host
        .request("GET", "/opsml/admin/whoami", &auth(&team_a_reader), None)
        .json();
    assert_eq!(whoami["scope"], "read");
    assert_eq!(whoami["repositories"], json!(["team-a"]));
}

#[test]
fn revoked_and_expired_tokens_are_refused_at_once() {
    let host = start(&[]);
    let (id, token) = make_token(&host, json!({"name": "ci", "scope": "read"}));
    let made = post(
        &host,
        "/opsml/admin/tokens",
        &json!({"name": "short", "scope": "read", "expires_in_seconds": 5}),
        &bearer(ADMIN),
    );
    assert_eq!(made.status, 200, "{}", made.text());
    let short_lived = made.json()["token"].as_str().unwrap().to_string();
    // Expiry is in whole seconds since the epoch, on the clock this test shares with the host.
    let expires_at = made.json()["expires_at"].as_i64().unwrap() as f64;
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64()
    };
    let whoami =
        |token: &str| host.request("GET", "/opsml/admin/whoami", &auth(&bearer(token)), None);
    assert_eq!(whoami(&token).status, 200);
    let before_expiry = whoami(&short_lived);
    assert!(
        now() < expires_at,
        "the first check ended after the token expired: it proves nothing"
    );
    assert_eq!(before_expiry.status, 200);

    // Only an admin revokes.
    assert_eq!(revoke(&host, &id, &bearer(&token)).status, 403);
    let revoked = revoke(&host, &id, &bearer(ADMIN));
    assert_eq!(revoked.status, 200, "{}", revoked.text());
    let first = revoked.json()["token"]["revoked_at"].clone();
    let refused = whoami(&token);
    assert_eq!(refused.status, 401);
    assert_eq!(refused.headers.get("www-authenticate"), Some("Basic"));
    assert!(refused.text().contains("revoked"), "{}", refused.text());
    // Revoking again changes nothing; an unknown id is a 404.
    let again = revoke(&host, &id, &bearer(ADMIN)).json();
    assert_eq!(again["token"]["revoked_at"], first);
    assert_eq!(
        revoke(&host, "0123456789abcdef", &bearer(ADMIN)).status,
        404
    );

    // Wait for the refusal: never before the expiry, and at once after it.
    let expired = loop {
        let asked = now();
        let reply = whoami(&short_lived);
        let answered = now();
        if reply.status != 200 {
            assert!(answered >= expires_at, "refused before its expiry");
            break reply;
        }
        assert!(
            asked < expires_at + 1.0,
            "still accepted a second after its expiry"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert_eq!(expired.status, 401);
    assert!(expired.text().contains("expired"), "{}", expired.text());

    // The listing shows both, never a secret.
    let listed = host.request("GET", "/opsml/admin/tokens", &auth(&bearer(ADMIN)), None);
    let text = listed.text();
    assert!(
        !text.contains(&token) && !text.contains(&short_lived[20..]),
        "{text}"
    );
    let tokens = listed.json()["tokens"].as_array().unwrap().clone();
    assert_eq!(tokens.len(), 2);
    assert!(tokens
        .iter()
        .all(|t| t.get("hash").is_none() && t.get("token").is_none()));
}

#[test]
fn bad_input_gets_a_clear_4xx_and_changes_nothing() {
    let host = start(&[("OPSML_MAX_LOGIN_FAILURES", "0")]);
    let admin = bearer(ADMIN);
    for (request, expected) in [
        (
            json!({"name": "x", "scope": "owner"}),
            "unknown scope \"owner\"",
        ),
        (
            json!({"name": "x", "scope": "read", "repositories": []}),
            "an empty list",
        ),
        (json!({"name": " ", "scope": "read"}), "name:"),
        (
            json!({"name": "x", "scope": "read", "expires_in_days": 0}),
            "expires_in_days",
        ),
        (
            json!({"name": "x", "scope": "read", "expires_in_days": 1, "expires_in_seconds": 5}),
            "not both",
        ),
        (
            json!({"name": "x", "scope": "read", "admin": true}),
            "unknown field",
        ),
    ] {
        let reply = post(&host, "/opsml/admin/tokens", &request, &admin);
        assert_eq!(reply.status, 422, "{request}: {}", reply.text());
        let detail = reply.json()["detail"].as_str().unwrap().to_string();
        assert!(detail.contains(expected), "{request}: {detail}");
    }
    for header in [
        "Basic !!!",
        "Bearer ",
        "Bearer opsml_short",
        &basic("no-colon"),
    ] {
        let reply = host.request("GET", "/opsml/admin/whoami", &auth(header), None);
        assert_eq!(reply.status, 401, "{header}: {}", reply.text());
    }
    let reply = host.request(
        "GET",
        "/opsml/admin/audit?since=yesterday",
        &auth(&admin),
        None,
    );
    assert_eq!(reply.status, 422, "{}", reply.text());
    let listed = host
        .request("GET", "/opsml/admin/tokens", &auth(&admin), None)
        .json();
    assert_eq!(listed["tokens"], json!([]));
    let audit = host
        .request("GET", "/opsml/admin/audit", &auth(&admin), None)
        .json();
    assert_eq!(audit["records"], json!([]));
}

#[test]
fn repeated_failures_from_one_address_are_refused() {
    let host = start(&[("OPSML_MAX_LOGIN_FAILURES", "3")]);
    let whoami = |header: &str| host.request("GET", "/opsml/admin/whoami", &auth(header), None);
    let right = basic(&format!("{USER}:{PASSWORD}"));
    let wrong = basic(&format!("{USER}:guess"));
    assert_eq!(whoami(&right).status, 200);
    // Asking without credentials is not a guess.
    for _ in 0..5 {
        assert_eq!(host.get("/opsml/admin/whoami").status, 401);
    }
    assert_eq!(whoami(&wrong).status, 401);
    assert_eq!(whoami(&wrong).status, 401);
    let third = whoami(&wrong);
    assert_eq!(third.status, 429, "{}", third.text());
    let retry_after: i64 = third.headers.get("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    // Even the right login waits for the window to end.
    let locked = whoami(&right);
    assert_eq!(locked.status, 429);
    assert!(
        locked.text().contains("Too many failed logins"),
        "{}",
        locked.text()
    );
}

#[test]
fn in_production_a_token_write_also_needs_the_prod_token() {
    let host = start(&[
        ("APP_ENV", "production"),
        ("OPSML_PROD_TOKEN", "prod-token"),
    ]);
    let request = json!({"name": "ci", "scope": "write"});
    let reply = post(&host, "/opsml/admin/tokens", &request, &bearer(ADMIN));
    assert_eq!(
        reply.status,
        401,
        "a token change is a write: {}",
        reply.text()
    );
    let body = request.to_string();
    let reply = host.request(
        "POST",
        "/opsml/admin/tokens",
        &[
            ("Content-Type", "application/json"),
            ("Authorization", &bearer(ADMIN)),
            ("X-Prod-Token", "prod-token"),
        ],
        Some(body.as_bytes()),
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    let token = bearer(reply.json()["token"].as_str().unwrap());
    let path = file_path("team-a", "prod");
    let (status, _) = host.upload(&path, &b"x"[..], 1, &auth(&token));
    assert_eq!(status, 401);
    let (status, body) = host.upload(
        &path,
        &b"x"[..],
        1,
        &[("Authorization", &token), ("X-Prod-Token", "prod-token")],
    );
    assert_eq!(status, 200, "{body}");
}

/// What one writer did, to compare with the audit trail.
#[derive(Default)]
struct Done {
    cards: Vec<String>,
    files: Vec<String>,
    runs: Vec<String>,
}

#[test]
fn the_audit_trail_matches_concurrent_writes_exactly() {
    const WRITERS: usize = 6;
    const ROUNDS: usize = 8;
    let host = start(&[]);
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 1;
    let writers: Vec<(String, String)> = (0..WRITERS)
        .map(|i| {
            let (id, token) = make_token(
                &host,
                json!({"name": format!("writer {i}"), "scope": "write", "repositories": [format!("audit-{i}")]}),
            );
            (format!("token:{id}"), bearer(&token))
        })
        .collect();
    let done: Vec<Done> = std::thread::scope(|scope| {
        let handles: Vec<_> = writers
            .iter()
            .enumerate()
            .map(|(i, (_, header))| {
                let host = &host;
                scope.spawn(move || {
                    let repository = format!("audit-{i}");
                    let mut done = Done::default();
                    for round in 0..ROUNDS {
                        let uid = format!("audit-{i}-{round}");
                        let card = data_card(&format!("m{round}"), &repository, "1.0.0", &uid);
                        let reply = post(
                            host,
                            "/opsml/cards/create",
                            &create_request("data", card.clone()),
                            header,
                        );
                        assert_eq!(reply.status, 200, "{}", reply.text());
                        done.cards.push(uid);
                        // The same version again fails, and leaves no record.
                        let again = post(
                            host,
                            "/opsml/cards/create",
                            &create_request("data", card),
                            header,
                        );
                        assert_eq!(again.status, 409, "{}", again.text());
                        let path = file_path(&repository, &format!("m{round}"));
                        let (status, body) = host.upload(
                            &path,
                            pseudo_random(round as u64, 5000),
                            5000,
                            &auth(header),
                        );
                        assert_eq!(status, 200, "{body}");
                        done.files
                            .push(path.trim_start_matches("opsml-root:/").to_string());
                        let run = format!("run-{i}-{round}");
                        let metrics = json!({"metric": [
                            {"run_uid": run, "name": "loss", "value": 0.5, "step": 1},
                            {"run_uid": run, "name": "loss", "value": 0.4, "step": 2},
                        ]});
                        let reply = host.request(
                            "PUT",
                            "/opsml/metrics",
                            &[
                                ("Content-Type", "application/json"),
                                ("Authorization", header),
                            ],
                            Some(metrics.to_string().as_bytes()),
                        );
                        assert_eq!(reply.status, 200, "{}", reply.text());
                        done.runs.push(run);
                    }
                    done
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });

    let read = |query: &[(&str, &str)]| {
        let reply = host.request(
            "GET",
            &with_query("/opsml/admin/audit", query),
            &auth(&bearer(ADMIN)),
            None,
        );
        assert_eq!(reply.status, 200, "{}", reply.text());
        reply.json()["records"].as_array().unwrap().clone()
    };
    let all = read(&[("limit", "10000")]);
    let token_creations = all.iter().filter(|r| r["action"] == "token.create").count();
    assert_eq!(token_creations, WRITERS);
    assert!(all.iter().all(|r| r["identity"] != "anonymous"));
    for (i, ((identity, _), done)) in writers.iter().zip(&done).enumerate() {
        let mine = read(&[("identity", identity), ("limit", "10000")]);
        let targets = |action: &str| {
            let mut t: Vec<String> = mine
                .iter()
                .filter(|r| r["action"] == action)
                .map(|r| r["target"].as_str().unwrap().to_string())
                .collect();
            t.sort();
            t
        };
        let sorted = |v: &[String]| {
            let mut v = v.to_vec();
            v.sort();
            v
        };
        assert_eq!(targets("card.create"), sorted(&done.cards), "writer {i}");
        assert_eq!(targets("file.upload"), sorted(&done.files), "writer {i}");
        assert_eq!(targets("metrics.insert"), sorted(&done.runs), "writer {i}");
        assert_eq!(
            mine.len(),
            3 * ROUNDS,
            "writer {i}: nothing else, nothing twice"
        );
        let repository = format!("audit-{i}");
        assert!(mine
            .iter()
            .all(|r| r["request_id"].as_str().is_some_and(|id| id.len() == 32)));
        let cards: Vec<&Value> = mine
            .iter()
            .filter(|r| r["action"] == "card.create")
            .collect();
        assert!(cards
            .iter()
            .all(|r| r["repository"] == repository.as_str() && r["version"] == "1.0.0"));
        // Filtered by repository: the same card and file records.
        let by_repository = read(&[("repository", &repository), ("limit", "10000")]);
        assert_eq!(by_repository.len(), 2 * ROUNDS, "writer {i}");
    }
    // Newest first, and bounded by time.
    let ats: Vec<i64> = all.iter().map(|r| r["at"].as_i64().unwrap()).collect();
    assert!(ats.windows(2).all(|w| w[0] >= w[1]));
    let since = since.to_string();
    assert_eq!(
        read(&[("since", &since), ("limit", "10000")]).len(),
        all.len()
    );
    assert!(read(&[("until", &since)]).is_empty());
    assert_eq!(read(&[("limit", "5")]).len(), 5);
}

#[test]
fn every_kind_of_write_leaves_its_record() {
    let host = start(&[]);
    let (id, token) = make_token(
        &host,
        json!({"name": "team", "scope": "write", "repositories": ["team"]}),
    );
    let writer = bearer(&token);
    let call = |path: &str, body: Value| {
        let reply = post(&host, path, &body, &writer);
        assert_eq!(reply.status, 200, "{path}: {}", reply.text());
    };
    let card = json!({"name": "clf", "repository": "team", "version": "1.0.0", "uid": "w1"});
    call("/opsml/cards/create", create_request("model", card.clone()));
    let mut changed = card.clone();
    changed["tags"] = json!({"stage": "reviewed"});
    call("/opsml/cards/update", create_request("model", changed));
    let dir = "opsml-root:/OPSML_MODEL_REGISTRY/team/clf/v1.0.0";
    let model_uri = format!("{dir}/model.joblib");
    let (status, _) = host.upload(&model_uri, &b"weights"[..], 7, &auth(&writer));
    assert_eq!(status, 200);
    let metadata = json!({"model_name": "clf", "model_version": "1.0.0", "model_repository": "team",
                          "model_uri": model_uri, "onnx_uri": null});
    let bytes = serde_json::to_vec(&metadata).unwrap();
    let (status, _) = host.upload(
        &format!("{dir}/model-metadata.json"),
        bytes.as_slice(),
        bytes.len() as u64,
        &auth(&writer),
    );
    assert_eq!(status, 200);
    call(
        "/opsml/models/register",
        json!({"name": "clf", "repository": "team", "version": "1", "onnx": false}),
    );
    let target = with_query("/opsml/files/delete", &[("path", dir)]);
    let reply = host.request("GET", &target, &auth(&writer), None);
    assert_eq!(reply.status, 200, "{}", reply.text());
    call("/opsml/cards/delete", create_request("model", card));
    // Deleting what is already gone writes nothing, so records nothing.
    call(
        "/opsml/cards/delete",
        create_request("model", json!({"uid": "w1"})),
    );

    let records = host
        .request(
            "GET",
            &with_query(
                "/opsml/admin/audit",
                &[("identity", &format!("token:{id}"))],
            ),
            &auth(&bearer(ADMIN)),
            None,
        )
        .json()["records"]
        .as_array()
        .unwrap()
        .clone();
    let mut seen: Vec<(String, String)> = records
        .iter()
        .rev()
        .map(|r| {
            (
                r["action"].as_str().unwrap().to_string(),
                r["target"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let registered = "model_registry/team/clf/v1";
    let expected: Vec<(String, String)> = [
        ("card.create", "w1"),
        ("card.update", "w1"),
        (
            "file.upload",
            "OPSML_MODEL_REGISTRY/team/clf/v1.0.0/model.joblib",
        ),
        (
            "file.upload",
            "OPSML_MODEL_REGISTRY/team/clf/v1.0.0/model-metadata.json",
        ),
        ("model.register", &format!("{registered}/model.joblib")),
        (
            "model.register",
            &format!("{registered}/model-settings.json"),
        ),
        (
            "file.delete",
            "OPSML_MODEL_REGISTRY/team/clf/v1.0.0/model-metadata.json",
        ),
        (
            "file.delete",
            "OPSML_MODEL_REGISTRY/team/clf/v1.0.0/model.joblib",
        ),
        ("card.delete", "w1"),
    ]
    .iter()
    .map(|(a, t)| (a.to_string(), t.to_string()))
    .collect();
    // Records of one request share its time order only up to the microsecond.
    seen.sort();
    let mut sorted = expected.clone();
    sorted.sort();
    assert_eq!(seen, sorted);
    for record in &records {
        assert_eq!(record["repository"], "team", "{record}");
        assert_eq!(record["name"], "clf", "{record}");
        assert_eq!(record["registry"], "model", "{record}");
    }
    let update = records
        .iter()
        .find(|r| r["action"] == "card.update")
        .unwrap();
    assert_eq!(update["version"], "1.0.0");
}
