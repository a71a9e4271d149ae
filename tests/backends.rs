//! The production backends misconfigured: wrong or missing credentials, an unreachable
//! database or object store, a missing bucket, a malformed storage URI. Each gives a clear error naming the setting to check, and
//! loses nothing already stored. Runs on `OPSML_TEST_BACKEND=postgres-s3` and `mysql-s3`
//! (scripts/test.sh runs the suite on every backend); on the embedded backend there is nothing
//! to misconfigure.

use e2e::backend::Backend;
use e2e::harness::{backend, blake3_of, detail, pseudo_random, AppFiles, DatabaseServer, Host};
use serde_json::json;

const PATH: &str = "opsml-root:/OPSML_MODEL_REGISTRY/team/m/v1.0.0/model.bin";
/// Over two 8 MiB parts: stored as a multipart upload.
const LEN: u64 = 20 << 20;

/// The shared database server, or None (said on stderr) on the embedded backend.
fn shared() -> Option<&'static DatabaseServer> {
    let server = backend().database();
    if server.is_none() {
        eprintln!(
            "needs OPSML_TEST_BACKEND=postgres-s3 or mysql-s3: nothing to check on the embedded backend"
        );
    }
    server
}

/// A host with a file and a card stored, restarted with `change` applied to its settings.
fn stored_then(change: &[(&str, &str)]) -> (Host, blake3::Hash) {
    let mut host = Host::dev();
    let (status, body) = host.upload(PATH, pseudo_random(3, LEN), LEN, &[]);
    assert_eq!(status, 200, "{body}");
    let (status, body) = host.post_json(
        "/opsml/cards/version",
        &json!({"name": "m", "repository": "team", "registry_type": "model", "version_type": "minor"}),
        &[],
    );
    assert_eq!(status, 200, "{body}");
    host.set_envs(change);
    host.restart();
    (host, blake3_of(pseudo_random(3, LEN)).1)
}

/// After the setting is put back, everything stored before is still there, byte for byte.
fn nothing_lost(mut host: Host, digest: &blake3::Hash) {
    host.reset_envs();
    host.restart();
    let download = host.download_hashed(PATH);
    assert_eq!((download.status, download.len), (200, LEN));
    assert_eq!(&download.blake3, digest, "the file came back different");
    assert_eq!(host.files_exists(PATH).1, json!({"exists": true}));
}

#[test]
fn wrong_s3_credentials_name_the_settings() {
    if shared().is_none() {
        return;
    }
    let (host, digest) = stored_then(&[("OPSML_S3_SECRET_ACCESS_KEY", "not-the-secret")]);
    let (status, body) = host.upload(PATH, pseudo_random(4, 1000), 1000, &[]);
    assert_eq!(status, 503, "{body}");
    assert!(
        detail(&body).contains("OPSML_S3_SECRET_ACCESS_KEY"),
        "{body}"
    );
    assert!(!detail(&body).contains("not-the-secret"), "{body}");
    let (status, _, got) = host.download(PATH);
    assert_eq!(status, 503, "{}", String::from_utf8_lossy(&got));
    assert!(String::from_utf8_lossy(&got).contains("OPSML_S3_SECRET_ACCESS_KEY"));
    nothing_lost(host, &digest);

    let (host, digest) = stored_then(&[("OPSML_S3_ACCESS_KEY_ID", "nobody")]);
    let (status, body) = host.upload(PATH, pseudo_random(4, 1000), 1000, &[]);
    assert_eq!(status, 503, "{body}");
    assert!(detail(&body).contains("OPSML_S3_ACCESS_KEY_ID"), "{body}");
    nothing_lost(host, &digest);
}

#[test]
fn a_missing_bucket_names_the_storage_uri() {
    if shared().is_none() {
        return;
    }
    // Reads show it. (s3s-fs creates a missing bucket on upload and answers NoSuchKey for
    // it, where S3 answers NoSuchBucket: both messages name the setting.)
    let (host, digest) = stored_then(&[("OPSML_STORAGE_URI", "s3://no-such-bucket/x")]);
    let (status, _, got) = host.download(PATH);
    let text = String::from_utf8_lossy(&got);
    assert!(status >= 500, "{status} {text}");
    assert!(text.contains("no-such-bucket"), "{text}");
    assert!(text.contains("OPSML_STORAGE_URI"), "{text}");
    nothing_lost(host, &digest);
}

