//! Every route's rules, in process: real SQLite with the real schema, the key-value blob
//! layout over a map ([`crate::testing::Registry`]). What a component adds is only Spin's
//! request and response; the end-to-end suites check that on every runtime.

use crate::request::Method::{Delete, Get, Post, Put};
use crate::routes::Route;
use crate::routes::{
    admin_routes, card_reads, card_writes, file_reads, file_writes, model_routes, run_metrics,
};
use crate::testing::{Registry, Reply};
use serde_json::{json, Value};

const ADMIN: &str = "an-admin-token-of-at-least-32-characters";

fn post(
    registry: &Registry,
    route: Route,
    path: &str,
    body: Value,
    headers: &[(&str, &str)],
) -> Reply {
    let mut all = vec![("content-type", "application/json")];
    all.extend_from_slice(headers);
    registry.call(route, Post, path, &all, body.to_string().as_bytes())
}

fn card(name: &str, repository: &str, version: &str, uid: &str) -> Value {
    json!({"name": name, "repository": repository, "version": version, "uid": uid,
           "contact": "me@example.com"})
}

fn create(registry: &Registry, kind: &str, card: Value, headers: &[(&str, &str)]) -> Reply {
    post(
        registry,
        card_writes,
        "/opsml/cards/create",
        json!({"registry_type": kind, "card": card}),
        headers,
    )
}

fn list(registry: &Registry, body: Value, headers: &[(&str, &str)]) -> Vec<Value> {
    let reply = post(registry, card_reads, "/opsml/cards/list", body, headers);
    assert_eq!(reply.status, 200, "{}", reply.detail());
    reply.json()["cards"].as_array().unwrap().clone()
}

