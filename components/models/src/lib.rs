//! `models`: `POST /opsml/models/metadata` finds a model card (by uid, or by name, repository
//! and version filter, highest version first) and answers the `model-metadata.json` the
//! client stored with it: what CI needs to fetch a model by name and version.
//! `POST /opsml/models/register` copies a model version's file to the deployment folder
//! (`model_registry/<repository>/<name>/v<version>`), with a `model-settings.json`.
//! `POST /opsml/models/compare_metrics` compares a challenger model's run metrics with its
//! champions'; `POST /opsml/models/metrics` (legacy) answers a model's run metrics.
//! Reads need `read` in the model's repository (a caller limited to some repositories finds
//! models only there); registering needs `write` there, and each file it writes or replaces
//! is recorded in the audit trail.

use registry_core::access::Scope;
use registry_core::card;
use registry_core::write_path::{client_path, DEPLOYMENT_FOLDER};
use registry_core::{validate_write_path, RegistryType};
use registry_spin::http::{json_body, send_error, send_result, RequestHead};
use registry_spin::settings::{authenticate, Caller, WritePolicy};
use registry_spin::storage::{new_id, now_unix, open_blobs, open_database};
use registry_spin::ApiError;
use registry_store::blobs::BlobStore;
use registry_store::cards;
use registry_store::files::{self, FileRecord};
use registry_store::list_request::ListRequest;
use registry_store::metrics::{self, Metric};
use registry_store::{audit, Sql};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use spin_sdk::http::{IncomingRequest, Method, ResponseOutparam};
use spin_sdk::http_component;

/// The metadata file is small; anything larger is not one the client wrote.
const MAX_METADATA_BYTES: u64 = 16 << 20;

#[http_component]
async fn handle(req: IncomingRequest, out: ResponseOutparam) {
    let head = RequestHead::of(&req);
    let caller = match authenticate(&head) {
        Ok(caller) => caller,
        Err(e) => return send_error(out, &e).await,
    };
    send_result(out, route(&head, req, &caller).await).await;
}

async fn route(
    head: &RequestHead,
    req: IncomingRequest,
    caller: &Caller,
) -> Result<Value, ApiError> {
    head.expect_method(&[Method::Post])?;
    match head.path.as_str() {
        "/opsml/models/metadata" => metadata(json_body(req).await?, caller),
        "/opsml/models/compare_metrics" => compare_metrics(json_body(req).await?, caller),
        "/opsml/models/metrics" => model_metrics(json_body(req).await?, caller),
        "/opsml/models/register" => {
            // It writes to storage: the prod token is needed in production.
            WritePolicy::load().authorize(head)?;
            register(json_body(req).await?, caller)
        }
        _ => Err(ApiError::not_found("Not Found")),
    }
}

/// The model selected like `cards/list` selects cards (`uid`, or `name`, `repository`,
/// `version`, `ignore_release_candidate`), highest version first.
fn metadata(body: ListRequest, caller: &Caller) -> Result<Value, ApiError> {
    let db = open_database()?;
    let blobs = open_blobs()?;
    Ok(find_metadata(&db, &blobs, body, caller)?.1)
}

/// The selected model card and its stored `model-metadata.json`.
fn find_metadata(
    db: &dyn Sql,
    blobs: &dyn BlobStore,
    body: ListRequest,
    caller: &Caller,
) -> Result<(Map<String, Value>, Value), ApiError> {
    let (registry, mut query) = body
        .for_registry(RegistryType::Model)
        .with_limit(1)
        .into_query()?;
    caller.restrict(&mut query)?;
    if query.name.is_none() && query.uid.is_none() {
        return Err(ApiError::unprocessable(
            "give a model's uid, or its name (and repository, version)",
        ));
    }
    let model = cards::list(db, registry, &query)?
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::not_found("Model not found"))?;
    let path = format!(
        "{}/{}/{}/v{}/model-metadata.json",
        registry.storage_folder(),
        text(&model, "repository"),
        text(&model, "name"),
        text(&model, "version")
    );
    let file = files::get(db, &path)?.ok_or_else(|| {
        ApiError::not_found(format!(
            "model {} v{} has no model-metadata.json",
            text(&model, "name"),
            text(&model, "version")
        ))
    })?;
    if file.size > MAX_METADATA_BYTES {
        return Err(ApiError::new(
            500,
            "the stored model-metadata.json is too large",
        ));
    }
    let mut bytes = Vec::with_capacity(file.size as usize);
    let mut source = blobs.open_range(&file, 0, file.size)?;
    while let Some(piece) = source.next_piece()? {
        bytes.extend(piece);
    }
    let metadata = serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::new(
            500,
            format!("the stored model-metadata.json is not JSON: {e}"),
        )
    })?;
    Ok((model, metadata))
}

