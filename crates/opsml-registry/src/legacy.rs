//! opsml-cli 0.4's commands with its flags, requests and output files, so that a CI script can
//! swap the binary: `list-cards`, `download-model-metadata`, `download-model`,
//! `get-model-metrics`. Downloads go through the verified, atomic transfer of `pull`.

use crate::api::{self, registry_folder, CardFilter, CardQuery};
use crate::fail::{Failure, Kind, Result};
use crate::http::Remote;
use crate::pull::{lock_folder, print_summary};
use crate::report::{Mode, Progress};
use crate::table;
use crate::transfer::{self, Options, Wanted};
use clap::Args;
use serde_json::{json, Map, Value};
use std::fs;
use std::path::{Component, Path};

/// The file opsml-cli writes the metadata to, in `--write-dir`.
const METADATA_FILE: &str = "model-metadata.json";

#[derive(Args)]
pub struct ListCardsArgs {
    /// Name of the registry (data, model, run, pipeline, audit, project)
    #[arg(long)]
    pub registry: String,
    #[command(flatten)]
    pub cards: CardFilter,
    /// Card limit
    #[arg(long)]
    pub limit: Option<i16>,
    /// Tag names (comma separated), paired with --tag_value
    #[arg(long = "tag_name", value_delimiter = ',')]
    pub tag_name: Option<Vec<String>>,
    /// Tag values (comma separated), paired with --tag_name
    #[arg(long = "tag_value", value_delimiter = ',')]
    pub tag_value: Option<Vec<String>>,
    /// Max date (YYYY-MM-DD)
    #[arg(long = "max_date")]
    pub max_date: Option<String>,
    /// Ignore release candidates
    #[arg(long = "ignore_release_candidate")]
    pub ignore_release_candidates: bool,
}

/// Which model card: opsml-cli's four flags.
#[derive(Args, Clone)]
pub struct ModelSelector {
    #[command(flatten)]
    pub card: CardFilter,
    /// Ignore release candidates
    #[arg(long = "ignore_release_candidate")]
    pub ignore_release_candidates: bool,
}

#[derive(Args)]
pub struct MetadataArgs {
    #[command(flatten)]
    pub model: ModelSelector,
    /// Write directory
    #[arg(long = "write-dir", default_value = "models")]
    pub write_dir: String,
}

#[derive(Args)]
pub struct DownloadModelArgs {
    #[command(flatten)]
    pub model: ModelSelector,
    /// Write directory
    #[arg(long = "write-dir", default_value = "models")]
    pub write_dir: String,
    /// Download the ONNX model instead of the trained model
    #[arg(long)]
    pub onnx: bool,
    /// With --onnx: the quantized ONNX model (huggingface only)
    #[arg(long)]
    pub quantize: bool,
    /// Also download the preprocessor (or tokenizer, or feature extractor)
    #[arg(long)]
    pub preprocessor: bool,
    /// Files downloaded at once
    #[arg(long, default_value_t = 8)]
    pub jobs: usize,
}

#[derive(Args)]
pub struct MetricsArgs {
    /// Run card uid (a model card's uid is followed to its run)
    #[arg(long)]
    pub uid: String,
}

pub fn list_cards(remote: &Remote, args: &ListCardsArgs) -> Result<()> {
    registry_folder(&args.registry).map_err(|_| {
        Failure::usage(format!(
            "Invalid registry: {}. Valid registries are: data, model, run, pipeline, audit, project",
            args.registry
        ))
    })?;
    let mut tags = Map::new();
    if let (Some(names), Some(values)) = (&args.tag_name, &args.tag_value) {
        for (k, v) in names.iter().zip(values) {
            tags.insert(k.clone(), Value::String(v.clone()));
        }
    }
    let cards = api::list_cards(
        remote,
        &CardQuery {
            limit: args.limit.map(i64::from),
            tags,
            max_date: args.max_date.clone(),
            ignore_release_candidates: args.ignore_release_candidates,
            ..args.cards.query(args.registry.clone())
        },
    )?;
    let rows: Vec<Vec<String>> = cards
        .iter()
        .map(|c| {
            vec![
                c.name().to_string(),
                c.repository().to_string(),
                c.date().to_string(),
                c.contact().to_string(),
                c.version().to_string(),
                c.uid().to_string(),
            ]
        })
        .collect();
    println!("\nListing cards from {} registry", args.registry);
    println!(
        "{}",
        table::render(
            &["name", "repository", "date", "contact", "version", "uid"],
            &rows
        )
    );
    Ok(())
}

