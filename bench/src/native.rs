//! The native baseline ("the limit"): what the same card read costs without WebAssembly, and
//! what a plain file copy over loopback HTTP costs.
//!
//! * `POST /opsml/cards/list` parses the body with the get-card component's own
//!   `registry_store::list_request::ListRequest`, then runs
//!   the component's own statements — `registry_store::cards::list_stored` through
//!   `registry_store::schema::Migrating`, as `open_database` wraps it — and answers the same
//!   JSON. With `--db`, over rusqlite on the SQLite file our host wrote, through a pool of
//!   connections opened as opsml-host opens them (WAL, busy timeout); with `--postgres`, over
//!   the `postgres` client on the database our host wrote, through a pool of connections. Either
//!   way statements come from each connection's cache, as opsml-host does.
//! * `GET /files/<name>` streams `<files-dir>/<name>` (1 MiB reads on a thread);
//!   `PUT /files/<name>` writes the request body there.

use crate::args::{runtime, Args};
use crate::body::{ChannelBody, CHUNK};
use anyhow::{Context, Result};
use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Either, Full};
use hyper::body::Incoming;
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use postgres::types::{IsNull, ToSql, Type};
use registry_store::cards;
use registry_store::list_request::ListRequest;
use registry_store::{Dialect, Row, Sql, SqlValue, StoreError};
use serde_json::json;
use std::cell::RefCell;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

type Body = Either<Full<Bytes>, ChannelBody>;

/// Where the cards are: our host's SQLite file, or its PostgreSQL database.
enum Database {
    Sqlite(PathBuf),
    Postgres(String),
}

/// One pooled connection, with its prepared statements.
enum Connection {
    Sqlite(rusqlite::Connection),
    Postgres(Box<PgConnection>),
}

struct PgConnection {
    client: postgres::Client,
    statements: HashMap<String, postgres::Statement>,
}

struct State {
    db: Option<Database>,
    idle: Mutex<Vec<Connection>>,
    files_dir: Option<PathBuf>,
}

impl State {
    fn take(&self) -> Result<Connection, String> {
        if let Some(conn) = self.idle.lock().unwrap().pop() {
            return Ok(conn);
        }
        match self.db.as_ref().ok_or("no --db or --postgres given")? {
            Database::Sqlite(path) => {
                let open = || -> rusqlite::Result<rusqlite::Connection> {
                    let conn = rusqlite::Connection::open(path)?;
                    conn.busy_timeout(Duration::from_secs(10))?;
                    conn.set_prepared_statement_cache_capacity(128);
                    conn.pragma_update(None, "journal_mode", "WAL")?;
                    conn.pragma_update(None, "synchronous", "NORMAL")?;
                    Ok(conn)
                };
                let conn = open().map_err(|e| format!("cannot open {}: {e}", path.display()))?;
                Ok(Connection::Sqlite(conn))
            }
            Database::Postgres(url) => {
                let client = postgres::Client::connect(url, postgres::NoTls)
                    .map_err(|e| format!("cannot connect to PostgreSQL: {e}"))?;
                Ok(Connection::Postgres(Box::new(PgConnection {
                    client,
                    statements: HashMap::new(),
                })))
            }
        }
    }

    fn give_back(&self, conn: Connection) {
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

/// `registry_store::Sql` over one PostgreSQL connection (`RefCell`: the trait takes `&self`,
/// the client needs `&mut`).
struct NativePg<'a>(RefCell<&'a mut PgConnection>);

/// A statement parameter, typed as the server infers the placeholder.
#[derive(Debug)]
struct PgParam<'a>(&'a SqlValue);

impl ToSql for PgParam<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self.0 {
            SqlValue::Null => Ok(IsNull::Yes),
            SqlValue::Integer(v) if *ty == Type::INT4 => i32::try_from(*v)?.to_sql(ty, out),
            SqlValue::Integer(v) => v.to_sql(ty, out),
            SqlValue::Real(v) => v.to_sql(ty, out),
            SqlValue::Text(v) => v.to_sql(ty, out),
            SqlValue::Blob(v) => v.to_sql(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    postgres::types::to_sql_checked!();
}

impl Sql for NativePg<'_> {
    fn execute(&self, statement: &str, params: &[SqlValue]) -> registry_store::Result<Vec<Row>> {
        let fail = |e: postgres::Error| match e.code() {
            Some(&postgres::error::SqlState::UNIQUE_VIOLATION) => {
                StoreError::Conflict(e.to_string())
            }
            _ => StoreError::Backend(e.to_string()),
        };
        let mut conn = self.0.borrow_mut();
        let conn = &mut **conn;
        let prepared = match conn.statements.get(statement) {
            Some(prepared) => prepared.clone(),
            None => {
                let numbered = registry_store::sql::numbered_placeholders(statement);
                let prepared = conn.client.prepare(&numbered).map_err(fail)?;
                conn.statements
                    .insert(statement.to_string(), prepared.clone());
                prepared
            }
        };
        let params: Vec<PgParam> = params.iter().map(PgParam).collect();
        let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p as _).collect();
        let rows = conn.client.query(&prepared, &refs).map_err(fail)?;
        rows.iter()
            .map(|row| {
                let values = (0..row.len())
                    .map(|i| pg_value(row, i))
                    .collect::<Result<_, _>>()?;
                Ok(Row(values))
            })
            .collect::<Result<_, postgres::Error>>()
            .map_err(fail)
    }

    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }
}

fn pg_value(row: &postgres::Row, i: usize) -> Result<SqlValue, postgres::Error> {
    let ty = row.columns()[i].type_().clone();
    Ok(match ty {
        Type::INT8 => row.try_get::<_, Option<i64>>(i)?.map(SqlValue::Integer),
        Type::INT4 => row
            .try_get::<_, Option<i32>>(i)?
            .map(|v| SqlValue::Integer(v.into())),
        Type::FLOAT8 => row.try_get::<_, Option<f64>>(i)?.map(SqlValue::Real),
        Type::BYTEA => row.try_get::<_, Option<Vec<u8>>>(i)?.map(SqlValue::Blob),
        _ => row.try_get::<_, Option<String>>(i)?.map(SqlValue::Text),
    }
    .unwrap_or(SqlValue::Null))
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
    let mut conn = state
        .take()
        .map_err(|e| Refused(StatusCode::SERVICE_UNAVAILABLE, e))?;
    let result = match &mut conn {
        Connection::Sqlite(c) => cards::list_stored(
            &registry_store::schema::Migrating::new(Native(c)),
            registry,
            &query,
        ),
        Connection::Postgres(c) => cards::list_stored(
            &registry_store::schema::Migrating::new(NativePg(RefCell::new(c))),
            registry,
            &query,
        ),
    };
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
            // The PostgreSQL client blocks (it runs its own event loop): off the async threads.
            Ok(body) => match tokio::task::spawn_blocking(move || list(&state, &body.to_bytes()))
                .await
                .expect("list does not panic")
            {
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
    let db = match (args.get("db"), args.get("postgres")) {
        (Some(_), Some(_)) => anyhow::bail!("give --db or --postgres, not both"),
        (Some(path), None) => {
            let path = PathBuf::from(path);
            if !path.exists() {
                anyhow::bail!("--db {}: no such file", path.display());
            }
            Some(Database::Sqlite(path))
        }
        (None, Some(url)) => Some(Database::Postgres(url.to_string())),
        (None, None) => None,
    };
    let state = Arc::new(State {
        db,
        idle: Mutex::new(Vec::new()),
        files_dir: args.get("files-dir").map(PathBuf::from),
    });
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
