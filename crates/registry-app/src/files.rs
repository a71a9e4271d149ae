//! Files: upload (a multipart body parsed as it streams in, its `file` part stored as it
//! comes, digested on the way, visible only once its manifest row commits), delete, list,
//! exists, download (ranges, `ETag`, `If-None-Match`), a folder as one streamed ZIP, and the
//! readiness check. Reads need `read` in the repository of the path (a registry folder itself:
//! in all); writes need `write` there and, in production, the prod token, and each file made
//! visible or deleted is recorded in the audit trail in the same transaction.

use crate::caller::{Caller, WriteCleared};
use crate::cards::StoredCard;
use crate::deployment::Ctx;
use crate::error::{AppError, Result};
use crate::request::{Answer, Body, Head, ResponseSink, READ_SIZE};
use crate::settings::{self, UploadLimits};
use registry_core::access::Scope;
use registry_core::multipart::{boundary_from_content_type, Event, MultipartParser};
use registry_core::presigned;
use registry_core::range::{if_none_match, RangeRequest};
use registry_core::write_path::{client_path, validate_read_path};
use registry_core::zip::ZipWriter;
use registry_core::{validate_prefix, validate_write_path};
use registry_store::audit::{self, AuditAction};
use registry_store::blobs::BlobSink;
use registry_store::files::{self, FileRecord};
use serde_json::{json, Value};

/// How often a running upload marks itself alive (see `upload_stale_seconds`).
const TOUCH_EVERY_BYTES: u64 = 8 << 20;

/// Allows `need` at the storage path `path` (the repository is its second segment); a
/// request without one is left to its operation to refuse.
pub fn require_at(caller: &Caller, need: Scope, path: Option<&str>) -> Result<()> {
    let Some(path) = path else {
        return Ok(());
    };
    let key = validate_prefix(path)?;
    caller.require(need, key.repository())
}

fn required_path(path: Option<String>) -> Result<String> {
    path.ok_or_else(|| AppError::unprocessable("query parameter \"path\" is required"))
}

/// The files under `path` (an `opsml-root:/` folder or file), as `opsml-root:/` paths.
pub fn list(ctx: &Ctx, caller: &Caller, path: Option<String>) -> Result<Vec<FileRecord>> {
    let path = required_path(path)?;
    require_at(caller, Scope::Read, Some(&path))?;
    let prefix = validate_prefix(&path)?;
    Ok(files::list(ctx.db()?, prefix.as_str())?)
}

/// `files/list`: the paths.
pub fn list_paths(ctx: &Ctx, caller: &Caller, path: Option<String>) -> Result<Value> {
    let files: Vec<String> = list(ctx, caller, path)?
        .into_iter()
        .map(|f| client_path(&f.path))
        .collect();
    Ok(json!({ "files": files }))
}

/// `files/list/info`: each file with its size, digest and upload time (seconds).
pub fn list_info(ctx: &Ctx, caller: &Caller, path: Option<String>) -> Result<Value> {
    let files: Vec<Value> = list(ctx, caller, path)?
        .into_iter()
        .map(|f| {
            json!({
                "path": client_path(&f.path),
                "size": f.size,
                "digest": f.digest,
                "digest_algorithm": f.digest_algorithm.name(),
                "created": f.created,
            })
        })
        .collect();
    Ok(json!({ "files": files }))
}

/// True for a stored file and for a folder holding at least one.
pub fn exists(ctx: &Ctx, caller: &Caller, path: Option<String>) -> Result<bool> {
    Ok(!list(ctx, caller, path)?.is_empty())
}

/// The file at `path`, if the caller may read it.
pub fn find(ctx: &Ctx, caller: &Caller, path: &str) -> Result<FileRecord> {
    require_at(caller, Scope::Read, Some(path))?;
    let key = validate_read_path(path)?;
    files::get(ctx.db()?, key.as_str())?
        .ok_or_else(|| AppError::not_found(format!("file not found: {path}")))
}

/// The files of a card the caller may read (its folder's).
pub fn of_card(ctx: &Ctx, caller: &Caller, card: &StoredCard) -> Result<Vec<FileRecord>> {
    caller.require(Scope::Read, Some(card.repository()))?;
    Ok(files::list(ctx.db()?, &card.folder())?)
}

