//! `pull`: every file of a card into a folder, keeping the card's layout; `--json` prints a
//! manifest that `--locked` checks a later pull against.

use crate::api::{self, Algorithm, Card, CardFilter, CardQuery, Digest};
use crate::fail::{Failure, Result};
use crate::http::Remote;
use crate::legacy::{model_uris, opsml_cli_metadata};
use crate::report::{human_bytes, Mode, Progress};
use crate::transfer::{self, Options, Pulled, Wanted};
use clap::Args;
use serde_json::{json, Value};
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Args)]
pub struct PullArgs {
    /// Registry of the card: model, data, run, pipeline, audit, project
    #[arg(long, default_value = "model")]
    pub registry: String,
    #[command(flatten)]
    pub card: CardFilter,
    /// Ignore release candidates when resolving the version
    #[arg(long = "ignore_release_candidate")]
    pub ignore_release_candidates: bool,
    /// Folder to write into (created if missing)
    #[arg(long = "write-dir", default_value = "models")]
    pub write_dir: String,
    /// Only files whose path in the card matches (glob; repeatable)
    #[arg(long, value_name = "GLOB")]
    pub include: Vec<String>,
    /// Leave out files whose path in the card matches (glob; repeatable)
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,
    /// Model cards: only the ONNX model (and model-metadata.json), as download-model --onnx
    #[arg(long)]
    pub onnx: bool,
    /// Model cards, with --onnx: the quantized ONNX model
    #[arg(long)]
    pub quantize: bool,
    /// Model cards: only the model (trained, or ONNX with --onnx) and its preprocessor,
    /// tokenizer or feature extractor, as download-model --preprocessor
    #[arg(long)]
    pub preprocessor: bool,
    /// Transfers at once (files, or ranges of a large file)
    #[arg(long, default_value_t = 8)]
    pub jobs: usize,
    /// Files larger than this many MiB are fetched as parallel ranges of this size
    #[arg(long = "chunk-size", default_value_t = transfer::DEFAULT_CHUNK_SIZE >> 20, value_name = "MIB")]
    pub chunk_mib: u64,
    /// Print what was pulled as JSON on stdout (registry, uid, version, each file's path,
    /// size and digest)
    #[arg(long)]
    pub json: bool,
    /// A manifest from an earlier `pull --json`: fail (exit 5) if the card or any file differs
    #[arg(long, value_name = "FILE")]
    pub locked: Option<PathBuf>,
}

/// Holds an exclusive lock on a folder for the life of the value: a second pull into the same
/// folder waits. The lock file sits beside the folder, so the folder holds only pulled files.
pub struct FolderLock {
    _file: File,
}

pub fn lock_folder(dir: &Path, quiet: bool) -> Result<FolderLock> {
    fs::create_dir_all(dir).map_err(|e| Failure::io("cannot create the folder", dir, e))?;
    let dir = dir
        .canonicalize()
        .map_err(|e| Failure::io("cannot resolve", dir, e))?;
    let open = |path: &Path| {
        File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
    };
    let inside = dir.join(".opsml-registry.lock");
    let beside = match (dir.parent(), dir.file_name()) {
        (Some(parent), Some(name)) => {
            Some(parent.join(format!(".{}.opsml-registry.lock", name.to_string_lossy())))
        }
        _ => None,
    };
    // Beside the folder when its parent is writable (`/tmp`'s parent is not, for most users).
    let (file, lock_path) = match beside.as_deref().map(|p| (open(p), p)) {
        Some((Ok(file), path)) => (file, path.to_path_buf()),
        _ => (
            open(&inside).map_err(|e| Failure::io("cannot open the lock file", &inside, e))?,
            inside,
        ),
    };
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            if !quiet {
                eprintln!(
                    "waiting for another pull into {} to finish (lock {})",
                    dir.display(),
                    lock_path.display()
                );
            }
            file.lock()
                .map_err(|e| Failure::io("cannot lock", &lock_path, e))?;
        }
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(Failure::io("cannot lock", &lock_path, e))
        }
    }
    Ok(FolderLock { _file: file })
}

fn globs(patterns: &[String], flag: &str) -> Result<Vec<glob::Pattern>> {
    patterns
        .iter()
        .map(|p| {
            glob::Pattern::new(p)
                .map_err(|e| Failure::usage(format!("--{flag} {p:?} is not a valid glob: {e}")))
        })
        .collect()
}

fn glob_matches(pattern: &glob::Pattern, rel: &str) -> bool {
    let options = glob::MatchOptions {
        case_sensitive: true,
        require_literal_separator: false,
        require_literal_leading_dot: false,
    };
    // `*.onnx` matches at any depth, as in .gitignore; a pattern with a slash is anchored.
    pattern.matches_with(rel, options)
        || (!pattern.as_str().contains('/')
            && rel
                .rsplit('/')
                .next()
                .is_some_and(|name| pattern.matches_with(name, options)))
}