#[test]
fn an_unreachable_object_store_names_the_endpoint() {
    if shared().is_none() {
        return;
    }
    // A port nothing listens on (allowed: `allowed_outbound_hosts` follows the endpoint).
    let (host, digest) = stored_then(&[("OPSML_S3_ENDPOINT", "http://127.0.0.1:9")]);
    let (status, body) = host.upload(PATH, pseudo_random(4, 1000), 1000, &[]);
    assert_eq!(status, 503, "{body}");
    assert!(detail(&body).contains("OPSML_S3_ENDPOINT"), "{body}");
    assert!(detail(&body).contains("127.0.0.1:9"), "{body}");
    // Metadata still answers: only file bytes are out of reach.
    let (status, _) = host.post_json(
        "/opsml/cards/list",
        &json!({"registry_type": "model", "name": "m"}),
        &[],
    );
    assert_eq!(status, 200);
    nothing_lost(host, &digest);
}

/// A server that accepts connections and never reads or answers: with a 4 KiB receive window,
/// a large body stops at the sender's buffers, so the runtime gives up on the answer while the
/// body is still being written.
fn silent_server() -> std::net::SocketAddr {
    use std::os::fd::AsRawFd;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let window: libc::c_int = 4096;
    // Accepted connections inherit the listener's buffer size, and a set size is not tuned up.
    let set = unsafe {
        libc::setsockopt(
            listener.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&window as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(set, 0, "SO_RCVBUF: {}", std::io::Error::last_os_error());
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        // Held open until the test ends.
        let _connections: Vec<_> = listener.incoming().flatten().collect();
    });
    addr
}

#[test]
fn an_object_store_that_never_answers_fails_the_request_in_time() {
    if shared().is_none() {
        return;
    }
    let silent = silent_server();
    let endpoint = format!("http://{silent}");
    let (host, digest) = stored_then(&[
        ("OPSML_S3_ENDPOINT", endpoint.as_str()),
        ("OPSML_S3_READ_TIMEOUT", "2"),
    ]);
    let fresh = "opsml-root:/OPSML_MODEL_REGISTRY/team/m/v1.1.0/model.bin";
    // A single PUT whose body is sent whole, one whose body the store stops taking, a
    // multipart upload's first request, then a download's first range.
    for (what, len) in [
        ("a small upload", 1000),
        ("a 7 MiB upload", 7 << 20),
        ("a multipart upload", LEN),
    ] {
        let started = std::time::Instant::now();
        let (status, body) = host.upload(fresh, pseudo_random(5, len), len, &[]);
        let took = started.elapsed();
        assert_eq!(status, 503, "{what}: {body}");
        let text = detail(&body);
        assert!(text.contains(&endpoint), "{what}: names the store: {body}");
        assert!(
            text.contains("did not answer in time") && text.contains("OPSML_S3_READ_TIMEOUT"),
            "{what}: says what timed out and what sets the limit: {body}"
        );
        // The 2 s limit, and the time to receive the body and answer.
        assert!(
            took >= std::time::Duration::from_secs(2) && took < std::time::Duration::from_secs(15),
            "{what}: answered after {took:?}"
        );
        assert_eq!(
            host.files_exists(fresh).1,
            json!({"exists": false}),
            "{what}"
        );
    }
    let started = std::time::Instant::now();
    let (status, _, got) = host.download(PATH);
    let text = String::from_utf8_lossy(&got);
    assert_eq!(status, 503, "{text}");
    assert!(text.contains("OPSML_S3_READ_TIMEOUT"), "{text}");
    assert!(started.elapsed() < std::time::Duration::from_secs(15));
    nothing_lost(host, &digest);
}

#[test]
fn an_unreachable_or_refusing_database_names_the_database_url() {
    let Some(server) = shared() else {
        return;
    };
    let (scheme, refusal) = match server {
        DatabaseServer::Postgres(_) => ("postgres", "password authentication failed"),
        DatabaseServer::Mysql(_) => ("mysql", "Access denied for user"),
    };
    // Wrong password: the server refuses, and the message says so without the password.
    let wrong_password = {
        let (user, rest) = server
            .url()
            .split_once("://")
            .and_then(|(_, r)| r.split_once('@'))
            .expect("scheme://user:password@host:port");
        let user = user.split(':').next().unwrap();
        format!("{scheme}://{user}:wrong-password@{rest}/opsml")
    };
    let unreachable = format!("{scheme}://opsml:pw@127.0.0.1:9/opsml");
    for (url, expect) in [
        (wrong_password.as_str(), refusal),
        (unreachable.as_str(), "connection failed"),
    ] {
        // A runtime asked for backtraces must still not put one (or the error's chain of
        // causes) into an answer: the detail is the error's first paragraph.
        let (host, digest) = stored_then(&[
            ("OPSML_DATABASE_URL", url),
            ("OPSML_DATABASE_HOST", "127.0.0.1:*"),
            ("RUST_BACKTRACE", "1"),
        ]);
        let (status, body) =
            host.post_json("/opsml/cards/list", &json!({"registry_type": "model"}), &[]);
        assert_eq!(status, 503, "{body}");
        let text = detail(&body);
        assert!(text.contains("OPSML_DATABASE_URL"), "{body}");
        assert!(text.contains(expect), "{body}");
        assert!(
            !text.contains("wrong-password") && !text.contains(":pw@"),
            "{body}"
        );
        assert!(
            !text.contains('\n') && !text.contains("Caused by") && !text.contains("backtrace"),
            "one paragraph, no causes, no backtrace: {body}"
        );
        let (status, body) = host.upload(PATH, pseudo_random(4, 1000), 1000, &[]);
        assert_eq!(status, 503, "{body}");
        nothing_lost(host, &digest);
    }
}

