//! What an operator of `opsml-host` gets (issue 12): Prometheus metrics and readiness on their
//! own address, one JSON access-log line per request without any header value or query, and
//! readiness that fails while the database or the blob store is unreachable, or once shutdown
//! began. Under `OPSML_TEST_RUNTIME=spin` these say so and return (Spin's own telemetry applies
//! there; see the README).

use std::collections::BTreeMap;
use std::net::SocketAddr;

use e2e::harness::{create_request, data_card, free_port, pseudo_random, version_request, Host};
use e2e::http::{self, Timeouts};
use e2e::runtime::{runtime, Runtime};
use serde_json::Value;

fn on_opsml_host() -> bool {
    let host = matches!(runtime(), Runtime::OpsmlHost);
    if !host {
        eprintln!("operations: skipped, these tests are for opsml-host");
    }
    host
}

/// `GET path` on the metrics address → (status, body).
fn scrape(metrics: SocketAddr, path: &str) -> (u16, String) {
    let mut response = http::send(metrics, "GET", path, &[], None, Timeouts::default())
        .expect("the metrics address answers");
    let mut body = String::new();
    std::io::Read::read_to_string(&mut response, &mut body).unwrap();
    (response.status, body)
}

/// The samples of the text format: `name{labels}` → value.
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let (key, value) = l.rsplit_once(' ')?;
            Some((key.to_string(), value.parse().ok()?))
        })
        .collect()
}

fn metrics_host(envs: &[(&str, &str)]) -> (Host, SocketAddr) {
    let port = free_port();
    let address = format!("127.0.0.1:{port}");
    let mut all = vec![("OPSML_HOST_METRICS_LISTEN", address.as_str())];
    all.extend_from_slice(envs);
    let host = Host::start(&all);
    (host, address.parse().unwrap())
}