/// opsml-cli's rule: a uid alone, or a name, repository and/or version without a uid.
fn check_selector(model: &ModelSelector) -> Result<()> {
    let card = &model.card;
    let has_common = card.name.is_some() || card.version.is_some() || card.repository.is_some();
    if has_common == card.uid.is_some() {
        return Err(Failure::usage(
            "Please provide either a uid or a name, repository, and version",
        ));
    }
    Ok(())
}

/// `POST models/metadata`, reshaped as opsml-cli writes it (its fields, in its order).
fn model_metadata(remote: &Remote, model: &ModelSelector) -> Result<Map<String, Value>> {
    check_selector(model)?;
    let request = json!({
        "name": model.card.name,
        "version": model.card.version,
        "repository": model.card.repository,
        "uid": model.card.uid,
        "ignore_release_candidates": model.ignore_release_candidates,
    });
    let answer = remote.post_json("models/metadata", &request)?;
    opsml_cli_metadata(&answer)
}

/// The keys opsml-cli 0.4 keeps, in its order; the required ones must be there.
pub fn opsml_cli_metadata(answer: &Value) -> Result<Map<String, Value>> {
    const REQUIRED: [&str; 8] = [
        "model_name",
        "model_class",
        "model_type",
        "model_interface",
        "model_uri",
        "model_version",
        "model_repository",
        "sample_data_uri",
    ];
    const ORDER: [&str; 19] = [
        "model_name",
        "model_class",
        "model_type",
        "model_interface",
        "onnx_uri",
        "onnx_version",
        "model_uri",
        "model_version",
        "model_repository",
        "sample_data_uri",
        "data_schema",
        "preprocessor_uri",
        "preprocessor_name",
        "tokenizer_uri",
        "tokenizer_name",
        "feature_extractor_uri",
        "feature_extractor_name",
        "quantized_model_uri",
        "",
    ];
    let source = answer
        .as_object()
        .ok_or_else(|| Failure::other(format!("Failed to parse model Metadata: {answer}")))?;
    for key in REQUIRED {
        if !source.get(key).is_some_and(Value::is_string) {
            return Err(Failure::other(format!(
                "Failed to parse model Metadata: no {key:?} in {answer}"
            )));
        }
    }
    let schema = source
        .get("data_schema")
        .and_then(Value::as_object)
        .ok_or_else(|| {
            Failure::other(format!(
                "Failed to parse model Metadata: no data_schema in {answer}"
            ))
        })?;
    let mut out = Map::new();
    for key in ORDER.iter().filter(|k| !k.is_empty()) {
        let value = if *key == "data_schema" {
            Value::Object(data_schema(schema))
        } else {
            source.get(*key).cloned().unwrap_or(Value::Null)
        };
        out.insert(key.to_string(), value);
    }
    Ok(out)
}

fn data_schema(schema: &Map<String, Value>) -> Map<String, Value> {
    let mut out = Map::new();
    for key in [
        "data_type",
        "input_features",
        "output_features",
        "onnx_input_features",
        "onnx_output_features",
        "onnx_data_type",
        "onnx_version",
    ] {
        let value = schema.get(key).cloned().unwrap_or(Value::Null);
        let value = match value {
            // A feature keeps its type and shape only, as opsml-cli's struct does.
            Value::Object(features) if key.ends_with("_features") => Value::Object(
                features
                    .into_iter()
                    .map(|(name, f)| {
                        (
                            name,
                            json!({
                                "feature_type": f.get("feature_type").cloned().unwrap_or(Value::Null),
                                "shape": f.get("shape").cloned().unwrap_or(Value::Null),
                            }),
                        )
                    })
                    .collect(),
            ),
            other => other,
        };
        out.insert(key.to_string(), value);
    }
    out
}

