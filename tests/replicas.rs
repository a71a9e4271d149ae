//! A fleet: three hosts on one database and one bucket, as replicas behind a load balancer
//! run, with requests spread round-robin across them (issue 12). Needs a shared backend
//! (`OPSML_TEST_BACKEND=postgres-s3` or `mysql-s3`); on the embedded one each host's state is
//! its own directory, so there is no fleet to test and each test says so and returns.

use std::collections::BTreeSet;
use std::io::Read;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use e2e::backend::{backend, Backend};
use e2e::harness::{
    blake3_of, create_request, data_card, pseudo_random, version_request, Host, Multipart,
};
use e2e::http::{self, Body, Timeouts};
use serde_json::{json, Value};

/// Three replicas, or `None` (and a note) on the embedded backend.
fn fleet() -> Option<Vec<Host>> {
    if matches!(backend(), Backend::Embedded) {
        eprintln!(
            "replicas: skipped, the embedded backend has no shared state (set OPSML_TEST_BACKEND)"
        );
        return None;
    }
    let first = Host::dev();
    let mut hosts = vec![first.replica(), first.replica()];
    hosts.insert(0, first);
    Some(hosts)
}

fn post(host: &Host, path: &str, body: &Value) -> (u16, Value) {
    host.post_json(path, body, &[])
}

/// Asks one replica for the next version and registers it through the next one, until a
/// registration succeeds (a `409` means another client took that version first); returns the
/// version and how many tries it took.
fn register(hosts: &[Host], first: usize, name: &str, uid: &str) -> (String, u32) {
    for attempt in 0..50u32 {
        let asked = &hosts[(first + attempt as usize) % hosts.len()];
        let (status, body) = post(
            asked,
            "/opsml/cards/version",
            &version_request("data", name, "fleet", "minor"),
        );
        assert_eq!(status, 200, "{body}");
        let version = body["version"].as_str().unwrap().to_string();
        let registrar = &hosts[(first + attempt as usize + 1) % hosts.len()];
        let card = data_card(name, "fleet", &version, uid);
        let (status, body) = post(
            registrar,
            "/opsml/cards/create",
            &create_request("data", card),
        );
        match status {
            200 => return (version, attempt + 1),
            409 => continue,
            other => panic!("create {version}: {other} {body}"),
        }
    }
    panic!("{uid}: no version after 50 tries");
}

