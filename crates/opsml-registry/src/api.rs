//! The opsml 2.x routes this client uses, typed just enough: cards, files and their digests.

use crate::fail::{Failure, Result};
use crate::http::Remote;
use clap::Args;
use registry_core::RegistryType;
use serde_json::{json, Map, Value};

/// The registries in the order `copy` writes them, so that the cards a card names exist
/// first: projects, data, runs, models, pipelines, audits.
pub const REGISTRIES: [&str; 6] = ["project", "data", "run", "model", "pipeline", "audit"];

/// The storage folder of a registry (`opsml-root:/<folder>/<repository>/<name>/v<version>`).
pub fn registry_folder(registry: &str) -> Result<&'static str> {
    RegistryType::parse(registry)
        .map(RegistryType::storage_folder)
        .map_err(|_| {
            Failure::usage(format!(
                "unknown registry {registry:?}: expected one of {}",
                REGISTRIES.join(", ")
            ))
        })
}

/// A card's record as the server lists it (every column).
#[derive(Clone, Debug)]
pub struct Card {
    pub registry: String,
    pub fields: Map<String, Value>,
}

impl Card {
    fn text(&self, key: &str) -> &str {
        self.fields.get(key).and_then(Value::as_str).unwrap_or("")
    }
    pub fn uid(&self) -> &str {
        self.text("uid")
    }
    pub fn name(&self) -> &str {
        self.text("name")
    }
    pub fn repository(&self) -> &str {
        self.text("repository")
    }
    pub fn version(&self) -> &str {
        self.text("version")
    }
    pub fn date(&self) -> &str {
        self.text("date")
    }
    pub fn contact(&self) -> &str {
        self.text("contact")
    }

    /// `opsml-root:/<folder>/<repository>/<name>/v<version>`: where the client keeps its files.
    pub fn folder(&self) -> Result<String> {
        Ok(format!(
            "opsml-root:/{}/{}/{}/v{}",
            registry_folder(&self.registry)?,
            self.repository(),
            self.name(),
            self.version()
        ))
    }

    pub fn label(&self) -> String {
        format!(
            "{} {}/{} v{} ({})",
            self.registry,
            self.repository(),
            self.name(),
            self.version(),
            self.uid()
        )
    }
}

/// The flags that pick cards, shared by every command that reads them.
#[derive(Args, Clone, Debug)]
pub struct CardFilter {
    /// Card name
    #[arg(long)]
    pub name: Option<String>,
    /// Card repository
    #[arg(long)]
    pub repository: Option<String>,
    /// Version, or a range the server resolves: 1, 1.2, ~1.2.3, ^1.0.0
    #[arg(long)]
    pub version: Option<String>,
    /// Card uid
    #[arg(long)]
    pub uid: Option<String>,
}

impl CardFilter {
    /// The query for these cards in `registry`, nothing else set.
    pub fn query(&self, registry: String) -> CardQuery {
        CardQuery {
            registry,
            name: self.name.clone(),
            repository: self.repository.clone(),
            version: self.version.clone(),
            uid: self.uid.clone(),
            ..CardQuery::default()
        }
    }
}

/// `POST cards/list`, with the keys the Python client sends.
#[derive(Clone, Debug, Default)]
pub struct CardQuery {
    pub registry: String,
    pub name: Option<String>,
    pub repository: Option<String>,
    pub version: Option<String>,
    pub uid: Option<String>,
    pub limit: Option<i64>,
    pub tags: Map<String, Value>,
    pub max_date: Option<String>,
    pub ignore_release_candidates: bool,
}

pub fn list_cards(remote: &Remote, query: &CardQuery) -> Result<Vec<Card>> {
    registry_folder(&query.registry)?;
    let body = json!({
        "name": query.name,
        "repository": query.repository,
        "version": query.version,
        "uid": query.uid,
        "max_date": query.max_date,
        "limit": query.limit,
        "tags": if query.tags.is_empty() { Value::Null } else { Value::Object(query.tags.clone()) },
        "registry_type": query.registry,
        "ignore_release_candidates": query.ignore_release_candidates,
        "query_terms": null,
        "sort_by_timestamp": false,
    });
    let answer = remote.post_json("cards/list", &body)?;
    let cards = answer
        .get("cards")
        .and_then(Value::as_array)
        .ok_or_else(|| {
            Failure::other(format!(
                "cards/list answered without a \"cards\" list: {answer}"
            ))
        })?;
    Ok(cards
        .iter()
        .filter_map(Value::as_object)
        .map(|fields| Card {
            registry: query.registry.clone(),
            fields: fields.clone(),
        })
        .collect())
}

/// The one card a pull names: by `uid`, or the highest version of `name` that matches
/// `version` (a range the server resolves: `1`, `~1.2`, `^1.0.0`, `1.2.3`).
pub fn find_card(remote: &Remote, query: &CardQuery) -> Result<Card> {
    let registry = query.registry.as_str();
    let (uid, name, repository, version) = (
        query.uid.as_deref(),
        query.name.as_deref(),
        query.repository.as_deref(),
        query.version.as_deref(),
    );
    let cards = list_cards(remote, query)?;
    let what = match uid {
        Some(uid) => format!("{registry} card with uid {uid}"),
        None => format!(
            "{registry} card named {:?}{}{}",
            name.unwrap_or_default(),
            repository
                .map(|r| format!(" in repository {r:?}"))
                .unwrap_or_default(),
            version
                .map(|v| format!(" matching version {v:?}"))
                .unwrap_or_default()
        ),
    };
    let first = cards
        .first()
        .ok_or_else(|| Failure::not_found(format!("there is no {what} on {}", remote.base())))?;
    if uid.is_none() {
        // The server lists the highest version first; two repositories with the same name
        // would make "the highest" depend on an order the user did not choose.
        if let Some(other) = cards.iter().find(|c| c.repository() != first.repository()) {
            return Err(Failure::usage(format!(
                "{what} exists in several repositories ({} and {}): add --repository",
                first.repository(),
                other.repository()
            )));
        }
    }
    Ok(first.clone())
}

