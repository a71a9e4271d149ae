//! SIGTERM in `opsml-host` (issue 12), what a rolling update sends each pod: the host stops
//! accepting connections, lets requests in flight finish within `--shutdown-timeout`
//! (`OPSML_HOST_SHUTDOWN_TIMEOUT`), then exits; an upload cut off by that timeout leaves
//! nothing visible. (On real Spin the runtime's own signal handling applies; these tests are
//! for the host, and say so and return under `OPSML_TEST_RUNTIME=spin`.)

use std::io::Read;
use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use e2e::harness::{blake3_of, pseudo_random, Host, Multipart};
use e2e::http::{self, Body, Timeouts};
use e2e::runtime::{runtime, Runtime};
use serde_json::json;

const PATH: &str = "opsml-root:/OPSML_MODEL_REGISTRY/team/drain/v1.0.0/model.bin";

/// A request body that counts what was read from it, no faster than `bytes_per_second`.
struct Paced<R> {
    inner: R,
    sent: Arc<AtomicU64>,
    bytes_per_second: u64,
    started: Instant,
}

impl<R: Read> Read for Paced<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let most = buf.len().min(256 << 10);
        let n = self.inner.read(&mut buf[..most])?;
        let sent = self.sent.fetch_add(n as u64, Ordering::Relaxed) + n as u64;
        let due = Duration::from_secs_f64(sent as f64 / self.bytes_per_second as f64);
        if let Some(wait) = due.checked_sub(self.started.elapsed()) {
            std::thread::sleep(wait);
        }
        Ok(n)
    }
}

/// Uploads `len` bytes to [`PATH`] at about `bytes_per_second`, on a thread; returns the
/// thread (its answer's status, or the error if the connection was cut) and the byte count.
fn paced_upload(
    host: &Host,
    len: u64,
    bytes_per_second: u64,
) -> (std::thread::JoinHandle<Result<u16, String>>, Arc<AtomicU64>) {
    let addr = host.addr();
    let sent = Arc::new(AtomicU64::new(0));
    let counter = sent.clone();
    let uploader = std::thread::spawn(move || {
        let multipart = Multipart::new("model.bin");
        let content_type = multipart.content_type();
        let body_len = multipart.body_len(len);
        let body = Paced {
            inner: multipart.body(pseudo_random(11, len)),
            sent: counter,
            bytes_per_second,
            started: Instant::now(),
        };
        http::send(
            addr,
            "POST",
            "/opsml/files/upload",
            &[("write_path", PATH), ("Content-Type", &content_type)],
            Some(Body::new(body, body_len)),
            Timeouts::default(),
        )
        .map(|r| r.status)
        .map_err(|e| e.to_string())
    });
    (uploader, sent)
}

fn wait_until_sent(sent: &AtomicU64, bytes: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while sent.load(Ordering::Relaxed) < bytes {
        assert!(Instant::now() < deadline, "the upload never got going");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn on_opsml_host() -> bool {
    let host = matches!(runtime(), Runtime::OpsmlHost);
    if !host {
        eprintln!("shutdown: skipped, these tests are for opsml-host's SIGTERM handling");
    }
    host
}

#[test]
fn sigterm_lets_an_upload_in_flight_finish_and_takes_no_new_connections() {
    if !on_opsml_host() {
        return;
    }
    let mut host = Host::dev();
    let len: u64 = 96 << 20;
    let (uploader, sent) = paced_upload(&host, len, 48 << 20);
    wait_until_sent(&sent, 16 << 20);
    host.terminate();
    // Soon after, the listener is closed.
    let deadline = Instant::now() + Duration::from_secs(5);
    while TcpStream::connect(host.addr()).is_ok() {
        assert!(Instant::now() < deadline, "still accepting after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        uploader.join().unwrap(),
        Ok(200),
        "the upload in flight finished"
    );
    let status = host
        .wait_exit(Duration::from_secs(10))
        .expect("exits once drained");
    assert!(status.success(), "{status}");
    assert!(
        host.log().contains("every request finished"),
        "{}",
        host.log()
    );

    host.restart();
    let download = host.download_hashed(PATH);
    assert_eq!((download.status, download.len), (200, len));
    assert_eq!(download.blake3, blake3_of(pseudo_random(11, len)).1);
}

#[test]
fn an_upload_cut_off_by_the_shutdown_timeout_leaves_nothing_visible() {
    if !on_opsml_host() {
        return;
    }
    let mut host = Host::start(&[("OPSML_HOST_SHUTDOWN_TIMEOUT", "1")]);
    let len: u64 = 256 << 20;
    let (uploader, sent) = paced_upload(&host, len, 32 << 20);
    wait_until_sent(&sent, 16 << 20);
    let terminated = Instant::now();
    host.terminate();
    let status = host
        .wait_exit(Duration::from_secs(10))
        .expect("exits after the timeout");
    assert!(status.success(), "{status}");
    let waited = terminated.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    assert_ne!(uploader.join().unwrap(), Ok(200));
    assert!(host.log().contains("cut off"), "{}", host.log());

    host.restart();
    assert_eq!(host.files_exists(PATH).1, json!({"exists": false}));
    let (status, _, _) = host.download(PATH);
    assert_eq!(status, 404);
}
