//! The routes beyond the register/load flow: project ids, run metrics, file deletion and
//! file listings with sizes and digests.

use e2e::harness::{create_request, data_card, detail, with_query, Host};
use serde_json::{json, Value};

const ROOT: &str = "opsml-root:/OPSML_RUN_REGISTRY/team/run-a/v1.0.0";

#[test]
fn project_ids_are_stable_per_project_and_assigned_in_order() {
    let host = Host::dev();
    let id = |name: &str| {
        let (status, body) = host.get_json(&with_query(
            "/opsml/projects/id",
            &[("project_name", name), ("repository", "team")],
        ));
        assert_eq!(status, 200, "{body}");
        body["project_id"].as_i64().expect("an integer project_id")
    };
    assert_eq!(id("alpha"), 1);
    let card = json!({"name": "alpha", "repository": "team", "version": "1.0.0", "uid": "p1"});
    let (status, body) =
        host.post_json("/opsml/cards/create", &create_request("project", card), &[]);
    assert_eq!(status, 200, "{body}");
    assert_eq!(id("alpha"), 1, "an existing project keeps its id");
    assert_eq!(id("beta"), 2, "a new project gets the next id");
    let (status, body) = host.post_json(
        "/opsml/cards/list",
        &json!({"registry_type": "project", "name": "alpha", "repository": "team"}),
        &[],
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["cards"][0]["project_id"], 1, "{body}");
    let (status, body) = host.get_json("/opsml/projects/id?repository=team");
    assert_eq!(status, 422, "{body}");
    assert!(detail(&body).contains("project_name"), "{body}");
}

#[test]
fn metrics_are_recorded_and_read_per_run() {
    let host = Host::dev();
    let put = |body: Value| {
        let bytes = serde_json::to_vec(&body).unwrap();
        let reply = host.request(
            "PUT",
            "/opsml/metrics",
            &[("Content-Type", "application/json")],
            Some(&bytes),
        );
        (reply.status, reply.json())
    };
    let (status, body) = put(json!({"metric": [
        {"run_uid": "r1", "name": "mae", "value": 0.5, "step": 1, "timestamp": 10},
        {"run_uid": "r1", "name": "mae", "value": 0.25, "step": 2, "timestamp": 11},
        {"run_uid": "r1", "name": "r2", "value": 0.9, "step": null, "timestamp": null},
        {"run_uid": "r2", "name": "mae", "value": 7.0}
    ]}));
    assert_eq!((status, body), (200, json!({"complete": true})));

    let (status, body) = host.post_json("/opsml/metrics", &json!({"run_uid": "r1"}), &[]);
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"metric": [
            {"run_uid": "r1", "name": "mae", "value": 0.5, "step": 1, "timestamp": 10},
            {"run_uid": "r1", "name": "mae", "value": 0.25, "step": 2, "timestamp": 11},
            {"run_uid": "r1", "name": "r2", "value": 0.9, "step": null, "timestamp": null}
        ]})
    );
    let (_, body) = host.post_json(
        "/opsml/metrics",
        &json!({"run_uid": "r1", "name": ["r2"]}),
        &[],
    );
    assert_eq!(body["metric"].as_array().map(Vec::len), Some(1), "{body}");
    let (_, body) = host.post_json(
        "/opsml/metrics",
        &json!({"run_uid": "r1", "names_only": true}),
        &[],
    );
    assert_eq!(body, json!({"metric": ["mae", "r2"]}));
    let (_, body) = host.post_json("/opsml/metrics", &json!({"run_uid": "none"}), &[]);
    assert_eq!(
        body,
        json!({"metric": null}),
        "no metrics: null, as the reference answers"
    );

    let (status, body) = put(json!({"metric": [{"name": "no run"}]}));
    assert_eq!(status, 422, "{body}");
    assert!(detail(&body).contains("run_uid"), "{body}");
}