/// Writes the metadata as opsml-cli does (compact JSON), through a temporary file.
fn save_metadata(write_dir: &Path, metadata: &Map<String, Value>) -> Result<()> {
    fs::create_dir_all(write_dir)
        .map_err(|e| Failure::io("cannot create the folder", write_dir, e))?;
    let path = write_dir.join(METADATA_FILE);
    let tmp = write_dir.join(format!(".{METADATA_FILE}.opsml-partial"));
    fs::write(&tmp, serde_json::to_vec(metadata).expect("serialisable"))
        .map_err(|e| Failure::io("cannot write", &tmp, e))?;
    fs::rename(&tmp, &path).map_err(|e| Failure::io("cannot write", &path, e))
}

pub fn download_metadata(remote: &Remote, args: &MetadataArgs) -> Result<()> {
    let metadata = model_metadata(remote, &args.model)?;
    save_metadata(Path::new(&args.write_dir), &metadata)
}

fn text<'a>(metadata: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    metadata.get(key).and_then(Value::as_str)
}

/// The remote paths opsml-cli downloads for these flags: the preprocessor's (first of
/// preprocessor, tokenizer, feature extractor) with `--preprocessor`, then the model's (the
/// trained model, or with `--onnx` the ONNX model, or with `--quantize` too the quantized one).
pub fn model_uris(
    metadata: &Map<String, Value>,
    onnx: bool,
    quantize: bool,
    preprocessor: bool,
) -> Result<Vec<String>> {
    let mut uris = Vec::new();
    if preprocessor {
        if let Some(uri) = ["preprocessor_uri", "tokenizer_uri", "feature_extractor_uri"]
            .iter()
            .find_map(|k| text(metadata, k))
        {
            uris.push(uri.to_string());
        }
    }
    let model = match (onnx, quantize) {
        (true, true) => text(metadata, "quantized_model_uri").ok_or_else(|| {
            Failure::not_found("No quantize model uri found but quantize flag set to true")
        })?,
        (true, false) => text(metadata, "onnx_uri").ok_or_else(|| {
            Failure::not_found("No onnx model uri found but onnx flag set to true")
        })?,
        (false, _) => text(metadata, "model_uri").expect("checked when parsed"),
    };
    uris.push(model.to_string());
    Ok(uris)
}

/// opsml-cli names a local file by removing the card's folder from its remote path, segment
/// by segment (a path outside the folder is an error there too).
fn local_name(remote_path: &str, root: &str) -> Result<String> {
    let rel = Path::new(remote_path).strip_prefix(root).map_err(|_| {
        Failure::other(format!(
            "Failed to create file path: {remote_path} is not under {root}"
        ))
    })?;
    let parts: Vec<String> = rel
        .components()
        .map(|c| match c {
            Component::Normal(s) => Ok(s.to_string_lossy().into_owned()),
            _ => Err(Failure::other(format!(
                "refusing the file name {remote_path:?}"
            ))),
        })
        .collect::<Result<_>>()?;
    let rel = parts.join("/");
    api::check_relative(&rel)?;
    Ok(rel)
}

