//! Models: the `model-metadata.json` of a model card found by uid or by name and version (what
//! CI needs to fetch a model), a challenger's run metrics against its champions', a model's
//! run metrics (legacy), and registration: a model version's file copied to the deployment
//! folder (`model_registry/<repository>/<name>/v<version>`) with a `model-settings.json`.
//! Reads need `read` in the model's repository; registering needs `write` there (and the prod
//! token in production), and each file it writes or replaces is recorded in the audit trail.

use crate::caller::{Caller, WriteCleared};
use crate::cards::{self, StoredCard};
use crate::deployment::Ctx;
use crate::error::{AppError, Result};
use crate::files::read_current;
use crate::settings;
use registry_core::access::Scope;
use registry_core::card;
use registry_core::write_path::{client_path, DEPLOYMENT_FOLDER};
use registry_core::{validate_write_path, RegistryType, Version};
use registry_store::audit::{self, AuditAction, AuditRecord};
use registry_store::cards::ListQuery;
use registry_store::files::{self, FileRecord};
use registry_store::list_request::ListRequest;
use registry_store::metrics::{self, Metric};
use registry_store::Sql;
use serde::Deserialize;
use serde_json::{json, Map, Value};

/// The metadata file is small; anything larger is not one the client wrote.
const MAX_METADATA_BYTES: u64 = 16 << 20;

/// The selected model card's stored `model-metadata.json`.
pub fn metadata(ctx: &Ctx, caller: &Caller, select: ListRequest) -> Result<Value> {
    Ok(find_metadata(ctx, caller, select)?.1)
}

/// The model selected like `cards/list` selects cards (`uid`, or `name`, `repository`,
/// `version`, `ignore_release_candidate`), highest version first, and its metadata.
fn find_metadata(ctx: &Ctx, caller: &Caller, select: ListRequest) -> Result<(StoredCard, Value)> {
    let (registry, query) = select
        .for_registry(RegistryType::Model)
        .with_limit(1)
        .into_query()?;
    if query.name.is_none() && query.uid.is_none() {
        return Err(AppError::unprocessable(
            "give a model's uid, or its name (and repository, version)",
        ));
    }
    let model = cards::find(ctx, caller, registry, query)?
        .into_iter()
        .next()
        .ok_or_else(|| AppError::not_found("Model not found"))?;
    let (_, bytes) = read_current(
        ctx,
        caller,
        &model,
        "model-metadata.json",
        MAX_METADATA_BYTES,
    )?
    .ok_or_else(|| {
        AppError::not_found(format!(
            "model {} v{} has no model-metadata.json",
            model.name(),
            model.version()
        ))
    })?;
    let metadata = serde_json::from_slice(&bytes).map_err(|e| {
        AppError::new(
            500,
            format!("the stored model-metadata.json is not JSON: {e}"),
        )
    })?;
    Ok((model, metadata))
}

/// The run a model card names in `runcard_uid`.
fn run_of(card: &StoredCard) -> Result<String> {
    Some(card.text("runcard_uid"))
        .filter(|uid| !uid.is_empty())
        .map(str::to_string)
        .ok_or_else(|| {
            AppError::unprocessable(format!(
                "model {} v{} is not associated with a run (no runcard_uid)",
                card.name(),
                card.version()
            ))
        })
}

/// A metric as the reference reports it (without the run uid).
fn metric_json(metric: &Metric) -> Value {
    json!({"name": metric.name, "value": metric.value, "step": metric.step, "timestamp": metric.timestamp})
}

/// The first recorded value of `name` in the model's run.
fn run_metric(db: &dyn Sql, card: &StoredCard, name: &str) -> Result<Metric> {
    let run = run_of(card)?;
    metrics::get(db, &run, Some(&[name.to_string()]))?
        .into_iter()
        .next()
        .ok_or_else(|| AppError::unprocessable(format!("run {run} has no metric {name:?}")))
}

#[derive(Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(bool),
    Many(Vec<bool>),
}

/// `models/compare_metrics`' body.
#[derive(Deserialize)]
pub struct CompareAsk {
    pub metric_name: Vec<String>,
    pub lower_is_better: OneOrMany,
    pub challenger_uid: String,
    #[serde(default)]
    pub champion_uid: Vec<String>,
}