#[test]
fn metrics_and_registration_need_the_prod_token_in_production() {
    let host = Host::start(&[("APP_ENV", "production"), ("OPSML_PROD_TOKEN", "tok")]);
    let body =
        serde_json::to_vec(&json!({"metric": [{"run_uid": "r", "name": "m", "value": 1.0}]}))
            .unwrap();
    let reply = host.request("PUT", "/opsml/metrics", &[], Some(&body));
    assert_eq!(reply.status, 401, "{}", reply.text());
    let reply = host.request(
        "PUT",
        "/opsml/metrics",
        &[("X-Prod-Token", "tok")],
        Some(&body),
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    let register = json!({"name": "m", "repository": "r", "version": "1", "onnx": false});
    let (status, body) = host.post_json("/opsml/models/register", &register, &[]);
    assert_eq!(status, 401, "registering a model is a write: {body}");
    // Reads stay open.
    let (status, body) = host.post_json("/opsml/metrics", &json!({"run_uid": "r"}), &[]);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["metric"][0]["value"], 1.0);
}

#[test]
fn files_delete_removes_a_file_or_a_folder_and_list_info_describes_them() {
    let host = Host::dev();
    let payloads: [(&str, &[u8]); 3] = [("a.txt", b"alpha"), ("sub/b.bin", b"bravo!"), ("c", b"")];
    for (name, bytes) in payloads {
        let (status, body) = host.upload(&format!("{ROOT}/{name}"), bytes, bytes.len() as u64, &[]);
        assert_eq!(status, 200, "{body}");
    }
    let (status, body) = host.get_json(&with_query("/opsml/files/list/info", &[("path", ROOT)]));
    assert_eq!(status, 200, "{body}");
    let files = body["files"].as_array().expect("files");
    assert_eq!(files.len(), 3, "{body}");
    let a = &files[0];
    assert_eq!(a["path"], format!("{ROOT}/a.txt"));
    assert_eq!(a["size"], 5);
    assert_eq!(a["digest"], blake3::hash(b"alpha").to_hex().as_str());
    assert_eq!(a["digest_algorithm"], "blake3");
    assert!(
        a["created"].as_i64().is_some_and(|t| t > 1_700_000_000),
        "{a}"
    );

    let delete = |path: &str| host.get_json(&with_query("/opsml/files/delete", &[("path", path)]));
    assert_eq!(
        delete(&format!("{ROOT}/a.txt")),
        (200, json!({"deleted": true}))
    );
    let (_, body) = host.files_list(ROOT);
    assert_eq!(body["files"].as_array().map(Vec::len), Some(2), "{body}");
    assert_eq!(delete(ROOT), (200, json!({"deleted": true})));
    let (_, body) = host.files_list(ROOT);
    assert_eq!(body, json!({"files": []}));
    assert_eq!(
        delete(ROOT),
        (200, json!({"deleted": true})),
        "deleting nothing is fine"
    );
    let (status, body) = delete("opsml-root:/OPSML_RUN_REGISTRY");
    assert_eq!(status, 422, "a whole registry is never deleted: {body}");
    let (status, body) = delete("opsml-root:/OPSML_RUN_REGISTRY/../x");
    assert_eq!(status, 422, "{body}");
}

#[test]
fn deleting_a_card_and_its_folder_as_the_client_does() {
    let host = Host::dev();
    let card = data_card("gone", "team", "1.0.0", "d1");
    let (status, body) = host.post_json("/opsml/cards/create", &create_request("data", card), &[]);
    assert_eq!(status, 200, "{body}");
    let dir = "opsml-root:/OPSML_DATA_REGISTRY/team/gone/v1.0.0";
    let (status, _) = host.upload(&format!("{dir}/data.parquet"), &b"rows"[..], 4, &[]);
    assert_eq!(status, 200);
    let (status, body) = host.post_json(
        "/opsml/cards/delete",
        &json!({"card": {"name": "gone", "version": "1.0.0", "uid": "d1"}, "registry_type": "data"}),
        &[],
    );
    assert_eq!((status, body), (200, json!({"deleted": true})));
    let (status, body) = host.get_json(&with_query("/opsml/files/delete", &[("path", dir)]));
    assert_eq!((status, body), (200, json!({"deleted": true})));
    let (_, body) = host.post_json(
        "/opsml/cards/uid",
        &json!({"uid": "d1", "registry_type": "data"}),
        &[],
    );
    assert_eq!(body, json!({"uid_exists": false}));
    let (_, body) = host.files_exists(dir);
    assert_eq!(body, json!({"exists": false}));
}