/// A multipart body as the opsml client sends it, and its content type.
fn multipart(filename: &str, bytes: &[u8]) -> (String, Vec<u8>) {
    let boundary = "xyzzy0123";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

fn upload(registry: &Registry, path: &str, bytes: &[u8], headers: &[(&str, &str)]) -> Reply {
    let (content_type, body) = multipart(path.rsplit('/').next().unwrap(), bytes);
    let mut all = vec![
        ("write_path", path),
        ("content-type", content_type.as_str()),
    ];
    all.extend_from_slice(headers);
    registry.call(file_writes, Post, "/opsml/files/upload", &all, &body)
}

fn get(registry: &Registry, route: Route, path_and_query: &str, headers: &[(&str, &str)]) -> Reply {
    registry.call(route, Get, path_and_query, headers, b"")
}

fn download(registry: &Registry, path: &str, headers: &[(&str, &str)]) -> Reply {
    registry.call_streamed(
        file_reads,
        &format!("/opsml/files/download?path={}", encode(path)),
        headers,
    )
}

fn encode(value: &str) -> String {
    value.replace(':', "%3A")
}

fn audit_actions(registry: &Registry) -> Vec<String> {
    let reply = get(
        registry,
        admin_routes,
        "/opsml/admin/audit?limit=1000",
        &[("authorization", &format!("Bearer {ADMIN}"))],
    );
    assert_eq!(reply.status, 200, "{}", reply.detail());
    reply.json()["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["action"].as_str().unwrap().to_string())
        .collect()
}

/// A registry with the admin token set (so access control is on) and one token per scope.
fn guarded() -> (Registry, String, String) {
    let registry = Registry::new().with(&[("admin_token", ADMIN)]);
    let make = |scope: &str, repositories: Value| {
        let reply = post(
            &registry,
            admin_routes,
            "/opsml/admin/tokens",
            json!({"name": scope, "scope": scope, "repositories": repositories}),
            &[("authorization", &format!("Bearer {ADMIN}"))],
        );
        assert_eq!(reply.status, 200, "{}", reply.detail());
        format!("Bearer {}", reply.json()["token"].as_str().unwrap())
    };
    let reader = make("read", json!(["team-a"]));
    let writer = make("write", json!(["team-a"]));
    (registry, reader, writer)
}

// ----- cards -----

#[test]
fn versions_are_counted_by_number_and_a_taken_version_is_a_conflict() {
    let registry = Registry::new();
    let ask = |version_type: &str| {
        let reply = post(
            &registry,
            card_writes,
            "/opsml/cards/version",
            json!({"name": "m", "repository": "r", "registry_type": "model", "version_type": version_type}),
            &[],
        );
        assert_eq!(reply.status, 200, "{}", reply.detail());
        reply.json()["version"].as_str().unwrap().to_string()
    };
    assert_eq!(ask("minor"), "1.0.0");
    for version in ["1.2.0", "1.10.0", "1.9.0"] {
        assert_eq!(
            create(&registry, "model", card("m", "r", version, version), &[]).status,
            200
        );
    }
    assert_eq!(ask("minor"), "1.11.0");
    assert_eq!(ask("major"), "2.0.0");
    let again = create(&registry, "model", card("m", "r", "1.9.0", "other"), &[]);
    assert_eq!(again.status, 409, "{}", again.detail());
    let cards = list(
        &registry,
        json!({"registry_type": "model", "name": "m"}),
        &[],
    );
    let versions: Vec<&str> = cards
        .iter()
        .map(|c| c["version"].as_str().unwrap())
        .collect();
    assert_eq!(versions, ["1.10.0", "1.9.0", "1.2.0"]);
    assert_eq!(cards[0]["app_env"], "development");
    let unknown = create(
        &registry,
        "model",
        json!({"name": "x", "repository": "r", "version": "1.0.0", "bogus": 1}),
        &[],
    );
    assert_eq!(unknown.status, 422);
    let bad_registry = create(&registry, "nothing", card("m", "r", "1.0.0", "u"), &[]);
    assert_eq!(bad_registry.status, 422);
}

#[test]
fn update_and_delete_change_only_what_exists_and_leave_records() {
    let registry = Registry::new().with(&[("admin_token", ADMIN)]);
    let admin = format!("Bearer {ADMIN}");
    let auth = [("authorization", admin.as_str())];
    assert_eq!(
        create(&registry, "data", card("d", "r", "1.0.0", "d1"), &auth).status,
        200
    );
    let mut changed = card("d", "r", "1.0.0", "d1");
    changed["contact"] = json!("new@example.com");
    let reply = post(
        &registry,
        card_writes,
        "/opsml/cards/update",
        json!({"registry_type": "data", "card": changed}),
        &auth,
    );
    assert_eq!(reply.json(), json!({"updated": true}));
    let reply = post(
        &registry,
        card_writes,
        "/opsml/cards/update",
        json!({"registry_type": "data", "card": card("d", "r", "1.0.0", "nope")}),
        &auth,
    );
    assert_eq!(reply.json(), json!({"updated": false}));
    assert_eq!(
        list(
            &registry,
            json!({"registry_type": "data", "uid": "d1"}),
            &auth
        )[0]["contact"],
        "new@example.com"
    );
    let reply = post(
        &registry,
        card_writes,
        "/opsml/cards/delete",
        json!({"registry_type": "data", "card": {"uid": "d1"}}),
        &auth,
    );
    assert_eq!(reply.json(), json!({"deleted": true}));
    assert!(list(&registry, json!({"registry_type": "data"}), &auth).is_empty());
    assert_eq!(
        audit_actions(&registry),
        ["card.delete", "card.update", "card.create"]
    );
}

#[test]
fn a_token_limited_to_a_repository_reads_and_writes_only_there() {
    let (registry, reader, writer) = guarded();
    let as_writer = [("authorization", writer.as_str())];
    let as_reader = [("authorization", reader.as_str())];
    assert_eq!(
        create(
            &registry,
            "model",
            card("m", "team-a", "1.0.0", "a"),
            &as_writer
        )
        .status,
        200
    );
    let elsewhere = create(
        &registry,
        "model",
        card("m", "team-b", "1.0.0", "b"),
        &as_writer,
    );
    assert_eq!(elsewhere.status, 403, "{}", elsewhere.detail());
    assert!(
        elsewhere
            .detail()
            .contains("may not write in repository team-b"),
        "{}",
        elsewhere.detail()
    );
    let admin = format!("Bearer {ADMIN}");
    assert_eq!(
        create(
            &registry,
            "model",
            card("m", "team-b", "1.0.0", "b"),
            &[("authorization", &admin)]
        )
        .status,
        200
    );
    // Listings leave team-b out; naming it is refused.
    let seen = list(&registry, json!({"registry_type": "model"}), &as_reader);
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0]["repository"], "team-a");
    let refused = post(
        &registry,
        card_reads,
        "/opsml/cards/list",
        json!({"registry_type": "model", "repository": "team-b"}),
        &as_reader,
    );
    assert_eq!(refused.status, 403);
    let repositories = get(
        &registry,
        card_reads,
        "/opsml/cards/repositories?registry_type=model",
        &as_reader,
    );
    assert_eq!(repositories.json(), json!({"repositories": ["team-a"]}));
    let names = get(
        &registry,
        card_reads,
        "/opsml/cards/names?registry_type=model",
        &as_reader,
    );
    assert_eq!(names.json(), json!({"names": ["m"]}));
    // A reader may not write; moving a card into team-b needs write there too.
    assert_eq!(
        create(
            &registry,
            "model",
            card("n", "team-a", "1.0.0", "c"),
            &as_reader
        )
        .status,
        403
    );
    let mut moved = card("m", "team-b", "1.0.0", "a");
    moved["repository"] = json!("team-b");
    let reply = post(
        &registry,
        card_writes,
        "/opsml/cards/update",
        json!({"registry_type": "model", "card": moved}),
        &as_writer,
    );
    assert_eq!(reply.status, 403);
    // Without credentials: 401 with the challenge.
    let anonymous = post(
        &registry,
        card_reads,
        "/opsml/cards/list",
        json!({"registry_type": "model"}),
        &[],
    );
    assert_eq!(anonymous.status, 401);
}

