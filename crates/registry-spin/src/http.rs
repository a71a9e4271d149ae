//! The adapter between Spin's HTTP types and the application layer (`registry_app`): a
//! request's head and body in, an answer or an error out. [`serve`] is a whole component.

use registry_app::routes::{Route, StreamingRoute};
use registry_app::{Answer, AppError, Body, Ctx, Head, Method, ResponseSink};
use spin_sdk::http::{
    Fields, IncomingRequest, Method as SpinMethod, OutgoingBody, OutgoingResponse, ResponseOutparam,
};
use spin_sdk::wit::wasi::http0_2_0::types::IncomingBody;
use wasi::io::streams::{InputStream, OutputStream, StreamError};

use crate::storage::SpinDeployment;

/// A whole component without blob operations: the request goes to `route`, its answer or
/// error back to the client.
pub fn serve(req: IncomingRequest, out: ResponseOutparam, route: Route) {
    serve_in::<false>(req, out, route);
}

/// A whole component whose operations read or write file bytes.
pub fn serve_with_blobs(req: IncomingRequest, out: ResponseOutparam, route: Route) {
    serve_in::<true>(req, out, route);
}

fn serve_in<const BLOBS: bool>(req: IncomingRequest, out: ResponseOutparam, route: Route) {
    let head = head_of(&req);
    let deployment = SpinDeployment::<BLOBS>;
    let ctx = Ctx::new(&deployment);
    let mut body = RequestBody::new(req);
    let answer = route(&ctx, &head, &mut body);
    respond(out, answer);
}

/// A whole component whose route may stream its answer (it reads file bytes).
pub fn serve_streaming(req: IncomingRequest, out: ResponseOutparam, route: StreamingRoute) {
    let head = head_of(&req);
    let deployment = SpinDeployment::<true>;
    let ctx = Ctx::new(&deployment);
    let mut sink = Sink::Pending(Some(out));
    let answer = route(&ctx, &head, &mut sink);
    // Once streaming began, what went wrong was said by cutting the body short.
    if let Sink::Pending(Some(out)) = sink {
        respond(out, answer);
    }
}

/// The request line and headers.
pub fn head_of(req: &IncomingRequest) -> Head {
    let method = match req.method() {
        SpinMethod::Get => Method::Get,
        SpinMethod::Post => Method::Post,
        SpinMethod::Put => Method::Put,
        SpinMethod::Delete => Method::Delete,
        _ => Method::Other,
    };
    Head::new(
        method,
        &req.path_with_query().unwrap_or_default(),
        req.headers().entries(),
    )
}

/// The request's body, read as the operation asks for it.
pub struct RequestBody {
    request: Option<IncomingRequest>,
    // Dropped in this order: the stream before its body.
    stream: Option<InputStream>,
    body: Option<IncomingBody>,
}

impl RequestBody {
    pub fn new(request: IncomingRequest) -> Self {
        Self {
            request: Some(request),
            stream: None,
            body: None,
        }
    }
}

impl Body for RequestBody {
    fn read(&mut self, max: u64) -> registry_app::Result<Option<Vec<u8>>> {
        if let Some(request) = self.request.take() {
            let body = request
                .consume()
                .map_err(|()| AppError::bad_request("the request body was already consumed"))?;
            let stream = body
                .stream()
                .map_err(|()| AppError::bad_request("the request body cannot be read"))?;
            self.body = Some(body);
            self.stream = Some(stream);
        }
        let Some(stream) = &self.stream else {
            return Ok(None);
        };
        match stream.blocking_read(max) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(StreamError::Closed) => {
                drop(self.stream.take());
                drop(self.body.take());
                Ok(None)
            }
            Err(StreamError::LastOperationFailed(e)) => Err(AppError::bad_request(format!(
                "the request body was interrupted: {}",
                e.to_debug_string()
            ))),
        }
    }
}

impl Drop for RequestBody {
    fn drop(&mut self) {
        drop(self.stream.take());
    }
}

/// A streamed answer's destination: the response, until its head goes out.
enum Sink {
    Pending(Option<ResponseOutparam>),
    Started(BodyWriter),
}