fn battle(
    champion: &StoredCard,
    champion_metric: &Metric,
    challenger_metric: &Metric,
    lower_is_better: bool,
) -> Value {
    let challenger_win = match champion_metric.value {
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
        "champion_name": champion.name(),
        "champion_version": champion.version(),
        "champion_metric": metric_json(champion_metric),
        "challenger_metric": metric_json(challenger_metric),
        "challenger_win": challenger_win,
    })
}

/// Each metric of the challenger's run against the same metric of every champion's run; with
/// no champions, against the highest earlier version of the same model (none: the challenger
/// wins).
pub fn compare(ctx: &Ctx, caller: &Caller, ask: CompareAsk) -> Result<Value> {
    let lower_is_better = match ask.lower_is_better {
        OneOrMany::One(flag) => vec![flag; ask.metric_name.len()],
        OneOrMany::Many(flags) if flags.len() == 1 => vec![flags[0]; ask.metric_name.len()],
        OneOrMany::Many(flags) if flags.len() == ask.metric_name.len() => flags,
        OneOrMany::Many(_) => {
            return Err(AppError::unprocessable(
                "lower_is_better must be one boolean or one per metric_name",
            ))
        }
    };
    let model = |uid: &str| cards::readable(ctx, caller, RegistryType::Model, uid);
    let challenger = model(&ask.challenger_uid)?;
    let champions: Vec<StoredCard> = if ask.champion_uid.is_empty() {
        let version =
            Version::parse(challenger.version()).map_err(|e| AppError::new(500, e.to_string()))?;
        let query = ListQuery {
            name: Some(challenger.name().to_string()),
            repository: Some(challenger.repository().to_string()),
            ..Default::default()
        };
        cards::find(ctx, caller, RegistryType::Model, query)?
            .into_iter()
            .find(|c| Version::parse(c.version()).is_ok_and(|v| v.cmp_precedence(&version).is_lt()))
            .into_iter()
            .collect()
    } else {
        ask.champion_uid
            .iter()
            .map(|uid| model(uid))
            .collect::<Result<_>>()?
    };
    let db = ctx.db()?;
    let mut report = Map::new();
    for (name, lower) in ask.metric_name.iter().zip(lower_is_better) {
        let challenger_metric = run_metric(db, &challenger, name)?;
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
                    let metric = run_metric(db, champion, name)?;
                    Ok(battle(champion, &metric, &challenger_metric, lower))
                })
                .collect::<Result<Vec<_>>>()?
        };
        report.insert(name.clone(), Value::Array(battles));
    }
    Ok(json!({
        "challenger_name": challenger.name(),
        "challenger_version": challenger.version(),
        "report": report,
    }))
}

/// (Legacy) every metric of the run of the one model card selected like `cards/list` does.
pub fn run_metrics(ctx: &Ctx, caller: &Caller, select: ListRequest) -> Result<Value> {
    let (registry, query) = select.for_registry(RegistryType::Model).into_query()?;
    let found = cards::find(ctx, caller, registry, query)?;
    let card = match found.as_slice() {
        [card] => card,
        [] => return Err(AppError::not_found("Model not found")),
        _ => {
            return Err(AppError::unprocessable(
                "more than one model card matches: give a uid, or name, repository and an exact version",
            ))
        }
    };
    let run = run_of(card)?;
    let found = metrics::get(ctx.db()?, &run, None)?;
    Ok(json!({ "metrics": { "metric": found } }))
}

fn yes() -> bool {
    true
}

/// `models/register`'s body.
#[derive(Deserialize)]
pub struct RegisterAsk {
    pub name: String,
    pub repository: String,
    /// `1`, `1.2` or `1.2.3`: the highest matching version is registered under this name.
    pub version: String,
    #[serde(default = "yes")]
    pub onnx: bool,
    #[serde(default = "yes")]
    pub ignore_release_candidate: bool,
}

/// Stores `bytes` (a small file) at `key`, replacing what was there.
fn put_small_file(
    ctx: &Ctx,
    key: &str,
    bytes: &[u8],
    along_with: files::AlongWith<'_>,
) -> Result<()> {
    files::write_file(
        ctx.db()?,
        ctx.blobs()?,
        key,
        &ctx.new_id(),
        settings::digest_algorithm(ctx)?,
        Some(bytes.len() as u64),
        || ctx.now_unix(),
        files::Replacing::Anything,
        along_with,
        |sink| sink.write(bytes).map_err(AppError::from),
    )?;
    Ok(())
}