#[test]
fn in_production_writes_need_the_prod_token_before_their_body_is_read() {
    let registry = Registry::new().with(&[("env", "production"), ("prod_token", "s3cr3t")]);
    let refused = create(&registry, "data", card("d", "r", "1.0.0", "d1"), &[]);
    assert_eq!(refused.status, 401);
    // The body is never parsed: a refusal, not a 422, for a body that is not JSON.
    let reply = registry.call(card_writes, Post, "/opsml/cards/create", &[], b"not json");
    assert_eq!(reply.status, 401);
    let wrong = create(
        &registry,
        "data",
        card("d", "r", "1.0.0", "d1"),
        &[("x-prod-token", "s3cr3u")],
    );
    assert_eq!(wrong.status, 401);
    assert!(
        !wrong.detail().contains("s3cr3"),
        "the detail never holds a token"
    );
    assert_eq!(
        create(
            &registry,
            "data",
            card("d", "r", "1.0.0", "d1"),
            &[("x-prod-token", "s3cr3t")]
        )
        .status,
        200
    );
    let rows = list(&registry, json!({"registry_type": "data"}), &[]);
    assert_eq!(rows[0]["app_env"], "production");
    let closed = Registry::new().with(&[("env", "production")]);
    assert_eq!(
        create(
            &closed,
            "data",
            card("d", "r", "1.0.0", "d1"),
            &[("x-prod-token", "")]
        )
        .status,
        403
    );
}

#[test]
fn project_ids_uids_and_tables() {
    let registry = Registry::new();
    let id = |name: &str| {
        get(
            &registry,
            card_reads,
            &format!("/opsml/projects/id?project_name={name}&repository=r"),
            &[],
        )
        .json()["project_id"]
            .clone()
    };
    assert_eq!(id("p"), json!(1));
    let project = json!({"name": "p", "repository": "r", "version": "1.0.0", "uid": "p1"});
    let created = create(&registry, "project", project, &[]);
    assert_eq!(created.status, 200, "{}", created.detail());
    assert_eq!(id("p"), json!(1));
    assert_eq!(id("q"), json!(2));
    let exists = post(
        &registry,
        card_reads,
        "/opsml/cards/uid",
        json!({"uid": "p1", "registry_type": "project"}),
        &[],
    );
    assert_eq!(exists.json(), json!({"uid_exists": true}));
    let table = get(
        &registry,
        card_reads,
        "/opsml/registry/table?registry_type=metrics",
        &[],
    );
    assert_eq!(table.json(), json!({"table_name": "OPSML_RUN_METRICS"}));
    assert_eq!(
        get(
            &registry,
            card_reads,
            "/opsml/registry/table?registry_type=x",
            &[]
        )
        .status,
        422
    );
    assert_eq!(
        get(&registry, card_reads, "/opsml/healthcheck", &[]).json(),
        json!({"is_alive": true})
    );
    assert_eq!(
        registry
            .call(card_reads, Put, "/opsml/healthcheck", &[], b"")
            .status,
        405
    );
}

// ----- files -----

const PATH: &str = "opsml-root:/OPSML_MODEL_REGISTRY/r/m/v1.0.0/model.bin";

