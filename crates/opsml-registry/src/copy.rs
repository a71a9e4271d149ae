//! `copy`: cards, their files and run metrics from one registry to another over HTTP.
//!
//! Registries are copied in the order their links need (projects, data, runs, models,
//! pipelines, audits); each card's files first, then the card (with its own uid, version,
//! timestamp, date, tags and links), then a run's metrics. What the target holds already is
//! skipped (the same uid; a file with the same path and digest), so a second run copies nothing
//! and a killed run finishes on the next. Nothing on the target is overwritten: a card whose
//! name and version exist there with another uid, or a file there with other bytes, is
//! reported and skipped (exit 7).

use crate::api::{self, Card, CardFilter, CardQuery, Digest, RemoteFile};
use crate::digest;
use crate::fail::{Failure, Kind, Result};
use crate::http::{classify, Attempt, Credentials, Remote, Settings};
use crate::ls::registries;
use crate::pull::lock_folder;
use crate::report::{human_bytes, Mode, Progress};
use crate::transfer::{self, parallel, Options, Wanted};
use clap::Args;
use serde_json::{json, Map, Value};
use std::fs::{self, File};
use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Args)]
pub struct CopyArgs {
    /// The source registry's address (its credentials: OPSML_FROM_TOKEN, or OPSML_FROM_USERNAME
    /// + OPSML_FROM_PASSWORD; else the target's)
    #[arg(long, value_name = "URL")]
    pub from: String,
    /// The target registry's address (credentials: OPSML_TOKEN, or OPSML_USERNAME +
    /// OPSML_PASSWORD; prod token: OPSML_PROD_TOKEN)
    #[arg(long, value_name = "URL")]
    pub to: String,
    /// One registry (model, data, run, pipeline, audit, project) or "all"
    #[arg(long, default_value = "all")]
    pub registry: String,
    #[command(flatten)]
    pub cards: CardFilter,
    /// Print what would be copied, and copy nothing
    #[arg(long = "dry-run")]
    pub dry_run: bool,
    /// Files moved at once
    #[arg(long, default_value_t = 4)]
    pub jobs: usize,
    /// Where files wait between download and upload (default: a temporary folder)
    #[arg(long = "spool-dir", value_name = "DIR")]
    pub spool_dir: Option<PathBuf>,
    /// Print the report as JSON on stdout
    #[arg(long)]
    pub json: bool,
}

/// What happened to one card.
#[derive(Default)]
struct CardReport {
    label: String,
    registry: String,
    uid: String,
    /// "copied", "present" (nothing to do), "skipped" or, with --dry-run, "planned".
    outcome: &'static str,
    card_created: bool,
    files_copied: Vec<String>,
    bytes_copied: u64,
    /// A dry run against a source that lists no sizes (opsml 2.2.4): `bytes_copied` is not
    /// the size of what would be copied.
    sizes_unknown: bool,
    files_present: usize,
    metrics_copied: usize,
    problems: Vec<String>,
}

impl CardReport {
    fn to_json(&self) -> Value {
        json!({
            "card": self.label,
            "registry": self.registry,
            "uid": self.uid,
            "outcome": self.outcome,
            "card_created": self.card_created,
            "files_copied": self.files_copied,
            "bytes_copied": (!self.sizes_unknown).then_some(self.bytes_copied),
            "files_present": self.files_present,
            "metrics_copied": self.metrics_copied,
            "problems": self.problems,
        })
    }
}

/// Where downloaded files wait for their upload; removed after a run that got to the end
/// (unless the user named it), kept otherwise so that the next run resumes from it.
struct Spool {
    dir: PathBuf,
    remove: bool,
}