/// Copies a stored file's bytes to `key` as a new blob, piece by piece.
fn copy_file(
    ctx: &Ctx,
    from: &FileRecord,
    key: &str,
    along_with: files::AlongWith<'_>,
) -> Result<()> {
    let blobs = ctx.blobs()?;
    files::write_file(
        ctx.db()?,
        blobs,
        key,
        &ctx.new_id(),
        from.digest_algorithm,
        Some(from.size),
        || ctx.now_unix(),
        files::Replacing::Anything,
        along_with,
        |sink| {
            let mut source = blobs.open_range(from, 0, from.size)?;
            while let Some(piece) = source.next_piece()? {
                sink.write(&piece)?;
            }
            Ok::<_, AppError>(())
        },
    )?;
    Ok(())
}

/// Registers the highest model version matching `version` (a major, major.minor or full
/// version) at `model_registry/<repository>/<name>/v<version>`: the model file (ONNX unless
/// `onnx` is false) and a `model-settings.json`, replacing what was registered there.
/// Answers that folder as an `opsml-root:/` path.
pub fn register(ctx: &Ctx, caller: &Caller, _: &WriteCleared, ask: RegisterAsk) -> Result<String> {
    let repository = card::normalize(RegistryType::Model, &ask.repository);
    caller.require(Scope::Write, Some(&repository))?;
    let parts: Vec<&str> = ask.version.split('.').collect();
    if parts.len() > 3
        || parts
            .iter()
            .any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(AppError::unprocessable(format!(
            "version {:?} must be major[.minor[.patch]], e.g. 1, 1.2 or 1.2.3",
            ask.version
        )));
    }
    let select: ListRequest = serde_json::from_value(json!({
        "name": ask.name,
        "repository": ask.repository,
        "version": ask.version,
        "ignore_release_candidates": ask.ignore_release_candidate,
    }))
    .map_err(|e| AppError::unprocessable(e.to_string()))?;
    let (model, metadata) = find_metadata(ctx, caller, select)?;
    let field = if ask.onnx { "onnx_uri" } else { "model_uri" };
    let model_uri = metadata.get(field).and_then(Value::as_str).ok_or_else(|| {
        AppError::unprocessable(format!(
            "model {} v{} has no {field} (set \"onnx\": false for a model without ONNX)",
            model.name(),
            model.version()
        ))
    })?;
    let source_key = validate_write_path(model_uri)?;
    let source = files::get(ctx.db()?, source_key.as_str())?
        .ok_or_else(|| AppError::not_found(format!("the model file {model_uri} is not stored")))?;
    let file_name = source_key.as_str().rsplit('/').next().unwrap_or("model");

    let folder = format!(
        "{DEPLOYMENT_FOLDER}/{}/{}/v{}",
        repository,
        card::normalize(RegistryType::Model, &ask.name),
        ask.version
    );
    // The folder is rebuilt: nothing of an earlier registration stays.
    files::delete_under(ctx.db()?, ctx.blobs()?, &folder, &|tx, path| {
        audit::record(tx, &caller.file_audit(ctx, AuditAction::FileDelete, path))
    })?;
    let registered = |tx: &dyn Sql, path: &str| {
        let record = AuditRecord {
            registry: Some(RegistryType::Model.as_str().to_string()),
            detail: Some(format!("from {}", source_key.as_str())),
            ..caller.file_audit(ctx, AuditAction::ModelRegister, path)
        };
        audit::record(tx, &record)
    };
    copy_file(ctx, &source, &format!("{folder}/{file_name}"), &registered)?;
    let text = |key: &str| {
        metadata
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let underscored = |key: &str| text(key).replace('-', "_");
    let model_settings = json!({
        "name": underscored("model_name"),
        "implementation": "models.OnnxModel",
        "parameters": {
            "uri": format!("./{file_name}"),
            "extra": {
                "model_version": text("model_version"),
                "opsml_name": underscored("model_name"),
                "repository": underscored("model_repository"),
            },
        },
    });
    put_small_file(
        ctx,
        &format!("{folder}/model-settings.json"),
        model_settings.to_string().as_bytes(),
        &registered,
    )?;
    Ok(client_path(&folder))
}