#[test]
fn a_file_goes_up_streamed_and_comes_back_with_ranges_and_its_digest() {
    let registry = Registry::new();
    let bytes: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let reply = upload(&registry, PATH, &bytes, &[]);
    assert_eq!(reply.json(), json!({"storage_uri": PATH}));
    let whole = download(&registry, PATH, &[]);
    assert_eq!(whole.status, 200);
    assert_eq!(whole.body, bytes);
    let digest = blake3_hex(&bytes);
    assert_eq!(whole.header("etag"), Some(format!("\"{digest}\"").as_str()));
    let part = download(&registry, PATH, &[("range", "bytes=10-19")]);
    assert_eq!((part.status, part.body.as_slice()), (206, &bytes[10..20]));
    let unchanged = download(
        &registry,
        PATH,
        &[("if-none-match", &format!("\"{digest}\""))],
    );
    assert_eq!(unchanged.status, 304);
    // A range of the version the client has; of another version (If-Range), the whole file.
    let etag = format!("\"{digest}\"");
    let resumed = download(
        &registry,
        PATH,
        &[("range", "bytes=10-19"), ("if-range", &etag)],
    );
    assert_eq!(resumed.status, 206);
    let changed = download(
        &registry,
        PATH,
        &[("range", "bytes=10-19"), ("if-range", "\"older\"")],
    );
    assert_eq!((changed.status, changed.body.len()), (200, bytes.len()));
    let beyond = download(&registry, PATH, &[("range", "bytes=400000-")]);
    assert_eq!(beyond.status, 416);
    let info = get(
        &registry,
        file_reads_json,
        &format!(
            "/opsml/files/list/info?path={}",
            encode("opsml-root:/OPSML_MODEL_REGISTRY/r")
        ),
        &[],
    );
    assert_eq!(info.json()["files"][0]["size"], 300_000);
    assert_eq!(info.json()["files"][0]["digest"], digest);
    assert_eq!(audit_actions_open(&registry), ["file.upload"]);
}

/// `file_reads` for answers that are not streamed.
fn file_reads_json(
    ctx: &crate::Ctx,
    head: &crate::Head,
    _: &mut dyn crate::Body,
) -> crate::Result<crate::Answer> {
    let mut sink = NoSink;
    file_reads(ctx, head, &mut sink)
}

struct NoSink;

