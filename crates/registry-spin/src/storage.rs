//! `registry_store`'s traits over Spin's `sqlite`, `postgres` and `key-value` interfaces (MySQL
//! in [`crate::mysql`]), and the choice between them: PostgreSQL or MySQL when `database_url`
//! is a `postgres://` or `mysql://` URL (else the `default` SQLite database), an S3 bucket when
//! `storage_uri` is set (else the `default` key-value store).

use crate::mysql::SpinMysql;
use crate::s3::S3Store;
use registry_app::{AppError, Deployment};
use registry_store::blobs::{BlobStore, ChunkStore};
use registry_store::schema::Migrating;
use registry_store::sql::{numbered_placeholders, with_stand_in_row, without_stand_in};
use registry_store::{Dialect, KeyValue, Row, Sql, SqlValue, StoreError};
use spin_sdk::{key_value, pg4, sqlite, variables};

/// The deployment as a Spin component sees it: Spin variables, the database and (when
/// `BLOBS`) the blob store they name, the host's clock and randomness. A component without
/// blob operations uses `SpinDeployment<false>`, so that it does not import the key-value and
/// outbound-HTTP interfaces its world leaves out (`tests/capability.rs`).
pub struct SpinDeployment<const BLOBS: bool>;

impl<const BLOBS: bool> Deployment for SpinDeployment<BLOBS> {
    fn variable(&self, name: &str) -> String {
        variable(name)
    }
    fn open_database(&self) -> Result<Box<dyn Sql>, AppError> {
        open_database()
    }
    fn open_blobs(&self) -> Result<Box<dyn BlobStore>, AppError> {
        if BLOBS {
            open_blobs()
        } else {
            Err(AppError::new(
                500,
                "this component has no blob store (its spin.toml entry and world leave it out)",
            ))
        }
    }
    fn now_micros(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros() as i64)
            .unwrap_or(0)
    }
    fn fill_random(&self, bytes: &mut [u8]) {
        getrandom::fill(bytes).expect("the host provides randomness");
    }
}

/// A variable the component declares; absent or undefined counts as empty.
pub(crate) fn variable(name: &str) -> String {
    variables::get(name).unwrap_or_default()
}

/// The deployment's metadata database, migrated to the current schema when a statement
/// needs it (see [`Migrating`]).
pub fn open_database() -> Result<Box<dyn Sql>, AppError> {
    let url = variable("database_url");
    let url = url.trim();
    if url.is_empty() {
        return Ok(Box::new(Migrating::new(SpinSqlite::open_default()?)));
    }
    Ok(match url.split_once("://").map(|(scheme, _)| scheme) {
        Some("postgres" | "postgresql") => Box::new(Migrating::new(SpinPostgres::open(url)?)),
        Some("mysql") => Box::new(Migrating::new(SpinMysql::open(url)?)),
        _ => {
            return Err(AppError::new(
                500,
                format!(
                    "server misconfigured: OPSML_DATABASE_URL: expected postgres://… or \
                     mysql://…, got {}",
                    redact_password(url)
                ),
            ))
        }
    })
}

/// The deployment's blob store.
pub fn open_blobs() -> Result<Box<dyn BlobStore>, AppError> {
    match S3Store::from_variables()? {
        Some(s3) => Ok(Box::new(s3)),
        None => Ok(Box::new(ChunkStore(SpinKeyValue::open_default()?))),
    }
}

/// `postgres://user:***@host:port/db`: an address fit for error messages.
pub fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "<not a URL>".to_string();
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((user_info, host)) => {
            let user = user_info.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}{path}")
        }
        None => url.to_string(),
    }
}

/// A PostgreSQL database through Spin's `postgres@4.0.0` interface.
pub struct SpinPostgres {
    conn: pg4::Connection,
    address: String,
}

impl SpinPostgres {
    pub fn open(url: &str) -> Result<Self, AppError> {
        let address = redact_password(url);
        let conn = pg4::Connection::open(url).map_err(|e| {
            AppError::unavailable(format!(
                "the metadata database {address} (OPSML_DATABASE_URL) cannot be used: {}",
                pg_error_text(&e)
            ))
        })?;
        Ok(Self { conn, address })
    }
}

/// What to say after Spin's (and opsml-host's) refusal of a database address outside the
/// component's `allowed_outbound_hosts`.
pub(crate) fn outside_allowed_hosts(scheme: &str) -> String {
    format!(
        "the components may connect only to OPSML_DATABASE_HOST (their allowed_outbound_hosts \
         entry {scheme}://{{{{ database_host }}}})"
    )
}

