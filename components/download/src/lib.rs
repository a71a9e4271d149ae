//! `download`: `files/download` streams a committed file piece by piece (never the whole file
//! in memory), with its size and its content digest as `ETag`, a single `Range` (206/416) and
//! `If-None-Match` (304); `files/list`, `files/list/info`
//! and `files/exists` answer from the file manifests, so a file is seen only once fully stored.
//! Each needs `read` in the repository of its `path` (a registry folder itself: in all).
//! `readyz` says whether the database and the blob store answer (it reads from both).

use registry_core::access::Scope;
use registry_core::range::{if_none_match, RangeRequest};
use registry_core::validate_prefix;
use registry_core::write_path::validate_read_path;
use registry_core::zip::ZipWriter;
use registry_spin::http::{
    send_bytes, send_error, send_json, send_result, start_stream, RequestHead,
};
use registry_spin::settings::authenticate;
use registry_spin::storage::{open_blobs, open_database};
use registry_spin::ApiError;
use registry_store::files::{self, FileRecord};
use serde_json::{json, Value};
use spin_sdk::http::{IncomingRequest, Method, ResponseOutparam};
use spin_sdk::http_component;

#[http_component]
async fn handle(req: IncomingRequest, out: ResponseOutparam) {
    let head = RequestHead::of(&req);
    if head.path == "/opsml/readyz" {
        return send_readiness(out).await;
    }
    // Every route reads under `path`: `read` in its repository.
    let allowed = authenticate(&head)
        .and_then(|caller| caller.require_at_path(Scope::Read, &head))
        .and_then(|()| head.expect_method(&[Method::Get]));
    if let Err(e) = allowed {
        return send_error(out, &e).await;
    }
    match head.path.as_str() {
        "/opsml/files/download" => download(&head, out).await,
        "/opsml/files/download/ui" => download_folder(&head, out).await,
        "/opsml/files/list" => send_result(out, list(&head)).await,
        "/opsml/files/list/info" => send_result(out, list_info(&head)).await,
        "/opsml/files/exists" => send_result(out, exists(&head)).await,
        _ => send_error(out, &ApiError::not_found("Not Found")).await,
    }
}

/// `GET /opsml/readyz`: whether the metadata database and the blob store answer, for a
/// readiness probe (`200 {"ready": true, ...}`, else `503`). Open without credentials, as a
/// probe has none, so it says only "ok" or "unreachable" of each; the reason goes to the
/// component's log.
async fn send_readiness(out: ResponseOutparam) {
    let check = |what: &str, result: Result<(), ApiError>| match result {
        Ok(()) => "ok",
        Err(e) => {
            eprintln!("readiness: {what}: {}", e.detail);
            "unreachable"
        }
    };
    let database = check(
        "metadata database",
        open_database().and_then(|db| Ok(db.execute("SELECT 1", &[]).map(drop)?)),
    );
    let blobs = check(
        "blob store",
        open_blobs().and_then(|b| Ok(b.check_reachable()?)),
    );
    let ready = database == "ok" && blobs == "ok";
    let body = json!({ "ready": ready, "database": database, "blob_store": blobs });
    send_json(out, if ready { 200 } else { 503 }, &body).await;
}

fn path_param(head: &RequestHead) -> Result<String, ApiError> {
    head.query_param("path")
        .ok_or_else(|| ApiError::unprocessable("query parameter \"path\" is required"))
}

fn list(head: &RequestHead) -> Result<Value, ApiError> {
    let prefix = validate_prefix(&path_param(head)?)?;
    let db = open_database()?;
    let files: Vec<String> = files::list(&db, prefix.as_str())?
        .into_iter()
        .map(|f| registry_core::write_path::client_path(&f.path))
        .collect();
    Ok(json!({ "files": files }))
}

