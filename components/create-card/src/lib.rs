//! `create-card`: the card writes (next version, create, update, delete).
//! The rules are `registry_app`'s (`routes::card_writes`); this component only adapts Spin's
//! request and response to them.

use spin_sdk::http::{IncomingRequest, ResponseOutparam};
use spin_sdk::http_component;

#[http_component]
async fn handle(req: IncomingRequest, out: ResponseOutparam) {
    registry_spin::serve(req, out, registry_app::routes::card_writes);
}