#[test]
fn a_folder_downloads_as_one_zip_that_standard_tools_read() {
    let host = Host::dev();
    let big: Vec<u8> = (0..(5u32 << 19)).map(|i| (i % 253) as u8).collect();
    let files: [(&str, &[u8]); 3] = [
        ("model.joblib", b"weights"),
        ("sub/data.bin", &big),
        ("empty", b""),
    ];
    for (name, bytes) in files {
        let (status, body) = host.upload(&format!("{ROOT}/{name}"), bytes, bytes.len() as u64, &[]);
        assert_eq!(status, 200, "{body}");
    }
    let reply = host.get(&with_query("/opsml/files/download/ui", &[("path", ROOT)]));
    assert_eq!(reply.status, 200);
    assert_eq!(reply.headers.get("content-type"), Some("application/zip"));
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("folder.zip");
    std::fs::write(&archive, &reply.body).unwrap();
    let out = dir.path().join("out");
    // Python's zipfile as the independent reader: CRCs checked, ZIP64 records honoured.
    let status = std::process::Command::new("python3")
        .args([
            "-c",
            "import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); assert z.testzip() is None; z.extractall(sys.argv[2])",
        ])
        .arg(&archive)
        .arg(&out)
        .status()
        .expect("python3 runs");
    assert!(status.success(), "python's zipfile rejected the archive");
    for (name, bytes) in files {
        assert!(
            std::fs::read(out.join(name)).unwrap() == bytes,
            "{name} differs"
        );
    }
    // A single file comes back as itself; nothing there is a 404.
    let reply = host.get(&with_query(
        "/opsml/files/download/ui",
        &[("path", &format!("{ROOT}/model.joblib"))],
    ));
    assert_eq!(
        (reply.status, reply.body.as_slice()),
        (200, &b"weights"[..])
    );
    let reply = host.get(&with_query(
        "/opsml/files/download/ui",
        &[("path", &format!("{ROOT}/nothing"))],
    ));
    assert_eq!(reply.status, 404);
}

#[test]
fn model_metadata_is_found_by_name_and_version_or_uid() {
    let host = Host::dev();
    for (version, uid) in [("1.0.0", "m1"), ("1.1.0", "m2"), ("2.0.0-rc.1", "m3")] {
        let card = json!({"name": "clf", "repository": "team", "version": version, "uid": uid});
        let (status, body) =
            host.post_json("/opsml/cards/create", &create_request("model", card), &[]);
        assert_eq!(status, 200, "{body}");
        let metadata = json!({"model_name": "clf", "model_version": version, "model_uri": format!("uri-{version}")});
        let bytes = serde_json::to_vec(&metadata).unwrap();
        let path =
            format!("opsml-root:/OPSML_MODEL_REGISTRY/team/clf/v{version}/model-metadata.json");
        let (status, body) = host.upload(&path, bytes.as_slice(), bytes.len() as u64, &[]);
        assert_eq!(status, 200, "{body}");
    }
    let metadata = |request: Value| host.post_json("/opsml/models/metadata", &request, &[]);
    let version_of = |(status, body): (u16, Value)| {
        assert_eq!(status, 200, "{body}");
        body["model_version"].as_str().unwrap().to_string()
    };
    assert_eq!(
        version_of(metadata(json!({"name": "clf", "repository": "team"}))),
        "2.0.0-rc.1"
    );
    assert_eq!(
        version_of(metadata(
            json!({"name": "clf", "repository": "team", "ignore_release_candidate": true})
        )),
        "1.1.0"
    );
    assert_eq!(
        version_of(metadata(json!({"name": "clf", "version": "1.0"}))),
        "1.0.0"
    );
    assert_eq!(version_of(metadata(json!({"uid": "m2"}))), "1.1.0");
    let (status, body) = metadata(json!({"name": "nope"}));
    assert_eq!((status, detail(&body)), (404, "Model not found"));
    let (status, _) = metadata(json!({}));
    assert_eq!(status, 422);
}