fn text(card: &Map<String, Value>, key: &str) -> String {
    card.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// A model card the caller may read.
fn model_card(db: &dyn Sql, uid: &str, caller: &Caller) -> Result<Map<String, Value>, ApiError> {
    let card = cards::get(db, RegistryType::Model, uid)?
        .ok_or_else(|| ApiError::not_found(format!("model card {uid} not found")))?;
    caller.require(Scope::Read, Some(&text(&card, "repository")))?;
    Ok(card)
}

/// The run a model card names in `runcard_uid`.
fn run_of(card: &Map<String, Value>) -> Result<String, ApiError> {
    card.get("runcard_uid")
        .and_then(Value::as_str)
        .filter(|uid| !uid.is_empty())
        .map(str::to_string)
        .ok_or_else(|| {
            ApiError::unprocessable(format!(
                "model {} v{} is not associated with a run (no runcard_uid)",
                text(card, "name"),
                text(card, "version")
            ))
        })
}

/// A metric as the reference reports it (without the run uid).
fn metric_json(metric: &Metric) -> Value {
    json!({"name": metric.name, "value": metric.value, "step": metric.step, "timestamp": metric.timestamp})
}

/// The first recorded value of `name` in the model's run.
fn run_metric(db: &dyn Sql, card: &Map<String, Value>, name: &str) -> Result<Metric, ApiError> {
    let run = run_of(card)?;
    metrics::get(db, &run, Some(&[name.to_string()]))?
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::unprocessable(format!("run {run} has no metric {name:?}")))
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(bool),
    Many(Vec<bool>),
}

#[derive(Deserialize)]
struct CompareRequest {
    metric_name: Vec<String>,
    lower_is_better: OneOrMany,
    challenger_uid: String,
    #[serde(default)]
    champion_uid: Vec<String>,
}

fn battle(
    champion: &Map<String, Value>,
    champion_metric: Option<&Metric>,
    challenger_metric: &Metric,
    lower_is_better: bool,
) -> Value {
    let challenger_win = match champion_metric.and_then(|m| m.value) {
        None => true,
        Some(champion) => {
            let challenger = challenger_metric.value.unwrap_or(f64::NAN);
            if lower_is_better {
                challenger < champion
            } else {
                challenger > champion
            }
        }
    };
    json!({
        "champion_name": text(champion, "name"),
        "champion_version": text(champion, "version"),
        "champion_metric": champion_metric.map(metric_json),
        "challenger_metric": metric_json(challenger_metric),
        "challenger_win": challenger_win,
    })
}

