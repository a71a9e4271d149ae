//! `models`: model metadata, metric comparisons and registration.
//! The rules are `registry_app`'s (`routes::model_routes`); this component only adapts Spin's
//! request and response to them.

use spin_sdk::http::{IncomingRequest, ResponseOutparam};
use spin_sdk::http_component;

#[http_component]
async fn handle(req: IncomingRequest, out: ResponseOutparam) {
    registry_spin::serve_with_blobs(req, out, registry_app::routes::model_routes);
}