/// Like `files/list`, with each file's size, digest and upload time (seconds since the epoch).
fn list_info(head: &RequestHead) -> Result<Value, ApiError> {
    let prefix = validate_prefix(&path_param(head)?)?;
    let db = open_database()?;
    let files: Vec<Value> = files::list(&db, prefix.as_str())?
        .into_iter()
        .map(|f| {
            json!({
                "path": registry_core::write_path::client_path(&f.path),
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
fn exists(head: &RequestHead) -> Result<Value, ApiError> {
    let prefix = validate_prefix(&path_param(head)?)?;
    let db = open_database()?;
    Ok(json!({ "exists": !files::list(&db, prefix.as_str())?.is_empty() }))
}

fn find(head: &RequestHead) -> Result<FileRecord, ApiError> {
    let path = path_param(head)?;
    let key = validate_read_path(&path)?;
    let db = open_database()?;
    files::get(&db, key.as_str())?
        .ok_or_else(|| ApiError::not_found(format!("file not found: {path}")))
}

/// A file as `files/download` sends it, or a folder's files as one streamed ZIP archive
/// (entries named relative to the folder).
async fn download_folder(head: &RequestHead, out: ResponseOutparam) {
    let listed = path_param(head).and_then(|path| {
        let prefix = validate_prefix(&path)?;
        let db = open_database()?;
        let is_file = files::get(&db, prefix.as_str())?.is_some();
        let files = files::list(&db, prefix.as_str())?;
        Ok((prefix, is_file, files))
    });
    let (prefix, files) = match listed {
        Ok((_, true, _)) => return download(head, out).await,
        Ok((_, false, files)) if files.is_empty() => {
            return send_error(out, &ApiError::not_found("no files under this path")).await
        }
        Ok((prefix, false, files)) => (prefix, files),
        Err(e) => return send_error(out, &e).await,
    };
    let blobs = match open_blobs() {
        Ok(blobs) => blobs,
        Err(e) => return send_error(out, &e).await,
    };
    let folder = prefix.as_str().rsplit('/').next().unwrap_or("files");
    let mut body = start_stream(
        out,
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
    for file in files {
        let name = file.path[prefix.as_str().len()..].trim_start_matches('/');
        if !body.write(zip.start_entry(name)).await {
            return;
        }
        let mut source = match blobs.open_range(&file, 0, file.size) {
            Ok(source) => source,
            Err(e) => {
                // Headers are sent: an archive without its end records tells the client.
                eprintln!("zip of {}: {e}", prefix.as_str());
                return;
            }
        };
        loop {
            let piece = match source.next_piece() {
                Ok(Some(piece)) => piece,
                Ok(None) => break,
                Err(e) => {
                    eprintln!("zip of {}: {e}", prefix.as_str());
                    return;
                }
            };
            zip.data(&piece);
            if !body.write(piece).await {
                return;
            }
        }
        if !body.write(zip.finish_entry()).await {
            return;
        }
    }
    body.write(zip.finish()).await;
}

async fn download(head: &RequestHead, out: ResponseOutparam) {
    let file = match find(head) {
        Ok(file) => file,
        Err(e) => return send_error(out, &e).await,
    };
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
        return send_bytes(out, 304, &headers, Vec::new()).await;
    }
    // `start..end` (end exclusive) is what goes out.
    let (status, start, end) = match RangeRequest::parse(head.header("range").as_deref(), file.size)
    {
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
            return send_bytes(out, 416, &headers, detail.to_string().into_bytes()).await;
        }
    };
    // Open the stored bytes and read the first piece before committing to a status, so a
    // broken store still gets a clean error.
    let blobs = match open_blobs() {
        Ok(blobs) => blobs,
        Err(e) => return send_error(out, &e).await,
    };
    let opened = blobs.open_range(&file, start, end).and_then(|mut source| {
        let first = source.next_piece()?;
        Ok((first, source))
    });
    let (first, mut source) = match opened {
        Ok(opened) => opened,
        Err(e) => return send_error(out, &e.into()).await,
    };
    headers.push(("content-type", "application/octet-stream".to_string()));
    headers.push(("content-length", (end - start).to_string()));
    let mut body = start_stream(out, status, &headers);
    let mut next = first;
    while let Some(piece) = next {
        // A client that went away stops the loop: nothing more is read.
        if !body.write(piece).await {
            return;
        }
        next = match source.next_piece() {
            Ok(next) => next,
            // Headers are sent: ending the body short (Content-Length unmet) tells the client.
            Err(e) => {
                eprintln!("download of {}: {e}", file.path);
                return;
            }
        };
    }
}