/// Each metric of the challenger's run against the same metric of every champion's run; with
/// no champions, against the highest earlier version of the same model (none: the challenger
/// wins).
fn compare_metrics(body: CompareRequest, caller: &Caller) -> Result<Value, ApiError> {
    let lower_is_better = match body.lower_is_better {
        OneOrMany::One(flag) => vec![flag; body.metric_name.len()],
        OneOrMany::Many(flags) if flags.len() == 1 => vec![flags[0]; body.metric_name.len()],
        OneOrMany::Many(flags) if flags.len() == body.metric_name.len() => flags,
        OneOrMany::Many(_) => {
            return Err(ApiError::unprocessable(
                "lower_is_better must be one boolean or one per metric_name",
            ))
        }
    };
    let db = open_database()?;
    let challenger = model_card(&db, &body.challenger_uid, caller)?;
    let champions: Vec<Map<String, Value>> = if body.champion_uid.is_empty() {
        let version = registry_core::Version::parse(&text(&challenger, "version"))
            .map_err(|e| ApiError::new(500, e.to_string()))?;
        let query = registry_store::cards::ListQuery {
            name: Some(text(&challenger, "name")),
            repository: Some(text(&challenger, "repository")),
            ..Default::default()
        };
        cards::list(&db, RegistryType::Model, &query)?
            .into_iter()
            .find(|c| {
                registry_core::Version::parse(&text(c, "version"))
                    .is_ok_and(|v| v.cmp_precedence(&version).is_lt())
            })
            .into_iter()
            .collect()
    } else {
        body.champion_uid
            .iter()
            .map(|uid| model_card(&db, uid, caller))
            .collect::<Result<_, _>>()?
    };
    let mut report = Map::new();
    for (name, lower) in body.metric_name.iter().zip(lower_is_better) {
        let challenger_metric = run_metric(&db, &challenger, name)?;
        let battles = if champions.is_empty() {
            vec![json!({
                "champion_name": "No model",
                "champion_version": "No version",
                "champion_metric": null,
                "challenger_metric": metric_json(&challenger_metric),
                "challenger_win": true,
            })]
        } else {
            champions
                .iter()
                .map(|champion| {
                    let metric = run_metric(&db, champion, name)?;
                    Ok(battle(champion, Some(&metric), &challenger_metric, lower))
                })
                .collect::<Result<Vec<_>, ApiError>>()?
        };
        report.insert(name.clone(), Value::Array(battles));
    }
    Ok(json!({
        "challenger_name": text(&challenger, "name"),
        "challenger_version": text(&challenger, "version"),
        "report": report,
    }))
}

