//! `fermyon:spin/sqlite@2.0.0` over local SQLite files (`type = "spin"`).
//!
//! Each `open` gets its own connection, as in Spin, so a component's `BEGIN … COMMIT` covers
//! only its own statements. Connections are pooled per file; WAL keeps readers off writers'
//! backs and makes autocommit writes cheap.

use crate::bindings::sqlite::{self, QueryResult, RowResult, Value};
use crate::server::InstanceState;
use anyhow::{Context, Result};
use rusqlite::types::ValueRef;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wasmtime::component::Resource;

/// Idle connections kept per database; more are opened on demand and closed when returned.
const MAX_IDLE_CONNECTIONS: usize = 16;
/// How long a statement waits for another connection's lock before failing with "busy".
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// Prepared statements kept per connection (the components use a few dozen distinct ones).
const STATEMENT_CACHE_CAPACITY: usize = 128;

pub struct SqliteDatabase {
    path: PathBuf,
    /// The page size of a file this creates (an existing file keeps its own).
    page_size: Option<u32>,
    idle: Mutex<Vec<rusqlite::Connection>>,
}

impl SqliteDatabase {
    pub fn open(path: &Path) -> Result<Arc<Self>> {
        Self::open_with_page_size(path, None)
    }

    /// Opens `path`; a new file gets pages of `page_size` bytes (SQLite's default is 4 KiB).
    pub fn open_with_page_size(path: &Path, page_size: Option<u32>) -> Result<Arc<Self>> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create directory {}", dir.display()))?;
        }
        let db = Arc::new(Self {
            path: path.to_path_buf(),
            page_size,
            idle: Mutex::new(Vec::new()),
        });
        let first = db.connect()?;
        db.idle.lock().unwrap().push(first);
        Ok(db)
    }

    fn connect(&self) -> Result<rusqlite::Connection> {
        let conn = rusqlite::Connection::open(&self.path)
            .with_context(|| format!("cannot open SQLite database {}", self.path.display()))?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE_CAPACITY);
        // Only an empty file takes a page size, and only before WAL mode writes its header.
        if let Some(page_size) = self.page_size {
            conn.pragma_update(None, "page_size", page_size)?;
        }
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        Ok(conn)
    }

    pub fn take(self: &Arc<Self>) -> Result<PooledConnection> {
        let idle = self.idle.lock().unwrap().pop();
        let conn = match idle {
            Some(conn) => conn,
            // Opening a file may wait on the disk: off the async worker.
            None => tokio::task::block_in_place(|| self.connect())?,
        };
        Ok(PooledConnection {
            pool: self.clone(),
            conn: Some(conn),
        })
    }
}

/// A connection that goes back to its pool when dropped, rolled back if a transaction was
/// left open (a component that trapped mid-transaction must not leak its writes or locks).
pub struct PooledConnection {
    pool: Arc<SqliteDatabase>,
    conn: Option<rusqlite::Connection>,
}

impl std::ops::Deref for PooledConnection {
    type Target = rusqlite::Connection;
    fn deref(&self) -> &rusqlite::Connection {
        self.conn.as_ref().expect("connection present until drop")
    }
}

impl Drop for PooledConnection {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else { return };
        if !conn.is_autocommit() && conn.execute_batch("ROLLBACK").is_err() {
            return;
        }
        let mut idle = self.pool.idle.lock().unwrap();
        if idle.len() < MAX_IDLE_CONNECTIONS {
            idle.push(conn);
        }
    }
}

/// The guest's `connection` resource.
pub struct Connection(PooledConnection);

fn to_sql(value: &Value) -> rusqlite::types::Value {
    use rusqlite::types::Value as V;
    match value {
        Value::Integer(i) => V::Integer(*i),
        Value::Real(f) => V::Real(*f),
        Value::Text(s) => V::Text(s.clone()),
        Value::Blob(b) => V::Blob(b.clone()),
        Value::Null => V::Null,
    }
}

fn from_sql(value: ValueRef<'_>) -> Value {
    match value {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Integer(i),
        ValueRef::Real(f) => Value::Real(f),
        ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::Blob(b.to_vec()),
    }
}

