//! `metrics`: run metrics, recorded and read.
//! The rules are `registry_app`'s (`routes::run_metrics`); this component only adapts Spin's
//! request and response to them.

use spin_sdk::http::{IncomingRequest, ResponseOutparam};
use spin_sdk::http_component;

#[http_component]
async fn handle(req: IncomingRequest, out: ResponseOutparam) {
    registry_spin::serve(req, out, registry_app::routes::run_metrics);
}