pub fn run(args: &CopyArgs, settings: &Settings, quiet: bool) -> Result<()> {
    let target_credentials = Credentials::from_env("OPSML_")?;
    let source_credentials = match Credentials::from_env("OPSML_FROM_")? {
        Credentials::None => target_credentials.clone(),
        set => set,
    };
    // The source is only read: it never gets the prod token.
    let source = Remote::new(&args.from, source_credentials, None, settings)?;
    let target = Remote::new(
        &args.to,
        target_credentials,
        std::env::var("OPSML_PROD_TOKEN").ok(),
        settings,
    )?;
    if source.base() == target.base() {
        return Err(Failure::usage("--from and --to name the same registry"));
    }
    // One spool folder per source and target: a killed copy's partial downloads are resumed
    // by the next run; the lock keeps two copies between the same registries apart.
    let spool = match &args.spool_dir {
        Some(dir) => Spool {
            dir: dir.clone(),
            remove: false,
        },
        None => {
            let key = blake3::hash(format!("{}\n{}", source.base(), target.base()).as_bytes());
            Spool {
                dir: std::env::temp_dir()
                    .join(format!("opsml-registry-copy-{}", &key.to_hex()[..16])),
                remove: true,
            }
        }
    };
    let _lock = lock_folder(&spool.dir, quiet || args.json)?;
    // Per-file lines of the spooled downloads would bury the per-card report.
    let progress = Progress::new(match Mode::choose(quiet || args.json) {
        Mode::Bars => Mode::Bars,
        _ => Mode::Quiet,
    });
    let say = |line: &str| {
        if progress.mode() == Mode::Bars {
            progress.note(line)
        } else if !(quiet || args.json) {
            eprintln!("{line}")
        }
    };
    let started = Instant::now();
    let mut reports = Vec::new();
    for registry in registries(&args.registry)? {
        let cards = api::list_cards(&source, &args.cards.query(registry.clone()))
            .map_err(|f| f.context(format!("listing the source's {registry} cards")))?;
        // Oldest first, so that versions arrive on the target in the order they were made.
        let mut cards = cards;
        cards.reverse();
        for card in cards {
            let report = copy_card(&source, &target, &card, args, &spool.dir, &progress)
                .map_err(|f| f.context(format!("copying {}", card.label())))?;
            say(&describe(&report, args.dry_run));
            reports.push(report);
        }
    }
    progress.finish();
    if spool.remove {
        let _ = fs::remove_dir_all(&spool.dir);
    }
    let copied = reports.iter().filter(|r| r.outcome == "copied").count();
    let planned = reports.iter().filter(|r| r.outcome == "planned").count();
    let present = reports.iter().filter(|r| r.outcome == "present").count();
    let skipped = reports.iter().filter(|r| r.outcome == "skipped").count();
    let with_problems = reports.iter().filter(|r| !r.problems.is_empty()).count();
    let files: usize = reports.iter().map(|r| r.files_copied.len()).sum();
    let bytes: u64 = reports.iter().map(|r| r.bytes_copied).sum();
    let sizes_unknown = reports.iter().any(|r| r.sizes_unknown);
    let metrics: usize = reports.iter().map(|r| r.metrics_copied).sum();
    let summary = if args.dry_run {
        format!(
            "dry run: {planned} cards to copy, {present} already on the target, {skipped} to skip; \
             {files} files ({}) and {metrics} metrics to copy",
            size_of(bytes, sizes_unknown)
        )
    } else if copied == 0 && skipped == 0 && with_problems == 0 {
        format!("nothing to copy: all {present} cards are on the target already")
    } else {
        format!(
            "{copied} cards copied, {present} already on the target, {skipped} skipped; {files} files \
             ({}) and {metrics} metrics copied in {:.1} s",
            human_bytes(bytes),
            started.elapsed().as_secs_f64()
        )
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "from": source.base(),
                "to": target.base(),
                "dry_run": args.dry_run,
                "summary": summary,
                "cards": reports.iter().map(CardReport::to_json).collect::<Vec<_>>(),
            }))
            .expect("serialisable")
        );
    } else {
        say(&summary);
    }
    if skipped > 0 || with_problems > 0 {
        return Err(Failure::new(
            Kind::Skipped,
            format!(
                "{} cards were skipped or have files that were not copied: see the report above",
                skipped.max(with_problems)
            ),
        ));
    }
    Ok(())
}

/// A size for people; the source may not list sizes (opsml 2.2.4's server lists only paths).
fn size_of(bytes: u64, unknown: bool) -> String {
    if unknown {
        "size not listed by the source".into()
    } else {
        human_bytes(bytes)
    }
}

fn describe(report: &CardReport, dry_run: bool) -> String {
    let mut line = match report.outcome {
        "present" => format!("present  {}", report.label),
        "skipped" => format!("SKIPPED  {}", report.label),
        _ => format!(
            "{} {}: {} files ({}){}{}",
            if dry_run { "would copy" } else { "copied  " },
            report.label,
            report.files_copied.len(),
            size_of(report.bytes_copied, report.sizes_unknown),
            if report.card_created { ", card" } else { "" },
            if report.metrics_copied > 0 {
                format!(", {} metrics", report.metrics_copied)
            } else {
                String::new()
            }
        ),
    };
    for problem in &report.problems {
        line.push_str(&format!("\n    {problem}"));
    }
    line
}