/// Runs one statement; rows are returned for statements that produce them.
pub fn execute(
    conn: &rusqlite::Connection,
    statement: &str,
    parameters: &[Value],
) -> rusqlite::Result<QueryResult> {
    let mut stmt = conn.prepare_cached(statement)?;
    let columns: Vec<String> = stmt.column_names().into_iter().map(String::from).collect();
    for (i, p) in parameters.iter().enumerate() {
        stmt.raw_bind_parameter(i + 1, to_sql(p))?;
    }
    let mut rows = Vec::new();
    let mut cursor = stmt.raw_query();
    while let Some(row) = cursor.next()? {
        let values = (0..columns.len())
            .map(|i| row.get_ref(i).map(from_sql))
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.push(RowResult { values });
    }
    Ok(QueryResult { columns, rows })
}

/// Runs `run` right here when SQLite can answer at once (the usual case: microseconds), and
/// moves off the async worker (`block_in_place`, which hands the worker's other tasks to
/// another thread: costly under load) only for a statement that must wait for another
/// connection's lock. A statement refused as busy changed nothing, so running it again is safe.
fn without_waiting<T>(
    conn: &rusqlite::Connection,
    run: impl Fn() -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    conn.busy_timeout(Duration::ZERO)?;
    let first = run();
    let busy = matches!(
        &first,
        Err(e) if matches!(
            e.sqlite_error_code(),
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
        )
    );
    if !busy {
        return first;
    }
    tokio::task::block_in_place(|| {
        conn.busy_timeout(BUSY_TIMEOUT)?;
        run()
    })
}

impl sqlite::Host for InstanceState {}

impl sqlite::HostConnection for InstanceState {
    async fn open(
        &mut self,
        database: String,
    ) -> wasmtime::Result<Result<Resource<Connection>, sqlite::Error>> {
        if !self.component.sqlite_databases.contains(&database) {
            return Ok(Err(sqlite::Error::AccessDenied));
        }
        let Some(db) = self.app.sqlite_databases.get(&database) else {
            return Ok(Err(sqlite::Error::NoSuchDatabase));
        };
        let conn = match db.take() {
            Ok(c) => c,
            Err(e) => return Ok(Err(sqlite::Error::Io(format!("{e:#}")))),
        };
        Ok(Ok(self.table.push(Connection(conn))?))
    }

    async fn execute(
        &mut self,
        connection: Resource<Connection>,
        statement: String,
        parameters: Vec<Value>,
    ) -> wasmtime::Result<Result<QueryResult, sqlite::Error>> {
        let conn = &self.table.get(&connection)?.0;
        let result = without_waiting(conn, || execute(conn, &statement, &parameters));
        Ok(result.map_err(|e| match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DiskFull) => sqlite::Error::DatabaseFull,
            _ => sqlite::Error::Io(e.to_string()),
        }))
    }

    async fn drop(&mut self, connection: Resource<Connection>) -> wasmtime::Result<()> {
        self.table.delete(connection)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_round_trip_values_and_pool_rolls_back() {
        let dir = tempfile::tempdir().unwrap();
        let db = SqliteDatabase::open(&dir.path().join("x.db")).unwrap();
        {
            let c = db.take().unwrap();
            execute(
                &c,
                "CREATE TABLE t (i INTEGER, r REAL, s TEXT, b BLOB, n)",
                &[],
            )
            .unwrap();
            execute(
                &c,
                "INSERT INTO t VALUES (?, ?, ?, ?, ?)",
                &[
                    Value::Integer(-7),
                    Value::Real(1.5),
                    Value::Text("é".into()),
                    Value::Blob(vec![0, 255]),
                    Value::Null,
                ],
            )
            .unwrap();
            execute(&c, "BEGIN", &[]).unwrap();
            execute(&c, "INSERT INTO t (i) VALUES (99)", &[]).unwrap();
            // Dropped mid-transaction: the insert of 99 must vanish.
        }
        let c = db.take().unwrap();
        let r = execute(&c, "SELECT i, r, s, b, n FROM t ORDER BY i", &[]).unwrap();
        assert_eq!(r.columns, ["i", "r", "s", "b", "n"]);
        assert_eq!(r.rows.len(), 1);
        let v = &r.rows[0].values;
        assert!(matches!(v[0], Value::Integer(-7)));
        assert!(matches!(v[1], Value::Real(f) if f == 1.5));
        assert!(matches!(&v[2], Value::Text(s) if s == "é"));
        assert!(matches!(&v[3], Value::Blob(b) if b == &[0, 255]));
        assert!(matches!(v[4], Value::Null));
    }
}
