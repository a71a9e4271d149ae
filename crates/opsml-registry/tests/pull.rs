//! `pull` and `download-model` against the real registry (opsml-host with the built components),
//! through a TCP proxy where a test needs to count, corrupt or hold back file bytes.

mod support;

use e2e::harness::Host;
use serde_json::Value;
use std::time::Duration;
use support::*;

const MODEL_ROOT: &str = "opsml-root:/OPSML_MODEL_REGISTRY";

/// A model card `team/clf` v1.0.0 with files in two folders.
fn seed_small_model(host: &Host) -> Vec<(String, String)> {
    let folder = format!("{MODEL_ROOT}/team/clf/v1.0.0");
    let mut files = Vec::new();
    for (i, (rel, len)) in [
        ("model.onnx", 300_000u64),
        ("weights/part-0.bin", 70_000),
        ("weights/part-1.bin", 1),
        ("model-metadata.json", 0),
    ]
    .iter()
    .enumerate()
    {
        let digest = upload_random(host, &format!("{folder}/{rel}"), 100 + i as u64, *len, &[]);
        files.push((rel.to_string(), digest));
    }
    register(
        host,
        "model",
        model_card("clf", "team", "1.0.0", "a1b2c3d4e5f60718293a4b5c6d7e8f90"),
        &[],
    );
    files
}

