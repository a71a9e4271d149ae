//! `upload`: the file writes (a streamed multipart upload, a file or folder deleted).
//! The rules are `registry_app`'s (`routes::file_writes`); this component only adapts Spin's
//! request and response to them.

use spin_sdk::http::{IncomingRequest, ResponseOutparam};
use spin_sdk::http_component;

#[http_component]
async fn handle(req: IncomingRequest, out: ResponseOutparam) {
    registry_spin::serve_with_blobs(req, out, registry_app::routes::file_writes);
}