impl crate::ResponseSink for NoSink {
    fn start(&mut self, _: u16, _: &[(&'static str, String)]) {
        panic!("a listing is not streamed")
    }
    fn write(&mut self, _: Vec<u8>) -> bool {
        false
    }
}

fn blake3_hex(bytes: &[u8]) -> String {
    let mut hasher = registry_store::blobs::DigestAlgorithm::Blake3.hasher();
    hasher.update(bytes);
    hasher.finish_hex()
}

/// The audit trail's actions with access control off (admin routes need no token then).
fn audit_actions_open(registry: &Registry) -> Vec<String> {
    let reply = get(registry, admin_routes, "/opsml/admin/audit", &[]);
    reply.json()["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["action"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn bad_uploads_are_refused_and_store_nothing() {
    let registry = Registry::new().with(&[("max_upload_bytes", "100")]);
    for (path, status) in [
        ("opsml-root:/OPSML_MODEL_REGISTRY/../../etc/passwd", 422),
        ("opsml-root:/NOT_A_REGISTRY/x", 422),
        ("opsml-root:/model_registry/r/m/v1/x.bin", 422),
    ] {
        assert_eq!(upload(&registry, path, b"x", &[]).status, status, "{path}");
    }
    let big = upload(&registry, PATH, &[1u8; 101], &[]);
    assert_eq!(big.status, 413, "{}", big.detail());
    let no_path = registry.call(
        file_writes,
        Post,
        "/opsml/files/upload",
        &[("content-type", "multipart/form-data; boundary=b")],
        b"--b--\r\n",
    );
    assert_eq!(no_path.status, 422);
    assert!(no_path.detail().starts_with("No write path provided"));
    let (content_type, mut body) = multipart("model.bin", b"cut");
    body.truncate(body.len() - 10);
    let cut = registry.call(
        file_writes,
        Post,
        "/opsml/files/upload",
        &[("write_path", PATH), ("content-type", &content_type)],
        &body,
    );
    assert_eq!(cut.status, 400, "{}", cut.detail());
    assert!(
        registry
            .kv
            .0
            .borrow()
            .keys()
            .all(|k| !k.starts_with("blob/")),
        "no bytes kept"
    );
    let exists = get(
        &registry,
        file_reads_json,
        &format!("/opsml/files/exists?path={}", encode(PATH)),
        &[],
    );
    assert_eq!(exists.json(), json!({"exists": false}));
}

#[test]
fn an_upload_in_production_is_refused_before_its_body_is_read() {
    let registry = Registry::new().with(&[("env", "production"), ("prod_token", "tok")]);
    struct Unread;
    impl crate::Body for Unread {
        fn read(&mut self, _: u64) -> crate::Result<Option<Vec<u8>>> {
            panic!("the body was read")
        }
    }
    let head = crate::Head::new(
        Post,
        "/opsml/files/upload",
        vec![("write_path".into(), PATH.as_bytes().to_vec())],
    );
    let ctx = crate::Ctx::new(&registry);
    let refused = file_writes(&ctx, &head, &mut Unread).unwrap_err();
    assert_eq!(refused.status, 401);
}

#[test]
fn folders_zip_delete_and_readiness() {
    let registry = Registry::new();
    for name in ["a.txt", "sub/b.txt"] {
        let path = format!("opsml-root:/OPSML_RUN_REGISTRY/r/run/v1.0.0/{name}");
        assert_eq!(upload(&registry, &path, name.as_bytes(), &[]).status, 200);
    }
    let folder = "opsml-root:/OPSML_RUN_REGISTRY/r/run/v1.0.0";
    let zip = registry.call_streamed(
        file_reads,
        &format!("/opsml/files/download/ui?path={}", encode(folder)),
        &[],
    );
    assert_eq!(zip.header("content-type"), Some("application/zip"));
    assert!(zip.body.starts_with(b"PK\x03\x04"));
    assert!(zip.body.windows(9).any(|w| w == b"sub/b.txt"));
    let root = get(
        &registry,
        file_writes,
        "/opsml/files/delete?path=opsml-root%3A/OPSML_RUN_REGISTRY",
        &[],
    );
    assert_eq!(root.status, 422);
    let gone = get(
        &registry,
        file_writes,
        &format!("/opsml/files/delete?path={}", encode(folder)),
        &[],
    );
    assert_eq!(gone.json(), json!({"deleted": true}));
    let listed = get(
        &registry,
        file_reads_json,
        &format!("/opsml/files/list?path={}", encode(folder)),
        &[],
    );
    assert_eq!(listed.json(), json!({"files": []}));
    assert_eq!(
        audit_actions_open(&registry),
        ["file.delete", "file.delete", "file.upload", "file.upload"]
    );
    let ready = get(&registry, file_reads_json, "/opsml/readyz", &[]);
    assert_eq!(
        ready.json(),
        json!({"ready": true, "database": "ok", "blob_store": "ok"})
    );
}

// ----- metrics -----

#[test]
fn metrics_are_recorded_per_run_and_read_back() {
    let registry = Registry::new();
    let put = |body: Value| {
        registry.call(
            run_metrics,
            Put,
            "/opsml/metrics",
            &[],
            body.to_string().as_bytes(),
        )
    };
    let reply = put(json!({"metric": [
        {"run_uid": "r1", "name": "mae", "value": 0.5, "step": 1, "timestamp": 10},
        {"run_uid": "r1", "name": "r2", "value": 0.9}]}));
    assert_eq!(reply.json(), json!({"complete": true}));
    let read = post(
        &registry,
        run_metrics,
        "/opsml/metrics",
        json!({"run_uid": "r1", "names_only": true}),
        &[],
    );
    assert_eq!(read.json(), json!({"metric": ["mae", "r2"]}));
    let none = post(
        &registry,
        run_metrics,
        "/opsml/metrics",
        json!({"run_uid": "r2"}),
        &[],
    );
    assert_eq!(none.json(), json!({"metric": null}));
    assert_eq!(put(json!({"metric": [{"name": "no run"}]})).status, 422);
    assert_eq!(audit_actions_open(&registry), ["metrics.insert"]);
}

// ----- models -----

/// A model card with its file and metadata, linked to a run with a metric.
fn model(registry: &Registry, version: &str, uid: &str, mae: f64) {
    let run = format!("run-{uid}");
    let mut model = card("clf", "team", version, uid);
    model["runcard_uid"] = json!(run);
    assert_eq!(create(registry, "model", model, &[]).status, 200);
    let folder = format!("opsml-root:/OPSML_MODEL_REGISTRY/team/clf/v{version}");
    let weights = format!("{folder}/model.joblib");
    assert_eq!(
        upload(
            registry,
            &weights,
            format!("weights {version}").as_bytes(),
            &[]
        )
        .status,
        200
    );
    let metadata = json!({"model_name": "clf", "model_version": version, "model_repository": "team",
                          "model_uri": weights, "onnx_uri": null});
    assert_eq!(
        upload(
            registry,
            &format!("{folder}/model-metadata.json"),
            metadata.to_string().as_bytes(),
            &[]
        )
        .status,
        200
    );
    let body = json!({"metric": [{"run_uid": run, "name": "mae", "value": mae}]});
    assert_eq!(
        registry
            .call(
                run_metrics,
                Put,
                "/opsml/metrics",
                &[],
                body.to_string().as_bytes()
            )
            .status,
        200
    );
}

#[test]
fn model_metadata_comparison_and_registration() {
    let registry = Registry::new();
    model(&registry, "1.0.0", "m1", 0.5);
    model(&registry, "1.1.0", "m2", 0.3);
    let metadata = post(
        &registry,
        model_routes,
        "/opsml/models/metadata",
        json!({"name": "clf", "repository": "team", "version": "1"}),
        &[],
    );
    assert_eq!(metadata.json()["model_version"], "1.1.0");
    assert_eq!(
        post(
            &registry,
            model_routes,
            "/opsml/models/metadata",
            json!({"uid": "none"}),
            &[]
        )
        .status,
        404
    );
    assert_eq!(
        post(
            &registry,
            model_routes,
            "/opsml/models/metadata",
            json!({}),
            &[]
        )
        .status,
        422
    );
    // Against the previous version, and against a named champion.
    let compare = |body: Value| {
        post(
            &registry,
            model_routes,
            "/opsml/models/compare_metrics",
            body,
            &[],
        )
    };
    let report =
        compare(json!({"metric_name": ["mae"], "lower_is_better": true, "challenger_uid": "m2"}))
            .json();
    assert_eq!(report["report"]["mae"][0]["champion_version"], "1.0.0");
    assert_eq!(report["report"]["mae"][0]["challenger_win"], true);
    let report = compare(json!({"metric_name": ["mae"], "lower_is_better": false, "challenger_uid": "m2", "champion_uid": ["m1"]})).json();
    assert_eq!(report["report"]["mae"][0]["challenger_win"], false);
    let first =
        compare(json!({"metric_name": ["mae"], "lower_is_better": true, "challenger_uid": "m1"}))
            .json();
    assert_eq!(first["report"]["mae"][0]["champion_name"], "No model");
    assert_eq!(compare(json!({"metric_name": ["mae"], "lower_is_better": [true, false], "challenger_uid": "m2"})).status, 422);
    // Registration: the highest 1.x, with its settings; no ONNX is a 422.
    let register = |onnx: bool| {
        post(
            &registry,
            model_routes,
            "/opsml/models/register",
            json!({"name": "clf", "repository": "team", "version": "1", "onnx": onnx}),
            &[],
        )
    };
    assert_eq!(register(true).status, 422);
    let folder = register(false).json();
    assert_eq!(folder, json!("opsml-root:/model_registry/team/clf/v1"));
    let weights = download(
        &registry,
        "opsml-root:/model_registry/team/clf/v1/model.joblib",
        &[],
    );
    assert_eq!(weights.body, b"weights 1.1.0");
    let settings: Value = serde_json::from_slice(
        &download(
            &registry,
            "opsml-root:/model_registry/team/clf/v1/model-settings.json",
            &[],
        )
        .body,
    )
    .unwrap();
    assert_eq!(settings["parameters"]["extra"]["model_version"], "1.1.0");
    assert_eq!(
        post(
            &registry,
            model_routes,
            "/opsml/models/register",
            json!({"name": "clf", "repository": "team", "version": "1.x"}),
            &[]
        )
        .status,
        422
    );
    let legacy = post(
        &registry,
        model_routes,
        "/opsml/models/metrics",
        json!({"uid": "m1"}),
        &[],
    );
    assert_eq!(legacy.json()["metrics"]["metric"][0]["value"], 0.5);
}

#[test]
fn registration_in_production_needs_the_prod_token_and_copies_nothing_without_it() {
    let registry = Registry::new();
    model(&registry, "1.0.0", "m1", 0.5);
    registry
        .variables
        .borrow_mut()
        .insert("env".into(), "production".into());
    registry
        .variables
        .borrow_mut()
        .insert("prod_token".into(), "tok".into());
    let body = json!({"name": "clf", "repository": "team", "version": "1", "onnx": false});
    let refused = post(
        &registry,
        model_routes,
        "/opsml/models/register",
        body.clone(),
        &[],
    );
    assert_eq!(refused.status, 401);
    let deployed = get(
        &registry,
        file_reads_json,
        "/opsml/files/list?path=opsml-root%3A/model_registry",
        &[],
    );
    assert_eq!(deployed.json(), json!({"files": []}));
    let done = post(
        &registry,
        model_routes,
        "/opsml/models/register",
        body,
        &[("x-prod-token", "tok")],
    );
    assert_eq!(done.status, 200, "{}", done.detail());
}

// ----- tokens and the audit trail -----

#[test]
fn tokens_are_made_listed_and_revoked_by_an_admin_only() {
    let (registry, reader, _) = guarded();
    let admin = format!("Bearer {ADMIN}");
    let as_admin = [("authorization", admin.as_str())];
    let listed = get(&registry, admin_routes, "/opsml/admin/tokens", &as_admin).json();
    let tokens = listed["tokens"].as_array().unwrap();
    assert_eq!(tokens.len(), 2);
    assert!(tokens
        .iter()
        .all(|t| t.get("token").is_none() && t["scope"].is_string()));
    assert_eq!(
        get(
            &registry,
            admin_routes,
            "/opsml/admin/tokens",
            &[("authorization", reader.as_str())]
        )
        .status,
        403
    );
    let whoami = get(
        &registry,
        admin_routes,
        "/opsml/admin/whoami",
        &[("authorization", reader.as_str())],
    )
    .json();
    assert_eq!(whoami["scope"], "read");
    assert_eq!(whoami["repositories"], json!(["team-a"]));
    for (body, says) in [
        (json!({"name": "", "scope": "read"}), "name"),
        (json!({"name": "x", "scope": "owner"}), "owner"),
        (
            json!({"name": "x", "scope": "read", "repositories": []}),
            "repositories",
        ),
        (
            json!({"name": "x", "scope": "read", "expires_in_days": 0}),
            "expires_in_days",
        ),
        (
            json!({"name": "x", "scope": "read", "expires_in_days": 1, "expires_in_seconds": 5}),
            "not both",
        ),
        (json!({"name": "x", "scope": "read", "extra": 1}), "extra"),
    ] {
        let reply = post(
            &registry,
            admin_routes,
            "/opsml/admin/tokens",
            body.clone(),
            &as_admin,
        );
        assert_eq!(reply.status, 422, "{body}");
        assert!(reply.detail().contains(says), "{body}: {}", reply.detail());
    }
    let id = tokens[0]["id"].as_str().unwrap().to_string();
    let revoke = |id: &str| {
        registry.call(
            admin_routes,
            Delete,
            &format!("/opsml/admin/tokens/{id}"),
            &as_admin,
            b"",
        )
    };
    let first = revoke(&id).json();
    assert_eq!(first["revoked"], true);
    assert_eq!(
        revoke(&id).json()["token"]["revoked_at"],
        first["token"]["revoked_at"]
    );
    assert_eq!(revoke("0123456789abcdef").status, 404);
    // One record per change: two made, one revoked (the second revoke changed nothing).
    let actions = audit_actions(&registry);
    assert_eq!(actions, ["token.revoke", "token.create", "token.create"]);
}

#[test]
fn expired_tokens_and_repeated_failures_are_refused() {
    let registry = Registry::new().with(&[("admin_token", ADMIN), ("max_login_failures", "3")]);
    let admin = format!("Bearer {ADMIN}");
    let made = post(
        &registry,
        admin_routes,
        "/opsml/admin/tokens",
        json!({"name": "short", "scope": "read", "expires_in_seconds": 5}),
        &[("authorization", &admin)],
    );
    let token = format!("Bearer {}", made.json()["token"].as_str().unwrap());
    let whoami = |auth: &str| {
        get(
            &registry,
            admin_routes,
            "/opsml/admin/whoami",
            &[
                ("authorization", auth),
                ("spin-client-addr", "10.0.0.1:5000"),
            ],
        )
    };
    assert_eq!(whoami(&token).status, 200);
    registry.advance_seconds(5);
    let expired = whoami(&token);
    assert_eq!(expired.status, 401);
    assert!(expired.detail().contains("expired"));
    assert_eq!(expired.header("www-authenticate"), Some("Basic"));
    // The expired token was the first failure from the address, this the second; the third
    // reaches the limit: refused from then on, even with good credentials.
    assert_eq!(whoami("Bearer opsml_0123456789abcdef_wrong").status, 401);
    let limited = whoami("Bearer opsml_0123456789abcdef_wrong");
    assert_eq!(limited.status, 429);
    assert!(limited.header("retry-after").is_some());
    assert_eq!(whoami(&admin).status, 429);
    registry.advance_seconds(60);
    assert_eq!(whoami(&admin).status, 200);
}

#[test]
fn presigned_urls_open_one_path_until_they_expire() {
    let path = "opsml-root:/OPSML_MODEL_REGISTRY/r/m/v1.0.0/model.onnx";
    let ask = |registry: &Registry, headers: &[(&str, &str)]| {
        let mut all = vec![(
            "spin-full-url",
            "http://registry.internal:3000/opsml/files/presigned",
        )];
        all.extend_from_slice(headers);
        get(
            registry,
            file_reads_json,
            &format!(
                "/opsml/files/presigned?path={}&method=GET",
                registry_core::query::encode(path)
            ),
            &all,
        )
    };
    // Access control off: a plain download URL on the registry's own address.
    let open = Registry::new();
    assert_eq!(upload(&open, path, b"onnx", &[]).status, 200);
    let url = ask(&open, &[]).json()["url"].as_str().unwrap().to_string();
    assert_eq!(
        url,
        "http://registry.internal:3000/opsml/files/download?path=opsml-root%3A%2FOPSML_MODEL_REGISTRY%2Fr%2Fm%2Fv1.0.0%2Fmodel.onnx"
    );
    assert_eq!(ask(&open, &[]).status, 200);
    let missing = get(
        &open,
        file_reads_json,
        "/opsml/files/presigned?path=opsml-root%3A/OPSML_MODEL_REGISTRY/r/m/v1.0.0/none",
        &[],
    );
    assert_eq!(missing.status, 404, "no URL to a file that is not there");

    // Access control on: signed, opens without credentials, that path only, until it expires.
    let guarded = Registry::new().with(&[
        ("admin_token", ADMIN),
        (
            "presigned_url_secret",
            "a-secret-of-at-least-thirty-two-characters",
        ),
    ]);
    let admin = format!("Bearer {ADMIN}");
    assert_eq!(
        upload(&guarded, path, b"onnx", &[("authorization", &admin)]).status,
        200
    );
    assert_eq!(
        ask(&guarded, &[]).status,
        401,
        "asking for a URL needs a login"
    );
    let url = ask(&guarded, &[("authorization", &admin)]).json()["url"]
        .as_str()
        .unwrap()
        .to_string();
    let target = &url[url.find("/opsml/").unwrap()..];
    let fetched = guarded.call_streamed(file_reads, target, &[]);
    assert_eq!(
        (fetched.status, fetched.body.as_slice()),
        (200, &b"onnx"[..])
    );
    let other = target.replace("model.onnx", "other.bin");
    assert_eq!(guarded.call_streamed(file_reads, &other, &[]).status, 403);
    let listing = target.replace("/opsml/files/download", "/opsml/files/list");
    assert_eq!(guarded.call_streamed(file_reads, &listing, &[]).status, 403);
    guarded.advance_seconds(15 * 60 + 1);
    let expired = guarded.call_streamed(file_reads, target, &[]);
    assert_eq!(expired.status, 403);
    assert!(expired.detail().contains("expired"), "{}", expired.detail());
    // No secret configured: refused, saying which setting.
    let unsigned = Registry::new().with(&[("admin_token", ADMIN)]);
    assert_eq!(
        upload(&unsigned, path, b"onnx", &[("authorization", &admin)]).status,
        200
    );
    let refused = ask(&unsigned, &[("authorization", &admin)]);
    assert_eq!(refused.status, 500);
    assert!(refused.detail().contains("presigned_url_secret"));
}