#[test]
fn metrics_and_access_log_describe_each_request_and_hold_no_secret() {
    if !on_opsml_host() {
        return;
    }
    let (host, metrics) = metrics_host(&[("OPSML_HOST_ACCESS_LOG", "1")]);
    let secret = "Bearer s3cr3t-value-never-logged";
    let (status, body) = host.post_json(
        "/opsml/cards/version",
        &version_request("data", "observed", "team", "minor"),
        &[("Authorization", secret)],
    );
    assert_eq!(status, 200, "{body}");
    let card = data_card("observed", "team", "1.0.0", "observed-1");
    let (status, _) = host.post_json("/opsml/cards/create", &create_request("data", card), &[]);
    assert_eq!(status, 200);
    let path = "opsml-root:/OPSML_DATA_REGISTRY/team/observed/v1.0.0/data.bin";
    let len = 1u64 << 20;
    let (status, _) = host.upload(path, pseudo_random(1, len), len, &[]);
    assert_eq!(status, 200);
    let (status, _, bytes) = host.download(path);
    assert_eq!((status, bytes.len() as u64), (200, len));
    let reply = host.get("/nowhere?token=query-secret");
    assert_eq!(reply.status, 404);
    let request_id = reply.headers.get("x-request-id").unwrap().to_string();

    // The client has its last byte before the instance that sent it has returned, and before
    // the host has seen the body end (which is when it counts the request): wait for both.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let text = loop {
        let (status, text) = scrape(metrics, "/metrics");
        assert_eq!(status, 200);
        let settled = [
            "opsml_host_instances_in_use 0",
            "opsml_host_http_requests_in_flight 0",
        ]
        .iter()
        .all(|gauge| text.lines().any(|line| line == *gauge));
        if settled {
            break text;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "an instance or a request stayed in use:\n{text}"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    let found = samples(&text);
    let get = |key: &str| {
        *found
            .get(key)
            .unwrap_or_else(|| panic!("no sample {key} in\n{text}"))
    };
    assert_eq!(
        get(
            r#"opsml_host_http_requests_total{component="upload",route="/opsml/files/upload",method="POST",status="200"}"#
        ),
        1.0
    );
    assert_eq!(
        get(
            r#"opsml_host_http_requests_total{component="create-card",route="/opsml/cards/create",method="POST",status="200"}"#
        ),
        1.0
    );
    assert_eq!(
        get(r#"opsml_host_http_requests_total{component="",route="",method="GET",status="404"}"#),
        1.0
    );
    assert!(
        get(r#"opsml_host_http_body_bytes_total{component="upload",direction="in"}"#) > len as f64
    );
    assert!(
        get(r#"opsml_host_http_body_bytes_total{component="download",direction="out"}"#)
            >= len as f64
    );
    assert_eq!(
        get(
            r#"opsml_host_http_request_duration_seconds_count{component="download",route="/opsml/files/download"}"#
        ),
        1.0
    );
    assert_eq!(get("opsml_host_instances_in_use"), 0.0);
    assert!(!text.contains("s3cr3t") && !text.contains("query-secret"));

    // One JSON line per request, on the host's stdout.
    let log = host.log();
    let lines: Vec<Value> = log
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let health_checks = lines
        .iter()
        .filter(|l| l["path"] == "/opsml/healthcheck")
        .count();
    assert_eq!(lines.len(), 5 + health_checks, "{log}");
    let upload = lines.iter().find(|l| l["component"] == "upload").unwrap();
    assert_eq!(upload["status"], 200);
    assert_eq!(upload["route"], "/opsml/files/upload");
    assert!(upload["bytes_in"].as_u64().unwrap() > len);
    assert!(upload["duration_ms"].as_f64().unwrap() > 0.0);
    let missing = lines.iter().find(|l| l["status"] == 404).unwrap();
    assert_eq!(missing["path"], "/nowhere");
    assert_eq!(missing["request_id"], request_id.as_str());
    assert!(
        !log.contains("s3cr3t") && !log.contains("query-secret"),
        "{log}"
    );
}

#[test]
fn readiness_fails_while_a_backend_is_unreachable_and_once_shutdown_began() {
    if !on_opsml_host() {
        return;
    }
    let route = [("OPSML_HOST_READINESS_ROUTE", "/opsml/readyz")];
    let (host, metrics) = metrics_host(&[route[0], ("OPSML_HOST_SHUTDOWN_TIMEOUT", "3")]);
    assert_eq!(scrape(metrics, "/readyz"), (200, "ready\n".to_string()));
    let (status, body) = host.get_json("/opsml/readyz");
    assert_eq!(status, 200);
    assert_eq!(body["database"], "ok");
    assert_eq!(body["blob_store"], "ok");

    // Once SIGTERM arrived: not ready, while a request in flight (an upload whose body has
    // not come yet) keeps the host draining.
    let mut connection = std::net::TcpStream::connect(host.addr()).unwrap();
    std::io::Write::write_all(
        &mut connection,
        b"POST /opsml/files/upload HTTP/1.1\r\nHost: h\r\nContent-Length: 1000000\r\n\
          Content-Type: multipart/form-data; boundary=b\r\n\
          write_path: opsml-root:/OPSML_DATA_REGISTRY/r/n/v1.0.0/f\r\n\r\n--b\r\n",
    )
    .unwrap();
    // Wait for the host to count the upload as in flight, not for a time.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !scrape(metrics, "/metrics")
        .1
        .lines()
        .any(|line| line == "opsml_host_http_requests_in_flight 1")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the upload never became a request in flight"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    host.terminate();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let (status, text) = scrape(metrics, "/readyz");
        if status == 503 {
            assert_eq!(text, "stopping\n");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still ready after SIGTERM"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    drop(connection);

    let closed = format!("127.0.0.1:{}", free_port());
    for (unreachable, envs) in [
        (
            "database",
            vec![
                (
                    "OPSML_DATABASE_URL",
                    format!("postgres://opsml:pw@{closed}/opsml"),
                ),
                ("OPSML_DATABASE_HOST", closed.clone()),
            ],
        ),
        (
            "blob_store",
            vec![
                ("OPSML_STORAGE_URI", "s3://bucket/prefix".to_string()),
                ("OPSML_S3_ENDPOINT", format!("http://{closed}")),
            ],
        ),
    ] {
        let mut all: Vec<(&str, &str)> = route.to_vec();
        all.extend(envs.iter().map(|(k, v)| (*k, v.as_str())));
        let (host, metrics) = metrics_host(&all);
        let (status, text) = scrape(metrics, "/readyz");
        assert_eq!(status, 503, "{unreachable}: {text}");
        assert_eq!(text, "/opsml/readyz answered 503\n");
        let (status, body) = host.get_json("/opsml/readyz");
        assert_eq!(status, 503);
        assert_eq!(body[unreachable], "unreachable", "{body}");
        assert_eq!(body["ready"], false);
        assert!(!body.to_string().contains("pw"), "{body}");
    }
}