/// The first paragraph of a runtime's error text. Spin formats an error with its chain of
/// causes (and, with `RUST_BACKTRACE` set, a stack backtrace) after a blank line; an answer's
/// `detail` keeps only what the error itself says.
pub(crate) fn first_paragraph(text: &str) -> &str {
    text.split("\n\n").next().unwrap_or(text).trim()
}

fn pg_error_text(e: &pg4::PgError) -> String {
    match e {
        pg4::PgError::ConnectionFailed(m) if m.ends_with("is not permitted") => {
            format!(
                "connection failed: {m}: {}",
                outside_allowed_hosts("postgres")
            )
        }
        pg4::PgError::ConnectionFailed(m) => format!("connection failed: {}", first_paragraph(m)),
        pg4::PgError::BadParameter(m) => format!("bad parameter: {}", first_paragraph(m)),
        pg4::PgError::QueryFailed(pg4::QueryError::DbError(db)) => db.as_text.clone(),
        pg4::PgError::QueryFailed(pg4::QueryError::Text(m)) => first_paragraph(m).to_string(),
        pg4::PgError::ValueConversionFailed(m) => {
            format!("value conversion failed: {}", first_paragraph(m))
        }
        pg4::PgError::Other(m) => first_paragraph(m).to_string(),
    }
}

fn to_pg(value: &SqlValue) -> pg4::ParameterValue {
    match value {
        SqlValue::Integer(i) => pg4::ParameterValue::Int64(*i),
        SqlValue::Real(f) => pg4::ParameterValue::Floating64(*f),
        SqlValue::Text(s) => pg4::ParameterValue::Str(s.clone()),
        SqlValue::Blob(b) => pg4::ParameterValue::Binary(b.clone()),
        SqlValue::Null => pg4::ParameterValue::DbNull,
    }
}

fn from_pg(value: &pg4::DbValue) -> Result<SqlValue, StoreError> {
    use pg4::DbValue as V;
    Ok(match value {
        V::Boolean(b) => SqlValue::Integer(i64::from(*b)),
        V::Int8(i) => SqlValue::Integer(i64::from(*i)),
        V::Int16(i) => SqlValue::Integer(i64::from(*i)),
        V::Int32(i) => SqlValue::Integer(i64::from(*i)),
        V::Int64(i) => SqlValue::Integer(*i),
        V::Floating32(f) => SqlValue::Real(f64::from(*f)),
        V::Floating64(f) => SqlValue::Real(*f),
        V::Str(s) => SqlValue::Text(s.clone()),
        V::Binary(b) => SqlValue::Blob(b.clone()),
        V::DbNull => SqlValue::Null,
        other => {
            return Err(StoreError::Corrupt(format!(
                "unexpected PostgreSQL value {other:?}"
            )))
        }
    })
}

/// Whether a statement answers with rows (`query`) or a count (`execute`).
pub(crate) fn returns_rows(statement: &str) -> bool {
    let first = statement
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_ascii_uppercase();
    matches!(first.as_str(), "SELECT" | "WITH" | "VALUES")
        || statement.to_ascii_uppercase().contains(" RETURNING ")
}

impl Sql for SpinPostgres {
    fn execute(&self, statement: &str, params: &[SqlValue]) -> registry_store::Result<Vec<Row>> {
        let statement = numbered_placeholders(statement);
        let params: Vec<_> = params.iter().map(to_pg).collect();
        let failed = |e: pg4::PgError| match &e {
            // 23505: unique_violation.
            pg4::PgError::QueryFailed(pg4::QueryError::DbError(db)) if db.code == "23505" => {
                StoreError::Conflict(db.message.clone())
            }
            pg4::PgError::ConnectionFailed(_) => StoreError::Backend(format!(
                "the metadata database {} (OPSML_DATABASE_URL): {}",
                self.address,
                pg_error_text(&e)
            )),
            _ => StoreError::Backend(format!("PostgreSQL: {}", pg_error_text(&e))),
        };
        if !returns_rows(&statement) {
            self.conn.execute(&statement, &params).map_err(failed)?;
            return Ok(Vec::new());
        }
        // Never a statement that can match no row: Spin 4.0.x would hang on it.
        let result = self
            .conn
            .query(&with_stand_in_row(&statement), &params)
            .map_err(failed)?;
        let rows = result
            .rows
            .iter()
            .map(|r| r.iter().map(from_pg).collect::<Result<_, _>>().map(Row))
            .collect::<Result<Vec<_>, _>>()?;
        without_stand_in(rows)
    }

    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }
}

/// The `default` SQLite database.
pub struct SpinSqlite(sqlite::Connection);

