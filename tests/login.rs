//! The login (opsml 2.2.4 parity): with `OPSML_USERNAME` and `OPSML_PASSWORD` set, every route
//! of every component needs those HTTP Basic credentials, and anything else is a 401 with
//! `WWW-Authenticate: Basic` that reads no body and changes nothing; unset, nothing changes;
//! half set, every route fails closed; in production a write needs the prod token as well.

use base64::Engine;
use e2e::harness::{pseudo_random, version_request, with_query, Host};
use serde_json::json;

const USER: &str = "ci-user";
const PASSWORD: &str = "pa:ss word";
const PATH: &str = "opsml-root:/OPSML_MODEL_REGISTRY/login-repo/m/v1.0.0/model.bin";

fn basic(credentials: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(credentials)
    )
}

/// What [`each_route`]'s requests get when let in (no model has metrics: a 404 from `models`).
const LET_IN: [(&str, u16); 8] = [
    ("get-card", 200),
    ("create-card", 200),
    ("upload", 200),
    ("download", 200),
    ("metrics", 200),
    ("models", 404),
    ("admin", 200),
    ("ui", 200),
];

/// One request per component, as the client makes them.
fn each_route(host: &Host, auth: &[(&str, &str)]) -> Vec<(&'static str, u16, String)> {
    let reply = |name, r: e2e::harness::Reply| (name, r.status, r.text());
    let post = |path: &str, body: serde_json::Value| {
        let body = body.to_string();
        let mut headers = vec![("Content-Type", "application/json")];
        headers.extend_from_slice(auth);
        host.request("POST", path, &headers, Some(body.as_bytes()))
    };
    let bytes = pseudo_random(7, 1000);
    let (upload_status, upload_body) = host.upload(PATH, bytes, 1000, auth);
    vec![
        reply(
            "get-card",
            host.request("GET", "/opsml/healthcheck", auth, None),
        ),
        reply(
            "create-card",
            post(
                "/opsml/cards/version",
                version_request("model", "m", "login-repo", "minor"),
            ),
        ),
        ("upload", upload_status, upload_body.to_string()),
        reply(
            "download",
            host.request(
                "GET",
                &with_query("/opsml/files/download", &[("path", PATH)]),
                auth,
                None,
            ),
        ),
        reply(
            "metrics",
            post("/opsml/metrics", json!({"run_uid": "none", "name": null})),
        ),
        reply(
            "models",
            post("/opsml/models/metrics", json!({"uid": "none"})),
        ),
        reply(
            "admin",
            host.request("GET", "/opsml/admin/whoami", auth, None),
        ),
        reply("ui", host.request("GET", "/opsml/models/list/", auth, None)),
    ]
}

#[test]
fn with_a_login_every_route_needs_it() {
    // Failures are not limited here: each route gets every wrong identity.
    let host = Host::start(&[
        ("OPSML_USERNAME", USER),
        ("OPSML_PASSWORD", PASSWORD),
        ("OPSML_MAX_LOGIN_FAILURES", "0"),
    ]);
    let refused: [(&str, Option<String>); 6] = [
        ("no header", None),
        ("wrong password", Some(basic(&format!("{USER}:nope")))),
        ("wrong user", Some(basic(&format!("someone:{PASSWORD}")))),
        ("a bearer token", Some("Bearer abc".to_string())),
        ("not base64", Some("Basic !!!".to_string())),
        ("no colon", Some(basic("ci-user"))),
    ];
    for (identity, header) in &refused {
        let auth: Vec<(&str, &str)> = header
            .iter()
            .map(|h| ("Authorization", h.as_str()))
            .collect();
        for (component, status, body) in each_route(&host, &auth) {
            assert_eq!(status, 401, "{identity} on {component}: {body}");
            let detail = serde_json::from_str::<serde_json::Value>(&body).unwrap()["detail"]
                .as_str()
                .unwrap()
                .to_string();
            assert!(
                detail.contains("authenticat") || detail.contains("Incorrect username"),
                "{identity} on {component}: {detail}"
            );
            assert!(!detail.contains(PASSWORD), "{detail}");
        }
        let reply = host.request("GET", "/opsml/healthcheck", &auth, None);
        assert_eq!(
            reply.headers.get("www-authenticate"),
            Some("Basic"),
            "{identity}"
        );
    }

    let right = basic(&format!("{USER}:{PASSWORD}"));
    let auth = [("Authorization", right.as_str())];
    // Nothing the refused uploads sent was stored.
    let reply = host.request(
        "GET",
        &with_query("/opsml/files/exists", &[("path", PATH)]),
        &auth,
        None,
    );
    assert_eq!(
        (reply.status, reply.json()),
        (200, json!({"exists": false}))
    );
    let statuses: Vec<(&str, u16)> = each_route(&host, &auth)
        .into_iter()
        .map(|(component, status, _)| (component, status))
        .collect();
    assert_eq!(statuses, LET_IN);
}

#[test]
fn without_a_login_nothing_changes_and_half_a_login_refuses_everything() {
    let host = Host::start(&[]);
    let statuses: Vec<(&str, u16)> = each_route(&host, &[])
        .into_iter()
        .map(|(component, status, _)| (component, status))
        .collect();
    assert_eq!(statuses, LET_IN);
    for half in [("OPSML_USERNAME", USER), ("OPSML_PASSWORD", PASSWORD)] {
        let host = Host::start(&[half]);
        let right = basic(&format!("{USER}:{PASSWORD}"));
        for (component, status, body) in each_route(&host, &[("Authorization", &right)]) {
            assert_eq!(status, 500, "{half:?} {component}: {body}");
            assert!(body.contains("OPSML_USERNAME and OPSML_PASSWORD"), "{body}");
        }
    }
}

#[test]
fn in_production_a_write_needs_the_login_and_the_prod_token() {
    let host = Host::start(&[
        ("APP_ENV", "production"),
        ("OPSML_PROD_TOKEN", "prod-token"),
        ("OPSML_USERNAME", USER),
        ("OPSML_PASSWORD", PASSWORD),
    ]);
    let right = basic(&format!("{USER}:{PASSWORD}"));
    let bytes = || pseudo_random(8, 100);
    let (status, body) = host.upload(PATH, bytes(), 100, &[("X-Prod-Token", "prod-token")]);
    assert_eq!(status, 401, "the token without the login: {body}");
    let (status, body) = host.upload(PATH, bytes(), 100, &[("Authorization", &right)]);
    assert_eq!(status, 401, "the login without the token: {body}");
    assert!(
        body["detail"].as_str().unwrap().contains("X-Prod-Token"),
        "{body}"
    );
    let (status, body) = host.upload(
        PATH,
        bytes(),
        100,
        &[("Authorization", &right), ("X-Prod-Token", "prod-token")],
    );
    assert_eq!(status, 200, "both: {body}");
}
