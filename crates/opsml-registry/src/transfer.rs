//! Downloads files into a folder: verified, atomic, resumable, idempotent, several at once and
//! large files in parallel ranges.
//!
//! Each file goes to `.<name>.opsml-partial` beside its final path, with a small JSON sidecar
//! (`.<name>.opsml-partial.json`) recording the digest it is meant to have and how many bytes
//! of each range are written. A killed run leaves both; the next one asks only for the missing
//! bytes (`Range` with `If-Range: "<digest>"`). Once every range is in, the file is hashed,
//! compared with the server's digest and renamed into place; a mismatch leaves nothing at the
//! final path.

use crate::api::{Algorithm, Digest};
use crate::digest::{self, Hasher};
use crate::fail::{Failure, Kind, Result};
use crate::http::{classify, Attempt, Remote};
use crate::report::{human_bytes, Progress};
use serde::{Deserialize, Serialize};
use std::fs::{self, File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

/// A file to have at `rel` (relative to the folder), from `remote_path` on the server.
#[derive(Clone, Debug)]
pub struct Wanted {
    pub remote_path: String,
    pub rel: String,
    pub size: Option<u64>,
    pub digest: Option<Digest>,
}

/// A file that is in place and verified.
#[derive(Clone, Debug)]
pub struct Pulled {
    pub rel: String,
    pub remote_path: String,
    pub size: u64,
    pub digest: Digest,
    /// Body bytes received for it in this run (0 when it was already there).
    pub transferred: u64,
    /// It was there already, verified, and nothing was downloaded.
    pub present: bool,
    /// Checked against a digest the server listed (a server without `files/list/info` lists
    /// none: then the digest is only computed, for the manifest).
    pub verified: bool,
}

#[derive(Clone, Debug)]
pub struct Options {
    /// Transfers at once (files, or ranges of one large file).
    pub jobs: usize,
    /// Files larger than this are fetched as ranges of this size, in parallel.
    pub chunk_size: u64,
}

/// Written bytes per range, persisted every so often so a later run can resume.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Sidecar {
    digest: String,
    algorithm: String,
    size: u64,
    chunk_size: u64,
    done: Vec<u64>,
}

/// Files larger than this are fetched as parallel ranges by default. Measured here (loopback,
/// 2 cores) one stream beat parallel ranges; ranges pay off where one connection is slower
/// than the link (a distant registry, a proxy that caps each connection).
pub const DEFAULT_CHUNK_SIZE: u64 = 256 << 20;

/// Persist progress after this many new bytes in a range: a killed run loses at most this
/// much per range in flight.
const PERSIST_EVERY: u64 = 1 << 20;
const BUFFER: usize = 256 << 10;

struct Job {
    wanted: Wanted,
    final_path: PathBuf,
    partial_path: PathBuf,
    sidecar_path: PathBuf,
    file: File,
    /// `[start, end)` of each range; one range for small files and unknown sizes.
    chunks: Vec<(u64, Option<u64>)>,
    state: Mutex<SidecarState>,
    remaining: AtomicUsize,
    /// Bytes that were already on disk from an earlier run.
    resumed: u64,
    transferred: AtomicU64,
    /// For a file fetched as one range: its digest so far and how many bytes it covers, so
    /// that verifying needs no second read. None once bytes arrive out of order.
    inline: Mutex<Option<(Hasher, u64)>>,
}

struct SidecarState {
    sidecar: Option<Sidecar>,
    persisted: Vec<u64>,
}