/// The manifest `--json` prints and `--locked` reads.
pub fn manifest(card: &Card, pulled: &[Pulled]) -> Value {
    json!({
        "registry": card.registry,
        "repository": card.repository(),
        "name": card.name(),
        "version": card.version(),
        "uid": card.uid(),
        "files": pulled.iter().map(|p| json!({
            "path": p.rel,
            "size": p.size,
            "digest": p.digest.hex,
            "digest_algorithm": p.digest.algorithm.name(),
        })).collect::<Vec<_>>(),
    })
}

/// A manifest's expectations: the card and each file's size and digest.
struct Locked {
    registry: String,
    uid: String,
    version: String,
    files: Vec<(String, u64, Digest)>,
}

fn read_locked(path: &Path) -> Result<Locked> {
    let bytes = fs::read(path).map_err(|e| Failure::io("cannot read the manifest", path, e))?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|e| {
        Failure::usage(format!(
            "{} is not a pull manifest (JSON): {e}",
            path.display()
        ))
    })?;
    let text = |v: &Value, key: &str| -> Result<String> {
        v.get(key)
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| {
                Failure::usage(format!(
                    "{} is not a pull manifest: no {key:?}",
                    path.display()
                ))
            })
    };
    let files = value
        .get("files")
        .and_then(Value::as_array)
        .ok_or_else(|| {
            Failure::usage(format!(
                "{} is not a pull manifest: no \"files\"",
                path.display()
            ))
        })?
        .iter()
        .map(|f| {
            let size = f.get("size").and_then(Value::as_u64).ok_or_else(|| {
                Failure::usage(format!("{}: a file without a size: {f}", path.display()))
            })?;
            Ok((
                text(f, "path")?,
                size,
                Digest {
                    algorithm: Algorithm::parse(&text(f, "digest_algorithm")?)?,
                    hex: text(f, "digest")?.to_ascii_lowercase(),
                },
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Locked {
        registry: text(&value, "registry")?,
        uid: text(&value, "uid")?,
        version: text(&value, "version")?,
        files,
    })
}

/// Fails with [`Kind::Integrity`] naming every difference between the manifest and what the
/// server holds now.
fn check_locked(locked: &Locked, card: &Card, wanted: &[Wanted]) -> Result<()> {
    let mut differences = Vec::new();
    if card.uid() != locked.uid {
        differences.push(format!("uid {} (locked: {})", card.uid(), locked.uid));
    }
    if card.version() != locked.version {
        differences.push(format!(
            "version {} (locked: {})",
            card.version(),
            locked.version
        ));
    }
    for (path, size, digest) in &locked.files {
        match wanted.iter().find(|w| &w.rel == path) {
            None => differences.push(format!("{path} is gone")),
            Some(w) => {
                if w.size != Some(*size) {
                    differences.push(format!(
                        "{path} has {} bytes (locked: {size})",
                        w.size
                            .map(|s| s.to_string())
                            .unwrap_or("an unknown number of".into())
                    ));
                } else if w.digest.as_ref() != Some(digest) {
                    differences.push(format!(
                        "{path} has digest {} (locked: {digest})",
                        w.digest
                            .as_ref()
                            .map(|d| d.to_string())
                            .unwrap_or("unknown".into())
                    ));
                }
            }
        }
    }
    for w in wanted {
        if !locked.files.iter().any(|(p, _, _)| p == &w.rel) {
            differences.push(format!("{} is new", w.rel));
        }
    }
    if differences.is_empty() {
        Ok(())
    } else {
        Err(Failure::integrity(format!(
            "the card differs from the locked manifest: {}",
            differences.join("; ")
        )))
    }
}

pub fn run(remote: &Remote, args: &PullArgs, quiet: bool) -> Result<()> {
    if args.chunk_mib == 0 {
        return Err(Failure::usage("--chunk-size must be at least 1 (MiB)"));
    }
    let locked = args.locked.as_deref().map(read_locked).transpose()?;
    let by_flags = args.card.uid.is_some() || args.card.name.is_some();
    if args.card.uid.is_some() && (args.card.name.is_some() || args.card.version.is_some()) {
        return Err(Failure::usage(
            "give either --uid, or --name (with --repository and --version), not both",
        ));
    }
    if !by_flags && locked.is_none() {
        return Err(Failure::usage(
            "which card? give --uid, or --name with --repository and --version (a range works: ~1.2)",
        ));
    }
    if args.card.name.is_none() && (args.card.repository.is_some() || args.card.version.is_some()) {
        return Err(Failure::usage("--repository and --version need --name"));
    }
    let (registry, uid) = match (&locked, by_flags) {
        // A manifest alone names its card by uid.
        (Some(l), false) => (l.registry.clone(), Some(l.uid.clone())),
        _ => (args.registry.clone(), args.card.uid.clone()),
    };
    let card = api::find_card(
        remote,
        &CardQuery {
            uid,
            ignore_release_candidates: args.ignore_release_candidates,
            ..args.card.query(registry)
        },
    )?;
    let folder = card.folder()?;
    let listed = api::list_files(remote, &folder)?;
    if listed.is_empty() {
        return Err(Failure::not_found(format!(
            "{} has no files under {folder}",
            card.label()
        )));
    }
    let mut wanted = Vec::with_capacity(listed.len());
    for file in listed {
        let rel = api::relative_to(&file.path, &folder)?;
        wanted.push(Wanted {
            remote_path: file.path,
            rel,
            size: file.size,
            digest: file.digest,
        });
    }
    if args.onnx || args.quantize || args.preprocessor {
        wanted = select_model_files(remote, &card, &folder, wanted, args)?;
    }
    let include = globs(&args.include, "include")?;
    let exclude = globs(&args.exclude, "exclude")?;
    wanted.retain(|w| {
        (include.is_empty() || include.iter().any(|p| glob_matches(p, &w.rel)))
            && !exclude.iter().any(|p| glob_matches(p, &w.rel))
    });
    if wanted.is_empty() {
        return Err(Failure::not_found(format!(
            "no file of {} matches --include/--exclude",
            card.label()
        )));
    }
    if let Some(locked) = &locked {
        check_locked(locked, &card, &wanted)?;
        // The lock's digests are what the files must hash to.
        for w in &mut wanted {
            if let Some((_, size, digest)) = locked.files.iter().find(|(p, _, _)| p == &w.rel) {
                w.size = Some(*size);
                w.digest = Some(digest.clone());
            }
        }
    }
    let write_dir = Path::new(&args.write_dir);
    let _lock = lock_folder(write_dir, quiet)?;
    let progress = Progress::new(Mode::choose(quiet));
    progress.note(&format!(
        "pulling {} ({} files) into {}",
        card.label(),
        wanted.len(),
        write_dir.display()
    ));
    let started = Instant::now();
    let pulled = transfer::fetch_all(
        remote,
        write_dir,
        wanted,
        &Options {
            jobs: args.jobs,
            chunk_size: args.chunk_mib << 20,
        },
        &progress,
    )?;
    progress.finish();
    print_summary(&progress, &pulled, started);
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&manifest(&card, &pulled)).expect("serialisable")
        );
    }
    Ok(())
}

