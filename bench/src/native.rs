//! The native baseline ("the limit"): what the same card read costs without WebAssembly, and
//! what a plain file copy over loopback HTTP costs.
//!
//! * `POST /opsml/cards/list` parses the body with the get-card component's own
//!   `registry_store::list_request::ListRequest`, then runs
//!   the component's own statements — `registry_store::cards::list_stored` through
//!   `registry_store::schema::Migrating`, as `open_database` wraps it — over rusqlite on the
//!   SQLite file our host wrote, through a pool of connections opened as opsml-host opens them
//!   (WAL, busy timeout), statements taken from the connection's cache as opsml-host does, and
//!   answers the same JSON.
//! * `GET /files/<name>` streams `<files-dir>/<name>` (1 MiB reads on a thread);
//!   `PUT /files/<name>` writes the request body there.

use crate::args::{runtime, Args};
use crate::body::{ChannelBody, CHUNK};
use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Either, Full};
use hyper::body::Incoming;
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use registry_store::cards;
use registry_store::list_request::ListRequest;
use registry_store::{Row, Sql, SqlValue, StoreError};
use serde_json::json;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

type Body = Either<Full<Bytes>, ChannelBody>;

struct State {
    db_path: Option<PathBuf>,
    idle: Mutex<Vec<rusqlite::Connection>>,
    files_dir: Option<PathBuf>,
}

impl State {
    fn take(&self) -> Result<rusqlite::Connection, String> {
        if let Some(conn) = self.idle.lock().unwrap().pop() {
            return Ok(conn);
        }
        let path = self.db_path.as_ref().ok_or("no --db given")?;
        let open = || -> rusqlite::Result<rusqlite::Connection> {
            let conn = rusqlite::Connection::open(path)?;
            conn.busy_timeout(Duration::from_secs(10))?;
            conn.set_prepared_statement_cache_capacity(128);
            conn.pragma_update(None, "journal_mode", "WAL")?;
            conn.pragma_update(None, "synchronous", "NORMAL")?;
            Ok(conn)
        };
        open().map_err(|e| format!("cannot open {}: {e}", path.display()))
    }

    fn give_back(&self, conn: rusqlite::Connection) {
        let mut idle = self.idle.lock().unwrap();
        if idle.len() < 16 {
            idle.push(conn);
        }
    }
}

/// `registry_store::Sql` over one rusqlite connection.
struct Native<'a>(&'a rusqlite::Connection);

impl Sql for Native<'_> {
    fn execute(&self, statement: &str, params: &[SqlValue]) -> registry_store::Result<Vec<Row>> {
        use rusqlite::types::{Value as V, ValueRef};
        let fail = |e: rusqlite::Error| match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::ConstraintViolation) => StoreError::Conflict(e.to_string()),
            _ => StoreError::Backend(e.to_string()),
        };
        let mut stmt = self.0.prepare_cached(statement).map_err(fail)?;
        for (i, p) in params.iter().enumerate() {
            let value = match p {
                SqlValue::Integer(v) => V::Integer(*v),
                SqlValue::Real(v) => V::Real(*v),
                SqlValue::Text(v) => V::Text(v.clone()),
                SqlValue::Blob(v) => V::Blob(v.clone()),
                SqlValue::Null => V::Null,
            };
            stmt.raw_bind_parameter(i + 1, value).map_err(fail)?;
        }
        let columns = stmt.column_count();
        let mut rows = stmt.raw_query();
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(fail)? {
            let mut values = Vec::with_capacity(columns);
            for i in 0..columns {
                values.push(match row.get_ref(i).map_err(fail)? {
                    ValueRef::Null => SqlValue::Null,
                    ValueRef::Integer(v) => SqlValue::Integer(v),
                    ValueRef::Real(v) => SqlValue::Real(v),
                    ValueRef::Text(t) => SqlValue::Text(String::from_utf8_lossy(t).into_owned()),
                    ValueRef::Blob(b) => SqlValue::Blob(b.to_vec()),
                });
            }
            out.push(Row(values));
        }
        Ok(out)
    }
}

struct Refused(StatusCode, String);

fn unprocessable(m: impl std::fmt::Display) -> Refused {
    Refused(StatusCode::UNPROCESSABLE_ENTITY, m.to_string())
}