pub fn download_model(remote: &Remote, args: &DownloadModelArgs, quiet: bool) -> Result<()> {
    let metadata = model_metadata(remote, &args.model)?;
    let write_dir = Path::new(&args.write_dir);
    save_metadata(write_dir, &metadata)?;
    let root = format!(
        "opsml-root:/{}/{}/{}/v{}",
        registry_folder("model")?,
        text(&metadata, "model_repository").unwrap_or_default(),
        text(&metadata, "model_name").unwrap_or_default(),
        text(&metadata, "model_version").unwrap_or_default(),
    );
    let mut wanted: Vec<Wanted> = Vec::new();
    for uri in model_uris(&metadata, args.onnx, args.quantize, args.preprocessor)? {
        let files = api::list_files(remote, &uri)?;
        if files.is_empty() {
            return Err(Failure::new(Kind::NotFound, format!("no files at {uri}")));
        }
        for file in files {
            let rel = local_name(&file.path, &root)?;
            if !wanted.iter().any(|w| w.rel == rel) {
                wanted.push(Wanted {
                    remote_path: file.path,
                    rel,
                    size: file.size,
                    digest: file.digest,
                });
            }
        }
    }
    let _lock = lock_folder(write_dir, quiet)?;
    let progress = Progress::new(Mode::choose(quiet));
    for w in &wanted {
        if progress.mode() != Mode::Quiet {
            // opsml-cli's line (on stdout, as there), which CI logs may be searched for.
            println!(
                "Downloading: {} from {}",
                write_dir.join(&w.rel).display(),
                w.remote_path
            );
        }
    }
    let started = std::time::Instant::now();
    let pulled = transfer::fetch_all(
        remote,
        write_dir,
        wanted,
        &Options {
            jobs: args.jobs,
            chunk_size: transfer::DEFAULT_CHUNK_SIZE,
        },
        &progress,
    )?;
    progress.finish();
    print_summary(&progress, &pulled, started);
    Ok(())
}

pub fn model_metrics(remote: &Remote, args: &MetricsArgs) -> Result<()> {
    let by_uid = |registry: &str| {
        api::list_cards(
            remote,
            &CardQuery {
                registry: registry.into(),
                uid: Some(args.uid.clone()),
                ..CardQuery::default()
            },
        )
    };
    let mut found = api::run_metrics(remote, &args.uid)?;
    if found.is_empty() {
        // opsml-cli passes the uid as a run uid; a model card's uid leads to its run. A run
        // without metrics prints an empty table; a uid of neither is not found (exit 3).
        let model = by_uid("model")?;
        match model
            .first()
            .and_then(|m| m.fields.get("runcard_uid"))
            .and_then(Value::as_str)
        {
            Some(run) => found = api::run_metrics(remote, run)?,
            None if model.is_empty() && by_uid("run")?.is_empty() => {
                return Err(Failure::not_found(format!(
                    "no run card and no model card has uid {}",
                    args.uid
                )))
            }
            None => {}
        }
    }
    let show = |v: Option<&Value>| match v {
        None | Some(Value::Null) => "None".to_string(),
        Some(Value::String(s)) => format!("\"{s}\""),
        Some(other) => other.to_string(),
    };
    let rows: Vec<Vec<String>> = found
        .iter()
        .map(|m| {
            vec![
                m.get("name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                show(m.get("value")),
                show(m.get("step")),
                show(m.get("timestamp")),
            ]
        })
        .collect();
    println!("\nModel Metrics");
    println!(
        "{}",
        table::render(&["metric", "value", "step", "timestamp"], &rows)
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_names_follow_opsml_cli() {
        let root = "opsml-root:/OPSML_MODEL_REGISTRY/r/m/v1.0.0";
        assert_eq!(
            local_name(&format!("{root}/onnx-model.onnx"), root).unwrap(),
            "onnx-model.onnx"
        );
        assert_eq!(
            local_name(&format!("{root}/tok/vocab.json"), root).unwrap(),
            "tok/vocab.json"
        );
        assert!(local_name("opsml-root:/OPSML_MODEL_REGISTRY/r/m/v1.0.01/x", root).is_err());
    }

    #[test]
    fn metadata_keeps_opsml_clis_fields_in_its_order() {
        let answer = json!({
            "model_name": "m", "model_class": "c", "model_type": "t", "model_interface": "i",
            "onnx_uri": "o", "model_uri": "u", "model_version": "1.0.0", "model_repository": "r",
            "sample_data_uri": "s", "opsml_version": "2.2.4",
            "data_schema": {"data_type": "d", "input_features": {"f": {"feature_type": "float", "shape": [1], "extra": 1}}}
        });
        let out = opsml_cli_metadata(&answer).unwrap();
        let keys: Vec<&str> = out.keys().map(String::as_str).collect();
        assert_eq!(keys[0], "model_name");
        assert_eq!(keys.len(), 18);
        assert!(!out.contains_key("opsml_version"));
        assert_eq!(
            out["data_schema"]["input_features"]["f"],
            json!({"feature_type": "float", "shape": [1]})
        );
    }
}
