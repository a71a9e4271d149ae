//! `copy` between two real registries (both opsml-host): a production target that needs the
//! prod token, idempotence, conflicts, paths outside opsml-root:/, and a copy killed half way.

mod support;

use e2e::harness::{data_card, list_request, with_query, Host};
use serde_json::{json, Value};
use std::time::Duration;
use support::*;

const PROD: [(&str, &str); 2] = [("APP_ENV", "production"), ("OPSML_PROD_TOKEN", "s3cret")];
const WITH_TOKEN: [(&str, &str); 1] = [("X-Prod-Token", "s3cret")];

const PROJECT_UID: &str = "00000000000000000000000000000001";
const DATA_UID: &str = "00000000000000000000000000000002";
const RUN_UID: &str = "00000000000000000000000000000003";
const MODEL_UID: &str = "00000000000000000000000000000004";
const PIPELINE_UID: &str = "00000000000000000000000000000005";
const AUDIT_UID: &str = "00000000000000000000000000000006";

/// One card of each type, linked as the opsml client links them, with files and run metrics.
fn seed(source: &Host) {
    let root = "opsml-root:";
    register(
        source,
        "project",
        json!({"name": "proj", "repository": "team", "version": "1.0.0",
        "uid": PROJECT_UID, "project_id": 7, "timestamp": 1_790_000_000_000_001_u64}),
        &[],
    );
    upload_random(
        source,
        &format!("{root}/OPSML_PROJECT_REGISTRY/team/proj/v1.0.0/card.joblib"),
        1,
        200,
        &[],
    );

    let mut data = data_card("data", "team", "1.2.0", DATA_UID);
    data["runcard_uid"] = json!(RUN_UID);
    data["tags"] = json!({"split": "train"});
    register(source, "data", data, &[]);
    upload_random(
        source,
        &format!("{root}/OPSML_DATA_REGISTRY/team/data/v1.2.0/data.parquet"),
        2,
        3 << 20,
        &[],
    );
    upload_random(
        source,
        &format!("{root}/OPSML_DATA_REGISTRY/team/data/v1.2.0/card.joblib"),
        3,
        700,
        &[],
    );

    let artifact = format!("{root}/OPSML_RUN_REGISTRY/team/train/v1.0.0/artifacts/notes.txt");
    register(
        source,
        "run",
        json!({"name": "train", "repository": "team", "version": "1.0.0",
        "uid": RUN_UID, "contact": "me@example.com", "project": "proj", "datacard_uids": [DATA_UID],
        "modelcard_uids": [], "pipelinecard_uid": null, "tags": {"lr": "0.1"},
        "timestamp": 1_790_000_000_000_003_u64, "date": "2026-09-21",
        "artifact_uris": {"notes": {"name": "notes", "local_path": "/home/me/notes.txt", "remote_path": artifact}}}),
        &[],
    );
    upload_random(source, &artifact, 4, 5000, &[]);
    upload_random(
        source,
        &format!("{root}/OPSML_RUN_REGISTRY/team/train/v1.0.0/card.joblib"),
        5,
        400,
        &[],
    );
    let metrics = json!({"metric": [
        {"run_uid": RUN_UID, "name": "loss", "value": 0.5, "step": 1, "timestamp": null},
        {"run_uid": RUN_UID, "name": "loss", "value": 0.25, "step": 2, "timestamp": null},
        {"run_uid": RUN_UID, "name": "acc", "value": 0.9, "step": null, "timestamp": 1_790_000_000_u64},
    ]});
    let reply = source.request(
        "PUT",
        "/opsml/metrics",
        &[("Content-Type", "application/json")],
        Some(metrics.to_string().as_bytes()),
    );
    assert_eq!(reply.status, 200, "{}", reply.text());

    let mut model = model_card("clf", "team", "2.1.0", MODEL_UID);
    model["datacard_uid"] = json!(DATA_UID);
    model["runcard_uid"] = json!(RUN_UID);
    register(source, "model", model, &[]);
    let folder = format!("{root}/OPSML_MODEL_REGISTRY/team/clf/v2.1.0");
    for (i, file) in ["trained-model.joblib", "onnx-model.onnx"]
        .iter()
        .enumerate()
    {
        upload_random(
            source,
            &format!("{folder}/{file}"),
            10 + i as u64,
            2000 + i as u64,
            &[],
        );
    }
    let metadata = json!({"model_name": "clf", "model_uri": format!("{folder}/trained-model.joblib"),
        "onnx_uri": format!("{folder}/onnx-model.onnx"), "sample_data_uri": null});
    upload_bytes(
        source,
        &format!("{folder}/model-metadata.json"),
        metadata.to_string().as_bytes(),
        &[],
    );

    register(
        source,
        "pipeline",
        json!({"name": "pipe", "repository": "team", "version": "1.0.0",
        "uid": PIPELINE_UID, "contact": "me@example.com", "datacard_uids": [DATA_UID],
        "modelcard_uids": [MODEL_UID], "runcard_uids": [RUN_UID], "pipeline_code_uri": null}),
        &[],
    );
    upload_random(
        source,
        &format!("{root}/OPSML_PIPELINE_REGISTRY/team/pipe/v1.0.0/card.joblib"),
        20,
        300,
        &[],
    );

    register(
        source,
        "audit",
        json!({"name": "review", "repository": "team", "version": "1.0.0",
        "uid": AUDIT_UID, "contact": "me@example.com", "approved": true,
        "modelcards": [{"name": "clf", "version": "2.1.0", "card_type": "model"}], "datacards": [], "runcards": []}),
        &[],
    );
    upload_random(
        source,
        &format!("{root}/OPSML_AUDIT_REGISTRY/team/review/v1.0.0/card.joblib"),
        21,
        9000,
        &[],
    );
}