/// Fetches every file of `files` into `dir` and returns them in the same order.
pub fn fetch_all(
    remote: &Remote,
    dir: &Path,
    files: Vec<Wanted>,
    options: &Options,
    progress: &Progress,
) -> Result<Vec<Pulled>> {
    let jobs = options.jobs.max(1);
    // Phase 1: what is already there and verified stays (hashing runs in parallel too).
    let present: Vec<Option<Pulled>> = parallel(jobs, &files, |w| check_present(dir, w))?;
    let mut results: Vec<Option<Pulled>> = present;
    let missing: Vec<usize> = (0..files.len()).filter(|&i| results[i].is_none()).collect();
    if missing.is_empty() {
        for pulled in results.iter().flatten() {
            progress.file_finished(&pulled.rel, &line(pulled));
        }
        return Ok(results.into_iter().flatten().collect());
    }
    for pulled in results.iter().flatten() {
        progress.file_finished(&pulled.rel, &line(pulled));
    }

    // Phase 2: every missing file is opened (resuming what a previous run left) and cut into
    // ranges; workers take ranges in order, so a large file's ranges run side by side.
    let mut prepared = Vec::with_capacity(missing.len());
    for &i in &missing {
        prepared.push(prepare(dir, &files[i], options.chunk_size)?);
    }
    let total: u64 = prepared.iter().filter_map(|j| j.wanted.size).sum();
    let already: u64 = prepared.iter().map(|j| j.resumed).sum();
    progress.set_total(total, already);
    let mut tasks = Vec::new();
    for (j, job) in prepared.iter().enumerate() {
        for c in 0..job.chunks.len() {
            tasks.push((j, c));
        }
    }
    let finished: Vec<Option<Pulled>> = parallel(jobs, &tasks, |&(j, c)| {
        let job = &prepared[j];
        progress.file_started(&job.wanted.rel, job.wanted.size, job.resumed);
        fetch_chunk(remote, job, c, progress)?;
        if job.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            let pulled = finalize(remote, job, progress)?;
            progress.file_finished(&pulled.rel, &line(&pulled));
            Ok(Some(pulled))
        } else {
            Ok(None)
        }
    })?;
    let mut by_rel: std::collections::HashMap<String, Pulled> = finished
        .into_iter()
        .flatten()
        .map(|p| (p.rel.clone(), p))
        .collect();
    for &i in &missing {
        results[i] = by_rel.remove(&files[i].rel);
    }
    results
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            r.ok_or_else(|| {
                Failure::other(format!("{}: not fetched (internal error)", files[i].rel))
            })
        })
        .collect()
}

fn line(p: &Pulled) -> String {
    let check = if p.verified {
        format!("{} ok", p.digest.algorithm.name())
    } else {
        "unverified: the server lists no digest".to_string()
    };
    let verb = if p.present {
        "present   "
    } else {
        "downloaded"
    };
    format!("{verb} {} ({}, {check})", p.rel, human_bytes(p.size))
}

/// Runs `f` over `items` on up to `jobs` threads; the first failure stops the others from
/// taking more work and is returned.
pub fn parallel<T: Sync, R: Send>(
    jobs: usize,
    items: &[T],
    f: impl Fn(&T) -> Result<R> + Sync,
) -> Result<Vec<R>> {
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let results: Mutex<Vec<Option<R>>> = Mutex::new((0..items.len()).map(|_| None).collect());
    let failure: Mutex<Option<Failure>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1).min(items.len().max(1)) {
            scope.spawn(|| loop {
                if stop.load(Ordering::Acquire) {
                    break;
                }
                let i = next.fetch_add(1, Ordering::AcqRel);
                if i >= items.len() {
                    break;
                }
                match f(&items[i]) {
                    Ok(r) => results.lock().expect("results lock")[i] = Some(r),
                    Err(e) => {
                        stop.store(true, Ordering::Release);
                        let mut first = failure.lock().expect("failure lock");
                        // An integrity failure says more than the network errors it may cause
                        // elsewhere; otherwise the first one wins.
                        if first.is_none()
                            || (e.kind == Kind::Integrity
                                && first.as_ref().is_some_and(|f| f.kind != Kind::Integrity))
                        {
                            *first = Some(e);
                        }
                        break;
                    }
                }
            });
        }
    });
    if let Some(f) = failure.into_inner().expect("failure lock") {
        return Err(f);
    }
    Ok(results
        .into_inner()
        .expect("results lock")
        .into_iter()
        .map(|r| r.expect("every item ran"))
        .collect())
}