fn find_on(remote: &Remote, query: CardQuery) -> Result<Vec<Card>> {
    api::list_cards(remote, &query)
}

fn copy_card(
    source: &Remote,
    target: &Remote,
    card: &Card,
    args: &CopyArgs,
    spool: &Path,
    progress: &Progress,
) -> Result<CardReport> {
    let registry = card.registry.clone();
    let mut report = CardReport {
        label: card.label(),
        registry: registry.clone(),
        uid: card.uid().to_string(),
        ..CardReport::default()
    };
    if card.uid().is_empty() || card.name().is_empty() || card.version().is_empty() {
        report.outcome = "skipped";
        report
            .problems
            .push("the source lists it without a uid, name or version".into());
        return Ok(report);
    }
    let on_target = find_on(
        target,
        CardQuery {
            registry: registry.clone(),
            uid: Some(card.uid().to_string()),
            ..CardQuery::default()
        },
    )?;
    let card_exists = !on_target.is_empty();
    if !card_exists {
        // Never overwrite: the same name and version with another uid is someone else's card.
        let same_version = find_on(
            target,
            CardQuery {
                registry: registry.clone(),
                name: Some(card.name().to_string()),
                repository: Some(card.repository().to_string()),
                version: Some(card.version().to_string()),
                ..CardQuery::default()
            },
        )?;
        if let Some(other) = same_version
            .iter()
            .find(|c| c.version() == card.version() && c.uid() != card.uid())
        {
            report.outcome = "skipped";
            report.problems.push(format!(
                "the target has {} v{} with another uid ({}): not overwritten",
                card.name(),
                card.version(),
                other.uid()
            ));
            return Ok(report);
        }
    }

    let folder = card.folder()?;
    let mut source_files = api::list_files(source, &folder)?;
    let referenced = referenced_paths(source, card, &source_files)?;
    // Paths the card names outside its folder: opsml-root:/ ones are copied too; any other root
    // (a bucket, a local path) cannot be, and is named.
    for path in referenced {
        if let Some(rest) = path.strip_prefix("opsml-root:/") {
            let inside = path.starts_with(&format!("{folder}/"));
            if !inside && !rest.is_empty() && !source_files.iter().any(|f| f.path == path) {
                source_files.extend(api::list_files(source, &path)?);
            }
        } else {
            report.problems.push(format!(
                "not copied: {path} is stored outside opsml-root:/ (the target cannot hold it)"
            ));
        }
    }
    let target_files = api::list_files(target, &folder)?;
    let mut to_copy: Vec<RemoteFile> = Vec::new();
    for file in &source_files {
        let there = match target_files.iter().find(|t| t.path == file.path) {
            Some(t) => Some(t.clone()),
            None if !file.path.starts_with(&format!("{folder}/")) => {
                api::list_files(target, &file.path)?
                    .into_iter()
                    .find(|t| t.path == file.path)
            }
            None => None,
        };
        match there {
            None => to_copy.push(file.clone()),
            Some(t) => match (&file.digest, &t.digest) {
                (Some(a), Some(b)) if a.algorithm == b.algorithm && a != b => {
                    report.problems.push(format!(
                        "not copied: the target's {} has other bytes ({b}, the source's: {a}); not overwritten",
                        file.path
                    ));
                }
                _ => report.files_present += 1,
            },
        }
    }

    let metrics_missing = if registry == "run" {
        missing_metrics(source, target, card.uid())?
    } else {
        Vec::new()
    };

    if to_copy.is_empty() && card_exists && metrics_missing.is_empty() {
        report.outcome = "present";
        return Ok(report);
    }
    if args.dry_run {
        report.outcome = "planned";
        report.card_created = !card_exists;
        report.files_copied = to_copy.iter().map(|f| f.path.clone()).collect();
        report.bytes_copied = to_copy.iter().filter_map(|f| f.size).sum();
        report.sizes_unknown = to_copy.iter().any(|f| f.size.is_none());
        report.metrics_copied = metrics_missing.len();
        return Ok(report);
    }

    if !to_copy.is_empty() {
        let card_spool = spool.join(card.uid());
        let copied = copy_files(source, target, &to_copy, &card_spool, args.jobs, progress)?;
        let _ = fs::remove_dir_all(&card_spool);
        for (path, bytes) in copied {
            report.files_copied.push(path);
            report.bytes_copied += bytes;
        }
    }
    if !card_exists {
        create_card(target, card)?;
        report.card_created = true;
    }
    if !metrics_missing.is_empty() {
        target.put_json("metrics", &json!({ "metric": metrics_missing }))?;
        report.metrics_copied = metrics_missing.len();
    }
    report.outcome = "copied";
    Ok(report)
}

