//! `get-card`: health, registry tables and every card read (uid, list, repositories, names,
//! project ids).
//! The rules are `registry_app`'s (`routes::card_reads`); this component only adapts Spin's
//! request and response to them.

use spin_sdk::http::{IncomingRequest, ResponseOutparam};
use spin_sdk::http_component;

#[http_component]
async fn handle(req: IncomingRequest, out: ResponseOutparam) {
    registry_spin::serve(req, out, registry_app::routes::card_reads);
}