fn paths(dir: &Path, rel: &str) -> (PathBuf, PathBuf, PathBuf) {
    let final_path = dir.join(rel);
    let name = final_path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let parent = final_path.parent().unwrap_or(dir).to_path_buf();
    let partial = parent.join(format!(".{name}.opsml-partial"));
    let sidecar = parent.join(format!(".{name}.opsml-partial.json"));
    (final_path, partial, sidecar)
}

/// A file already at its final path with the size and digest the server lists counts as
/// pulled. Without a digest from the server nothing can be verified, so it is fetched again.
fn check_present(dir: &Path, wanted: &Wanted) -> Result<Option<Pulled>> {
    let (final_path, _, _) = paths(dir, &wanted.rel);
    let Some(expected) = &wanted.digest else {
        return Ok(None);
    };
    let Ok(meta) = fs::metadata(&final_path) else {
        return Ok(None);
    };
    if !meta.is_file() || wanted.size.is_some_and(|s| s != meta.len()) {
        return Ok(None);
    }
    let (digest, len) = digest::of_file(expected.algorithm, &final_path)
        .map_err(|e| Failure::io("cannot read", &final_path, e))?;
    if &digest != expected {
        return Ok(None);
    }
    Ok(Some(Pulled {
        rel: wanted.rel.clone(),
        remote_path: wanted.remote_path.clone(),
        size: len,
        digest,
        transferred: 0,
        present: true,
        verified: true,
    }))
}

fn prepare(dir: &Path, wanted: &Wanted, chunk_size: u64) -> Result<Job> {
    let (final_path, partial_path, sidecar_path) = paths(dir, &wanted.rel);
    let parent = final_path.parent().unwrap_or(dir);
    fs::create_dir_all(parent).map_err(|e| Failure::io("cannot create the folder", parent, e))?;
    let chunk_size = chunk_size.max(1 << 20);
    // Resuming needs both a size and a digest to check the bytes against; without them (a
    // server with no files/list/info) each run starts afresh.
    let resumable = matches!((wanted.size, &wanted.digest), (Some(_), Some(_)));
    let chunks: Vec<(u64, Option<u64>)> = match wanted.size {
        Some(size) if size > chunk_size => (0..size.div_ceil(chunk_size))
            .map(|i| (i * chunk_size, Some(((i + 1) * chunk_size).min(size))))
            .collect(),
        Some(size) => vec![(0, Some(size))],
        None => vec![(0, None)],
    };
    let fresh = wanted
        .size
        .zip(wanted.digest.as_ref())
        .map(|(size, d)| Sidecar {
            digest: d.hex.clone(),
            algorithm: d.algorithm.name().to_string(),
            size,
            chunk_size,
            done: vec![0; chunks.len()],
        });
    // What an earlier run left counts only if it was meant for the same bytes, cut the same
    // way, and the partial file is at least as long as it says.
    let partial_len = fs::metadata(&partial_path).map(|m| m.len()).unwrap_or(0);
    let earlier: Option<Sidecar> = if resumable {
        fs::read(&sidecar_path)
            .ok()
            .and_then(|b| serde_json::from_slice::<Sidecar>(&b).ok())
            .filter(|s| {
                let fresh = fresh.as_ref().expect("resumable");
                s.digest == fresh.digest
                    && s.algorithm == fresh.algorithm
                    && s.size == fresh.size
                    && s.chunk_size == fresh.chunk_size
                    && s.done.len() == fresh.done.len()
                    && chunks.iter().zip(&s.done).all(|((start, end), done)| {
                        end.is_some_and(|e| start + done <= e) && start + done <= partial_len
                    })
            })
    } else {
        None
    };
    let resume = earlier.is_some();
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(!resume)
        .open(&partial_path)
        .map_err(|e| Failure::io("cannot create", &partial_path, e))?;
    let sidecar = earlier.or(fresh);
    let resumed: u64 = sidecar.as_ref().map(|s| s.done.iter().sum()).unwrap_or(0);
    if let Some(s) = &sidecar {
        write_sidecar(&sidecar_path, s)?;
    } else {
        let _ = fs::remove_file(&sidecar_path);
    }
    let persisted = sidecar.as_ref().map(|s| s.done.clone()).unwrap_or_default();
    let inline = if chunks.len() == 1 {
        // A resumed prefix is hashed now: the rest is hashed as it arrives.
        let mut hasher = Hasher::new(algorithm_of(wanted));
        let mut prefix = (&file).take(resumed);
        let mut buf = vec![0u8; 1 << 20];
        loop {
            match prefix.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => hasher.update(&buf[..n]),
                Err(e) => return Err(Failure::io("cannot read", &partial_path, e)),
            }
        }
        Some((hasher, resumed))
    } else {
        None
    };
    Ok(Job {
        wanted: wanted.clone(),
        final_path,
        partial_path,
        sidecar_path,
        file,
        remaining: AtomicUsize::new(chunks.len()),
        chunks,
        state: Mutex::new(SidecarState { sidecar, persisted }),
        resumed,
        transferred: AtomicU64::new(0),
        inline: Mutex::new(inline),
    })
}

