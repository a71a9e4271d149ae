//! What an operator watches, for any app the host serves: Prometheus metrics (requests by
//! component, route, method and status; latency; bytes in and out; instances in use) and, if
//! asked for, one JSON access-log line per request on stdout. Neither ever holds a header
//! value, a query string or a body: routes are the manifest's patterns, paths are logged
//! without their query.

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, SizeHint};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use wasmtime_wasi_http::body::HyperOutgoingBody;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    component: String,
    route: String,
    method: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    component: String,
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BytesLabels {
    component: String,
    direction: &'static str,
}

/// 1 ms to about 65 s, doubling.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

/// The host's metrics, and whether requests are logged.
pub struct Observer {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram, fn() -> Histogram>,
    bytes: Family<BytesLabels, Counter>,
    instances: Gauge,
    in_flight: Gauge,
    access_log: bool,
    /// Set when shutdown begins: readiness fails from then on, so traffic goes elsewhere.
    pub stopping: std::sync::atomic::AtomicBool,
}

impl Observer {
    pub fn new(access_log: bool) -> Self {
        let mut registry = Registry::with_prefix("opsml_host");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "Requests answered, by component, route (the manifest's pattern), method and status",
            requests.clone(),
        );
        let latency = Family::<RouteLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram,
        );
        registry.register(
            "http_request_duration_seconds",
            "From the request's arrival to the end of its response body",
            latency.clone(),
        );
        let bytes = Family::<BytesLabels, Counter>::default();
        registry.register(
            "http_body_bytes",
            "Body bytes received (direction in) and sent (out), by component",
            bytes.clone(),
        );
        let instances = Gauge::default();
        registry.register(
            "instances_in_use",
            "Component instances alive (one per request, until its handler returns)",
            instances.clone(),
        );
        let in_flight = Gauge::default();
        registry.register(
            "http_requests_in_flight",
            "Requests whose response has not ended yet",
            in_flight.clone(),
        );
        Observer {
            registry,
            requests,
            latency,
            bytes,
            instances,
            in_flight,
            access_log,
            stopping: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// The metrics in Prometheus' text format (OpenMetrics).
    pub fn render(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .expect("writing to a String cannot fail");
        text
    }

    /// Starts following one request.
    pub fn start(
        self: &Arc<Self>,
        method: &str,
        path: &str,
        route: &str,
        component: &str,
        client: SocketAddr,
    ) -> RequestTrace {
        self.in_flight.inc();
        RequestTrace {
            observer: self.clone(),
            started: Instant::now(),
            id: new_request_id(),
            method: method.to_string(),
            path: path.to_string(),
            route: route.to_string(),
            component: component.to_string(),
            client,
            bytes_in: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Counts an instance as in use until the guard is dropped.
    pub fn instance(self: &Arc<Self>) -> InstanceGuard {
        self.instances.inc();
        InstanceGuard(self.clone())
    }
}

/// An instance in use.
pub struct InstanceGuard(Arc<Observer>);

impl Drop for InstanceGuard {
    fn drop(&mut self) {
        self.0.instances.dec();
    }
}

/// A random 128-bit request id, hex.
fn new_request_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// One request being served.
pub struct RequestTrace {
    observer: Arc<Observer>,
    started: Instant,
    pub id: String,
    method: String,
    path: String,
    route: String,
    component: String,
    client: SocketAddr,
    bytes_in: Arc<AtomicU64>,
}

impl RequestTrace {
    /// The request body, counted as it is read.
    pub fn count_in<B>(&self, body: B) -> CountedIn<B> {
        CountedIn {
            inner: body,
            bytes: self.bytes_in.clone(),
        }
    }

    /// The response, whose end (or abandonment) records the request.
    pub fn finish(
        self,
        response: hyper::Response<HyperOutgoingBody>,
    ) -> hyper::Response<HyperOutgoingBody> {
        let (mut parts, body) = response.into_parts();
        if let Ok(id) = http::HeaderValue::from_str(&self.id) {
            parts.headers.insert("x-request-id", id);
        }
        let status = parts.status.as_u16();
        let body = Recorded {
            inner: body,
            bytes_out: 0,
            status,
            trace: Some(self),
        };
        hyper::Response::from_parts(parts, body.boxed_unsync())
    }

    fn record(self, status: u16, bytes_out: u64) {
        let o = &self.observer;
        o.in_flight.dec();
        let seconds = self.started.elapsed().as_secs_f64();
        let bytes_in = self.bytes_in.load(Ordering::Relaxed);
        o.requests
            .get_or_create(&RequestLabels {
                component: self.component.clone(),
                route: self.route.clone(),
                method: self.method.clone(),
                status,
            })
            .inc();
        o.latency
            .get_or_create(&RouteLabels {
                component: self.component.clone(),
                route: self.route.clone(),
            })
            .observe(seconds);
        for (direction, n) in [("in", bytes_in), ("out", bytes_out)] {
            o.bytes
                .get_or_create(&BytesLabels {
                    component: self.component.clone(),
                    direction,
                })
                .inc_by(n);
        }
        if o.access_log {
            let time = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0);
            let line = serde_json::json!({
                "time": time,
                "request_id": self.id,
                "client": self.client.ip().to_string(),
                "method": self.method,
                "path": self.path,
                "route": self.route,
                "component": self.component,
                "status": status,
                "duration_ms": (seconds * 1e6).round() / 1e3,
                "bytes_in": bytes_in,
                "bytes_out": bytes_out,
            });
            println!("{line}");
        }
    }
}

/// A request body that counts its bytes.
pub struct CountedIn<B> {
    inner: B,
    bytes: Arc<AtomicU64>,
}

impl<B: Body<Data = Bytes> + Unpin> Body for CountedIn<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            if let Some(data) = frame.data_ref() {
                self.bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A response body that records its request when it ends, fails or is dropped unfinished
/// (the client went away: recorded with what was sent).
struct Recorded {
    inner: HyperOutgoingBody,
    bytes_out: u64,
    status: u16,
    trace: Option<RequestTrace>,
}

impl Recorded {
    fn done(&mut self) {
        if let Some(trace) = self.trace.take() {
            trace.record(self.status, self.bytes_out);
        }
    }
}

impl Body for Recorded {
    type Data = Bytes;
    type Error = wasmtime_wasi_http::bindings::http::types::ErrorCode;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    self.bytes_out += data.len() as u64;
                }
            }
            Poll::Ready(_) => self.done(),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Recorded {
    fn drop(&mut self) {
        self.done();
    }
}

/// What `GET /readyz` asks: the app's own readiness route, if it has one, on the app's
/// address.
#[derive(Clone)]
pub struct Readiness {
    pub app: SocketAddr,
    pub route: Option<String>,
}

impl Readiness {
    /// 200 while serving (and the app's route answers 200), 503 once shutdown began or when
    /// the app's route answers anything else or not at all.
    async fn check(&self, observer: &Observer) -> (u16, String) {
        if observer.stopping.load(Ordering::Relaxed) {
            return (503, "stopping\n".to_string());
        }
        let Some(route) = &self.route else {
            return (200, "ready\n".to_string());
        };
        let asked = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            status_of(self.app, route),
        )
        .await;
        // A check that failed because shutdown began meanwhile says so.
        if !matches!(asked, Ok(Ok(200))) && observer.stopping.load(Ordering::Relaxed) {
            return (503, "stopping\n".to_string());
        }
        match asked {
            Ok(Ok(200)) => (200, "ready\n".to_string()),
            Ok(Ok(status)) => (503, format!("{route} answered {status}\n")),
            Ok(Err(e)) => (503, format!("{route}: {e}\n")),
            Err(_) => (503, format!("{route} did not answer within 5 s\n")),
        }
    }
}

