//! `ui`: the registry's web pages (`registry_ui`), under the same access rules as the API: a
//! page needs `read` in the repositories it shows, and listings leave out the others.

use registry_spin::http::{send_bytes, send_error, RequestHead};
use registry_spin::settings::authenticate;
use registry_spin::storage::open_database;
use registry_ui::{answer, Answer, Request};
use spin_sdk::http::{IncomingRequest, Method, ResponseOutparam};
use spin_sdk::http_component;

#[http_component]
async fn handle(req: IncomingRequest, out: ResponseOutparam) {
    let head = RequestHead::of(&req);
    let caller = match authenticate(&head) {
        Ok(caller) => caller,
        Err(e) => return send_error(out, &e).await,
    };
    if let Err(e) = head.expect_method(&[Method::Get]) {
        return send_error(out, &e).await;
    }
    let db = match open_database() {
        Ok(db) => db,
        Err(e) => return send_error(out, &e).await,
    };
    let request = Request {
        path: &head.path,
        query: &head.query,
        identity: &caller.identity,
    };
    match answer(db.as_ref(), &request) {
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
    }
}
