//! `admin`: API tokens and the audit trail, and `whoami`.
//! The rules are `registry_app`'s (`routes::admin_routes`); this component only adapts Spin's
//! request and response to them.

use spin_sdk::http::{IncomingRequest, ResponseOutparam};
use spin_sdk::http_component;

#[http_component]
async fn handle(req: IncomingRequest, out: ResponseOutparam) {
    registry_spin::serve(req, out, registry_app::routes::admin_routes);
}