/// The status of `GET route` on the app.
async fn status_of(app: SocketAddr, route: &str) -> std::io::Result<u16> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(app).await?;
    let request = format!("GET {route} HTTP/1.1\r\nHost: {app}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).await?;
    // `HTTP/1.1 200`
    std::str::from_utf8(&head[9..12])
        .ok()
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::other("not an HTTP answer"))
}

/// Serves `GET /metrics` and `GET /readyz` until the process ends.
pub async fn serve_metrics(
    observer: Arc<Observer>,
    readiness: Readiness,
    listener: tokio::net::TcpListener,
) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let observer = observer.clone();
        let readiness = readiness.clone();
        tokio::task::spawn(async move {
            let service =
                hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let observer = observer.clone();
                    let readiness = readiness.clone();
                    async move {
                        let (status, content_type, body) =
                            match (req.method().as_str(), req.uri().path()) {
                                ("GET", "/metrics") => (
                                    200,
                                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                                    observer.render(),
                                ),
                                ("GET", "/readyz") => {
                                    let (status, text) = readiness.check(&observer).await;
                                    (status, "text/plain", text)
                                }
                                _ => (404, "text/plain", "Not Found\n".to_string()),
                            };
                        let mut response =
                            hyper::Response::new(http_body_util::Full::new(Bytes::from(body)));
                        *response.status_mut() =
                            http::StatusCode::from_u16(status).expect("valid status");
                        response.headers_mut().insert(
                            http::header::CONTENT_TYPE,
                            http::HeaderValue::from_static(content_type),
                        );
                        Ok::<_, std::convert::Infallible>(response)
                    }
                });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
        });
    }
}