fn cards(host: &Host, registry: &str) -> Vec<Value> {
    let (status, body) = host.post_json(
        "/opsml/cards/list",
        &list_request(registry, None, None, None),
        &[],
    );
    assert_eq!(status, 200, "{body}");
    let mut cards = body["cards"].as_array().unwrap().clone();
    cards.sort_by_key(|c| c["uid"].as_str().unwrap_or("").to_string());
    cards
}

fn file_digests(host: &Host, path: &str) -> Vec<(String, u64, String)> {
    let (status, body) = host.get_json(&with_query("/opsml/files/list/info", &[("path", path)]));
    assert_eq!(status, 200, "{body}");
    let mut out: Vec<(String, u64, String)> = body["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap().to_string(),
                f["size"].as_u64().unwrap(),
                f["digest"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

fn metrics(host: &Host, run_uid: &str) -> Vec<Value> {
    let (status, body) = host.post_json("/opsml/metrics", &json!({"run_uid": run_uid}), &[]);
    assert_eq!(status, 200, "{body}");
    let mut m = body["metric"].as_array().unwrap().clone();
    m.sort_by_key(|v| v.to_string());
    m
}

const REGISTRIES: [&str; 6] = ["project", "data", "run", "model", "pipeline", "audit"];
const FOLDERS: [&str; 6] = [
    "opsml-root:/OPSML_PROJECT_REGISTRY",
    "opsml-root:/OPSML_DATA_REGISTRY",
    "opsml-root:/OPSML_RUN_REGISTRY",
    "opsml-root:/OPSML_MODEL_REGISTRY",
    "opsml-root:/OPSML_PIPELINE_REGISTRY",
    "opsml-root:/OPSML_AUDIT_REGISTRY",
];

fn assert_same_registries(source: &Host, target: &Host) {
    for registry in REGISTRIES {
        assert_eq!(
            cards(target, registry),
            cards(source, registry),
            "{registry} cards differ"
        );
    }
    for folder in FOLDERS {
        assert_eq!(
            file_digests(target, folder),
            file_digests(source, folder),
            "files under {folder} differ"
        );
    }
    assert_eq!(metrics(target, RUN_UID), metrics(source, RUN_UID));
}

#[test]
fn copy_to_a_production_registry_needs_the_prod_token_and_copies_everything_once() {
    let source = Host::start(&[]);
    let target = Host::start(&PROD);
    seed(&source);
    let (from, to) = (source.url(""), target.url(""));
    let spool_root = tempfile::tempdir().unwrap();
    let spool = spool_root.path().join("spool");
    let spool = spool.to_str().unwrap();
    let args = ["copy", "--from", &from, "--to", &to, "--spool-dir", spool];

    // No prod token, or a wrong one: refused with the access code, and nothing is written.
    let output = run_expect(&args, &[], EXIT_DENIED);
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("401")
            || String::from_utf8_lossy(&output.stderr).contains("403")
    );
    run_expect(&args, &[("OPSML_PROD_TOKEN", "wrong")], EXIT_DENIED);
    for registry in REGISTRIES {
        assert!(
            cards(&target, registry).is_empty(),
            "{registry}: written without the prod token"
        );
    }
    for folder in FOLDERS {
        assert!(
            file_digests(&target, folder).is_empty(),
            "{folder}: written without the prod token"
        );
    }

    // The dry run plans all six cards and writes nothing.
    let plan = run_expect(
        &[&args[..], &["--dry-run", "--json"]].concat(),
        &[("OPSML_PROD_TOKEN", "s3cret")],
        0,
    );
    let plan: Value = serde_json::from_slice(&plan.stdout).unwrap();
    assert_eq!(plan["cards"].as_array().unwrap().len(), 6, "{plan}");
    assert!(plan["cards"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["outcome"] == "planned"));
    assert!(cards(&target, "model").is_empty());

    let output = run_expect(&args, &[("OPSML_PROD_TOKEN", "s3cret")], 0);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("6 cards copied"), "{stderr}");
    // Same uids, versions, timestamps, dates, tags, links, project id; same bytes; same metrics.
    assert_same_registries(&source, &target);
    assert_eq!(cards(&target, "project")[0]["project_id"], 7);

    // Again: nothing to do, and it says so.
    let output = run_expect(&args, &[("OPSML_PROD_TOKEN", "s3cret")], 0);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("nothing to copy"), "{stderr}");
    assert_same_registries(&source, &target);

    // A card whose name and version the target holds under another uid is never overwritten.
    register(
        &source,
        "model",
        model_card("dup", "team", "1.0.0", "d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0"),
        &[],
    );
    register(
        &target,
        "model",
        model_card("dup", "team", "1.0.0", "e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1"),
        &WITH_TOKEN,
    );
    let output = run_expect(&args, &[("OPSML_PROD_TOKEN", "s3cret")], EXIT_SKIPPED);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("another uid") && stderr.contains("dup"),
        "{stderr}"
    );
    let dup: Vec<Value> = cards(&target, "model")
        .into_iter()
        .filter(|c| c["name"] == "dup")
        .collect();
    assert_eq!(dup.len(), 1);
    assert_eq!(dup[0]["uid"], "e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1");

    // A card naming a file outside opsml-root:/ is copied, and the file is named, not faked.
    register(
        &source,
        "pipeline",
        json!({"name": "odd", "repository": "team", "version": "1.0.0",
        "uid": "0dd00dd00dd00dd00dd00dd00dd00dd0", "contact": "me@example.com",
        "pipeline_code_uri": "s3://elsewhere/code.py"}),
        &[],
    );
    let output = run_expect(
        &[&args[..], &["--registry", "pipeline", "--name", "odd"]].concat(),
        &[("OPSML_PROD_TOKEN", "s3cret")],
        EXIT_SKIPPED,
    );
    assert!(String::from_utf8_lossy(&output.stderr).contains("s3://elsewhere/code.py"));
}