fn list(state: &State, body: &[u8]) -> Result<cards::CardList, Refused> {
    let body: ListRequest = serde_json::from_slice(body).map_err(unprocessable)?;
    let (registry, query) = body.into_query().map_err(|e| {
        let status = StatusCode::from_u16(e.status_code()).unwrap_or(StatusCode::BAD_REQUEST);
        Refused(status, e.detail().to_string())
    })?;
    let conn = state
        .take()
        .map_err(|e| Refused(StatusCode::SERVICE_UNAVAILABLE, e))?;
    let result = cards::list_stored(
        &registry_store::schema::Migrating::new(Native(&conn)),
        registry,
        &query,
    );
    state.give_back(conn);
    let cards = result.map_err(|e| Refused(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
    Ok(cards::CardList { cards })
}

fn json_response(status: StatusCode, value: &impl serde::Serialize) -> Response<Body> {
    let bytes = Bytes::from(serde_json::to_vec(value).expect("answers serialize to JSON"));
    Response::builder()
        .status(status)
        .header(CONTENT_TYPE, "application/json")
        .header(CONTENT_LENGTH, bytes.len())
        .body(Either::Left(Full::new(bytes)))
        .expect("valid response")
}

fn detail(status: StatusCode, message: impl std::fmt::Display) -> Response<Body> {
    json_response(status, &json!({ "detail": message.to_string() }))
}

/// `<files-dir>/<name>` for a plain file name (no separators, no dot names).
fn file_path(state: &State, name: &str) -> Option<PathBuf> {
    let dir = state.files_dir.as_ref()?;
    let ok = !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\\']);
    ok.then(|| dir.join(name))
}

fn serve_file(path: &Path) -> Response<Body> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(_) => return detail(StatusCode::NOT_FOUND, "Not Found"),
    };
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let (tx, rx) = mpsc::channel(4);
    std::thread::spawn(move || {
        let mut file = file;
        loop {
            let mut buf = vec![0u8; CHUNK];
            match file.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => {
                    buf.truncate(n);
                    if tx.blocking_send(Ok(Bytes::from(buf))).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
            }
        }
    });
    Response::builder()
        .header(CONTENT_TYPE, "application/octet-stream")
        .header(CONTENT_LENGTH, size)
        .body(Either::Right(ChannelBody::new(rx, Some(size))))
        .expect("valid response")
}

async fn store_file(path: PathBuf, body: Incoming) -> Response<Body> {
    let (tx, mut rx) = mpsc::channel::<Bytes>(8);
    let writer = std::thread::spawn(move || -> std::io::Result<u64> {
        let tmp = path.with_extension("partial");
        let mut file = std::fs::File::create(&tmp)?;
        let mut written = 0u64;
        while let Some(chunk) = rx.blocking_recv() {
            file.write_all(&chunk)?;
            written += chunk.len() as u64;
        }
        file.flush()?;
        std::fs::rename(&tmp, &path)?;
        Ok(written)
    });
    let mut body = body;
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => {
                if let Ok(data) = frame.into_data() {
                    if tx.send(data).await.is_err() {
                        break;
                    }
                }
            }
            Err(e) => return detail(StatusCode::BAD_REQUEST, e),
        }
    }
    drop(tx);
    match tokio::task::spawn_blocking(move || writer.join()).await {
        Ok(Ok(Ok(bytes))) => json_response(StatusCode::CREATED, &json!({ "bytes": bytes })),
        Ok(Ok(Err(e))) => detail(StatusCode::SERVICE_UNAVAILABLE, e),
        _ => detail(StatusCode::INTERNAL_SERVER_ERROR, "writer failed"),
    }
}

async fn handle(
    state: Arc<State>,
    req: Request<Incoming>,
) -> Result<Response<Body>, std::convert::Infallible> {
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    let response = match (method, path.as_str()) {
        (Method::GET, "/opsml/healthcheck") => {
            json_response(StatusCode::OK, &json!({"is_alive": true}))
        }
        (Method::POST, "/opsml/cards/list") => match req.into_body().collect().await {
            Ok(body) => match list(&state, &body.to_bytes()) {
                Ok(v) => json_response(StatusCode::OK, &v),
                Err(Refused(status, m)) => detail(status, m),
            },
            Err(e) => detail(StatusCode::BAD_REQUEST, e),
        },
        (m, p) if p.starts_with("/files/") => match file_path(&state, &p["/files/".len()..]) {
            None => detail(StatusCode::NOT_FOUND, "Not Found"),
            Some(file) if m == Method::GET => serve_file(&file),
            Some(file) if m == Method::PUT => store_file(file, req.into_body()).await,
            Some(_) => detail(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed"),
        },
        _ => detail(StatusCode::NOT_FOUND, "Not Found"),
    };
    Ok(response)
}

pub fn main(argv: Vec<String>) -> Result<()> {
    let args = Args::parse(argv, &[])?;
    let listen = args.get("listen").unwrap_or("127.0.0.1:3100").to_string();
    let threads: usize = args.parsed("threads")?.unwrap_or(2);
    let state = Arc::new(State {
        db_path: args.get("db").map(PathBuf::from),
        idle: Mutex::new(Vec::new()),
        files_dir: args.get("files-dir").map(PathBuf::from),
    });
    if let Some(path) = &state.db_path {
        if !path.exists() {
            anyhow::bail!("--db {}: no such file", path.display());
        }
    }
    runtime(threads)?.block_on(async move {
        let listener = TcpListener::bind(&listen)
            .await
            .with_context(|| format!("bind {listen}"))?;
        eprintln!("opsml-bench serve: listening on http://{listen}");
        loop {
            let (stream, _) = listener.accept().await?;
            let _ = stream.set_nodelay(true);
            let state = state.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| handle(state.clone(), req));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    })
}