#[test]
fn model_metrics_and_comparisons_come_from_the_models_runs() {
    let host = Host::dev();
    let put = |metrics: Value| {
        let bytes = serde_json::to_vec(&json!({ "metric": metrics })).unwrap();
        let reply = host.request("PUT", "/opsml/metrics", &[], Some(&bytes));
        assert_eq!(reply.status, 200, "{}", reply.text());
    };
    put(json!([
        {"run_uid": "r1", "name": "mae", "value": 0.5, "step": 1},
        {"run_uid": "r1", "name": "acc", "value": 0.9},
        {"run_uid": "r2", "name": "mae", "value": 0.3, "step": 1},
        {"run_uid": "r2", "name": "acc", "value": 0.8}
    ]));
    for (version, uid, run) in [
        ("1.0.0", "m1", Some("r1")),
        ("1.1.0", "m2", Some("r2")),
        ("1.2.0", "m3", None),
    ] {
        let card = json!({"name": "reg", "repository": "team", "version": version, "uid": uid, "runcard_uid": run});
        let (status, body) =
            host.post_json("/opsml/cards/create", &create_request("model", card), &[]);
        assert_eq!(status, 200, "{body}");
    }
    let compare = |body: Value| host.post_json("/opsml/models/compare_metrics", &body, &[]);
    let wins = |report: &Value, metric: &str| -> Vec<bool> {
        report["report"][metric]
            .as_array()
            .unwrap_or_else(|| panic!("{report}"))
            .iter()
            .map(|b| b["challenger_win"].as_bool().unwrap())
            .collect()
    };
    let request = json!({"metric_name": ["mae", "acc"], "lower_is_better": [true, false],
                         "challenger_uid": "m2", "champion_uid": ["m1"]});
    let (status, report) = compare(request);
    assert_eq!(status, 200, "{report}");
    assert_eq!(
        (
            report["challenger_name"].as_str(),
            report["challenger_version"].as_str()
        ),
        (Some("reg"), Some("1.1.0"))
    );
    assert_eq!(wins(&report, "mae"), [true], "0.3 < 0.5, lower is better");
    assert_eq!(wins(&report, "acc"), [false], "0.8 < 0.9, higher is better");
    let battle = &report["report"]["mae"][0];
    assert_eq!(battle["champion_version"], "1.0.0");
    assert_eq!(battle["champion_metric"]["value"], 0.5);
    assert_eq!(
        battle["challenger_metric"],
        json!({"name": "mae", "value": 0.3, "step": 1, "timestamp": null})
    );

    // No champion named: the highest earlier version of the same model.
    let (_, report) =
        compare(json!({"metric_name": ["mae"], "lower_is_better": true, "challenger_uid": "m2"}));
    assert_eq!(
        report["report"]["mae"][0]["champion_version"], "1.0.0",
        "{report}"
    );
    let (_, report) =
        compare(json!({"metric_name": ["mae"], "lower_is_better": true, "challenger_uid": "m1"}));
    assert_eq!(
        report["report"]["mae"][0]["champion_name"], "No model",
        "{report}"
    );
    assert_eq!(wins(&report, "mae"), [true]);

    let (status, body) =
        compare(json!({"metric_name": ["mae"], "lower_is_better": true, "challenger_uid": "m3"}));
    assert_eq!(status, 422, "{body}");
    assert!(
        detail(&body).contains("not associated with a run"),
        "{body}"
    );
    let (status, _) = compare(
        json!({"metric_name": ["mae", "acc"], "lower_is_better": [true, false, true], "challenger_uid": "m2"}),
    );
    assert_eq!(status, 422);
    let (status, _) =
        compare(json!({"metric_name": ["mae"], "lower_is_better": true, "challenger_uid": "nope"}));
    assert_eq!(status, 404);

    let (status, body) = host.post_json("/opsml/models/metrics", &json!({"uid": "m2"}), &[]);
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["metrics"]["metric"].as_array().map(Vec::len),
        Some(2),
        "{body}"
    );
    let (status, _) = host.post_json(
        "/opsml/models/metrics",
        &json!({"name": "reg", "repository": "team"}),
        &[],
    );
    assert_eq!(status, 422, "three versions match");
}

