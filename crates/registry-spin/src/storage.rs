//! `registry_store`'s traits over Spin's `sqlite` and `key-value` interfaces.

use crate::ApiError;
use registry_store::{KeyValue, Row, Sql, SqlValue, StoreError};
use spin_sdk::{key_value, sqlite};

/// The `default` SQLite database, migrated to the current schema.
pub struct SpinSqlite(sqlite::Connection);

impl SpinSqlite {
    pub fn open_default() -> Result<Self, ApiError> {
        let conn = sqlite::Connection::open_default()
            .map_err(|e| ApiError::unavailable(format!("metadata database unavailable: {e}")))?;
        let db = SpinSqlite(conn);
        registry_store::schema::migrate(&db)?;
        Ok(db)
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
            Err(e) => Err(StoreError::Backend(e.to_string())),
        }
    }
}

/// The `default` key-value store.
pub struct SpinKeyValue(key_value::Store);

impl SpinKeyValue {
    pub fn open_default() -> Result<Self, ApiError> {
        key_value::Store::open_default()
            .map(SpinKeyValue)
            .map_err(|e| ApiError::unavailable(format!("blob store unavailable: {e}")))
    }
}

fn kv_error(e: key_value::Error) -> StoreError {
    StoreError::Backend(format!("key-value store: {e}"))
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

/// A fresh random identifier (128 bits, hex) for blobs and cards.
pub fn new_id() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the host provides randomness");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Seconds since the Unix epoch.
pub fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