impl ResponseSink for Sink {
    fn start(&mut self, status: u16, headers: &[(&'static str, String)]) {
        if let Sink::Pending(out) = self {
            let out = out.take().expect("a response starts once");
            *self = Sink::Started(start_stream(out, status, headers));
        }
    }
    fn write(&mut self, piece: Vec<u8>) -> bool {
        match self {
            Sink::Started(writer) => writer.write(piece),
            Sink::Pending(_) => false,
        }
    }
}

/// Writes an answer, or an error as `{"detail": ...}` with its status.
fn respond(out: ResponseOutparam, answer: registry_app::Result<Answer>) {
    match answer {
        Ok(Answer::Json { status, text }) => send_bytes(
            out,
            status,
            &[("content-type", "application/json".to_string())],
            text.into_bytes(),
        ),
        Ok(Answer::Bytes {
            status,
            headers,
            body,
        }) => send_bytes(out, status, &headers, body),
        // Nothing was streamed after all: an empty answer rather than none.
        Ok(Answer::Sent) => send_bytes(out, 500, &[], Vec::new()),
        Err(e) => send_error(out, &e),
    }
}

pub fn send_error(out: ResponseOutparam, error: &AppError) {
    let mut headers = vec![("content-type", "application/json".to_string())];
    if let Some(challenge) = error.challenge {
        headers.push(("www-authenticate", challenge.to_string()));
    }
    if let Some(seconds) = error.retry_after {
        headers.push(("retry-after", seconds.to_string()));
    }
    let body = serde_json::to_vec(&serde_json::json!({ "detail": error.detail }))
        .expect("answers serialize to JSON");
    send_bytes(out, error.status, &headers, body);
}

pub fn response(status: u16, headers: &[(&str, String)]) -> OutgoingResponse {
    let fields = Fields::new();
    for (name, value) in headers {
        // Header values built here are ASCII; an invalid one is a bug worth a trap.
        fields
            .append(name, value.as_bytes())
            .expect("valid response header");
    }
    let response = OutgoingResponse::new(fields);
    response.set_status_code(status).expect("valid status code");
    response
}

/// Sends a complete body with `headers` and its `Content-Length`.
pub fn send_bytes(out: ResponseOutparam, status: u16, headers: &[(&str, String)], body: Vec<u8>) {
    let mut all = headers.to_vec();
    all.push(("content-length", body.len().to_string()));
    let mut writer = start_stream(out, status, &all);
    // The client may have gone; there is nobody left to tell.
    writer.write(body);
}

/// Writes `data` to a `wasi:io` output stream as the host makes room, then flushes it.
pub(crate) fn write_all(stream: &OutputStream, mut data: &[u8]) -> Result<(), StreamError> {
    while !data.is_empty() {
        let permitted = loop {
            let n = stream.check_write()?;
            if n > 0 {
                break usize::try_from(n).unwrap_or(usize::MAX);
            }
            stream.subscribe().block();
        };
        let n = permitted.min(data.len());
        stream.write(&data[..n])?;
        data = &data[n..];
    }
    stream.blocking_flush()
}

/// A response's body, written as it comes. The response itself is handed to the host with the
/// first chunk, after as much of that chunk as the host takes without waiting: then the head
/// and a small body leave in one write. Spin 3.x leaves Nagle's algorithm on, and a body
/// written after its head waits for the client's delayed ACK (about 40 ms) whenever the
/// client sends one request at a time. Dropping the writer ends the body (cut short if fewer
/// bytes than its `Content-Length` were written, which tells the client).
pub struct BodyWriter {
    /// Until the first write: the response and where it goes.
    pending: Option<(ResponseOutparam, OutgoingResponse)>,
    /// The body's stream (its child resource, so dropped first) and the body.
    stream: Option<OutputStream>,
    body: Option<OutgoingBody>,
}

impl BodyWriter {
    /// Returns false once the client has gone away (stop producing then).
    pub fn write(&mut self, chunk: Vec<u8>) -> bool {
        let Some(stream) = &self.stream else {
            return false;
        };
        let mut rest: &[u8] = &chunk;
        if let Some((out, response)) = self.pending.take() {
            let early = match stream.check_write() {
                Ok(permitted) => rest
                    .len()
                    .min(usize::try_from(permitted).unwrap_or(usize::MAX)),
                Err(_) => 0,
            };
            let written = early == 0 || stream.write(&rest[..early]).is_ok();
            out.set(response);
            if !written {
                return false;
            }
            rest = &rest[early..];
        }
        write_all(stream, rest).is_ok()
    }
}

impl Drop for BodyWriter {
    fn drop(&mut self) {
        if let Some((out, response)) = self.pending.take() {
            out.set(response);
        }
        drop(self.stream.take());
        if let Some(body) = self.body.take() {
            let _ = OutgoingBody::finish(body, None);
        }
    }
}

/// Starts a response; the returned writer sends its body (see [`BodyWriter`]).
pub fn start_stream(out: ResponseOutparam, status: u16, headers: &[(&str, String)]) -> BodyWriter {
    let response = response(status, headers);
    let body = response.body().expect("a new response has its body");
    let stream = body.write().expect("a new body has its stream");
    BodyWriter {
        pending: Some((out, response)),
        stream: Some(stream),
        body: Some(body),
    }
}
