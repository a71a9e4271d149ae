//! Shared by the CLI's integration tests: running the built binary, seeding a real registry,
//! and a TCP proxy between the CLI and the registry that counts, corrupts or holds back file
//! bytes.
#![allow(dead_code)]

use e2e::harness::{create_request, pseudo_random, Host};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_opsml-registry");

/// Exit codes, as the README documents them.
pub const EXIT_NOT_FOUND: i32 = 3;
pub const EXIT_DENIED: i32 = 4;
pub const EXIT_INTEGRITY: i32 = 5;
pub const EXIT_SKIPPED: i32 = 7;

/// The CLI with a clean environment: only the variables given (plus PATH/HOME).
pub fn cli(args: &[&str], envs: &[(&str, &str)]) -> Command {
    let mut command = Command::new(BIN);
    command.args(args).env_clear();
    for key in ["PATH", "HOME", "TMPDIR"] {
        if let Some(v) = std::env::var_os(key) {
            command.env(key, v);
        }
    }
    command.envs(envs.iter().copied());
    command.stdin(Stdio::null());
    command
}

/// Runs the CLI to the end; panics (showing its output) if it exits with another code.
pub fn run_expect(args: &[&str], envs: &[(&str, &str)], code: i32) -> Output {
    let output = cli(args, envs).output().expect("the CLI runs");
    assert_eq!(
        output.status.code(),
        Some(code),
        "opsml-registry {}: expected exit {code}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        args.join(" "),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

pub fn spawn(args: &[&str], envs: &[(&str, &str)]) -> Child {
    cli(args, envs)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the CLI starts")
}

/// Uploads `len` pseudo-random bytes (from `seed`) to `path`; returns their BLAKE3.
pub fn upload_random(
    host: &Host,
    path: &str,
    seed: u64,
    len: u64,
    headers: &[(&str, &str)],
) -> String {
    let (status, body) = host.upload(path, pseudo_random(seed, len), len, headers);
    assert_eq!(status, 200, "upload {path}: {body}");
    let (_, digest) = e2e::harness::blake3_of(pseudo_random(seed, len));
    digest.to_hex().to_string()
}

pub fn upload_bytes(host: &Host, path: &str, bytes: &[u8], headers: &[(&str, &str)]) {
    let (status, body) = host.upload(path, bytes, bytes.len() as u64, headers);
    assert_eq!(status, 200, "upload {path}: {body}");
}

/// Registers a card (a raw `cards/create`, as the client sends it).
pub fn register(host: &Host, registry: &str, card: Value, headers: &[(&str, &str)]) {
    let (status, body) = host.post_json(
        "/opsml/cards/create",
        &create_request(registry, card),
        headers,
    );
    assert_eq!(status, 200, "cards/create: {body}");
}

pub fn model_card(name: &str, repository: &str, version: &str, uid: &str) -> Value {
    json!({
        "name": name, "repository": repository, "version": version, "uid": uid,
        "contact": "ci@example.com", "model_type": "LinearRegression",
        "timestamp": 1_790_000_000_000_000_u64, "date": "2026-09-21",
        "tags": {"stage": "test"},
    })
}

pub fn blake3_file(path: &Path) -> String {
    let (_, digest) = e2e::harness::blake3_of(std::fs::File::open(path).expect("readable"));
    digest.to_hex().to_string()
}

/// Every file under `dir`, relative, sorted (hidden ones included: nothing else may be left).
pub fn files_under(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                out.push(
                    path.strip_prefix(root)
                        .unwrap()
                        .to_string_lossy()
                        .into_owned(),
                );
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

// ----- a proxy that understands just enough HTTP/1.1 to find file bodies -----

const PASS: u8 = 0;
const CORRUPT: u8 = 1;
const HOLD: u8 = 2;

/// A loopback TCP proxy in front of a registry. It forwards requests as they are; in answers it
/// finds the bodies of `application/octet-stream` responses (file downloads, framed by their
/// `Content-Length`) and counts their bytes, and can flip a byte in each or stop forwarding once
/// a number of file bytes has gone through.
pub struct Proxy {
    port: u16,
    pub file_bytes: Arc<AtomicU64>,
    mode: Arc<AtomicU8>,
    hold_after: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl Proxy {
    pub fn start(upstream: std::net::SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        listener.set_nonblocking(true).expect("nonblocking accept");
        let proxy = Proxy {
            port: listener.local_addr().unwrap().port(),
            file_bytes: Arc::new(AtomicU64::new(0)),
            mode: Arc::new(AtomicU8::new(PASS)),
            hold_after: Arc::new(AtomicU64::new(u64::MAX)),
            stop: Arc::new(AtomicBool::new(false)),
        };
        let (counted, mode, hold_after, stop) = (
            proxy.file_bytes.clone(),
            proxy.mode.clone(),
            proxy.hold_after.clone(),
            proxy.stop.clone(),
        );
        std::thread::spawn(move || {
            while !stop.load(Ordering::Acquire) {
                match listener.accept() {
                    Ok((client, _)) => {
                        let (counted, mode, hold_after, stop) = (
                            counted.clone(),
                            mode.clone(),
                            hold_after.clone(),
                            stop.clone(),
                        );
                        std::thread::spawn(move || {
                            let _ = serve(client, upstream, &counted, &mode, &hold_after, &stop);
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        proxy
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn corrupt(&self) {
        self.mode.store(CORRUPT, Ordering::Release);
    }

    /// Stops forwarding file bytes once `bytes` have gone through (connections stay open).
    pub fn hold_after(&self, bytes: u64) {
        self.hold_after.store(bytes, Ordering::Release);
        self.mode.store(HOLD, Ordering::Release);
    }

    /// Lets held connections go on.
    pub fn release(&self) {
        self.mode.store(PASS, Ordering::Release);
    }

    pub fn counted(&self) -> u64 {
        self.file_bytes.load(Ordering::Acquire)
    }

    /// Waits until at least `bytes` file bytes went through; panics after `timeout`.
    pub fn wait_for(&self, bytes: u64, timeout: Duration) {
        let start = Instant::now();
        while self.counted() < bytes {
            assert!(
                start.elapsed() < timeout,
                "only {} of {bytes} file bytes went through the proxy in {timeout:?}",
                self.counted()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        self.release();
    }
}

fn serve(
    client: TcpStream,
    upstream: std::net::SocketAddr,
    counted: &AtomicU64,
    mode: &AtomicU8,
    hold_after: &AtomicU64,
    stop: &AtomicBool,
) -> std::io::Result<()> {
    client.set_nonblocking(false)?;
    let server = TcpStream::connect(upstream)?;
    let (mut client_r, mut server_w) = (client.try_clone()?, server.try_clone()?);
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut client_r, &mut server_w);
        let _ = server_w.shutdown(Shutdown::Write);
    });
    let (mut from, mut to) = (server, client);
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 64 << 10];
    loop {
        // The head of the next answer.
        let head_end = loop {
            if let Some(i) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let n = from.read(&mut buf)?;
            if n == 0 {
                to.write_all(&pending)?;
                let _ = to.shutdown(Shutdown::Write);
                return Ok(());
            }
            pending.extend_from_slice(&buf[..n]);
        };
        let head = String::from_utf8_lossy(&pending[..head_end]).to_ascii_lowercase();
        let header = |name: &str| {
            head.lines().find_map(|l| {
                l.strip_prefix(&format!("{name}:"))
                    .map(|v| v.trim().to_string())
            })
        };
        let length = header("content-length").and_then(|v| v.parse::<u64>().ok());
        let is_file =
            header("content-type").is_some_and(|t| t.starts_with("application/octet-stream"));
        to.write_all(&pending[..head_end])?;
        pending.drain(..head_end);
        let Some(length) = length else {
            // Not framed by a length (chunked, or until close): pass the rest through.
            to.write_all(&pending)?;
            std::io::copy(&mut from, &mut to)?;
            return Ok(());
        };
        let mut sent = 0u64;
        while sent < length {
            if pending.is_empty() {
                let n = from.read(&mut buf)?;
                if n == 0 {
                    let _ = to.shutdown(Shutdown::Write);
                    return Ok(());
                }
                pending.extend_from_slice(&buf[..n]);
            }
            let take = (pending.len() as u64).min(length - sent) as usize;
            let mut piece: Vec<u8> = pending.drain(..take).collect();
            if is_file {
                while mode.load(Ordering::Acquire) == HOLD
                    && counted.load(Ordering::Acquire) >= hold_after.load(Ordering::Acquire)
                    && !stop.load(Ordering::Acquire)
                {
                    std::thread::sleep(Duration::from_millis(10));
                }
                if mode.load(Ordering::Acquire) == CORRUPT {
                    let middle = length / 2;
                    if middle >= sent && middle < sent + piece.len() as u64 {
                        piece[(middle - sent) as usize] ^= 0x55;
                    }
                }
                counted.fetch_add(piece.len() as u64, Ordering::AcqRel);
            }
            to.write_all(&piece)?;
            sent += piece.len() as u64;
        }
    }
}
