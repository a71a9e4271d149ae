//! Storage for the Opsml registry, written once over two small traits so that the same
//! queries and the same blob layout serve every backend: Spin's SQLite and key-value
//! interfaces inside the components, and rusqlite / an in-memory map in native tests.

pub mod audit;
pub mod blobs;
pub mod browse;
pub mod cards;
pub mod files;
pub mod list_request;
pub mod metrics;
pub mod schema;
pub mod sql;
pub mod tokens;

pub use sql::{Dialect, Row, Sql, SqlValue};

/// A storage failure, with the message a client or an operator should see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// The database or store refused or failed the operation.
    Backend(String),
    /// A uniqueness rule was violated (e.g. a card version that already exists).
    Conflict(String),
    /// Stored data is not what the schema promises (a bug or manual tampering).
    Corrupt(String),
    /// A row the write must change was deleted meanwhile: the write is abandoned.
    Gone(String),
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::Backend(m) => write!(f, "storage error: {m}"),
            StoreError::Conflict(m) => write!(f, "{m}"),
            StoreError::Corrupt(m) => write!(f, "stored data is inconsistent: {m}"),
            StoreError::Gone(m) => write!(f, "{m} was deleted meanwhile"),
        }
    }
}

impl std::error::Error for StoreError {}

impl registry_core::HttpError for StoreError {
    fn status(&self) -> registry_core::Status {
        match self {
            StoreError::Backend(_) => registry_core::Status::ServiceUnavailable,
            StoreError::Conflict(_) | StoreError::Gone(_) => registry_core::Status::Conflict,
            StoreError::Corrupt(_) => registry_core::Status::InternalServerError,
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A key-value store (Spin's `key-value` interface has exactly these operations).
pub trait KeyValue {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>>;
    fn set(&self, key: &str, value: &[u8]) -> Result<()>;
    fn delete(&self, key: &str) -> Result<()>;
    fn exists(&self, key: &str) -> Result<bool>;
}

/// Real SQLite (rusqlite) and an in-memory key-value store, for native tests here and in the
/// crates built on this one (feature `testing`).
#[cfg(any(test, feature = "testing"))]
pub mod testing;