fn algorithm_of(wanted: &Wanted) -> Algorithm {
    wanted
        .digest
        .as_ref()
        .map(|d| d.algorithm)
        .unwrap_or(Algorithm::Blake3)
}

fn write_sidecar(path: &Path, sidecar: &Sidecar) -> Result<()> {
    let tmp = path.with_extension("json.tmp");
    fs::write(&tmp, serde_json::to_vec(sidecar).expect("serialisable"))
        .map_err(|e| Failure::io("cannot write", &tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| Failure::io("cannot write", path, e))
}

impl Job {
    fn done_in(&self, chunk: usize) -> u64 {
        let state = self.state.lock().expect("state lock");
        state.sidecar.as_ref().map(|s| s.done[chunk]).unwrap_or(0)
    }

    /// Records that chunk `chunk` has `done` bytes written; persists now and then.
    fn record(&self, chunk: usize, done: u64, force: bool) -> Result<()> {
        let mut state = self.state.lock().expect("state lock");
        let SidecarState { sidecar, persisted } = &mut *state;
        if let Some(s) = sidecar {
            s.done[chunk] = done;
            if force || done >= persisted[chunk] + PERSIST_EVERY {
                persisted[chunk] = done;
                write_sidecar(&self.sidecar_path, s)?;
            }
        }
        Ok(())
    }

    fn reset(&self) -> Result<()> {
        let mut state = self.state.lock().expect("state lock");
        if let Some(s) = &mut state.sidecar {
            s.done.iter_mut().for_each(|d| *d = 0);
            state.persisted.iter_mut().for_each(|d| *d = 0);
            let s = state.sidecar.clone().expect("present");
            write_sidecar(&self.sidecar_path, &s)?;
        }
        *self.inline.lock().expect("hash lock") =
            Some((Hasher::new(algorithm_of(&self.wanted)), 0));
        self.file
            .set_len(0)
            .map_err(|e| Failure::io("cannot truncate", &self.partial_path, e))
    }

    /// Feeds bytes just written at `at` to the running digest, if they continue it.
    fn hash_inline(&self, at: u64, data: &[u8]) {
        let mut inline = self.inline.lock().expect("hash lock");
        match inline.as_mut() {
            Some((hasher, covered)) if *covered == at => {
                hasher.update(data);
                *covered += data.len() as u64;
            }
            Some(_) => *inline = None,
            None => {}
        }
    }

    fn discard(&self) {
        let _ = fs::remove_file(&self.partial_path);
        let _ = fs::remove_file(&self.sidecar_path);
    }
}

fn fetch_chunk(remote: &Remote, job: &Job, chunk: usize, progress: &Progress) -> Result<()> {
    let (start, end) = job.chunks[chunk];
    let done = job.done_in(chunk);
    fetch_span(remote, job, Some(chunk), start, start + done, end, progress)
}

/// Writes `[from, end)` of the file (a range `chunk` that starts at `start`) into the partial
/// file, trying again after failures; a run of failures that made progress gets a fresh
/// retry budget.
fn fetch_span(
    remote: &Remote,
    job: &Job,
    chunk: Option<usize>,
    start: u64,
    from: u64,
    end: Option<u64>,
    progress: &Progress,
) -> Result<()> {
    let mut pos = from;
    loop {
        let before = pos;
        let what = format!("downloading {}", job.wanted.remote_path);
        match remote.retrying(&what, || {
            attempt_span(remote, job, chunk, start, &mut pos, end, progress)
        }) {
            Ok(()) => return Ok(()),
            Err(f) if f.kind == Kind::Network && pos > before => continue,
            Err(f) => return Err(f),
        }
    }
}

fn attempt_span(
    remote: &Remote,
    job: &Job,
    chunk: Option<usize>,
    start: u64,
    pos: &mut u64,
    end: Option<u64>,
    progress: &Progress,
) -> Attempt<()> {
    let wanted = &job.wanted;
    if end.is_some_and(|e| *pos >= e) {
        return Attempt::Done(());
    }
    let mut request = remote.request("GET", "files/download", &[("path", &wanted.remote_path)]);
    let whole_rest = end.is_none() || end == wanted.size;
    let ranged = *pos > 0 || !whole_rest;
    if ranged {
        let range = match end {
            Some(e) if !whole_rest => format!("bytes={}-{}", *pos, e - 1),
            _ => format!("bytes={}-", *pos),
        };
        request = request.set("Range", &range);
        if let Some(d) = &wanted.digest {
            request = request.set("If-Range", &format!("\"{}\"", d.hex));
        }
    }
    let response = match classify(request.call()) {
        Attempt::Done(r) => r,
        Attempt::Retry { why, after } => return Attempt::Retry { why, after },
        Attempt::Fail(f) => return Attempt::Fail(f),
    };
    // The server's ETag is the digest: another one means the file was replaced after it was
    // listed, and these bytes belong to another file.
    if let (Some(d), Some(etag)) = (&wanted.digest, response.header("etag")) {
        let etag = etag.trim().trim_start_matches("W/").trim_matches('"');
        if !etag.eq_ignore_ascii_case(&d.hex) {
            return Attempt::Fail(Failure::integrity(format!(
                "{} changed on the server while it was being pulled (listed with {}, now sent \
                 with ETag {etag}): run the pull again",
                wanted.remote_path, d.hex
            )));
        }
    }
    // Bytes of the body to skip: a 200 to a ranged request carries the file from byte 0.
    let mut skip = 0u64;
    match response.status() {
        206 => {
            let range = response.header("content-range").unwrap_or("");
            let starts_at = range
                .strip_prefix("bytes ")
                .and_then(|r| r.split('-').next())
                .and_then(|s| s.trim().parse::<u64>().ok());
            if starts_at != Some(*pos) {
                return Attempt::Fail(Failure::other(format!(
                    "{}: asked for bytes from {}, the server sent Content-Range {range:?}",
                    wanted.remote_path, *pos
                )));
            }
        }
        200 if ranged => skip = *pos,
        200 => {}
        other => {
            return Attempt::Fail(Failure::other(format!(
                "{}: unexpected status {other}",
                wanted.remote_path
            )))
        }
    }
    let mut reader = response.into_reader();
    let mut buf = vec![0u8; BUFFER];
    loop {
        let limit = match end {
            Some(e) => ((e - *pos) + skip).min(BUFFER as u64) as usize,
            None => BUFFER,
        };
        if limit == 0 {
            break;
        }
        let n = match reader.read(&mut buf[..limit]) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Attempt::Retry {
                    why: format!("the body broke off at byte {}: {e}", *pos),
                    after: None,
                }
            }
        };
        let mut data = &buf[..n];
        if skip > 0 {
            let dropped = skip.min(data.len() as u64) as usize;
            skip -= dropped as u64;
            data = &data[dropped..];
            if data.is_empty() {
                continue;
            }
        }
        if let Err(e) = job.file.write_all_at(data, *pos) {
            return Attempt::Fail(Failure::io("cannot write", &job.partial_path, e));
        }
        job.hash_inline(*pos, data);
        *pos += data.len() as u64;
        job.transferred.fetch_add(n as u64, Ordering::Relaxed);
        progress.advance(&wanted.rel, data.len() as u64);
        if let Some(c) = chunk {
            if let Err(f) = job.record(c, *pos - start, false) {
                return Attempt::Fail(f);
            }
        }
    }
    if let Some(e) = end {
        if *pos < e {
            return Attempt::Retry {
                why: format!("the body ended at byte {} of {e}", *pos),
                after: None,
            };
        }
    }
    if let Some(c) = chunk {
        if let Err(f) = job.record(c, *pos - start, true) {
            return Attempt::Fail(f);
        }
    }
    Attempt::Done(())
}

