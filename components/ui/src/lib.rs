//! `ui`: the registry's web pages (`registry_ui`), under the same access rules as the API: a
//! page needs `read` in the repositories it shows, and listings leave out the others. The
//! audit form is the only page that writes: its `card.joblib` and rows, with `write` in the
//! card's repository and, in production, the prod token.

use registry_spin::http::{read_body, send_bytes, send_error, RequestHead};
use registry_spin::settings::{authenticate, digest_algorithm, WritePolicy};
use registry_spin::storage::{new_id, now_unix, open_blobs, open_database};
use registry_store::blobs::{BlobStore, DigestAlgorithm};
use registry_ui::{answer, Answer, Request, Site, Writes};
use spin_sdk::http::{IncomingRequest, Method, ResponseOutparam};
use spin_sdk::http_component;

/// The largest form accepted: its answers and a CSV of them.
const MAX_FORM_BYTES: usize = 4 * 1024 * 1024;

#[http_component]
async fn handle(req: IncomingRequest, out: ResponseOutparam) {
    let head = RequestHead::of(&req);
    let caller = match authenticate(&head) {
        Ok(caller) => caller,
        Err(e) => return send_error(out, &e).await,
    };
    if let Err(e) = head.expect_method(&[Method::Get, Method::Post]) {
        return send_error(out, &e).await;
    }
    let post = head.method == Method::Post;
    // Only a form writes, so only a form needs the digest setting to be valid.
    let algorithm = if post {
        match digest_algorithm() {
            Ok(algorithm) => algorithm,
            Err(e) => return send_error(out, &e).await,
        }
    } else {
        DigestAlgorithm::Blake3
    };
    let body = if post {
        match read_body(req, MAX_FORM_BYTES).await {
            Ok(body) => body,
            Err(e) => return send_error(out, &e).await,
        }
    } else {
        Vec::new()
    };
    let db = match open_database() {
        Ok(db) => db,
        Err(e) => return send_error(out, &e).await,
    };
    let policy = WritePolicy::load();
    let blobs = || -> Result<Box<dyn BlobStore>, String> { open_blobs().map_err(|e| e.detail) };
    let audit = |action: &str, target: &str| caller.audit(action, target);
    let site = Site {
        db: db.as_ref(),
        blobs: &blobs,
        writes: Writes {
            app_env: &policy.app_env,
            prod_token: &policy.prod_token,
            algorithm,
            new_id: &new_id,
            now_unix: &now_unix,
            audit: &audit,
        },
    };
    let content_type = head.header("content-type").unwrap_or_default();
    let prod_token = head.header(registry_core::prod_token::PROD_TOKEN_HEADER);
    let request = Request {
        path: &head.path,
        query: &head.query,
        identity: &caller.identity,
        method: if post { "POST" } else { "GET" },
        content_type: &content_type,
        body: &body,
        prod_token_header: prod_token.as_deref(),
        cross_site: registry_ui::from_another_site(
            head.header("sec-fetch-site").as_deref(),
            head.header("origin").as_deref(),
            head.header("host").as_deref(),
        ),
    };
    match answer(&site, &request) {
        Answer::Page { status, html } => {
            let headers = [
                ("content-type", "text/html; charset=utf-8".to_string()),
                // Pages load nothing from elsewhere and run no script.
                (
                    "content-security-policy",
                    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'".to_string(),
                ),
                ("x-content-type-options", "nosniff".to_string()),
                ("cache-control", "no-store".to_string()),
            ];
            send_bytes(out, status, &headers, html.into_bytes()).await;
        }
        Answer::Redirect(location) => {
            send_bytes(out, 303, &[("location", location)], Vec::new()).await;
        }
        Answer::File {
            content_type,
            filename,
            bytes,
        } => {
            let headers = [
                ("content-type", content_type.to_string()),
                (
                    "content-disposition",
                    format!(
                        "attachment; filename=\"{}\"",
                        filename.replace(['"', '\\'], "_")
                    ),
                ),
                ("x-content-type-options", "nosniff".to_string()),
                ("cache-control", "no-store".to_string()),
            ];
            send_bytes(out, 200, &headers, bytes).await;
        }
    }
}
