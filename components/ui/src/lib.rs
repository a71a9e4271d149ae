//! `ui`: the registry's web pages (`registry_ui::route`), under the same access rules as the
//! API; the audit form is the only page that writes. This component only adapts Spin's
//! request and response to them.

use spin_sdk::http::{IncomingRequest, ResponseOutparam};
use spin_sdk::http_component;

#[http_component]
async fn handle(req: IncomingRequest, out: ResponseOutparam) {
    registry_spin::serve_with_blobs(req, out, registry_ui::route);
}
