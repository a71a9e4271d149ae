//! The SQL seam: one `execute` with positional `?` parameters, as Spin's sqlite interface has.

use crate::{Result, StoreError};

#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    Integer(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
    Null,
}

impl From<&str> for SqlValue {
    fn from(s: &str) -> Self {
        SqlValue::Text(s.to_string())
    }
}

impl From<String> for SqlValue {
    fn from(s: String) -> Self {
        SqlValue::Text(s)
    }
}

impl From<i64> for SqlValue {
    fn from(i: i64) -> Self {
        SqlValue::Integer(i)
    }
}

/// One result row, with typed accessors that name the column on failure.
#[derive(Debug, Clone, PartialEq)]
pub struct Row(pub Vec<SqlValue>);

impl Row {
    fn value(&self, i: usize) -> Result<&SqlValue> {
        self.0
            .get(i)
            .ok_or_else(|| StoreError::Corrupt(format!("missing column {i}")))
    }

    pub fn text(&self, i: usize) -> Result<String> {
        match self.value(i)? {
            SqlValue::Text(s) => Ok(s.clone()),
            other => Err(StoreError::Corrupt(format!(
                "column {i}: expected text, got {other:?}"
            ))),
        }
    }

    pub fn int(&self, i: usize) -> Result<i64> {
        match self.value(i)? {
            SqlValue::Integer(v) => Ok(*v),
            other => Err(StoreError::Corrupt(format!(
                "column {i}: expected integer, got {other:?}"
            ))),
        }
    }
}

pub trait Sql {
    /// Runs one statement; returns its rows (empty for statements without results).
    fn execute(&self, statement: &str, params: &[SqlValue]) -> Result<Vec<Row>>;
}
