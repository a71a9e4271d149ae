//! The load generator: N keep-alive HTTP/1.1 connections, each sending its next request as soon
//! as the previous answer is read, for a duration (after a warm-up) or for a request count.
//!
//! Requests come from a JSON-lines file (`{"method", "path", "headers", "json" | "body"}`,
//! cycled through in order by all connections together) or from a scenario that needs answers
//! to build the next request (card creation: `cards/version`, then `cards/create` with the
//! version it returned). One line of JSON goes to stdout: operations, failures, operations per
//! second and latency percentiles (one operation = one scenario step = all of its requests).

use crate::args::{runtime, split_base, Args};
use anyhow::{anyhow, bail, Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderName, HeaderValue, CONNECTION, CONTENT_TYPE, HOST};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::net::TcpStream;

#[derive(Deserialize)]
struct Line {
    #[serde(default)]
    method: Option<String>,
    path: String,
    #[serde(default)]
    headers: Map<String, Value>,
    #[serde(default)]
    json: Option<Value>,
    #[serde(default)]
    body: Option<String>,
}

struct Prepared {
    method: Method,
    path: String,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Bytes,
}

impl Prepared {
    fn from_line(line: Line, prefix: &str) -> Result<Self> {
        let mut headers = Vec::new();
        for (k, v) in &line.headers {
            let v = v
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| v.to_string());
            headers.push((HeaderName::try_from(k.as_str())?, HeaderValue::try_from(v)?));
        }
        let body = match (line.json, line.body) {
            (Some(j), _) => {
                headers.push((CONTENT_TYPE, HeaderValue::from_static("application/json")));
                Bytes::from(serde_json::to_vec(&j)?)
            }
            (None, Some(b)) => Bytes::from(b),
            (None, None) => Bytes::new(),
        };
        let method = match line.method {
            Some(m) => Method::from_bytes(m.to_ascii_uppercase().as_bytes())?,
            None if body.is_empty() => Method::GET,
            None => Method::POST,
        };
        Ok(Prepared {
            method,
            path: format!("{prefix}{}", line.path),
            headers,
            body,
        })
    }
}

enum Scenario {
    Replay(Vec<Prepared>),
    /// opsml: `POST cards/version` then `POST cards/create` with that version.
    OpsmlCreate {
        prefix: String,
        names: u64,
    },
    /// MLflow: `POST model-versions/create` (the registered models and the run exist already):
    /// the model's source is a folder of that run's artifacts, as `log_model` + register makes it.
    MlflowCreate {
        prefix: String,
        names: u64,
        run_id: String,
        artifact_uri: String,
    },
}