/// A digest algorithm the registry records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    Blake3,
    Sha256,
}

impl Algorithm {
    pub fn parse(name: &str) -> Result<Algorithm> {
        match name.to_ascii_lowercase().as_str() {
            "blake3" => Ok(Algorithm::Blake3),
            "sha256" | "sha-256" => Ok(Algorithm::Sha256),
            other => Err(Failure::other(format!(
                "the server names a digest algorithm this client does not know: {other:?}"
            ))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Blake3 => "blake3",
            Algorithm::Sha256 => "sha256",
        }
    }
}

/// A digest: its algorithm and lower-case hex.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Digest {
    pub algorithm: Algorithm,
    pub hex: String,
}

impl std::fmt::Display for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.algorithm.name(), self.hex)
    }
}

/// A stored file as `files/list/info` describes it (the reference server only has
/// `files/list`: then size and digest are unknown).
#[derive(Clone, Debug)]
pub struct RemoteFile {
    pub path: String,
    pub size: Option<u64>,
    pub digest: Option<Digest>,
}

/// Every metric record of a run (`POST metrics`, as the Python client reads them).
pub fn run_metrics(remote: &Remote, run_uid: &str) -> Result<Vec<Value>> {
    let answer = remote.post_json(
        "metrics",
        &json!({"run_uid": run_uid, "name": null, "names_only": false}),
    )?;
    Ok(answer
        .get("metric")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default())
}

/// The files under `path`. Uses `files/list/info` (size and digest of each); a server without
/// that route (opsml 2.2.4 answers 404 or 405) is asked `files/list`, and its files have
/// neither.
pub fn list_files(remote: &Remote, path: &str) -> Result<Vec<RemoteFile>> {
    match remote.get_json("files/list/info", &[("path", path)]) {
        Ok(answer) => parse_info(&answer),
        // The route is missing (the detail is FastAPI's "Not Found" / "Method Not Allowed").
        Err(f) if matches!(f.status, Some(404 | 405)) => {
            let answer = remote.get_json("files/list", &[("path", path)])?;
            let files = answer
                .get("files")
                .and_then(Value::as_array)
                .ok_or_else(|| Failure::other(format!("files/list answered {answer}")))?;
            Ok(files
                .iter()
                .filter_map(Value::as_str)
                .map(|p| RemoteFile {
                    path: p.to_string(),
                    size: None,
                    digest: None,
                })
                .collect())
        }
        Err(f) => Err(f),
    }
}

fn parse_info(answer: &Value) -> Result<Vec<RemoteFile>> {
    let files = answer
        .get("files")
        .and_then(Value::as_array)
        .ok_or_else(|| Failure::other(format!("files/list/info answered {answer}")))?;
    files
        .iter()
        .map(|f| {
            let path = f.get("path").and_then(Value::as_str).ok_or_else(|| {
                Failure::other(format!("files/list/info: an entry without a path: {f}"))
            })?;
            let size = f.get("size").and_then(Value::as_u64);
            let digest = match (
                f.get("digest").and_then(Value::as_str),
                f.get("digest_algorithm").and_then(Value::as_str),
            ) {
                (Some(hex), Some(algorithm)) => Some(Digest {
                    algorithm: Algorithm::parse(algorithm)?,
                    hex: hex.to_ascii_lowercase(),
                }),
                _ => None,
            };
            Ok(RemoteFile {
                path: path.to_string(),
                size,
                digest,
            })
        })
        .collect()
}

/// `relative` of `path` under `folder`, checked to be a plain relative path (no `..`, no empty
/// or `.` segments, no backslashes): it becomes a local file name.
pub fn relative_to(path: &str, folder: &str) -> Result<String> {
    let rest = path
        .strip_prefix(folder)
        .and_then(|r| r.strip_prefix('/'))
        .ok_or_else(|| {
            Failure::other(format!(
                "the server listed {path}, which is not under {folder}"
            ))
        })?;
    check_relative(rest)?;
    Ok(rest.to_string())
}

pub fn check_relative(rel: &str) -> Result<()> {
    if rel.is_empty()
        || rel.contains('\\')
        || rel.contains('\0')
        || rel
            .split('/')
            .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return Err(Failure::other(format!(
            "refusing the file name {rel:?}: not a plain relative path"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_stay_inside_the_folder() {
        let folder = "opsml-root:/OPSML_MODEL_REGISTRY/r/n/v1.0.0";
        assert_eq!(
            relative_to(&format!("{folder}/a/b.onnx"), folder).unwrap(),
            "a/b.onnx"
        );
        for bad in ["../x", "a/../../x", "a//b", "./a", "a\\b"] {
            assert!(
                relative_to(&format!("{folder}/{bad}"), folder).is_err(),
                "{bad}"
            );
        }
        assert!(relative_to("opsml-root:/OPSML_MODEL_REGISTRY/r/n/v1.0.01/x", folder).is_err());
    }
}