/// `files/presigned`: a short-lived URL that downloads the file at `path` (what opsml-cli 0.5
/// and later ask for before each download): a plain download URL while access control is off;
/// with it on, signed so that it opens that one path without credentials until it expires.
pub fn presign(ctx: &Ctx, caller: &Caller, head: &Head) -> Result<Value> {
    let path = required_path(head.query_param("path"))?;
    let method = head.query_param("method").unwrap_or_else(|| "GET".into());
    if !method.eq_ignore_ascii_case("GET") {
        return Err(AppError::unprocessable(format!(
            "method {method:?}: only downloads (method=GET) are presigned here; upload through files/upload"
        )));
    }
    // Read access, and a file that exists: a URL to nothing would be saved as the file.
    find(ctx, caller, &path)?;
    let mut url = format!(
        "{}/opsml/files/download?path={}",
        base_url(head),
        registry_core::query::encode(&path)
    );
    if caller.identity != registry_core::access::Identity::Open {
        let secret = ctx.variable("presigned_url_secret");
        if secret.chars().count() < presigned::MIN_SECRET_CHARS {
            return Err(presigned::PresignError::NoSecret.into());
        }
        let expires = ctx.now_unix() + presigned::LIFETIME_SECONDS;
        let signature = presigned::sign(&secret, &path, expires);
        url.push_str(&format!("&expires={expires}&signature={signature}"));
    }
    Ok(json!({ "url": url }))
}

/// The registry's own address as its client reaches it: a proxy's `X-Forwarded-Proto` and
/// `X-Forwarded-Host` when there is one, else the request's own (`spin-full-url`, `Host`).
fn base_url(head: &Head) -> String {
    let full = head.header("spin-full-url").unwrap_or_default();
    let (scheme, rest) = full.split_once("://").unwrap_or(("http", ""));
    let authority = rest.split('/').next().unwrap_or_default();
    let scheme = head
        .header("x-forwarded-proto")
        .filter(|p| p == "http" || p == "https")
        .unwrap_or_else(|| scheme.to_string());
    let authority = head
        .header("x-forwarded-host")
        .or_else(|| head.header("host"))
        .unwrap_or_else(|| authority.to_string());
    format!("{scheme}://{authority}")
}

/// Reads a whole stored file of at most `limit` bytes (a card's metadata or pickle).
pub fn read_small(ctx: &Ctx, file: &FileRecord, limit: u64) -> Result<Vec<u8>> {
    if file.size > limit {
        return Err(AppError::new(
            422,
            format!(
                "{} is {} bytes, more than the {limit} a file of its kind has",
                file.path, file.size
            ),
        ));
    }
    let mut bytes = Vec::with_capacity(file.size as usize);
    let mut source = ctx.blobs()?.open_range(file, 0, file.size)?;
    while let Some(piece) = source.next_piece()? {
        bytes.extend(piece);
    }
    Ok(bytes)
}

/// The small file at storage key `path` in a card's folder and its bytes, when there is one.
/// A file replaced while it was being read (its old bytes are deleted) is read again as it is
/// now.
pub fn read_current(
    ctx: &Ctx,
    caller: &Caller,
    card: &StoredCard,
    name: &str,
    limit: u64,
) -> Result<Option<(FileRecord, Vec<u8>)>> {
    caller.require(Scope::Read, Some(card.repository()))?;
    let path = format!("{}/{name}", card.folder());
    let db = ctx.db()?;
    let mut attempts = 0;
    loop {
        let Some(file) = files::get(db, &path)? else {
            return Ok(None);
        };
        match read_small(ctx, &file, limit) {
            Ok(bytes) => return Ok(Some((file, bytes))),
            Err(error) => {
                attempts += 1;
                let now = files::get(db, &path)?;
                if attempts >= 3 || now.map(|f| f.blob_id) == Some(file.blob_id) {
                    return Err(error);
                }
            }
        }
    }
}

/// Deletes the file at `path`, or every file under the folder `path`; done once nothing is
/// left there (also when nothing was). A whole registry is never deleted.
pub fn delete(ctx: &Ctx, caller: &Caller, _: &WriteCleared, path: Option<String>) -> Result<()> {
    let path = required_path(path)?;
    require_at(caller, Scope::Write, Some(&path))?;
    let prefix = validate_prefix(&path)?;
    if prefix.is_registry_root() {
        return Err(AppError::unprocessable(format!(
            "refusing to delete a whole registry ({path}): name a card's folder or a file"
        )));
    }
    files::delete_under(ctx.db()?, ctx.blobs()?, prefix.as_str(), &|tx, path| {
        audit::record(tx, &caller.file_audit(ctx, AuditAction::FileDelete, path))
    })?;
    Ok(())
}

/// What an upload's head says.
pub struct UploadAsk {
    /// The `write_path` header: where the file goes.
    pub write_path: Option<String>,
    pub content_type: String,
    /// The request's length: it bounds the file's, enough to size an object store's parts.
    pub content_length: Option<u64>,
}

