//! `download`: `files/download` streams a committed file chunk by chunk (never the whole file
//! in memory), with its size and its content digest as `ETag`; `files/list`, `files/list/info`
//! and `files/exists` answer from the file manifests, so a file is seen only once fully stored.

use registry_core::{validate_prefix, validate_write_path};
use registry_spin::http::{send_error, send_result, start_stream, RequestHead};
use registry_spin::storage::{SpinKeyValue, SpinSqlite};
use registry_spin::ApiError;
use registry_store::blobs::{chunk_count, read_chunk};
use registry_store::files::{self, FileRecord};
use serde_json::{json, Value};
use spin_sdk::http::{IncomingRequest, Method, ResponseOutparam};
use spin_sdk::http_component;

#[http_component]
async fn handle(req: IncomingRequest, out: ResponseOutparam) {
    let head = RequestHead::of(&req);
    if let Err(e) = head.expect_method(&[Method::Get]) {
        return send_error(out, &e).await;
    }
    match head.path.as_str() {
        "/opsml/files/download" => download(&head, out).await,
        "/opsml/files/list" => send_result(out, list(&head)).await,
        "/opsml/files/list/info" => send_result(out, list_info(&head)).await,
        "/opsml/files/exists" => send_result(out, exists(&head)).await,
        _ => send_error(out, &ApiError::not_found("Not Found")).await,
    }
}

fn path_param(head: &RequestHead) -> Result<String, ApiError> {
    head.query_param("path")
        .ok_or_else(|| ApiError::unprocessable("query parameter \"path\" is required"))
}

fn list(head: &RequestHead) -> Result<Value, ApiError> {
    let prefix = validate_prefix(&path_param(head)?)?;
    let db = SpinSqlite::open_default()?;
    let files: Vec<String> = files::list(&db, prefix.as_str())?
        .into_iter()
        .map(|f| registry_core::write_path::client_path(&f.path))
        .collect();
    Ok(json!({ "files": files }))
}

/// Like `files/list`, with each file's size, digest and upload time (seconds since the epoch).
fn list_info(head: &RequestHead) -> Result<Value, ApiError> {
    let prefix = validate_prefix(&path_param(head)?)?;
    let db = SpinSqlite::open_default()?;
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
    let db = SpinSqlite::open_default()?;
    Ok(json!({ "exists": !files::list(&db, prefix.as_str())?.is_empty() }))
}

fn find(head: &RequestHead) -> Result<FileRecord, ApiError> {
    let path = path_param(head)?;
    let key = validate_write_path(&path)?;
    let db = SpinSqlite::open_default()?;
    files::get(&db, key.as_str())?
        .ok_or_else(|| ApiError::not_found(format!("file not found: {path}")))
}

async fn download(head: &RequestHead, out: ResponseOutparam) {
    let file = match find(head) {
        Ok(file) => file,
        Err(e) => return send_error(out, &e).await,
    };
    let kv = match SpinKeyValue::open_default() {
        Ok(kv) => kv,
        Err(e) => return send_error(out, &e).await,
    };
    // Read the first chunk before committing to a 200, so a broken store still gets a clean error.
    let chunks = chunk_count(file.size, file.chunk_size);
    let first = if chunks > 0 {
        match read_chunk(&kv, &file.blob_id, 0) {
            Ok(chunk) => Some(chunk),
            Err(e) => return send_error(out, &e.into()).await,
        }
    } else {
        None
    };
    let mut body = start_stream(
        out,
        200,
        &[
            ("content-type", "application/octet-stream".to_string()),
            ("content-length", file.size.to_string()),
            ("etag", format!("\"{}\"", file.digest)),
            (
                "x-opsml-digest",
                format!("{}:{}", file.digest_algorithm.name(), file.digest),
            ),
        ],
    );
    if let Some(first) = first {
        if !body.write(first).await {
            return;
        }
    }
    for index in 1..chunks {
        match read_chunk(&kv, &file.blob_id, index) {
            // A client that went away stops the loop: nothing more is read.
            Ok(chunk) => {
                if !body.write(chunk).await {
                    return;
                }
            }
            // Headers are sent: ending the body short (Content-Length unmet) tells the client.
            Err(e) => {
                eprintln!("download of {}: {e}", file.path);
                return;
            }
        }
    }
}