/// For a model card with `--onnx`/`--quantize`/`--preprocessor`: the files download-model would
/// fetch, plus `model-metadata.json`, in the card's layout.
fn select_model_files(
    remote: &Remote,
    card: &Card,
    folder: &str,
    wanted: Vec<Wanted>,
    args: &PullArgs,
) -> Result<Vec<Wanted>> {
    if card.registry != "model" {
        return Err(Failure::usage(
            "--onnx, --quantize and --preprocessor apply to model cards (--registry model)",
        ));
    }
    let metadata = remote.post_json("models/metadata", &json!({"uid": card.uid()}))?;
    let metadata = opsml_cli_metadata(&metadata)?;
    let uris = model_uris(&metadata, args.onnx, args.quantize, args.preprocessor)?;
    let prefixes: Vec<String> = uris
        .iter()
        .map(|u| api::relative_to(u, folder))
        .collect::<Result<_>>()?;
    Ok(wanted
        .into_iter()
        .filter(|w| {
            w.rel == "model-metadata.json"
                || prefixes
                    .iter()
                    .any(|p| w.rel == *p || w.rel.starts_with(&format!("{p}/")))
        })
        .collect())
}

pub fn print_summary(progress: &Progress, pulled: &[Pulled], started: Instant) {
    let fetched: Vec<&Pulled> = pulled.iter().filter(|p| !p.present).collect();
    let bytes: u64 = fetched.iter().map(|p| p.transferred).sum();
    let seconds = started.elapsed().as_secs_f64();
    progress.note(&format!(
        "{} files: {} downloaded ({} in {seconds:.1} s{}), {} already present and verified",
        pulled.len(),
        fetched.len(),
        human_bytes(bytes),
        if seconds > 0.0 && bytes > 0 {
            format!(", {}/s", human_bytes((bytes as f64 / seconds) as u64))
        } else {
            String::new()
        },
        pulled.len() - fetched.len()
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_without_a_slash_match_at_any_depth() {
        let p = glob::Pattern::new("*.onnx").unwrap();
        assert!(glob_matches(&p, "a/b/model.onnx"));
        assert!(glob_matches(&p, "model.onnx"));
        let anchored = glob::Pattern::new("a/*.onnx").unwrap();
        assert!(glob_matches(&anchored, "a/m.onnx"));
        assert!(!glob_matches(&anchored, "b/m.onnx"));
    }
}