/// One keep-alive connection, re-opened if the server closes it.
struct Conn {
    addr: String,
    host: HeaderValue,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Conn {
    async fn connect(&mut self) -> Result<()> {
        let stream = TcpStream::connect(&self.addr)
            .await
            .with_context(|| format!("connect {}", self.addr))?;
        stream.set_nodelay(true)?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        self.sender = Some(sender);
        Ok(())
    }

    async fn send(
        &mut self,
        method: Method,
        path: &str,
        headers: &[(HeaderName, HeaderValue)],
        body: Bytes,
    ) -> Result<(StatusCode, Bytes)> {
        if self.sender.as_ref().is_none_or(|s| s.is_closed()) {
            self.connect().await?;
        }
        let sender = self.sender.as_mut().expect("connected");
        if sender.ready().await.is_err() {
            self.connect().await?;
        }
        let sender = self.sender.as_mut().expect("connected");
        let mut req = Request::builder().method(method).uri(path);
        let h = req.headers_mut().expect("valid builder");
        h.insert(HOST, self.host.clone());
        for (k, v) in headers {
            h.append(k.clone(), v.clone());
        }
        let req = req.body(Full::new(body))?;
        let result = async {
            let resp = sender.send_request(req).await?;
            let status = resp.status();
            let close = resp
                .headers()
                .get(CONNECTION)
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
            let body = resp.into_body().collect().await?.to_bytes();
            anyhow::Ok((status, body, close))
        }
        .await;
        match result {
            Ok((status, body, close)) => {
                if close {
                    self.sender = None;
                }
                Ok((status, body))
            }
            Err(e) => {
                self.sender = None;
                Err(e)
            }
        }
    }

    /// Sends and insists on a 2xx answer.
    async fn ok(
        &mut self,
        method: Method,
        path: &str,
        headers: &[(HeaderName, HeaderValue)],
        body: Bytes,
    ) -> Result<Bytes> {
        let (status, body) = self.send(method.clone(), path, headers, body).await?;
        if !status.is_success() {
            bail!(
                "{method} {path} -> {status}: {}",
                String::from_utf8_lossy(&body[..body.len().min(300)])
            );
        }
        Ok(body)
    }
}

fn json_headers() -> Vec<(HeaderName, HeaderValue)> {
    vec![(CONTENT_TYPE, HeaderValue::from_static("application/json"))]
}

fn now_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

struct Shared {
    scenario: Scenario,
    prefix: String,
    next: AtomicU64,
    /// Stop after this many operations (count mode).
    total: Option<u64>,
    /// Duration mode: measure from `warm_end`; stop starting operations at `end`, once the
    /// connection has a measured answer or a failure.
    window: Option<(Instant, Instant)>,
    seed: u64,
    errors: Mutex<Vec<String>>,
}

/// What one connection measured.
#[derive(Default)]
struct Tally {
    latencies_us: Vec<u64>,
    failures: u64,
    last_done: Option<Instant>,
}

async fn one_op(shared: &Shared, conn: &mut Conn, conn_id: u64, k: u64, i: u64) -> Result<()> {
    match &shared.scenario {
        Scenario::Replay(reqs) => {
            let r = &reqs[(i % reqs.len() as u64) as usize];
            conn.ok(r.method.clone(), &r.path, &r.headers, r.body.clone())
                .await?;
        }
        Scenario::OpsmlCreate { prefix, names } => {
            let name = format!("{prefix}-c{conn_id}-n{}", k % names);
            let version_body = json!({
                "name": name, "repository": "bench", "version": null, "version_type": "minor",
                "registry_type": "model", "table_name": null, "pre_tag": "rc", "build_tag": "build",
            });
            let path = format!("{}/opsml/cards/version", shared.prefix);
            let answer = conn
                .ok(
                    Method::POST,
                    &path,
                    &json_headers(),
                    Bytes::from(version_body.to_string()),
                )
                .await?;
            let answer: Value = serde_json::from_slice(&answer)?;
            let version = answer
                .get("version")
                .and_then(Value::as_str)
                .ok_or_else(|| anyhow!("cards/version answered {answer}"))?;
            let uid = format!("{:016x}{:04x}{:012x}", shared.seed, conn_id & 0xffff, k);
            let create_body = json!({"registry_type": "model", "table_name": null, "card": {
                "name": name, "repository": "bench", "contact": "bench@example.com", "uid": uid,
                "version": version, "tags": {"bench": "create"}, "datacard_uid": null,
                "sample_data_type": "numpy.ndarray", "model_type": "LinearRegression",
                "timestamp": now_micros(), "runcard_uid": null, "pipelinecard_uid": null,
                "auditcard_uid": null,
            }});
            let path = format!("{}/opsml/cards/create", shared.prefix);
            let answer = conn
                .ok(
                    Method::POST,
                    &path,
                    &json_headers(),
                    Bytes::from(create_body.to_string()),
                )
                .await?;
            let answer: Value = serde_json::from_slice(&answer)?;
            if answer.get("registered") != Some(&Value::Bool(true)) {
                bail!("cards/create answered {answer}");
            }
        }
        Scenario::MlflowCreate {
            prefix,
            names,
            run_id,
            artifact_uri,
        } => {
            let name = format!("{prefix}-c{conn_id}-n{}", k % names);
            let body = json!({
                "name": name, "source": format!("{artifact_uri}/{name}/{k}"), "run_id": run_id,
                "description": "bench", "tags": [{"key": "bench", "value": "create"}],
            });
            let path = format!("{}/api/2.0/mlflow/model-versions/create", shared.prefix);
            let answer = conn
                .ok(
                    Method::POST,
                    &path,
                    &json_headers(),
                    Bytes::from(body.to_string()),
                )
                .await?;
            let answer: Value = serde_json::from_slice(&answer)?;
            if answer.pointer("/model_version/version").is_none() {
                bail!("model-versions/create answered {answer}");
            }
        }
    }
    Ok(())
}

async fn run_connection(shared: Arc<Shared>, mut conn: Conn, conn_id: u64) -> Tally {
    let mut tally = Tally::default();
    let mut k = 0u64;
    loop {
        let i = shared.next.fetch_add(1, Ordering::Relaxed);
        if shared.total.is_some_and(|t| i >= t) {
            break;
        }
        let started = Instant::now();
        if let Some((_, end)) = shared.window {
            // A connection whose every request outlasts the window (a slow server under
            // load) still reports one measured answer instead of none.
            let answered = !tally.latencies_us.is_empty() || tally.failures > 0;
            if started >= end && answered {
                break;
            }
        }
        let result = one_op(&shared, &mut conn, conn_id, k, i).await;
        k += 1;
        let done = Instant::now();
        let measured = shared
            .window
            .is_none_or(|(warm_end, _)| started >= warm_end);
        match result {
            Ok(()) => {
                if measured {
                    tally
                        .latencies_us
                        .push(done.duration_since(started).as_micros() as u64);
                    tally.last_done = Some(done);
                }
            }
            Err(e) => {
                tally.failures += 1;
                {
                    let mut errors = shared.errors.lock().unwrap();
                    if errors.len() < 5 {
                        errors.push(format!("{e:#}"));
                    }
                }
                // Do not spin on a dead server.
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
    tally
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1] as f64 / 1000.0
}

pub fn main(argv: Vec<String>) -> Result<()> {
    let args = Args::parse(argv, &["once"])?;
    let (addr, prefix) = split_base(args.required("base")?)?;
    let connections: u64 = args.parsed("connections")?.unwrap_or(1);
    let threads: usize = args.parsed("threads")?.unwrap_or(1);
    let names: u64 = args.parsed("names-per-connection")?.unwrap_or(10);
    let scenario = match (args.get("requests-file"), args.get("scenario")) {
        (Some(file), None) => {
            let text = std::fs::read_to_string(file).with_context(|| format!("read {file}"))?;
            let mut reqs = Vec::new();
            for (n, line) in text
                .lines()
                .enumerate()
                .filter(|(_, l)| !l.trim().is_empty())
            {
                let parsed: Line =
                    serde_json::from_str(line).with_context(|| format!("{file}:{}", n + 1))?;
                reqs.push(Prepared::from_line(parsed, &prefix)?);
            }
            if reqs.is_empty() {
                bail!("{file} has no requests");
            }
            Scenario::Replay(reqs)
        }
        (None, Some("opsml-create")) => Scenario::OpsmlCreate {
            prefix: args.required("prefix")?.to_string(),
            names,
        },
        (None, Some("mlflow-create")) => Scenario::MlflowCreate {
            prefix: args.required("prefix")?.to_string(),
            names,
            run_id: args.required("run-id")?.to_string(),
            artifact_uri: args.required("artifact-uri")?.to_string(),
        },
        _ => bail!("give --requests-file F or --scenario opsml-create|mlflow-create"),
    };
    let total: Option<u64> = if args.switch("once") {
        match &scenario {
            Scenario::Replay(r) => Some(r.len() as u64),
            _ => bail!("--once needs --requests-file"),
        }
    } else {
        args.parsed("requests")?
    };
    let duration: Option<f64> = args.parsed("duration")?;
    let warmup: f64 = args.parsed("warmup")?.unwrap_or(0.0);
    if total.is_none() && duration.is_none() {
        bail!("give --duration S, --requests N or --once");
    }
    let host = HeaderValue::try_from(addr.as_str())?;
    let seed = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos() as u64;

    let rt = runtime(threads)?;
    let report = rt.block_on(async move {
        let start = Instant::now();
        let window = duration.map(|d| {
            let warm_end = start + Duration::from_secs_f64(warmup);
            (warm_end, warm_end + Duration::from_secs_f64(d))
        });
        let shared = Arc::new(Shared {
            scenario,
            prefix,
            next: AtomicU64::new(0),
            total,
            window,
            seed,
            errors: Mutex::new(Vec::new()),
        });
        let mut tasks = Vec::new();
        for c in 0..connections {
            let conn = Conn {
                addr: addr.clone(),
                host: host.clone(),
                sender: None,
            };
            tasks.push(tokio::spawn(run_connection(shared.clone(), conn, c)));
        }
        let mut all = Vec::new();
        let mut failures = 0;
        let mut last = None::<Instant>;
        for t in tasks {
            let tally = t.await?;
            all.extend(tally.latencies_us);
            failures += tally.failures;
            last = match (last, tally.last_done) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            };
        }
        let from = window.map(|(w, _)| w).unwrap_or(start);
        let seconds = last
            .map(|l| l.duration_since(from).as_secs_f64())
            .unwrap_or(0.0);
        all.sort_unstable();
        let ops = all.len() as u64;
        let mean = if ops > 0 {
            all.iter().sum::<u64>() as f64 / ops as f64 / 1000.0
        } else {
            0.0
        };
        let errors = shared.errors.lock().unwrap().clone();
        anyhow::Ok(json!({
            "ops": ops,
            "failures": failures,
            "connections": connections,
            "seconds": seconds,
            "rate": if seconds > 0.0 { ops as f64 / seconds } else { 0.0 },
            "mean_ms": mean,
            "p50_ms": percentile(&all, 0.50),
            "p90_ms": percentile(&all, 0.90),
            "p99_ms": percentile(&all, 0.99),
            "max_ms": all.last().map(|m| *m as f64 / 1000.0).unwrap_or(0.0),
            "errors": errors,
        }))
    })?;
    println!("{report}");
    if report["failures"].as_u64() != Some(0) || report["ops"].as_u64() == Some(0) {
        std::process::exit(3);
    }
    Ok(())
}