/// Every range is in: hash, compare, rename. A mismatch is tried once more from scratch
/// (a resumed file may hold bytes from a broken disk write); a second one is an integrity
/// failure, and neither the partial file nor anything at the final path is left.
fn finalize(remote: &Remote, job: &Job, progress: &Progress) -> Result<Pulled> {
    let wanted = &job.wanted;
    let mut tried_again = false;
    loop {
        // No fsync: a file torn by a power cut is caught by the next run, which hashes every
        // present file before trusting it; a process killed at any point leaves no torn file.
        let on_disk = job
            .file
            .metadata()
            .map_err(|e| Failure::io("cannot read", &job.partial_path, e))?
            .len();
        let (digest, len) = match job.inline.lock().expect("hash lock").take() {
            Some((hasher, covered)) if covered == on_disk => (hasher.finish(), covered),
            _ => digest::of_file(algorithm_of(wanted), &job.partial_path)
                .map_err(|e| Failure::io("cannot read", &job.partial_path, e))?,
        };
        let size_ok = wanted.size.is_none_or(|s| s == len);
        let digest_ok = wanted.digest.as_ref().is_none_or(|d| d == &digest);
        if size_ok && digest_ok {
            fs::rename(&job.partial_path, &job.final_path)
                .map_err(|e| Failure::io("cannot move into place", &job.final_path, e))?;
            let _ = fs::remove_file(&job.sidecar_path);
            return Ok(Pulled {
                rel: wanted.rel.clone(),
                remote_path: wanted.remote_path.clone(),
                size: len,
                digest,
                transferred: job.transferred.load(Ordering::Relaxed),
                present: false,
                verified: wanted.digest.is_some(),
            });
        }
        let problem = if !size_ok {
            format!(
                "{} has {len} bytes, the server lists {}",
                wanted.rel,
                wanted.size.unwrap_or(0)
            )
        } else {
            format!(
                "{}: the bytes received hash to {digest}, the server lists {}",
                wanted.rel,
                wanted.digest.as_ref().expect("compared")
            )
        };
        if tried_again {
            job.discard();
            return Err(Failure::integrity(format!(
                "{problem} (twice; nothing was kept)"
            )));
        }
        tried_again = true;
        progress.note(&format!("{problem}: downloading it again from the start"));
        progress.rewind(&wanted.rel, len);
        job.reset()?;
        fetch_span(remote, job, None, 0, 0, wanted.size, progress)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parallel_keeps_order_and_reports_failures() {
        let items: Vec<u32> = (0..50).collect();
        let doubled = parallel(4, &items, |&i| Ok(i * 2)).unwrap();
        assert_eq!(doubled, items.iter().map(|i| i * 2).collect::<Vec<_>>());
        let err = parallel(4, &items, |&i| {
            if i == 7 {
                Err(Failure::integrity("seven"))
            } else {
                Ok(i)
            }
        })
        .unwrap_err();
        assert_eq!(err.kind, Kind::Integrity);
    }

    #[test]
    fn partial_files_sit_beside_the_final_path() {
        let (f, p, s) = paths(Path::new("/w"), "a/b.onnx");
        assert_eq!(f, Path::new("/w/a/b.onnx"));
        assert_eq!(p, Path::new("/w/a/.b.onnx.opsml-partial"));
        assert_eq!(s, Path::new("/w/a/.b.onnx.opsml-partial.json"));
    }
}