fn manifest_files(stdout: &[u8]) -> Vec<(String, u64, String)> {
    let manifest: Value = serde_json::from_slice(stdout).expect("--json prints JSON");
    manifest["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap().to_string(),
                f["size"].as_u64().unwrap(),
                f["digest"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn pull_writes_every_file_in_the_cards_layout_verified_and_prints_a_manifest() {
    let host = Host::start(&[]);
    let expected = seed_small_model(&host);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let url = host.url("");
    // A range the server resolves (`~1.0` is 1.0.x).
    let output = run_expect(
        &[
            "pull",
            "--name",
            "clf",
            "--repository",
            "team",
            "--version",
            "~1.0",
            "--write-dir",
            out.to_str().unwrap(),
            "--json",
        ],
        &[("OPSML_TRACKING_URI", &url)],
        0,
    );
    let manifest: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(manifest["version"], "1.0.0");
    assert_eq!(manifest["uid"], "a1b2c3d4e5f60718293a4b5c6d7e8f90");
    assert_eq!(manifest["registry"], "model");
    let listed = manifest_files(&output.stdout);
    assert_eq!(listed.len(), expected.len());
    for (rel, digest) in &expected {
        let local = out.join(rel);
        assert_eq!(&blake3_file(&local), digest, "{rel}");
        let entry = listed
            .iter()
            .find(|(p, _, _)| p == rel)
            .expect("in the manifest");
        assert_eq!(&entry.2, digest);
        assert_eq!(entry.1, std::fs::metadata(&local).unwrap().len());
    }
    // Nothing else is left in the folder: no partial files, no lock.
    let mut names: Vec<String> = expected.iter().map(|(r, _)| r.clone()).collect();
    names.sort();
    assert_eq!(files_under(&out), names);

    // --include/--exclude pick files by their path in the card.
    let some = dir.path().join("some");
    run_expect(
        &[
            "pull",
            "--name",
            "clf",
            "--include",
            "weights/*",
            "--exclude",
            "*-1.bin",
            "--write-dir",
            some.to_str().unwrap(),
            "-q",
        ],
        &[("OPSML_TRACKING_URI", &url)],
        0,
    );
    assert_eq!(files_under(&some), vec!["weights/part-0.bin".to_string()]);

    // What does not exist says so with its own exit code; bad flags with theirs.
    run_expect(
        &["pull", "--name", "clf", "--version", "2"],
        &[("OPSML_TRACKING_URI", &url)],
        EXIT_NOT_FOUND,
    );
    run_expect(
        &["pull", "--uid", "x", "--name", "clf"],
        &[("OPSML_TRACKING_URI", &url)],
        2,
    );
    run_expect(&["pull", "--name", "clf"], &[], 2);
}

#[test]
fn a_second_pull_reads_no_file_bytes() {
    let host = Host::start(&[]);
    seed_small_model(&host);
    let proxy = Proxy::start(host.addr());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m");
    let args = [
        "pull",
        "--uid",
        "a1b2c3d4e5f60718293a4b5c6d7e8f90",
        "--write-dir",
        out.to_str().unwrap(),
    ];
    let env = [("OPSML_TRACKING_URI", proxy.url())];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    run_expect(&args, &env, 0);
    let first = proxy.counted();
    assert_eq!(
        first,
        300_000 + 70_000 + 1,
        "the first pull reads every file once"
    );
    let second = run_expect(&args, &env, 0);
    assert_eq!(proxy.counted(), first, "the second pull read file bytes");
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(stderr.contains("0 downloaded"), "{stderr}");
    // A file changed locally is fetched again, and only that one.
    std::fs::write(out.join("weights/part-0.bin"), b"tampered").unwrap();
    run_expect(&args, &env, 0);
    assert_eq!(proxy.counted(), first + 70_000);
}

#[test]
fn corrupted_bytes_fail_with_the_integrity_code_and_leave_nothing_at_the_final_path() {
    let host = Host::start(&[]);
    let path = format!("{MODEL_ROOT}/team/big/v1.0.0/model.bin");
    upload_random(&host, &path, 7, 8 << 20, &[]);
    register(
        &host,
        "model",
        model_card("big", "team", "1.0.0", "0badc0de0badc0de0badc0de0badc0d"),
        &[],
    );
    let proxy = Proxy::start(host.addr());
    proxy.corrupt();
    let dir = tempfile::tempdir().unwrap();
    let url = proxy.url();
    // One stream (hashed as it arrives), and parallel ranges (hashed once whole).
    for chunk_mib in ["256", "2"] {
        let out = dir.path().join(chunk_mib);
        let args = ["pull", "--name", "big", "--chunk-size", chunk_mib];
        let output = run_expect(
            &[&args[..], &["--write-dir", out.to_str().unwrap()]].concat(),
            &[("OPSML_TRACKING_URI", &url)],
            EXIT_INTEGRITY,
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("hash to"), "{stderr}");
        assert!(
            !out.join("model.bin").exists(),
            "a corrupted file reached its final path"
        );
        assert_eq!(
            files_under(&out),
            Vec::<String>::new(),
            "partial files were left"
        );
    }
}

#[test]
fn a_killed_pull_resumes_from_its_partial_file_and_transfers_less_than_half() {
    const LEN: u64 = 256 << 20;
    let host = Host::start(&[]);
    let path = format!("{MODEL_ROOT}/team/huge/v2.0.0/weights.bin");
    let digest = upload_random(&host, &path, 0x5eed, LEN, &[]);
    register(
        &host,
        "model",
        model_card("huge", "team", "2.0.0", "cafe0000cafe0000cafe0000cafe0000"),
        &[],
    );
    let dir = tempfile::tempdir().unwrap();
    // Parallel ranges, then one stream (`Range: bytes=N-`, its digest carried on from the
    // partial file's bytes).
    for (name, jobs, chunk_mib) in [("ranges", "4", "32"), ("stream", "1", "1024")] {
        let out = dir.path().join(name);
        let args = [
            "pull",
            "--name",
            "huge",
            "--jobs",
            jobs,
            "--chunk-size",
            chunk_mib,
            "--write-dir",
        ];
        let args = [&args[..], &[out.to_str().unwrap()]].concat();

        // First run: the proxy stops forwarding after 200 MiB; the process is killed while held.
        let held = Proxy::start(host.addr());
        held.hold_after(200 << 20);
        let url = held.url();
        let mut child = spawn(&args, &[("OPSML_TRACKING_URI", &url)]);
        held.wait_for(200 << 20, Duration::from_secs(120));
        // Let the last forwarded bytes be written and recorded.
        std::thread::sleep(Duration::from_millis(500));
        child.kill().unwrap();
        child.wait().unwrap();
        drop(held);
        assert!(!out.join("weights.bin").exists());
        let partial = out.join(".weights.bin.opsml-partial");
        assert!(
            partial.exists(),
            "{name}: the partial file is kept: {:?}",
            files_under(&out)
        );

        // Second run: only what is missing goes through.
        let counting = Proxy::start(host.addr());
        let url = counting.url();
        run_expect(&args, &[("OPSML_TRACKING_URI", &url)], 0);
        let second = counting.counted();
        assert!(
            second < LEN / 2,
            "{name}: the second run transferred {second} of {LEN} bytes"
        );
        assert!(second > 0, "{name}");
        assert_eq!(blake3_file(&out.join("weights.bin")), digest, "{name}");
        assert_eq!(files_under(&out), vec!["weights.bin".to_string()]);
    }
}

#[test]
fn two_pulls_into_one_folder_take_turns() {
    let host = Host::start(&[]);
    let path = format!("{MODEL_ROOT}/team/pair/v1.0.0/model.bin");
    let digest = upload_random(&host, &path, 3, 4 << 20, &[]);
    register(
        &host,
        "model",
        model_card("pair", "team", "1.0.0", "beef0000beef0000beef0000beef0000"),
        &[],
    );
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m");
    let args = [
        "pull",
        "--name",
        "pair",
        "--write-dir",
        out.to_str().unwrap(),
    ];

    // The first pull holds the lock while the proxy holds its bytes back.
    let proxy = Proxy::start(host.addr());
    proxy.hold_after(1 << 20);
    let proxied = proxy.url();
    let first = spawn(&args, &[("OPSML_TRACKING_URI", &proxied)]);
    proxy.wait_for(1 << 20, Duration::from_secs(60));
    let direct = host.url("");
    let mut second = spawn(&args, &[("OPSML_TRACKING_URI", &direct)]);
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        second.try_wait().unwrap().is_none(),
        "the second pull did not wait for the first"
    );
    proxy.release();
    let first = first.wait_with_output().unwrap();
    let second_out = second.wait_with_output().unwrap();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(
        second_out.status.success(),
        "{}",
        String::from_utf8_lossy(&second_out.stderr)
    );
    let waited = String::from_utf8_lossy(&second_out.stderr);
    assert!(waited.contains("waiting for another pull"), "{waited}");
    // The second found the file in place and verified: it downloaded nothing.
    assert!(waited.contains("0 downloaded"), "{waited}");
    assert_eq!(blake3_file(&out.join("model.bin")), digest);
}

#[test]
fn a_locked_manifest_pins_the_card_and_its_bytes() {
    let host = Host::start(&[]);
    seed_small_model(&host);
    let dir = tempfile::tempdir().unwrap();
    let url = host.url("");
    let env = [("OPSML_TRACKING_URI", url.as_str())];
    let first = dir.path().join("first");
    let output = run_expect(
        &[
            "pull",
            "--name",
            "clf",
            "--repository",
            "team",
            "--version",
            "1",
            "--write-dir",
            first.to_str().unwrap(),
            "--json",
            "-q",
        ],
        &env,
        0,
    );
    let lock = dir.path().join("model.lock.json");
    std::fs::write(&lock, &output.stdout).unwrap();

    // The manifest alone names the card; the same bytes pass.
    let again = dir.path().join("again");
    run_expect(
        &[
            "pull",
            "--locked",
            lock.to_str().unwrap(),
            "--write-dir",
            again.to_str().unwrap(),
        ],
        &env,
        0,
    );
    assert_eq!(files_under(&again), files_under(&first));

    // A newer version matching the same range is not what was locked.
    upload_random(
        &host,
        &format!("{MODEL_ROOT}/team/clf/v1.1.0/model.onnx"),
        9,
        10,
        &[],
    );
    register(
        &host,
        "model",
        model_card("clf", "team", "1.1.0", "ffff0000ffff0000ffff0000ffff0000"),
        &[],
    );
    let newer = dir.path().join("newer");
    let output = run_expect(
        &[
            "pull",
            "--name",
            "clf",
            "--repository",
            "team",
            "--version",
            "1",
            "--locked",
            lock.to_str().unwrap(),
            "--write-dir",
            newer.to_str().unwrap(),
        ],
        &env,
        EXIT_INTEGRITY,
    );
    assert!(String::from_utf8_lossy(&output.stderr).contains("locked"));
    assert!(!newer.join("model.onnx").exists());

    // A file whose bytes changed on the server fails too, before anything is written.
    upload_random(
        &host,
        &format!("{MODEL_ROOT}/team/clf/v1.0.0/weights/part-0.bin"),
        77,
        70_000,
        &[],
    );
    let changed = dir.path().join("changed");
    let output = run_expect(
        &[
            "pull",
            "--locked",
            lock.to_str().unwrap(),
            "--write-dir",
            changed.to_str().unwrap(),
        ],
        &env,
        EXIT_INTEGRITY,
    );
    assert!(String::from_utf8_lossy(&output.stderr).contains("weights/part-0.bin has digest"));
    assert!(files_under(&changed).is_empty());
}

#[test]
fn download_model_writes_what_opsml_cli_writes() {
    let host = Host::start(&[]);
    let folder = format!("{MODEL_ROOT}/team/reg/v1.0.0");
    let metadata = serde_json::json!({
        "model_name": "reg", "model_class": "SklearnEstimator", "model_type": "LinearRegression",
        "model_interface": "SklearnModel", "onnx_uri": format!("{folder}/onnx-model.onnx"),
        "onnx_version": "1.16.0", "model_uri": format!("{folder}/trained-model.joblib"),
        "model_version": "1.0.0", "model_repository": "team",
        "sample_data_uri": format!("{folder}/sample-model-data.joblib"), "opsml_version": "2.2.4",
        "data_schema": {"data_type": "pandas.core.frame.DataFrame",
            "input_features": {"f0": {"feature_type": "float32", "shape": [1]}},
            "output_features": {"outputs": {"feature_type": "float32", "shape": [1]}},
            "onnx_input_features": null, "onnx_output_features": null, "onnx_data_type": null, "onnx_version": "1.16.0"}
    });
    upload_bytes(
        &host,
        &format!("{folder}/model-metadata.json"),
        metadata.to_string().as_bytes(),
        &[],
    );
    let onnx = upload_random(&host, &format!("{folder}/onnx-model.onnx"), 1, 5000, &[]);
    let trained = upload_random(
        &host,
        &format!("{folder}/trained-model.joblib"),
        2,
        800,
        &[],
    );
    register(
        &host,
        "model",
        model_card("reg", "team", "1.0.0", "1234567812345678123456781234abcd"),
        &[],
    );
    let dir = tempfile::tempdir().unwrap();
    let url = host.url("");
    let env = [("OPSML_TRACKING_URI", url.as_str())];
    let onnx_dir = dir.path().join("onnx");
    run_expect(
        &[
            "download-model",
            "--name",
            "reg",
            "--repository",
            "team",
            "--version",
            "1.0.0",
            "--onnx",
            "--write-dir",
            onnx_dir.to_str().unwrap(),
        ],
        &env,
        0,
    );
    assert_eq!(
        files_under(&onnx_dir),
        vec!["model-metadata.json", "onnx-model.onnx"]
    );
    assert_eq!(blake3_file(&onnx_dir.join("onnx-model.onnx")), onnx);
    let written: Value =
        serde_json::from_slice(&std::fs::read(onnx_dir.join("model-metadata.json")).unwrap())
            .unwrap();
    // opsml-cli's struct: its 18 keys in its order, without opsml_version.
    let keys: Vec<&str> = written
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys.first(), Some(&"model_name"));
    assert_eq!(keys.last(), Some(&"quantized_model_uri"));
    assert_eq!(keys.len(), 18);
    assert!(written.get("opsml_version").is_none());

    let trained_dir = dir.path().join("trained");
    run_expect(
        &[
            "download-model",
            "--uid",
            "1234567812345678123456781234abcd",
            "--write-dir",
            trained_dir.to_str().unwrap(),
        ],
        &env,
        0,
    );
    assert_eq!(
        files_under(&trained_dir),
        vec!["model-metadata.json", "trained-model.joblib"]
    );
    assert_eq!(
        blake3_file(&trained_dir.join("trained-model.joblib")),
        trained
    );

    // opsml-cli's argument rule and its messages.
    let output = run_expect(&["download-model", "--uid", "x", "--name", "reg"], &env, 2);
    assert!(String::from_utf8_lossy(&output.stderr).contains("either a uid or a name"));
    run_expect(
        &[
            "download-model",
            "--name",
            "reg",
            "--quantize",
            "--onnx",
            "--write-dir",
            dir.path().join("q").to_str().unwrap(),
        ],
        &env,
        EXIT_NOT_FOUND,
    );
}
