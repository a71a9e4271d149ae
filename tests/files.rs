//! Files: streamed multipart uploads, listing, existence, downloads with an `ETag`, and the
//! refusals (paths outside a registry, missing `write_path`, truncated bodies, missing files).

use e2e::harness::{blake3_of, detail, pseudo_random, with_query, Host, Multipart};
use serde_json::{json, Value};
use std::io::Read;

const MODEL_ROOT: &str = "opsml-root:/OPSML_MODEL_REGISTRY";

fn files(host: &Host, path: &str) -> Vec<String> {
    let (status, body) = host.files_list(path);
    assert_eq!(status, 200, "files/list {path}: {body}");
    body["files"]
        .as_array()
        .unwrap_or_else(|| panic!("files/list {path}: expected {{\"files\": [...]}}, got {body}"))
        .iter()
        .map(|f| f.as_str().expect("paths are strings").to_string())
        .collect()
}

fn exists(host: &Host, path: &str) -> bool {
    let (status, body) = host.files_exists(path);
    assert_eq!(status, 200, "files/exists {path}: {body}");
    assert_eq!(
        body.as_object().map(|o| o.len()),
        Some(1),
        "files/exists: {body}"
    );
    body["exists"]
        .as_bool()
        .unwrap_or_else(|| panic!("files/exists {path}: expected {{\"exists\": bool}}, got {body}"))
}

fn upload_ok(host: &Host, path: &str, bytes: &[u8]) {
    let (status, body) = host.upload(path, bytes, bytes.len() as u64, &[]);
    assert_eq!(status, 200, "upload {path}: {body}");
    assert!(body["storage_uri"].is_string(), "upload {path}: {body}");
}

#[test]
fn a_64_mib_file_goes_up_in_one_stream_and_comes_back_identical() {
    const LEN: u64 = 64 << 20;
    const SEED: u64 = 0x0b5e_55ed;
    let host = Host::dev();
    let dir = format!("{MODEL_ROOT}/test-repo/big/v1.0.0");
    let path = format!("{dir}/model.bin");

    let (status, body) = host.upload(&path, pseudo_random(SEED, LEN), LEN, &[]);
    assert_eq!(status, 200, "upload: {body}");
    assert!(
        body["storage_uri"].is_string(),
        "upload: non-null storage_uri: {body}"
    );

    assert!(exists(&host, &path));
    assert_eq!(files(&host, &dir), vec![path.clone()]);
    // A file path lists itself, as in the reference.
    assert_eq!(files(&host, &path), vec![path.clone()]);

    let (sent_len, sent) = blake3_of(pseudo_random(SEED, LEN));
    assert_eq!(sent_len, LEN);
    let got = host.download_hashed(&path);
    assert_eq!(
        got.status,
        200,
        "download: {}",
        String::from_utf8_lossy(&got.prefix)
    );
    assert_eq!(
        got.headers.get("content-length"),
        Some("67108864"),
        "{:?}",
        got.headers
    );
    assert_eq!(got.len, LEN, "bytes received");
    assert_eq!(got.blake3, sent, "BLAKE3 of the downloaded bytes");

    // A range longer than two of the pieces an object store is read in (8 MiB), starting
    // between their boundaries, comes back as those bytes.
    let (start, len) = (1_000_003u64, (20 << 20) + 11);
    let mut expected = vec![0u8; len as usize];
    let mut source = pseudo_random(SEED, LEN);
    std::io::copy(&mut (&mut source).take(start), &mut std::io::sink()).unwrap();
    source.read_exact(&mut expected).unwrap();
    let target = e2e::harness::with_query("/opsml/files/download", &[("path", &path)]);
    let range = format!("bytes={start}-{}", start + len - 1);
    let reply = host.request("GET", &target, &[("Range", &range)], None);
    assert_eq!(reply.status, 206, "{range}");
    assert!(reply.body == expected, "{range}: wrong bytes");
    assert_eq!(
        got.headers.get("etag"),
        Some(format!("\"{}\"", sent.to_hex()).as_str()),
        "ETag is the quoted BLAKE3 of the content: {:?}",
        got.headers
    );
}

