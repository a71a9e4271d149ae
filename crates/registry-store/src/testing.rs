//! Real backends for native tests: SQLite through rusqlite and a map for key-value.

use crate::{KeyValue, Result, Row, Sql, SqlValue, StoreError};
use std::cell::RefCell;
use std::collections::BTreeMap;

pub struct Sqlite(pub rusqlite::Connection);

impl Sqlite {
    pub fn memory() -> Self {
        Sqlite(rusqlite::Connection::open_in_memory().unwrap())
    }
}

impl Sql for Sqlite {
    fn execute(&self, statement: &str, params: &[SqlValue]) -> Result<Vec<Row>> {
        use rusqlite::types::{Value, ValueRef};
        let backend = |e: rusqlite::Error| {
            if e.sqlite_error_code() == Some(rusqlite::ErrorCode::ConstraintViolation) {
                StoreError::Conflict(e.to_string())
            } else {
                StoreError::Backend(e.to_string())
            }
        };
        let mut stmt = self.0.prepare(statement).map_err(backend)?;
        for (i, p) in params.iter().enumerate() {
            let v = match p {
                SqlValue::Integer(i) => Value::Integer(*i),
                SqlValue::Real(f) => Value::Real(*f),
                SqlValue::Text(s) => Value::Text(s.clone()),
                SqlValue::Blob(b) => Value::Blob(b.clone()),
                SqlValue::Null => Value::Null,
            };
            stmt.raw_bind_parameter(i + 1, v).map_err(backend)?;
        }
        let n = stmt.column_count();
        let mut rows = stmt.raw_query();
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(backend)? {
            let mut values = Vec::with_capacity(n);
            for i in 0..n {
                values.push(match row.get_ref(i).map_err(backend)? {
                    ValueRef::Null => SqlValue::Null,
                    ValueRef::Integer(i) => SqlValue::Integer(i),
                    ValueRef::Real(f) => SqlValue::Real(f),
                    ValueRef::Text(t) => SqlValue::Text(String::from_utf8_lossy(t).into()),
                    ValueRef::Blob(b) => SqlValue::Blob(b.to_vec()),
                });
            }
            out.push(Row(values));
        }
        Ok(out)
    }
}

/// One database shared by several owners (a deployment opens it anew for each request).
impl Sql for std::rc::Rc<Sqlite> {
    fn execute(&self, statement: &str, params: &[SqlValue]) -> Result<Vec<Row>> {
        self.as_ref().execute(statement, params)
    }
}

/// A key-value store in memory. The second field, when set, is how many more deletes succeed
/// before deletes fail (a store that became unreachable).
#[derive(Default)]
pub struct MemoryKv(
    pub RefCell<BTreeMap<String, Vec<u8>>>,
    pub std::cell::Cell<Option<usize>>,
);

impl KeyValue for MemoryKv {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.0.borrow().get(key).cloned())
    }
    fn set(&self, key: &str, value: &[u8]) -> Result<()> {
        self.0.borrow_mut().insert(key.to_string(), value.to_vec());
        Ok(())
    }
    fn delete(&self, key: &str) -> Result<()> {
        match self.1.get() {
            Some(0) => return Err(crate::StoreError::Backend("store unreachable".into())),
            Some(left) => self.1.set(Some(left - 1)),
            None => {}
        }
        self.0.borrow_mut().remove(key);
        Ok(())
    }
    fn exists(&self, key: &str) -> Result<bool> {
        Ok(self.0.borrow().contains_key(key))
    }
}

/// One store shared by several owners (a page opens its blob store anew for each request).
impl KeyValue for std::rc::Rc<MemoryKv> {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.as_ref().get(key)
    }
    fn set(&self, key: &str, value: &[u8]) -> Result<()> {
        self.as_ref().set(key, value)
    }
    fn delete(&self, key: &str) -> Result<()> {
        self.as_ref().delete(key)
    }
    fn exists(&self, key: &str) -> Result<bool> {
        self.as_ref().exists(key)
    }
}