#[test]
fn sixty_four_registrations_spread_across_replicas_get_distinct_versions() {
    let Some(hosts) = fleet() else { return };
    let outcomes: Vec<(String, u32)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..64)
            .map(|i| {
                let hosts = &hosts;
                scope.spawn(move || register(hosts, i, "contended", &format!("fleet-{i}")))
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    let versions: BTreeSet<&str> = outcomes.iter().map(|(v, _)| v.as_str()).collect();
    assert_eq!(
        versions.len(),
        64,
        "two registrations share a version: {outcomes:?}"
    );
    let retried = outcomes.iter().filter(|(_, tries)| *tries > 1).count();
    eprintln!("replicas: {retried} of 64 registrations were retried after a 409");
    // Every replica lists the same 64 cards.
    for host in &hosts {
        let (status, body) = post(
            host,
            "/opsml/cards/list",
            &json!({"registry_type": "data", "name": "contended", "repository": "fleet"}),
        );
        assert_eq!(status, 200);
        let listed: BTreeSet<&str> = body["cards"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["version"].as_str().unwrap())
            .collect();
        assert_eq!(listed, versions);
    }
}

/// Readers that list and download through every replica until told to stop; returns how
/// many requests they made. Any answer but 200 fails the test.
fn read_continuously(hosts: &[Host], path: &str, stop: &AtomicBool) -> u64 {
    let mut made = 0;
    while !stop.load(Ordering::Relaxed) {
        let host = &hosts[made as usize % hosts.len()];
        let (status, body) = host.files_list("opsml-root:/OPSML_DATA_REGISTRY/fleet");
        assert_eq!(status, 200, "{body}");
        let (status, _, _) = host.download(path);
        assert_eq!(status, 200);
        made += 1;
    }
    made
}

#[test]
fn a_file_uploaded_through_one_replica_downloads_identically_from_the_others() {
    let Some(hosts) = fleet() else { return };
    let seed = "opsml-root:/OPSML_DATA_REGISTRY/fleet/seed/v1.0.0/seed.bin";
    let (status, body) = hosts[1].upload(seed, pseudo_random(1, 4096), 4096, &[]);
    assert_eq!(status, 200, "{body}");
    let path = "opsml-root:/OPSML_DATA_REGISTRY/fleet/big/v1.0.0/data.bin";
    let len: u64 = 48 << 20;
    let stop = AtomicBool::new(false);
    let reads = std::thread::scope(|scope| {
        let readers: Vec<_> = (0..2)
            .map(|_| scope.spawn(|| read_continuously(&hosts, seed, &stop)))
            .collect();
        let (status, body) = hosts[0].upload(path, pseudo_random(2, len), len, &[]);
        stop.store(true, Ordering::Relaxed);
        assert_eq!(status, 200, "{body}");
        readers.into_iter().map(|r| r.join().unwrap()).sum::<u64>()
    });
    assert!(reads > 0);
    let expected = blake3_of(pseudo_random(2, len)).1;
    for host in &hosts[1..] {
        let download = host.download_hashed(path);
        assert_eq!((download.status, download.len), (200, len));
        assert_eq!(download.blake3, expected);
    }
}

/// A request body that counts what has been read from it.
struct Counted<R> {
    inner: R,
    sent: Arc<AtomicU64>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.sent.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

#[test]
fn a_replica_killed_mid_upload_loses_nothing_and_serves_again_after_a_restart() {
    let Some(mut hosts) = fleet() else { return };
    // Committed through the others before the kill.
    let kept = "opsml-root:/OPSML_DATA_REGISTRY/fleet/kept/v1.0.0/kept.bin";
    let (status, body) = hosts[1].upload(kept, pseudo_random(3, 1 << 20), 1 << 20, &[]);
    assert_eq!(status, 200, "{body}");
    let (version, _) = register(&hosts, 1, "kept", "kept-1");

    let cut = "opsml-root:/OPSML_DATA_REGISTRY/fleet/cut/v1.0.0/cut.bin";
    let len: u64 = 512 << 20;
    let addr = hosts[0].addr();
    let sent = Arc::new(AtomicU64::new(0));
    let uploader = {
        let sent = sent.clone();
        std::thread::spawn(move || {
            let multipart = Multipart::new("cut.bin");
            let content_type = multipart.content_type();
            let body_len = multipart.body_len(len);
            let body = Counted {
                inner: multipart.body(pseudo_random(4, len)),
                sent,
            };
            http::send(
                addr,
                "POST",
                "/opsml/files/upload",
                &[("write_path", cut), ("Content-Type", &content_type)],
                Some(Body::new(body, body_len)),
                Timeouts::default(),
            )
            .map(|r| r.status)
        })
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    while sent.load(Ordering::Relaxed) < 64 << 20 {
        assert!(Instant::now() < deadline, "the upload never got going");
        std::thread::sleep(Duration::from_millis(10));
    }
    // SIGKILL, as a node failure does.
    hosts[0].stop();
    let outcome = uploader.join().unwrap();
    assert!(
        !matches!(outcome, Ok(200)),
        "the killed replica cannot have committed the upload: {outcome:?}"
    );

    // The others: everything committed is there, nothing of the cut upload is visible.
    for host in &hosts[1..] {
        let download = host.download_hashed(kept);
        assert_eq!(download.status, 200);
        assert_eq!(download.blake3, blake3_of(pseudo_random(3, 1 << 20)).1);
        assert_eq!(host.files_exists(cut).1, json!({"exists": false}));
        let (status, _, _) = host.download(cut);
        assert_eq!(status, 404);
        let (status, body) = post(
            host,
            "/opsml/cards/list",
            &json!({"registry_type": "data", "name": "kept", "repository": "fleet"}),
        );
        assert_eq!(status, 200);
        assert_eq!(body["cards"][0]["version"], version.as_str());
    }

    // Restarted while the others serve readers, it serves correctly again.
    let stop = AtomicBool::new(false);
    let (survivors, restarted) = hosts.split_at_mut(1);
    let reads = std::thread::scope(|scope| {
        let readers: Vec<_> = (0..2)
            .map(|_| scope.spawn(|| read_continuously(restarted, kept, &stop)))
            .collect();
        survivors[0].restart();
        std::thread::sleep(Duration::from_millis(200));
        stop.store(true, Ordering::Relaxed);
        readers.into_iter().map(|r| r.join().unwrap()).sum::<u64>()
    });
    assert!(reads > 0);
    // Then the whole fleet, the restarted replica included, under readers.
    let stop = AtomicBool::new(false);
    let reads = std::thread::scope(|scope| {
        let readers: Vec<_> = (0..3)
            .map(|_| scope.spawn(|| read_continuously(&hosts, kept, &stop)))
            .collect();
        std::thread::sleep(Duration::from_millis(500));
        stop.store(true, Ordering::Relaxed);
        readers.into_iter().map(|r| r.join().unwrap()).sum::<u64>()
    });
    assert!(reads >= 3, "{reads}");
    let download = hosts[0].download_hashed(kept);
    assert_eq!(download.status, 200);
    assert_eq!(download.blake3, blake3_of(pseudo_random(3, 1 << 20)).1);
    assert_eq!(hosts[0].files_exists(cut).1, json!({"exists": false}));
    let (next, _) = register(&hosts, 0, "kept", "kept-2");
    assert_ne!(next, version);
    // And the cut upload can be made again, through the restarted replica.
    let small = 1 << 20;
    let (status, body) = hosts[0].upload(cut, pseudo_random(5, small), small, &[]);
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        hosts[2].download_hashed(cut).blake3,
        blake3_of(pseudo_random(5, small)).1
    );
}