#[test]
fn small_files_round_trip_exactly() {
    let host = Host::dev();
    let dir = "opsml-root:/OPSML_DATA_REGISTRY/test-repo/my-data/v1.0.0";
    let card = format!("{dir}/card.joblib");
    let data = format!("{dir}/data.parquet");
    let empty = format!("{dir}/empty.txt");
    let card_bytes = b"\x80\x04joblib card\r\n--not-a-boundary\r\n".to_vec();
    upload_ok(&host, &card, &card_bytes);
    let data_bytes: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    upload_ok(&host, &data, &data_bytes);
    upload_ok(&host, &empty, b"");

    // Sorted by full path, as fsspec's `find`.
    assert_eq!(
        files(&host, dir),
        vec![card.clone(), data.clone(), empty.clone()]
    );
    for (path, bytes) in [
        (&card, &card_bytes),
        (&data, &data_bytes),
        (&empty, &Vec::new()),
    ] {
        let (status, headers, body) = host.download(path);
        assert_eq!(
            status,
            200,
            "download {path}: {}",
            String::from_utf8_lossy(&body)
        );
        assert_eq!(&body, bytes, "bytes of {path}");
        assert_eq!(
            headers.get("etag"),
            Some(format!("\"{}\"", blake3::hash(bytes).to_hex()).as_str()),
            "{path}: {headers:?}"
        );
    }

    // Uploading again replaces the file (the client's update_card re-writes card.joblib).
    upload_ok(&host, &card, b"second");
    let (status, _, body) = host.download(&card);
    assert_eq!((status, body.as_slice()), (200, &b"second"[..]));
    assert_eq!(files(&host, dir).len(), 3);
}