#[test]
fn a_copy_killed_half_way_finishes_on_the_next_run_with_nothing_duplicated() {
    let source = Host::start(&[]);
    let target = Host::start(&[]);
    seed(&source);
    let big = "opsml-root:/OPSML_MODEL_REGISTRY/team/clf/v2.1.0/weights.bin";
    upload_random(&source, big, 99, 48 << 20, &[]);

    // The proxy in front of the source holds the big file's bytes back; the copy is killed then.
    let proxy = Proxy::start(source.addr());
    proxy.hold_after(24 << 20);
    let (from, to) = (proxy.url(), target.url(""));
    // The same spool folder for both runs: the second resumes the first's partial download.
    let spool_root = tempfile::tempdir().unwrap();
    let spool = spool_root.path().join("spool");
    let spool = spool.to_str().unwrap();
    let mut child = spawn(
        &["copy", "--from", &from, "--to", &to, "--spool-dir", spool],
        &[],
    );
    proxy.wait_for(24 << 20, Duration::from_secs(120));
    std::thread::sleep(Duration::from_millis(300));
    child.kill().unwrap();
    child.wait().unwrap();
    drop(proxy);
    // The cards before the model made it; the model did not (its files come first).
    assert_eq!(cards(&target, "run").len(), 1);
    assert!(cards(&target, "model").is_empty());

    let from = source.url("");
    let args = ["copy", "--from", &from, "--to", &to, "--spool-dir", spool];
    let output = run_expect(&args, &[], 0);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("present  run team/train"), "{stderr}");
    assert_same_registries(&source, &target);
    run_expect(&args, &[], 0);
    assert_same_registries(&source, &target);
}

/// `get-model-metrics` (opsml-cli's command, shares this file's seed): a run's metrics by the
/// run's uid, the same through a model card's uid, and a uid of neither is not found.
#[test]
fn get_model_metrics_reads_a_runs_metrics_and_follows_a_model_to_its_run() {
    let host = Host::start(&[]);
    seed(&host);
    let url = host.url("");
    let env = [("OPSML_TRACKING_URI", url.as_str())];
    let by_run = run_expect(&["get-model-metrics", "--uid", RUN_UID], &env, 0);
    let table = String::from_utf8(by_run.stdout).unwrap();
    let rows: Vec<Vec<&str>> = table
        .lines()
        .map(|line| {
            line.split('│')
                .map(str::trim)
                .filter(|cell| !cell.is_empty())
                .collect()
        })
        .filter(|cells: &Vec<&str>| cells.len() == 4)
        .collect();
    assert_eq!(
        rows,
        [
            ["metric", "value", "step", "timestamp"],
            ["acc", "0.9", "None", "1790000000"],
            ["loss", "0.5", "1", "None"],
            ["loss", "0.25", "2", "None"],
        ],
        "{table}"
    );
    let by_model = run_expect(&["get-model-metrics", "--uid", MODEL_UID], &env, 0);
    assert_eq!(String::from_utf8(by_model.stdout).unwrap(), table);
    let unknown = run_expect(
        &[
            "get-model-metrics",
            "--uid",
            "0123456789abcdef0123456789abcdef",
        ],
        &env,
        EXIT_NOT_FOUND,
    );
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no run card and no model card"));
}
