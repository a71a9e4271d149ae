//! `upload`: the file writes. `POST /opsml/files/upload` parses the multipart body as it
//! streams in; the `file` part's bytes go to the blob store (key-value chunks, or an S3
//! multipart upload), digested on the way, and the file becomes visible only when its manifest
//! row is committed after the last byte is stored. Anything that goes wrong before that deletes
//! the bytes stored so far and leaves nothing visible.
//! `GET /opsml/files/delete` removes a file or a folder's files. Both need `write` in the
//! path's repository (and the prod token in production); each file made visible or deleted is
//! recorded in the audit trail in the same transaction.

use registry_core::access::Scope;
use registry_core::multipart::{boundary_from_content_type, Event, MultipartParser};
use registry_core::{validate_prefix, validate_write_path};
use registry_spin::http::{send_error, send_result, RequestHead};
use registry_spin::settings::{authenticate, digest_algorithm, Caller, UploadLimits, WritePolicy};
use registry_spin::storage::{new_id, now_unix, open_blobs, open_database};
use registry_spin::ApiError;
use registry_store::blobs::{BlobSink, BlobStore};
use registry_store::{audit, files, Sql};
use serde_json::{json, Value};
use spin_sdk::http::{IncomingRequest, Method, ResponseOutparam};
use spin_sdk::http_component;

/// The most bytes asked of the body stream per read.
const READ_SIZE: u64 = 1 << 20;
/// How often a running upload marks itself alive (see `upload_stale_seconds`).
const TOUCH_EVERY_BYTES: u64 = 8 << 20;

#[http_component]
async fn handle(req: IncomingRequest, out: ResponseOutparam) {
    let head = RequestHead::of(&req);
    let caller = match authenticate(&head) {
        Ok(caller) => caller,
        Err(e) => return send_error(out, &e).await,
    };
    let result = match head.path.as_str() {
        "/opsml/files/upload" => upload(&head, req, &caller),
        "/opsml/files/delete" => delete(&head, &caller),
        _ => Err(ApiError::not_found("Not Found")),
    };
    send_result(out, result).await;
}

/// Deletes the file at `path`, or every file under the folder `path`; `deleted` is true once
/// nothing is left there (also when nothing was).
fn delete(head: &RequestHead, caller: &Caller) -> Result<Value, ApiError> {
    head.expect_method(&[Method::Get])?;
    WritePolicy::load().authorize(head)?;
    caller.require_at_path(Scope::Write, head)?;
    let path = head
        .query_param("path")
        .ok_or_else(|| ApiError::unprocessable("query parameter \"path\" is required"))?;
    let prefix = validate_prefix(&path)?;
    if prefix.is_registry_root() {
        return Err(ApiError::unprocessable(format!(
            "refusing to delete a whole registry ({path}): name a card's folder or a file"
        )));
    }
    let db = open_database()?;
    let blobs = open_blobs()?;
    files::delete_under(&db, &blobs, prefix.as_str(), &|tx, path| {
        audit::record(tx, &caller.file_audit("file.delete", path))
    })?;
    Ok(json!({ "deleted": true }))
}

fn upload(head: &RequestHead, req: IncomingRequest, caller: &Caller) -> Result<Value, ApiError> {
    head.expect_method(&[Method::Post])?;
    WritePolicy::load().authorize(head)?;
    let write_path = head
        .header("write_path")
        .filter(|p| !p.is_empty())
        .ok_or_else(|| {
            ApiError::unprocessable("No write path provided: set the write_path header")
        })?;
    let key = validate_write_path(&write_path)?;
    caller.require(Scope::Write, key.repository())?;
    let content_type = head.header("content-type").unwrap_or_default();
    let boundary = boundary_from_content_type(&content_type)?;
    let algorithm = digest_algorithm()?;
    let limits = UploadLimits::load()?;

    // The request's length bounds the file's: enough to size an object store's parts.
    let size_hint = head
        .header("content-length")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|n| n.min(limits.max_upload_bytes));

    let db = open_database()?;
    let blobs = open_blobs()?;
    collect_dead_uploads(&db, &blobs, &limits);
    let blob_id = new_id();
    let progress = Progress {
        db: &db,
        blob_id: &blob_id,
        max_bytes: limits.max_upload_bytes,
    };
    files::write_file(
        &db,
        &blobs,
        key.as_str(),
        &blob_id,
        algorithm,
        size_hint,
        now_unix,
        files::Replacing::Anything,
        &|tx, path| audit::record(tx, &caller.file_audit("file.upload", path)),
        |sink| receive(req, &boundary, sink, &progress),
    )?;
    Ok(json!({ "storage_uri": key.client_path() }))
}

/// Deletes the bytes of uploads that stopped storing bytes `stale_after_seconds` ago (the
/// client went away, or the host died mid-upload), and of files whose delete failed.
fn collect_dead_uploads(db: &dyn Sql, blobs: &dyn BlobStore, limits: &UploadLimits) {
    let before = now_unix().saturating_sub(limits.stale_after_seconds as i64);
    files::collect_stale(db, blobs, before);
}

/// What `receive` needs besides the body: where to report liveness, and the size limit.
struct Progress<'a> {
    db: &'a dyn Sql,
    blob_id: &'a str,
    max_bytes: u64,
}

/// Streams the body through the parser into `writer`; only the first part named `file` that
/// has a filename is stored (as the reference does).
fn receive(
    req: IncomingRequest,
    boundary: &str,
    writer: &mut dyn BlobSink,
    progress: &Progress<'_>,
) -> Result<(), ApiError> {
    let body = req
        .consume()
        .map_err(|()| ApiError::bad_request("the request body was already consumed"))?;
    let stream = body
        .stream()
        .map_err(|()| ApiError::bad_request("the request body cannot be read"))?;
    let mut parser = MultipartParser::new(boundary);
    #[derive(PartialEq)]
    enum FilePart {
        NotSeen,
        Receiving,
        Done,
    }
    let mut file = FilePart::NotSeen;
    let mut stored: u64 = 0;
    let mut next_touch = TOUCH_EVERY_BYTES;
    loop {
        let bytes = match stream.blocking_read(READ_SIZE) {
            Ok(bytes) => bytes,
            Err(wasi::io::streams::StreamError::Closed) => break,
            Err(wasi::io::streams::StreamError::LastOperationFailed(e)) => {
                return Err(ApiError::bad_request(format!(
                    "the upload was interrupted: {}",
                    e.to_debug_string()
                )))
            }
        };
        parser.push(&bytes, |event| -> Result<(), ApiError> {
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
                        return Err(ApiError::new(
                            413,
                            format!(
                                "the file is larger than this registry's {}-byte upload limit",
                                progress.max_bytes
                            ),
                        ));
                    }
                    writer.write(data)?;
                    if stored >= next_touch {
                        files::touch(progress.db, progress.blob_id, now_unix())?;
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
    drop(stream);
    parser.finish()?;
    if file != FilePart::Done {
        return Err(ApiError::unprocessable(
            "File is missing: the multipart body needs a part named \"file\" with a filename",
        ));
    }
    Ok(())
}