impl SpinSqlite {
    pub fn open_default() -> Result<Self, AppError> {
        let conn = sqlite::Connection::open_default().map_err(|e| {
            AppError::unavailable(format!(
                "metadata database unavailable: {}",
                first_paragraph(&e.to_string())
            ))
        })?;
        Ok(SpinSqlite(conn))
    }
}

fn to_spin(value: &SqlValue) -> sqlite::Value {
    match value {
        SqlValue::Integer(i) => sqlite::Value::Integer(*i),
        SqlValue::Real(f) => sqlite::Value::Real(*f),
        SqlValue::Text(s) => sqlite::Value::Text(s.clone()),
        SqlValue::Blob(b) => sqlite::Value::Blob(b.clone()),
        SqlValue::Null => sqlite::Value::Null,
    }
}

fn from_spin(value: &sqlite::Value) -> SqlValue {
    match value {
        sqlite::Value::Integer(i) => SqlValue::Integer(*i),
        sqlite::Value::Real(f) => SqlValue::Real(*f),
        sqlite::Value::Text(s) => SqlValue::Text(s.clone()),
        sqlite::Value::Blob(b) => SqlValue::Blob(b.clone()),
        sqlite::Value::Null => SqlValue::Null,
    }
}

impl Sql for SpinSqlite {
    fn execute(&self, statement: &str, params: &[SqlValue]) -> registry_store::Result<Vec<Row>> {
        let params: Vec<_> = params.iter().map(to_spin).collect();
        match self.0.execute(statement, &params) {
            Ok(result) => Ok(result
                .rows
                .iter()
                .map(|r| Row(r.values.iter().map(from_spin).collect()))
                .collect()),
            // SQLite reports constraint failures only as text through this interface.
            Err(sqlite::Error::Io(m)) if m.contains("UNIQUE constraint failed") => {
                Err(StoreError::Conflict(m))
            }
            Err(e) => Err(StoreError::Backend(
                first_paragraph(&e.to_string()).to_string(),
            )),
        }
    }
}

/// The `default` key-value store.
pub struct SpinKeyValue(key_value::Store);

impl SpinKeyValue {
    pub fn open_default() -> Result<Self, AppError> {
        key_value::Store::open_default()
            .map(SpinKeyValue)
            .map_err(|e| {
                AppError::unavailable(format!(
                    "blob store unavailable: {}",
                    first_paragraph(&e.to_string())
                ))
            })
    }
}

fn kv_error(e: key_value::Error) -> StoreError {
    StoreError::Backend(format!(
        "key-value store: {}",
        first_paragraph(&e.to_string())
    ))
}

impl KeyValue for SpinKeyValue {
    fn get(&self, key: &str) -> registry_store::Result<Option<Vec<u8>>> {
        self.0.get(key).map_err(kv_error)
    }
    fn set(&self, key: &str, value: &[u8]) -> registry_store::Result<()> {
        self.0.set(key, value).map_err(kv_error)
    }
    fn delete(&self, key: &str) -> registry_store::Result<()> {
        self.0.delete(key).map_err(kv_error)
    }
    fn exists(&self, key: &str) -> registry_store::Result<bool> {
        self.0.exists(key).map_err(kv_error)
    }
}

/// Seconds since the Unix epoch.
pub fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_stay_out_of_messages() {
        assert_eq!(
            redact_password("postgres://opsml:s3cr3t@db:5432/opsml"),
            "postgres://opsml:***@db:5432/opsml"
        );
        assert_eq!(
            redact_password("postgres://a:b@c@db/x"),
            "postgres://a:***@db/x"
        );
        assert_eq!(redact_password("postgres://db/x"), "postgres://db/x");
        assert_eq!(redact_password("db=x password=y"), "<not a URL>");
    }

    #[test]
    fn a_refused_address_names_the_setting_that_allows_it() {
        let refused = pg4::PgError::ConnectionFailed(
            "address postgres://db.elsewhere:5432 is not permitted".into(),
        );
        assert_eq!(
            pg_error_text(&refused),
            "connection failed: address postgres://db.elsewhere:5432 is not permitted: the \
             components may connect only to OPSML_DATABASE_HOST (their allowed_outbound_hosts \
             entry postgres://{{ database_host }})"
        );
        let other = pg4::PgError::ConnectionFailed("timed out".into());
        assert_eq!(pg_error_text(&other), "connection failed: timed out");
    }

    #[test]
    fn row_statements_are_told_apart() {
        assert!(returns_rows("SELECT 1"));
        assert!(returns_rows("  select card FROM t"));
        assert!(!returns_rows("INSERT INTO t VALUES ($1)"));
        assert!(returns_rows("DELETE FROM t WHERE a = $1 RETURNING b"));
        assert!(!returns_rows("BEGIN"));
    }
}