#[test]
fn registering_a_model_copies_it_to_the_deployment_folder() {
    let host = Host::dev();
    let dir = |v: &str| format!("opsml-root:/OPSML_MODEL_REGISTRY/team/clf/v{v}");
    for (version, uid, weights) in [
        ("1.0.0", "m1", "weights-1.0"),
        ("1.1.0", "m2", "weights-1.1"),
        ("2.0.0", "m3", "weights-2.0"),
    ] {
        let card = json!({"name": "clf", "repository": "team", "version": version, "uid": uid});
        let (status, body) =
            host.post_json("/opsml/cards/create", &create_request("model", card), &[]);
        assert_eq!(status, 200, "{body}");
        let model_uri = format!("{}/trained-model.joblib", dir(version));
        let (status, _) = host.upload(&model_uri, weights.as_bytes(), weights.len() as u64, &[]);
        assert_eq!(status, 200);
        let metadata = json!({"model_name": "clf", "model_version": version, "model_repository": "team",
                              "model_uri": model_uri, "onnx_uri": null});
        let bytes = serde_json::to_vec(&metadata).unwrap();
        let (status, _) = host.upload(
            &format!("{}/model-metadata.json", dir(version)),
            bytes.as_slice(),
            bytes.len() as u64,
            &[],
        );
        assert_eq!(status, 200);
    }
    let register = |version: &str, onnx: bool| {
        host.post_json(
            "/opsml/models/register",
            &json!({"name": "clf", "repository": "team", "version": version, "onnx": onnx}),
            &[],
        )
    };
    let (status, body) = register("1", false);
    assert_eq!(
        (status, &body),
        (200, &json!("opsml-root:/model_registry/team/clf/v1"))
    );
    let folder = body.as_str().unwrap();
    let (_, listed) = host.files_list(folder);
    assert_eq!(
        listed,
        json!({"files": [format!("{folder}/model-settings.json"), format!("{folder}/trained-model.joblib")]})
    );
    let (status, _, bytes) = host.download(&format!("{folder}/trained-model.joblib"));
    assert_eq!(
        (status, bytes.as_slice()),
        (200, &b"weights-1.1"[..]),
        "the highest 1.x"
    );
    let (_, _, settings) = host.download(&format!("{folder}/model-settings.json"));
    let settings: Value = serde_json::from_slice(&settings).unwrap();
    assert_eq!(settings["parameters"]["uri"], "./trained-model.joblib");
    assert_eq!(settings["parameters"]["extra"]["model_version"], "1.1.0");

    // Registering again after a new 1.x version replaces the folder's content.
    let card = json!({"name": "clf", "repository": "team", "version": "1.2.0", "uid": "m4"});
    host.post_json("/opsml/cards/create", &create_request("model", card), &[]);
    let uri = format!("{}/trained-model.joblib", dir("1.2.0"));
    host.upload(&uri, &b"weights-1.2"[..], 11, &[]);
    let metadata = serde_json::to_vec(&json!({"model_name": "clf", "model_version": "1.2.0", "model_repository": "team", "model_uri": uri})).unwrap();
    host.upload(
        &format!("{}/model-metadata.json", dir("1.2.0")),
        metadata.as_slice(),
        metadata.len() as u64,
        &[],
    );
    assert_eq!(register("1", false).0, 200);
    let (_, _, bytes) = host.download(&format!("{folder}/trained-model.joblib"));
    assert_eq!(bytes, b"weights-1.2");
    assert_eq!(
        register("1.0", false).1,
        json!("opsml-root:/model_registry/team/clf/v1.0")
    );

    let (status, body) = register("1", true);
    assert_eq!(status, 422, "no ONNX model: {body}");
    assert!(detail(&body).contains("onnx_uri"), "{body}");
    for bad in ["1.x", "1.2.3.4", "", "v1"] {
        assert_eq!(register(bad, false).0, 422, "{bad}");
    }
    assert_eq!(register("7", false).0, 404);
    // The deployment folder is readable, never uploadable.
    let (status, _) = host.upload(
        "opsml-root:/model_registry/team/clf/v1/x.bin",
        &b"x"[..],
        1,
        &[],
    );
    assert_eq!(status, 422);
}

#[test]
fn readiness_answers_ok_for_the_configured_backends_without_credentials() {
    let host = Host::start(&[("OPSML_USERNAME", "u"), ("OPSML_PASSWORD", "p")]);
    let (status, body) = host.get_json("/opsml/readyz");
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"ready": true, "database": "ok", "blob_store": "ok"})
    );
}
