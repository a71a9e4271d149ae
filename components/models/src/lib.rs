//! `models`: `POST /opsml/models/metadata` finds a model card (by uid, or by name, repository
//! and version filter, highest version first) and answers the `model-metadata.json` the
//! client stored with it: what CI needs to fetch a model by name and version.

use registry_core::RegistryType;
use registry_spin::http::{json_body, send_result, RequestHead};
use registry_spin::list::ListRequest;
use registry_spin::storage::{SpinKeyValue, SpinSqlite};
use registry_spin::ApiError;
use registry_store::blobs::{chunk_count, read_chunk};
use registry_store::cards;
use registry_store::files;
use serde_json::Value;
use spin_sdk::http::{IncomingRequest, Method, ResponseOutparam};
use spin_sdk::http_component;

/// The metadata file is small; anything larger is not one the client wrote.
const MAX_METADATA_BYTES: u64 = 16 << 20;

#[http_component]
async fn handle(req: IncomingRequest, out: ResponseOutparam) {
    let head = RequestHead::of(&req);
    send_result(out, route(&head, req).await).await;
}

async fn route(head: &RequestHead, req: IncomingRequest) -> Result<Value, ApiError> {
    head.expect_method(&[Method::Post])?;
    match head.path.as_str() {
        "/opsml/models/metadata" => metadata(json_body(req).await?),
        _ => Err(ApiError::not_found("Not Found")),
    }
}

/// The model selected like `cards/list` selects cards (`uid`, or `name`, `repository`,
/// `version`, `ignore_release_candidate`), highest version first.
fn metadata(body: ListRequest) -> Result<Value, ApiError> {
    let (registry, query) = body
        .for_registry(RegistryType::Model)
        .with_limit(1)
        .into_query()?;
    if query.name.is_none() && query.uid.is_none() {
        return Err(ApiError::unprocessable(
            "give a model's uid, or its name (and repository, version)",
        ));
    }
    let db = SpinSqlite::open_default()?;
    let found = cards::list(&db, registry, &query)?;
    let model = found
        .first()
        .ok_or_else(|| ApiError::not_found("Model not found"))?;
    let text = |key: &str| {
        model
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let path = format!(
        "{}/{}/{}/v{}/model-metadata.json",
        registry.storage_folder(),
        text("repository"),
        text("name"),
        text("version")
    );
    let file = files::get(&db, &path)?.ok_or_else(|| {
        ApiError::not_found(format!(
            "model {} v{} has no model-metadata.json",
            text("name"),
            text("version")
        ))
    })?;
    if file.size > MAX_METADATA_BYTES {
        return Err(ApiError::new(
            500,
            "the stored model-metadata.json is too large",
        ));
    }
    let kv = SpinKeyValue::open_default()?;
    let mut bytes = Vec::with_capacity(file.size as usize);
    for index in 0..chunk_count(file.size, file.chunk_size) {
        bytes.extend(read_chunk(&kv, &file.blob_id, index)?);
    }
    serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::new(
            500,
            format!("the stored model-metadata.json is not JSON: {e}"),
        )
    })
}