/// Stores the multipart body's `file` part at `write_path`; answers its `opsml-root:/` path.
pub fn upload(
    ctx: &Ctx,
    caller: &Caller,
    _: &WriteCleared,
    ask: UploadAsk,
    body: &mut dyn Body,
) -> Result<String> {
    let write_path = ask.write_path.filter(|p| !p.is_empty()).ok_or_else(|| {
        AppError::unprocessable("No write path provided: set the write_path header")
    })?;
    let key = validate_write_path(&write_path)?;
    caller.require(Scope::Write, key.repository())?;
    let boundary = boundary_from_content_type(&ask.content_type)?;
    let algorithm = settings::digest_algorithm(ctx)?;
    let limits = UploadLimits::load(ctx)?;
    let size_hint = ask.content_length.map(|n| n.min(limits.max_upload_bytes));
    let (db, blobs) = (ctx.db()?, ctx.blobs()?);
    // Uploads that stopped storing bytes long ago (the client went away, or the host died
    // mid-upload), and files whose delete failed: their bytes go now.
    let stale_before = ctx
        .now_unix()
        .saturating_sub(limits.stale_after_seconds as i64);
    files::collect_stale(db, blobs, stale_before);
    let blob_id = ctx.new_id();
    let progress = Progress {
        ctx,
        blob_id: &blob_id,
        max_bytes: limits.max_upload_bytes,
    };
    files::write_file(
        db,
        blobs,
        key.as_str(),
        &blob_id,
        algorithm,
        size_hint,
        || ctx.now_unix(),
        files::Replacing::Anything,
        &|tx, path| audit::record(tx, &caller.file_audit(ctx, AuditAction::FileUpload, path)),
        |sink| receive(body, &boundary, sink, &progress),
    )?;
    Ok(key.client_path())
}

/// What `receive` needs besides the body: where to report liveness, and the size limit.
struct Progress<'a> {
    ctx: &'a Ctx<'a>,
    blob_id: &'a str,
    max_bytes: u64,
}

/// Streams the body through the parser into `sink`; only the first part named `file` that
/// has a filename is stored (as the reference does).
fn receive(
    body: &mut dyn Body,
    boundary: &str,
    sink: &mut dyn BlobSink,
    progress: &Progress<'_>,
) -> Result<()> {
    #[derive(PartialEq)]
    enum FilePart {
        NotSeen,
        Receiving,
        Done,
    }
    let mut parser = MultipartParser::new(boundary);
    let mut file = FilePart::NotSeen;
    let mut stored: u64 = 0;
    let mut next_touch = TOUCH_EVERY_BYTES;
    while let Some(bytes) = body.read(READ_SIZE)? {
        parser.push(&bytes, |event| -> Result<()> {
            match event {
                Event::PartStart(h) => {
                    if file == FilePart::NotSeen
                        && h.name.as_deref() == Some("file")
                        && h.filename.is_some()
                    {
                        file = FilePart::Receiving;
                    }
                }
                Event::Data(data) if file == FilePart::Receiving => {
                    stored += data.len() as u64;
                    if stored > progress.max_bytes {
                        return Err(AppError::new(
                            413,
                            format!(
                                "the file is larger than this registry's {}-byte upload limit",
                                progress.max_bytes
                            ),
                        ));
                    }
                    sink.write(data)?;
                    if stored >= next_touch {
                        files::touch(
                            progress.ctx.db()?,
                            progress.blob_id,
                            progress.ctx.now_unix(),
                        )?;
                        next_touch += TOUCH_EVERY_BYTES;
                    }
                }
                Event::Data(_) => {}
                Event::PartEnd if file == FilePart::Receiving => file = FilePart::Done,
                Event::PartEnd => {}
            }
            Ok(())
        })?;
    }
    parser.finish()?;
    if file != FilePart::Done {
        return Err(AppError::unprocessable(
            "File is missing: the multipart body needs a part named \"file\" with a filename",
        ));
    }
    Ok(())
}