#[test]
fn a_database_outside_the_allowed_hosts_is_refused() {
    if shared().is_none() {
        return;
    }
    let (host, digest) = stored_then(&[("OPSML_DATABASE_HOST", "db.elsewhere:5432")]);
    let (status, body) =
        host.post_json("/opsml/cards/list", &json!({"registry_type": "model"}), &[]);
    assert_eq!(status, 503, "{body}");
    assert!(detail(&body).contains("allowed_outbound_hosts"), "{body}");
    // Spin names the refused address whole: the password must not come through.
    let password = host.storage().unwrap().database_url();
    let password = password
        .split_once("://")
        .and_then(|(_, r)| r.split_once('@'))
        .and_then(|(user_info, _)| user_info.split_once(':'))
        .map(|(_, p)| p.to_string())
        .unwrap();
    assert!(!detail(&body).contains(&password), "{body}");
    nothing_lost(host, &digest);
}

#[test]
fn malformed_storage_settings_name_the_setting() {
    if shared().is_none() {
        return;
    }
    for (change, setting) in [
        (
            [("OPSML_STORAGE_URI", "gs://bucket/prefix")],
            "OPSML_STORAGE_URI",
        ),
        (
            [("OPSML_S3_SECRET_ACCESS_KEY", "")],
            "OPSML_S3_ACCESS_KEY_ID and OPSML_S3_SECRET_ACCESS_KEY",
        ),
        ([("OPSML_S3_READ_TIMEOUT", "soon")], "OPSML_S3_READ_TIMEOUT"),
        (
            [("OPSML_S3_CONNECT_TIMEOUT", "0")],
            "OPSML_S3_CONNECT_TIMEOUT",
        ),
    ] {
        let (host, digest) = stored_then(&change);
        let (status, body) = host.upload(PATH, pseudo_random(4, 1000), 1000, &[]);
        assert_eq!(status, 500, "{body}");
        assert!(
            detail(&body).starts_with(&format!("server misconfigured: {setting}")),
            "{body}"
        );
        let (status, _, got) = host.download(PATH);
        let text = String::from_utf8_lossy(&got);
        assert_eq!(status, 500, "{text}");
        assert!(text.contains(setting), "{text}");
        nothing_lost(host, &digest);
    }
}

#[test]
fn a_store_whose_certificate_is_not_trusted_names_the_tls_failure() {
    let Backend::Shared(services) = backend() else {
        eprintln!("needs a shared backend with an https:// S3 endpoint (OPSML_TEST_S3_CA)");
        return;
    };
    if services.s3_ca.is_none() || !services.s3_endpoint.starts_with("https://") {
        eprintln!(
            "needs an https:// S3 endpoint whose CA the registry may trust (OPSML_TEST_S3_CA)"
        );
        return;
    }
    // The shipped runtime-config names no CA: the store's private CA is not trusted.
    let host = Host::start_app_on_backend(AppFiles::registry_as_shipped(), &[]);
    let (status, body) = host.upload(PATH, pseudo_random(4, 1000), 1000, &[]);
    assert_eq!(status, 503, "{body}");
    let text = detail(&body);
    assert!(
        text.contains(&services.s3_endpoint),
        "names the store: {body}"
    );
    assert!(
        text.contains("TLS failed") && text.contains("[[client_tls]] ca_roots_file"),
        "says it is TLS and what to set: {body}"
    );
    assert_eq!(host.files_exists(PATH).1, json!({"exists": false}));
    let (status, body) = host.get_json("/opsml/readyz");
    assert_eq!((status, &body["blob_store"]), (503, &json!("unreachable")));
    assert_eq!(host.stored_bytes(), 0, "nothing reached the store");
}
