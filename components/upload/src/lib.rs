use spin_sdk::http::{IncomingRequest, ResponseOutparam};
use spin_sdk::http_component;

#[http_component]
async fn handle(req: IncomingRequest, out: ResponseOutparam) {
    let head = registry_spin::http::RequestHead::of(&req);
    registry_spin::http::send_json(out, 200, &serde_json::json!({"path": head.path})).await;
}