/// Storage paths a card's record (and a model's `model-metadata.json`, if it has one) names.
fn referenced_paths(source: &Remote, card: &Card, files: &[RemoteFile]) -> Result<Vec<String>> {
    let mut found = Vec::new();
    collect_paths(&Value::Object(card.fields.clone()), "", &mut found);
    let metadata_path = format!("{}/model-metadata.json", card.folder()?);
    if card.registry == "model" && files.iter().any(|f| f.path == metadata_path) {
        if let Some(metadata) = small_json(source, &metadata_path)? {
            collect_paths(&metadata, "", &mut found);
        }
    }
    found.sort();
    found.dedup();
    Ok(found)
}

/// A small stored JSON file, or None when it is not JSON (then it names no paths).
fn small_json(source: &Remote, path: &str) -> Result<Option<Value>> {
    source.retrying(&format!("reading {path}"), || {
        let response = match classify(
            source
                .request("GET", "files/download", &[("path", path)])
                .call(),
        ) {
            Attempt::Done(r) => r,
            Attempt::Retry { why, after } => return Attempt::Retry { why, after },
            Attempt::Fail(f) => return Attempt::Fail(f),
        };
        let mut bytes = Vec::new();
        if let Err(e) = response.into_reader().take(4 << 20).read_to_end(&mut bytes) {
            return Attempt::Retry {
                why: e.to_string(),
                after: None,
            };
        }
        Attempt::Done(serde_json::from_slice(&bytes).ok())
    })
}

/// Strings under keys that hold storage locations (`*_uri`, `remote_path`, `uri`): a
/// `local_path` is the client's own disk and is left alone.
fn collect_paths(value: &Value, key: &str, found: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                collect_paths(v, k, found);
            }
        }
        Value::Array(items) => {
            for v in items {
                collect_paths(v, key, found);
            }
        }
        Value::String(s)
            if !s.is_empty()
                && (key.ends_with("_uri") || key == "uri" || key == "remote_path")
                && !key.ends_with("card_uid") =>
        {
            found.push(s.clone())
        }
        _ => {}
    }
}

/// Metrics of a run on the source that the target lacks (compared as whole records).
fn missing_metrics(source: &Remote, target: &Remote, run_uid: &str) -> Result<Vec<Value>> {
    let read = |remote: &Remote| api::run_metrics(remote, run_uid);
    let key = |m: &Value| {
        json!([
            m.get("name"),
            m.get("value"),
            m.get("step"),
            m.get("timestamp")
        ])
        .to_string()
    };
    let mut present: Vec<String> = read(target)?.iter().map(key).collect();
    let mut missing = Vec::new();
    for metric in read(source)? {
        let k = key(&metric);
        if let Some(i) = present.iter().position(|p| p == &k) {
            present.swap_remove(i);
        } else {
            let mut m = Map::new();
            for field in ["run_uid", "name", "value", "step", "timestamp"] {
                m.insert(
                    field.to_string(),
                    metric.get(field).cloned().unwrap_or(Value::Null),
                );
            }
            m.insert("run_uid".into(), Value::String(run_uid.to_string()));
            missing.push(Value::Object(m));
        }
    }
    Ok(missing)
}

fn create_card(target: &Remote, card: &Card) -> Result<()> {
    let body = json!({"registry_type": card.registry, "card": Value::Object(card.fields.clone())});
    match target.post_json("cards/create", &body) {
        Ok(_) => Ok(()),
        // A retried create that had gone through, or a card registered meanwhile: fine if it is
        // this card.
        Err(f) if f.status == Some(409) => {
            let there = find_on(
                target,
                CardQuery {
                    registry: card.registry.clone(),
                    uid: Some(card.uid().to_string()),
                    ..CardQuery::default()
                },
            )?;
            if there.is_empty() {
                Err(f.context("cards/create"))
            } else {
                Ok(())
            }
        }
        Err(f) => Err(f),
    }
}