/// `files/download`: the file at `path` streamed piece by piece (never whole in memory), with
/// its size and its digest as `ETag`, a single `Range` (206/416) and `If-None-Match` (304).
pub fn download(
    ctx: &Ctx,
    caller: &Caller,
    head: &Head,
    sink: &mut dyn ResponseSink,
) -> Result<Answer> {
    let file = find(ctx, caller, &required_path(head.query_param("path"))?)?;
    let etag = format!("\"{}\"", file.digest);
    let mut headers = vec![
        ("etag", etag.clone()),
        (
            "x-opsml-digest",
            format!("{}:{}", file.digest_algorithm.name(), file.digest),
        ),
        ("accept-ranges", "bytes".to_string()),
    ];
    if if_none_match(head.header("if-none-match").as_deref(), &etag) {
        return Ok(Answer::Bytes {
            status: 304,
            headers,
            body: Vec::new(),
        });
    }
    // `start..end` (end exclusive) is what goes out. A range is for the version the client
    // has part of: with `If-Range` naming another version, the whole file goes out instead.
    let range = head
        .header("range")
        .filter(|_| head.header("if-range").is_none_or(|tag| tag.trim() == etag));
    let (status, start, end) = match RangeRequest::parse(range.as_deref(), file.size) {
        RangeRequest::Full => (200, 0, file.size),
        RangeRequest::Partial { start, end } => {
            headers.push((
                "content-range",
                format!("bytes {start}-{end}/{}", file.size),
            ));
            (206, start, end + 1)
        }
        RangeRequest::Unsatisfiable => {
            headers.push(("content-range", format!("bytes */{}", file.size)));
            headers.push(("content-type", "application/json".to_string()));
            let detail = json!({ "detail": format!("range not satisfiable: the file has {} bytes", file.size) });
            return Ok(Answer::Bytes {
                status: 416,
                headers,
                body: detail.to_string().into_bytes(),
            });
        }
    };
    // The stored bytes are opened and their first piece read before a status goes out, so a
    // broken store still gets a clean error.
    let mut source = ctx.blobs()?.open_range(&file, start, end)?;
    let first = source.next_piece()?;
    headers.push(("content-type", "application/octet-stream".to_string()));
    headers.push(("content-length", (end - start).to_string()));
    sink.start(status, &headers);
    let mut next = first;
    while let Some(piece) = next {
        // A client that went away stops the loop: nothing more is read.
        if !sink.write(piece) {
            return Ok(Answer::Sent);
        }
        next = match source.next_piece() {
            Ok(next) => next,
            // Headers are sent: ending the body short (Content-Length unmet) tells the client.
            Err(e) => {
                eprintln!("download of {}: {e}", file.path);
                return Ok(Answer::Sent);
            }
        };
    }
    Ok(Answer::Sent)
}

/// `files/download/ui`: a file as `files/download` sends it, or a folder's files as one
/// streamed ZIP archive (entries named relative to the folder).
pub fn download_folder(
    ctx: &Ctx,
    caller: &Caller,
    head: &Head,
    sink: &mut dyn ResponseSink,
) -> Result<Answer> {
    let path = required_path(head.query_param("path"))?;
    require_at(caller, Scope::Read, Some(&path))?;
    let prefix = validate_prefix(&path)?;
    let db = ctx.db()?;
    if files::get(db, prefix.as_str())?.is_some() {
        return download(ctx, caller, head, sink);
    }
    let listed = files::list(db, prefix.as_str())?;
    if listed.is_empty() {
        return Err(AppError::not_found("no files under this path"));
    }
    let blobs = ctx.blobs()?;
    let folder = prefix.as_str().rsplit('/').next().unwrap_or("files");
    sink.start(
        200,
        &[
            ("content-type", "application/zip".to_string()),
            (
                "content-disposition",
                format!("attachment; filename=\"{folder}.zip\""),
            ),
        ],
    );
    let mut zip = ZipWriter::new();
    for file in listed {
        let name = file.path[prefix.as_str().len()..].trim_start_matches('/');
        if !sink.write(zip.start_entry(name)) {
            return Ok(Answer::Sent);
        }
        // Headers are sent: an archive without its end records tells the client.
        let mut source = match blobs.open_range(&file, 0, file.size) {
            Ok(source) => source,
            Err(e) => {
                eprintln!("zip of {}: {e}", prefix.as_str());
                return Ok(Answer::Sent);
            }
        };
        loop {
            let piece = match source.next_piece() {
                Ok(Some(piece)) => piece,
                Ok(None) => break,
                Err(e) => {
                    eprintln!("zip of {}: {e}", prefix.as_str());
                    return Ok(Answer::Sent);
                }
            };
            zip.data(&piece);
            if !sink.write(piece) {
                return Ok(Answer::Sent);
            }
        }
        if !sink.write(zip.finish_entry()) {
            return Ok(Answer::Sent);
        }
    }
    sink.write(zip.finish());
    Ok(Answer::Sent)
}

/// `GET /opsml/readyz`: whether the metadata database and the blob store answer, for a
/// readiness probe (`200 {"ready": true, ...}`, else `503`). Open without credentials, as a
/// probe has none, so it says only "ok" or "unreachable" of each; the reason goes to the log.
pub fn readiness(ctx: &Ctx) -> Result<Answer> {
    let check = |what: &str, result: Result<()>| match result {
        Ok(()) => "ok",
        Err(e) => {
            eprintln!("readiness: {what}: {}", e.detail);
            "unreachable"
        }
    };
    let database = check(
        "metadata database",
        ctx.db()
            .and_then(|db| Ok(db.execute("SELECT 1", &[]).map(drop)?)),
    );
    let blobs = check(
        "blob store",
        ctx.blobs().and_then(|b| Ok(b.check_reachable()?)),
    );
    let ready = database == "ok" && blobs == "ok";
    let body = json!({ "ready": ready, "database": database, "blob_store": blobs });
    Answer::json_status(if ready { 200 } else { 503 }, body)
}