/// (Legacy) every metric of the run of the one model card selected like `cards/list` does.
fn model_metrics(body: ListRequest, caller: &Caller) -> Result<Value, ApiError> {
    let (registry, mut query) = body.for_registry(RegistryType::Model).into_query()?;
    caller.restrict(&mut query)?;
    let db = open_database()?;
    let found = cards::list(&db, registry, &query)?;
    let card = match found.as_slice() {
        [card] => card,
        [] => return Err(ApiError::not_found("Model not found")),
        _ => {
            return Err(ApiError::unprocessable(
                "more than one model card matches: give a uid, or name, repository and an exact version",
            ))
        }
    };
    let run = run_of(card)?;
    let found = metrics::get(&db, &run, None)?;
    Ok(json!({ "metrics": { "metric": found } }))
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
struct RegisterRequest {
    name: String,
    repository: String,
    /// `1`, `1.2` or `1.2.3`: the highest matching version is registered under this name.
    version: String,
    #[serde(default = "yes")]
    onnx: bool,
    #[serde(default = "yes")]
    ignore_release_candidate: bool,
}

/// Stores `bytes` (small: the settings file) at `key`, replacing what was there.
fn put_small_file(
    db: &dyn Sql,
    blobs: &dyn BlobStore,
    key: &str,
    bytes: &[u8],
    along_with: files::AlongWith<'_>,
) -> Result<(), ApiError> {
    let algorithm = registry_spin::settings::digest_algorithm()?;
    files::write_file(
        db,
        blobs,
        key,
        &new_id(),
        algorithm,
        Some(bytes.len() as u64),
        now_unix,
        files::Replacing::Anything,
        along_with,
        |sink| sink.write(bytes).map_err(ApiError::from),
    )?;
    Ok(())
}

/// Copies a stored file's bytes to `key` as a new blob, piece by piece.
fn copy_file(
    db: &dyn Sql,
    blobs: &dyn BlobStore,
    from: &FileRecord,
    key: &str,
    along_with: files::AlongWith<'_>,
) -> Result<(), ApiError> {
    files::write_file(
        db,
        blobs,
        key,
        &new_id(),
        from.digest_algorithm,
        Some(from.size),
        now_unix,
        files::Replacing::Anything,
        along_with,
        |sink| {
            let mut source = blobs.open_range(from, 0, from.size)?;
            while let Some(piece) = source.next_piece()? {
                sink.write(&piece)?;
            }
            Ok::<_, ApiError>(())
        },
    )?;
    Ok(())
}

/// Registers the highest model version matching `version` (a major, major.minor or full
/// version) at `model_registry/<repository>/<name>/v<version>`: the model file (ONNX unless
/// `onnx` is false) and a `model-settings.json`, replacing what was registered there.
/// Answers that folder as an `opsml-root:/` path.
fn register(body: RegisterRequest, caller: &Caller) -> Result<Value, ApiError> {
    let repository = card::normalize(RegistryType::Model, &body.repository);
    caller.require(Scope::Write, Some(&repository))?;
    let parts: Vec<&str> = body.version.split('.').collect();
    if parts.len() > 3
        || parts
            .iter()
            .any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(ApiError::unprocessable(format!(
            "version {:?} must be major[.minor[.patch]], e.g. 1, 1.2 or 1.2.3",
            body.version
        )));
    }
    let db = open_database()?;
    let blobs = open_blobs()?;
    let select: ListRequest = serde_json::from_value(json!({
        "name": body.name,
        "repository": body.repository,
        "version": body.version,
        "ignore_release_candidates": body.ignore_release_candidate,
    }))
    .map_err(|e| ApiError::unprocessable(e.to_string()))?;
    let (model, metadata) = find_metadata(&db, &blobs, select, caller)?;
    let field = if body.onnx { "onnx_uri" } else { "model_uri" };
    let model_uri = metadata.get(field).and_then(Value::as_str).ok_or_else(|| {
        ApiError::unprocessable(format!(
            "model {} v{} has no {field} (set \"onnx\": false for a model without ONNX)",
            text(&model, "name"),
            text(&model, "version")
        ))
    })?;
    let source_key = validate_write_path(model_uri)?;
    let source = files::get(&db, source_key.as_str())?
        .ok_or_else(|| ApiError::not_found(format!("the model file {model_uri} is not stored")))?;
    let file_name = source_key.as_str().rsplit('/').next().unwrap_or("model");

    let folder = format!(
        "{DEPLOYMENT_FOLDER}/{}/{}/v{}",
        repository,
        card::normalize(RegistryType::Model, &body.name),
        body.version
    );
    // The folder is rebuilt: nothing of an earlier registration stays.
    files::delete_under(&db, &blobs, &folder, &|tx, path| {
        audit::record(tx, &caller.file_audit("file.delete", path))
    })?;
    let registered = |tx: &dyn Sql, path: &str| {
        let record = audit::AuditRecord {
            registry: Some(RegistryType::Model.as_str().to_string()),
            detail: Some(format!("from {}", source_key.as_str())),
            ..caller.file_audit("model.register", path)
        };
        audit::record(tx, &record)
    };
    copy_file(
        &db,
        &blobs,
        &source,
        &format!("{folder}/{file_name}"),
        &registered,
    )?;
    let underscored = |key: &str| text_of(&metadata, key).replace('-', "_");
    let settings = json!({
        "name": underscored("model_name"),
        "implementation": "models.OnnxModel",
        "parameters": {
            "uri": format!("./{file_name}"),
            "extra": {
                "model_version": text_of(&metadata, "model_version"),
                "opsml_name": underscored("model_name"),
                "repository": underscored("model_repository"),
            },
        },
    });
    put_small_file(
        &db,
        &blobs,
        &format!("{folder}/model-settings.json"),
        settings.to_string().as_bytes(),
        &registered,
    )?;
    Ok(Value::String(client_path(&folder)))
}

fn text_of(value: &Value, key: &str) -> String {
    value
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}