/// Downloads `files` from the source (verified as `pull` verifies) into `spool`, uploads each to
/// the same path on the target, and checks the target's digest of it.
fn copy_files(
    source: &Remote,
    target: &Remote,
    files: &[RemoteFile],
    spool: &Path,
    jobs: usize,
    progress: &Progress,
) -> Result<Vec<(String, u64)>> {
    let wanted: Vec<Wanted> = files
        .iter()
        .enumerate()
        .map(|(i, f)| Wanted {
            remote_path: f.path.clone(),
            // Spooled under its storage path, so that a later run finds (and resumes) it.
            rel: f
                .path
                .strip_prefix("opsml-root:/")
                .filter(|rel| api::check_relative(rel).is_ok())
                .map(str::to_string)
                .unwrap_or_else(|| format!("other/{i}")),
            size: f.size,
            digest: f.digest.clone(),
        })
        .collect();
    let pulled = transfer::fetch_all(
        source,
        spool,
        wanted,
        &Options {
            jobs,
            chunk_size: transfer::DEFAULT_CHUNK_SIZE,
        },
        progress,
    )?;
    parallel(jobs, &pulled, |p| {
        let local = spool.join(&p.rel);
        upload(target, &p.remote_path, &local, p.size)?;
        verify_upload(target, &p.remote_path, &local, &p.digest)?;
        let _ = fs::remove_file(&local);
        Ok((p.remote_path.clone(), p.size))
    })
}

/// `POST files/upload` as the opsml client sends it: one multipart part named `file`, the
/// destination in the `write_path` header, with a `Content-Length`.
fn upload(target: &Remote, write_path: &str, local: &Path, size: u64) -> Result<()> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let boundary = format!(
        "opsml-registry-{}",
        &blake3::hash(format!("{write_path}\n{nanos}\n{}", std::process::id()).as_bytes()).to_hex()
            [..32]
    );
    let filename = write_path
        .rsplit('/')
        .next()
        .unwrap_or("file")
        .replace('"', "%22");
    let head = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    );
    let tail = format!("\r\n--{boundary}--\r\n");
    let length = head.len() as u64 + size + tail.len() as u64;
    target.retrying(&format!("uploading {write_path}"), || {
        let file = match File::open(local) {
            Ok(f) => f,
            Err(e) => return Attempt::Fail(Failure::io("cannot read", local, e)),
        };
        let body = Cursor::new(head.clone().into_bytes())
            .chain(file.take(size))
            .chain(Cursor::new(tail.clone().into_bytes()));
        let request = target
            .request("POST", "files/upload", &[])
            .set("write_path", write_path)
            .set(
                "Content-Type",
                &format!("multipart/form-data; boundary={boundary}"),
            )
            .set("Content-Length", &length.to_string());
        match classify(request.send(body)) {
            Attempt::Done(response) => {
                let _ = std::io::copy(
                    &mut response.into_reader().take(1 << 20),
                    &mut std::io::sink(),
                );
                Attempt::Done(())
            }
            Attempt::Retry { why, after } => Attempt::Retry { why, after },
            Attempt::Fail(f) => Attempt::Fail(f),
        }
    })
}

/// The target must list the file with the digest of the bytes sent, in its own algorithm.
fn verify_upload(target: &Remote, path: &str, local: &Path, sent: &Digest) -> Result<()> {
    let listed = api::list_files(target, path)?;
    let Some(file) = listed.iter().find(|f| f.path == path) else {
        return Err(Failure::integrity(format!(
            "{path} was uploaded but the target does not list it"
        )));
    };
    let Some(theirs) = &file.digest else {
        // A target without files/list/info (opsml 2.2.4) cannot be checked.
        return Ok(());
    };
    let ours = if theirs.algorithm == sent.algorithm {
        sent.clone()
    } else {
        digest::of_file(theirs.algorithm, local)
            .map_err(|e| Failure::io("cannot read", local, e))?
            .0
    };
    if &ours != theirs {
        return Err(Failure::integrity(format!(
            "{path}: the target stored {theirs}, the bytes sent hash to {ours}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_paths_are_found_under_uri_keys_only() {
        let record = json!({
            "uid": "u", "datacard_uid": "d", "pipeline_code_uri": "s3://bucket/code.py",
            "artifact_uris": {"notes": {"local_path": "/home/me/notes.txt",
                                        "remote_path": "opsml-root:/OPSML_RUN_REGISTRY/r/n/v1.0.0/artifacts/notes.txt"}}
        });
        let mut found = Vec::new();
        collect_paths(&record, "", &mut found);
        found.sort();
        assert_eq!(
            found,
            vec![
                "opsml-root:/OPSML_RUN_REGISTRY/r/n/v1.0.0/artifacts/notes.txt".to_string(),
                "s3://bucket/code.py".to_string()
            ]
        );
    }
}
