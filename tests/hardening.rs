//! Nothing lost, nothing let in: concurrent registrations of one name, a host killed in the
//! middle of a large upload, size limits, and bad input answered with a 4xx that writes nothing.

use e2e::harness::{
    blake3_of, create_request, data_card, detail, pseudo_random, version_request, with_query, Host,
    Multipart,
};
use e2e::http::{self, Body, Timeouts};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

#[test]
fn thirty_two_clients_registering_one_name_never_share_a_version() {
    let host = Host::dev();
    let addr = host.addr();
    let outcomes: Vec<(u16, u16, String)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..32)
            .map(|i| {
                scope.spawn(move || {
                    let post = |path: &str, body: &Value| {
                        let bytes = serde_json::to_vec(body).unwrap();
                        let response = http::send(
                            addr,
                            "POST",
                            path,
                            &[("Content-Type", "application/json")],
                            Some(Body::bytes(&bytes)),
                            Timeouts::default(),
                        )
                        .expect("a response");
                        let status = response.status;
                        let body: Value = serde_json::from_reader(response).expect("JSON");
                        (status, body)
                    };
                    let (status, body) = post(
                        "/opsml/cards/version",
                        &version_request("data", "race", "team", "minor"),
                    );
                    assert_eq!(status, 200, "{body}");
                    let version = body["version"].as_str().unwrap().to_string();
                    let card = data_card("race", "team", &version, &format!("uid-{i}"));
                    let (created, body) =
                        post("/opsml/cards/create", &create_request("data", card));
                    if created != 200 {
                        assert!(!detail(&body).is_empty(), "{body}");
                    }
                    (status, created, version)
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    let registered: Vec<&String> = outcomes
        .iter()
        .filter(|(_, created, _)| *created == 200)
        .map(|(_, _, v)| v)
        .collect();
    for (_, created, version) in &outcomes {
        assert!(
            *created == 200 || *created == 409,
            "create {version}: {created} (only 200 or 409 are acceptable)"
        );
    }
    assert!(!registered.is_empty(), "at least one registration succeeds");
    let (status, body) = host.post_json(
        "/opsml/cards/list",
        &json!({"registry_type": "data", "name": "race", "repository": "team"}),
        &[],
    );
    assert_eq!(status, 200);
    let listed: Vec<&str> = body["cards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["version"].as_str().unwrap())
        .collect();
    let distinct: BTreeSet<&str> = listed.iter().copied().collect();
    assert_eq!(
        distinct.len(),
        listed.len(),
        "two cards share a version: {listed:?}"
    );
    assert_eq!(
        listed.len(),
        registered.len(),
        "every 200 is a stored card: {listed:?}"
    );
}

#[test]
fn a_host_killed_mid_upload_leaves_nothing_visible_and_a_retry_succeeds() {
    let mut host = Host::start(&[("OPSML_UPLOAD_STALE_SECONDS", "1")]);
    let path = "opsml-root:/OPSML_MODEL_REGISTRY/team/big/v1.0.0/model.bin";
    let len: u64 = 512 << 20;
    let addr = host.addr();
    let uploader = std::thread::spawn(move || {
        let multipart = Multipart::new("model.bin");
        let content_type = multipart.content_type();
        let body_len = multipart.body_len(len);
        // The host dies under this request: any error or a missing response is expected.
        let _ = http::send(
            addr,
            "POST",
            "/opsml/files/upload",
            &[("write_path", path), ("Content-Type", &content_type)],
            Some(Body::new(multipart.body(pseudo_random(7, len)), body_len)),
            Timeouts::default(),
        );
    });
    // Kill once a good part of the file is stored, before the end.
    let deadline = Instant::now() + Duration::from_secs(120);
    while host.stored_bytes() < 96 << 20 {
        assert!(Instant::now() < deadline, "the upload never got going");
        std::thread::sleep(Duration::from_millis(20));
    }
    host.stop(); // SIGKILL
    uploader.join().unwrap();
    let orphaned = host.stored_bytes();
    assert!(
        (96 << 20..len).contains(&orphaned),
        "killed mid-way: {orphaned} bytes stored"
    );
    // On S3: the multipart upload the dead host left open.
    let dead_uploads = host
        .storage()
        .map(|s| s.recorded_uploads())
        .unwrap_or_default();

    host.restart();
    assert_eq!(host.files_exists(path).1, json!({"exists": false}));
    assert_eq!(
        host.files_list("opsml-root:/OPSML_MODEL_REGISTRY").1,
        json!({"files": []})
    );
    let (status, _, _) = host.download(path);
    assert_eq!(status, 404);

    // The dead upload is older than upload_stale_seconds: the next upload collects it.
    std::thread::sleep(Duration::from_millis(2100));
    let (status, body) = host.upload(path, pseudo_random(8, len), len, &[]);
    assert_eq!(status, 200, "{body}");
    assert_eq!(host.stored_bytes(), len, "only the new file's bytes remain");
    if let Some(storage) = host.storage() {
        assert_eq!(dead_uploads.len(), 1, "{dead_uploads:?}");
        assert_eq!(
            storage.part_bytes(&dead_uploads),
            0,
            "the dead upload was aborted"
        );
        assert_eq!(storage.objects().len(), 1);
        assert!(storage.recorded_uploads().is_empty());
    }
    let download = host.download_hashed(path);
    assert_eq!((download.status, download.len), (200, len));
    assert_eq!(download.blake3, blake3_of(pseudo_random(8, len)).1);
}

#[test]
fn uploads_over_the_size_limit_are_refused_and_store_nothing() {
    let host = Host::start(&[("OPSML_MAX_UPLOAD_BYTES", "100000")]);
    let path = "opsml-root:/OPSML_DATA_REGISTRY/team/d/v1.0.0/data.parquet";
    let (status, body) = host.upload(path, pseudo_random(1, 300_000), 300_000, &[]);
    assert_eq!(status, 413, "{body}");
    assert!(detail(&body).contains("100000-byte upload limit"), "{body}");
    assert_eq!(host.files_exists(path).1, json!({"exists": false}));
    assert_eq!(host.stored_bytes(), 0);
    let (status, body) = host.upload(path, pseudo_random(1, 100_000), 100_000, &[]);
    assert_eq!(status, 200, "exactly the limit is fine: {body}");
}

/// Every case: (what, method, target, headers, body, expected status, text in the detail).
type Case<'a> = (
    &'a str,
    &'a str,
    String,
    Vec<(&'a str, &'a str)>,
    Vec<u8>,
    u16,
    &'a str,
);

fn json_post<'a>(what: &'a str, path: &str, body: &str, status: u16, text: &'a str) -> Case<'a> {
    (
        what,
        "POST",
        path.to_string(),
        vec![("Content-Type", "application/json")],
        body.as_bytes().to_vec(),
        status,
        text,
    )
}

fn multipart<'a>(
    what: &'a str,
    write_path: &'a str,
    body: &str,
    status: u16,
    text: &'a str,
) -> Case<'a> {
    (
        what,
        "POST",
        "/opsml/files/upload".to_string(),
        vec![
            ("write_path", write_path),
            ("Content-Type", "multipart/form-data; boundary=b"),
        ],
        body.as_bytes().to_vec(),
        status,
        text,
    )
}

#[test]
fn bad_input_gets_a_clear_4xx_and_writes_nothing() {
    let host = Host::dev();
    let good_path = "opsml-root:/OPSML_DATA_REGISTRY/team/d/v1.0.0/f.bin";
    let big = vec![b' '; 5 << 20];
    let cases: Vec<Case> = vec![
        json_post(
            "malformed JSON",
            "/opsml/cards/create",
            "{\"card\": ",
            422,
            "invalid request body",
        ),
        json_post(
            "JSON array",
            "/opsml/cards/list",
            "[1, 2]",
            422,
            "invalid request body",
        ),
        json_post(
            "JSON string",
            "/opsml/cards/uid",
            "\"uid\"",
            422,
            "invalid request body",
        ),
        json_post("empty body", "/opsml/cards/version", "", 422, "empty"),
        json_post(
            "wrong field type",
            "/opsml/cards/list",
            r#"{"registry_type":"data","limit":"x"}"#,
            422,
            "limit",
        ),
        json_post(
            "card not an object",
            "/opsml/cards/create",
            r#"{"card":[1],"registry_type":"data"}"#,
            422,
            "card",
        ),
        json_post(
            "unknown registry",
            "/opsml/cards/list",
            r#"{"registry_type":"nope"}"#,
            422,
            "nope",
        ),
        json_post(
            "no registry",
            "/opsml/cards/uid",
            r#"{"uid":"x"}"#,
            422,
            "registry",
        ),
        json_post(
            "invalid card version",
            "/opsml/cards/create",
            r#"{"card":{"name":"n","repository":"r","version":"1.x"},"registry_type":"data"}"#,
            422,
            "SemVer",
        ),
        json_post(
            "unknown card field",
            "/opsml/cards/create",
            r#"{"card":{"name":"n","repository":"r","version":"1.0.0","bogus":1},"registry_type":"data"}"#,
            422,
            "bogus",
        ),
        json_post(
            "invalid supplied version",
            "/opsml/cards/version",
            r#"{"name":"n","repository":"r","version_type":"minor","registry_type":"data","version":{"version":"1.2.x"}}"#,
            422,
            "1.2.x",
        ),
        json_post(
            "invalid version type",
            "/opsml/cards/version",
            r#"{"name":"n","repository":"r","version_type":"MAJOR!","registry_type":"data"}"#,
            422,
            "MAJOR!",
        ),
        json_post(
            "invalid version filter",
            "/opsml/cards/list",
            r#"{"registry_type":"data","version":"1.x"}"#,
            422,
            "version filter",
        ),
        json_post(
            "two filter symbols",
            "/opsml/cards/list",
            r#"{"registry_type":"data","version":"^1.*"}"#,
            422,
            "Only one SemVer character",
        ),
        json_post(
            "bad max_date",
            "/opsml/cards/list",
            r#"{"registry_type":"data","max_date":"2024/01/03"}"#,
            422,
            "YYYY-MM-DD",
        ),
        json_post(
            "unknown query term",
            "/opsml/cards/list",
            r#"{"registry_type":"data","query_terms":{"bogus":1}}"#,
            422,
            "bogus",
        ),
        (
            "oversized JSON body",
            "POST",
            "/opsml/cards/list".into(),
            vec![("Content-Type", "application/json")],
            big,
            413,
            "limit",
        ),
        (
            "upload without write_path",
            "POST",
            "/opsml/files/upload".into(),
            vec![("Content-Type", "multipart/form-data; boundary=b")],
            b"--b--\r\n".to_vec(),
            422,
            "No write path provided",
        ),
        multipart("not multipart", good_path, "x", 400, "multipart/form-data")
            .with_header_override(("Content-Type", "application/octet-stream")),
        multipart(
            "no file part",
            good_path,
            "--b\r\nContent-Disposition: form-data; name=\"other\"\r\n\r\nx\r\n--b--\r\n",
            422,
            "File is missing",
        ),
        multipart(
            "file part without filename",
            good_path,
            "--b\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nx\r\n--b--\r\n",
            422,
            "File is missing",
        ),
        multipart(
            "truncated multipart",
            good_path,
            "--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f.bin\"\r\n\r\nxyz",
            400,
            "ended before its closing boundary",
        ),
        multipart(
            "malformed delimiter",
            good_path,
            "--bXX\r\n",
            400,
            "boundary",
        ),
    ];
    let traversals = [
        "opsml-root:/OPSML_DATA_REGISTRY/../x",
        "opsml-root:/OPSML_DATA_REGISTRY/a/%2e%2e/b",
        "opsml-root:/OPSML_DATA_REGISTRY/a/%2E%2E%2Fb",
        "opsml-root:/OPSML_DATA_REGISTRY/a/./b",
        "opsml-root://etc/passwd",
        "/etc/OPSML_DATA_REGISTRY/x",
        "opsml-root:/OPSML_DATA_REGISTRY\\..\\x",
        "opsml-root:/OPSML_DATA_REGISTRY/a\u{1}b",
        "opsml-root:/UNKNOWN_ROOT/x",
        "s3://bucket/OPSML_DATA_REGISTRY/x",
        "opsml-root:/OPSML_DATA_REGISTRY//x",
    ];
    let file_part = "--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x\"\r\n\r\nx\r\n--b--\r\n";
    let mut all = cases;
    for path in traversals {
        // A control character cannot travel in a header: the HTTP layer refuses the request.
        if !path.chars().any(char::is_control) {
            all.push(multipart(
                "traversal upload",
                path,
                file_part,
                422,
                "not a valid registry path",
            ));
        }
        let query = with_query("/opsml/files/download", &[("path", path)]);
        all.push((
            "traversal download",
            "GET",
            query,
            vec![],
            vec![],
            422,
            "not a valid registry path",
        ));
        let query = with_query("/opsml/files/list", &[("path", path)]);
        all.push((
            "traversal list",
            "GET",
            query,
            vec![],
            vec![],
            422,
            "not a valid registry path",
        ));
    }
    for (what, method, target, headers, body, status, text) in &all {
        let reply = host.request(
            method,
            target,
            headers,
            Some(body).filter(|b| !b.is_empty()).map(Vec::as_slice),
        );
        let json: Value = serde_json::from_slice(&reply.body)
            .unwrap_or_else(|_| panic!("{what}: not JSON: {}", reply.text()));
        assert_eq!(reply.status, *status, "{what} ({target}): {json}");
        assert!(
            detail(&json).contains(text),
            "{what}: detail should mention {text:?}: {json}"
        );
    }
    // Nothing was written by any of them.
    let (_, body) = host.post_json("/opsml/cards/list", &json!({"registry_type": "data"}), &[]);
    assert_eq!(body, json!({"cards": []}));
    assert_eq!(
        host.files_list("opsml-root:/OPSML_DATA_REGISTRY").1,
        json!({"files": []})
    );
    assert_eq!(host.stored_bytes(), 0);
    let (status, body) = host.get_json("/opsml/healthcheck");
    assert_eq!((status, body), (200, json!({"is_alive": true})));
}

trait OverrideHeader<'a> {
    fn with_header_override(self, header: (&'a str, &'a str)) -> Self;
}

impl<'a> OverrideHeader<'a> for Case<'a> {
    fn with_header_override(mut self, (name, value): (&'a str, &'a str)) -> Self {
        self.3.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.3.push((name, value));
        self
    }
}