#[test]
fn write_paths_outside_a_registry_are_refused_and_store_nothing() {
    let host = Host::dev();
    // Something legitimate first, so that an empty listing cannot pass by accident.
    let legit = format!("{MODEL_ROOT}/test-repo/ok/v1.0.0/model.bin");
    upload_ok(&host, &legit, b"fine");
    let before = files(&host, MODEL_ROOT);
    assert_eq!(before, vec![legit.clone()]);

    let cases = [
        "opsml-root:/OPSML_MODEL_REGISTRY/../../etc/passwd",
        "opsml-root:/OPSML_MODEL_REGISTRY/a/%2e%2e/b",
        "/etc/OPSML_MODEL_REGISTRY/x",
        "opsml-root://etc/passwd",
        "opsml-root:/OPSML_MODEL_REGISTRY\\..\\x",
        "opsml-root:/NOT_A_REGISTRY/x",
        "opsml-root:/OPSML_MODEL_REGISTRY/a/./b",
        "opsml-root:/OPSML_MODEL_REGISTRY/..",
        "opsml-root:/OPSML_MODEL_REGISTRY/test-repo/ok/v1.0.0/../../../../OPSML_DATA_REGISTRY/x",
    ];
    let mut failures = Vec::new();
    for write_path in cases {
        let content = format!("refused: {write_path}");
        let (status, body) = host.upload(write_path, content.as_bytes(), content.len() as u64, &[]);
        if status != 422 || !body["detail"].is_string() {
            failures.push(format!(
                "write_path {write_path:?}: expected 422 {{\"detail\": ...}}, got {status} {body}"
            ));
        }
        let after = files(&host, MODEL_ROOT);
        if after != before {
            failures.push(format!(
                "write_path {write_path:?}: files/list {MODEL_ROOT} changed to {after:?}"
            ));
        }
    }
    for other in ["OPSML_DATA_REGISTRY", "OPSML_RUN_REGISTRY"] {
        let listed = files(&host, &format!("opsml-root:/{other}"));
        if !listed.is_empty() {
            failures.push(format!("opsml-root:/{other} now lists {listed:?}"));
        }
    }
    // Nothing of any refused upload was stored, not even out of sight: only the legit bytes.
    assert_eq!(
        host.stored_bytes(),
        b"fine".len() as u64,
        "refused uploads stored bytes"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn an_upload_without_write_path_is_refused() {
    let host = Host::dev();
    let multipart = Multipart::new("model.bin");
    let content_type = multipart.content_type();
    let len = multipart.body_len(5);
    let reply = host.post_stream(
        "/opsml/files/upload",
        &[("Content-Type", &content_type)],
        multipart.body(&b"hello"[..]),
        len,
    );
    let body = reply.json();
    assert_eq!(reply.status, 422, "{body}");
    // The reference's words, possibly followed by more help.
    assert!(
        detail(&body).starts_with("No write path provided"),
        "{body}"
    );
    assert!(files(&host, MODEL_ROOT).is_empty());
}

#[test]
fn a_multipart_body_cut_short_stores_nothing() {
    let host = Host::dev();
    let path = format!("{MODEL_ROOT}/test-repo/cut/v1.0.0/model.bin");
    let multipart = Multipart::new("model.bin");
    let content_type = multipart.content_type();
    // The Content-Length is right for what is sent; only the closing boundary is missing.
    let file_len = 3 << 20;
    let len = multipart.head.len() as u64 + file_len;
    let reply = host.post_stream(
        "/opsml/files/upload",
        &[("write_path", &path), ("Content-Type", &content_type)],
        multipart.body_without_closing(pseudo_random(1, file_len)),
        len,
    );
    let body = reply.json();
    assert!(
        (400..500).contains(&reply.status),
        "a truncated multipart body: expected 4xx, got {} {body}",
        reply.status
    );
    assert!(!detail(&body).is_empty());
    assert!(!exists(&host, &path));
    assert!(files(&host, &format!("{MODEL_ROOT}/test-repo/cut")).is_empty());
    let (status, _, _) = host.download(&path);
    assert_eq!(status, 404);
}

#[test]
fn missing_files_are_reported_cleanly() {
    let host = Host::dev();
    let path = format!("{MODEL_ROOT}/test-repo/none/v1.0.0/model.bin");
    let (status, _headers, body) = host.download(&path);
    let json: Value = serde_json::from_slice(&body).unwrap_or_else(|e| {
        panic!(
            "download of a missing file: expected a JSON body ({e}), got {status} {:?}",
            String::from_utf8_lossy(&body)
        )
    });
    assert_eq!(status, 404, "{json}");
    assert!(!detail(&json).is_empty());

    let (status, body) = host.files_exists(&path);
    assert_eq!((status, body), (200, json!({"exists": false})));
    assert!(files(&host, &format!("{MODEL_ROOT}/test-repo/none")).is_empty());
}

#[test]
fn files_survive_a_restart() {
    let mut host = Host::dev();
    let path = format!("{MODEL_ROOT}/test-repo/kept/v1.0.0/model.bin");
    let (status, body) = host.upload(&path, pseudo_random(9, 3 << 20), 3 << 20, &[]);
    assert_eq!(status, 200, "{body}");
    host.restart();
    let got = host.download_hashed(&path);
    assert_eq!(got.status, 200, "{}", String::from_utf8_lossy(&got.prefix));
    assert_eq!(got.blake3, blake3_of(pseudo_random(9, 3 << 20)).1);
}

#[test]
fn ranges_and_conditional_downloads() {
    let host = Host::dev();
    // 2.5 MiB spans three 1 MiB chunks, so ranges cross chunk boundaries.
    let len = (5 << 20) / 2;
    let bytes: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
    let path = format!("{MODEL_ROOT}/ranges/m/v1.0.0/weights.bin");
    upload_ok(&host, &path, &bytes);
    let target = e2e::harness::with_query("/opsml/files/download", &[("path", &path)]);
    let get = |headers: &[(&str, &str)]| host.request("GET", &target, headers, None);

    let full = get(&[]);
    assert_eq!(full.status, 200);
    assert_eq!(full.headers.get("accept-ranges"), Some("bytes"));
    let etag = full.headers.get("etag").expect("etag").to_string();

    let mib = 1 << 20;
    let cases: [(String, usize, usize); 5] = [
        ("bytes=0-9".into(), 0, 9),
        (format!("bytes={}-{}", mib - 3, mib + 2), mib - 3, mib + 2),
        (format!("bytes={}-", 2 * mib + 7), 2 * mib + 7, len - 1),
        ("bytes=-5".into(), len - 5, len - 1),
        (format!("bytes=5-{}", len * 2), 5, len - 1),
    ];
    for (range, start, end) in cases {
        let reply = get(&[("Range", &range)]);
        assert_eq!(reply.status, 206, "{range}");
        assert_eq!(
            reply.headers.get("content-range"),
            Some(format!("bytes {start}-{end}/{len}").as_str()),
            "{range}"
        );
        assert_eq!(
            reply.headers.get("content-length"),
            Some((end - start + 1).to_string().as_str())
        );
        assert!(reply.body == bytes[start..=end], "{range}: wrong bytes");
    }
    let reply = get(&[("Range", &format!("bytes={len}-"))]);
    assert_eq!(reply.status, 416);
    assert_eq!(
        reply.headers.get("content-range"),
        Some(format!("bytes */{len}").as_str())
    );
    assert!(detail(&reply.json()).contains("range not satisfiable"));
    // Malformed or multi-range requests get the whole file.
    for range in ["bytes=5-2", "bytes=0-1,3-4", "lines=1-2"] {
        let reply = get(&[("Range", range)]);
        assert_eq!((reply.status, reply.body.len()), (200, len), "{range}");
    }
    let reply = get(&[("If-None-Match", &etag)]);
    assert_eq!(reply.status, 304);
    assert!(reply.body.is_empty());
    assert_eq!(reply.headers.get("etag"), Some(etag.as_str()));
    let reply = get(&[("If-None-Match", "\"something-else\"")]);
    assert_eq!((reply.status, reply.body.len()), (200, len));
}

#[test]
fn a_client_that_disconnects_mid_download_leaves_the_host_serving() {
    let host = Host::dev();
    let len: u64 = 64 << 20;
    let path = format!("{MODEL_ROOT}/gone/m/v1.0.0/weights.bin");
    let (status, body) = host.upload(&path, pseudo_random(3, len), len, &[]);
    assert_eq!(status, 200, "{body}");
    let target = e2e::harness::with_query("/opsml/files/download", &[("path", &path)]);
    for _ in 0..8 {
        let mut response = host.send("GET", &target, &[], None);
        assert_eq!(response.status, 200);
        let mut first = vec![0u8; 1 << 20];
        std::io::Read::read_exact(&mut response, &mut first).unwrap();
        // Dropped here: the connection closes with 63 MiB unread.
    }
    let (status, body) = host.get_json("/opsml/healthcheck");
    assert_eq!((status, body), (200, json!({"is_alive": true})));
    let download = host.download_hashed(&path);
    assert_eq!((download.status, download.len), (200, len));
    assert_eq!(download.blake3, blake3_of(pseudo_random(3, len)).1);
}

/// `files/presigned` (what opsml-cli 0.5 and later ask for): with access control on, a signed
/// URL that downloads its one file without credentials until it expires, and nothing else.
#[test]
fn presigned_urls_download_one_file_without_credentials() {
    let admin = "an-admin-token-of-at-least-32-characters";
    let host = Host::start(&[
        ("OPSML_ADMIN_TOKEN", admin),
        (
            "OPSML_PRESIGNED_URL_SECRET",
            "a-secret-of-at-least-thirty-two-characters",
        ),
    ]);
    let bearer = format!("Bearer {admin}");
    let auth = [("Authorization", bearer.as_str())];
    let path = format!("{MODEL_ROOT}/test-repo/signed/v1.0.0/model.onnx");
    let (status, body) = host.upload(&path, &b"onnx bytes"[..], 10, &auth);
    assert_eq!(status, 200, "{body}");
    let asked = host.request(
        "GET",
        &with_query(
            "/opsml/files/presigned",
            &[("path", path.as_str()), ("method", "GET")],
        ),
        &auth,
        None,
    );
    assert_eq!(asked.status, 200, "{}", asked.text());
    let url = asked.json()["url"].as_str().unwrap().to_string();
    assert!(
        url.starts_with(&format!(
            "http://127.0.0.1:{}/opsml/files/download?",
            host.port()
        )),
        "{url}"
    );
    let target = &url[url.find("/opsml/").unwrap()..];
    let fetched = host.get(target);
    assert_eq!(
        (fetched.status, fetched.body.as_slice()),
        (200, &b"onnx bytes"[..])
    );
    let other = target.replace("model.onnx", "other.onnx");
    assert_eq!(host.get(&other).status, 403, "a changed path");
    let plain = host.get(&with_query(
        "/opsml/files/download",
        &[("path", path.as_str())],
    ));
    assert_eq!(
        plain.status, 401,
        "without the signature, a login is needed"
    );
}
