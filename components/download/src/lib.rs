//! `download`: streamed downloads (ranges, a folder as a ZIP), listings, existence, and
//! readiness.
//! The rules are `registry_app`'s (`routes::file_reads`); this component only adapts Spin's
//! request and response to them.

use spin_sdk::http::{IncomingRequest, ResponseOutparam};
use spin_sdk::http_component;

#[http_component]
async fn handle(req: IncomingRequest, out: ResponseOutparam) {
    registry_spin::serve_streaming(req, out, registry_app::routes::file_reads);
}
