//! `fermyon:spin/key-value@2.0.0` over local SQLite files (`type = "spin"`), one table
//! shared by every label stored in the same file, as Spin's own spin-type store does.

use crate::bindings::key_value;
use crate::server::InstanceState;
use crate::sqlite::SqliteDatabase;
use anyhow::Result;
use rusqlite::OptionalExtension;
use std::path::Path;
use std::sync::Arc;
use wasmtime::component::Resource;

/// Spin refuses single values above this size.
pub const MAX_VALUE_BYTES: usize = 128 * 1024 * 1024;

/// The page size of a new key-value file. Values here are mostly the registry's 1 MiB file
/// chunks: with SQLite's default 4 KiB pages each is a chain of 256 overflow pages, with 64 KiB
/// pages 16, and storing 1 GiB ran 1.5–1.9x faster (bench/README.md).
const PAGE_SIZE: u32 = 64 * 1024;

pub struct KeyValueFile {
    db: Arc<SqliteDatabase>,
}

impl KeyValueFile {
    pub fn open(path: &Path) -> Result<Arc<Self>> {
        let db = SqliteDatabase::open_with_page_size(path, Some(PAGE_SIZE))?;
        db.take()?.execute_batch(
            "CREATE TABLE IF NOT EXISTS spin_key_value (
                store TEXT NOT NULL,
                key TEXT NOT NULL,
                value BLOB NOT NULL,
                PRIMARY KEY (store, key)
            )",
        )?;
        Ok(Arc::new(Self { db }))
    }

    pub fn get(&self, store: &str, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(self
            .db
            .take()?
            .prepare_cached("SELECT value FROM spin_key_value WHERE store = ? AND key = ?")?
            .query_row((store, key), |row| row.get(0))
            .optional()?)
    }

    pub fn set(&self, store: &str, key: &str, value: &[u8]) -> Result<()> {
        anyhow::ensure!(
            value.len() <= MAX_VALUE_BYTES,
            "value of {} bytes exceeds the {MAX_VALUE_BYTES}-byte limit",
            value.len()
        );
        self.db
            .take()?
            .prepare_cached(
                "INSERT INTO spin_key_value (store, key, value) VALUES (?, ?, ?)
                 ON CONFLICT (store, key) DO UPDATE SET value = excluded.value",
            )?
            .execute((store, key, value))?;
        Ok(())
    }

    pub fn delete(&self, store: &str, key: &str) -> Result<()> {
        self.db
            .take()?
            .prepare_cached("DELETE FROM spin_key_value WHERE store = ? AND key = ?")?
            .execute((store, key))?;
        Ok(())
    }

    pub fn exists(&self, store: &str, key: &str) -> Result<bool> {
        Ok(self
            .db
            .take()?
            .prepare_cached("SELECT 1 FROM spin_key_value WHERE store = ? AND key = ?")?
            .exists((store, key))?)
    }

    pub fn keys(&self, store: &str) -> Result<Vec<String>> {
        let conn = self.db.take()?;
        let mut stmt = conn.prepare_cached("SELECT key FROM spin_key_value WHERE store = ?")?;
        let keys = stmt
            .query_map([store], |row| row.get(0))?
            .collect::<rusqlite::Result<Vec<String>>>()?;
        Ok(keys)
    }
}

/// The guest's `store` resource: a label and the file that holds it.
pub struct Store {
    label: String,
    file: Arc<KeyValueFile>,
}

fn other(e: anyhow::Error) -> key_value::Error {
    key_value::Error::Other(format!("{e:#}"))
}

impl InstanceState {
    fn kv_store(&self, store: &Resource<Store>) -> wasmtime::Result<(String, Arc<KeyValueFile>)> {
        let s = self.table.get(store)?;
        Ok((s.label.clone(), s.file.clone()))
    }
}

impl key_value::Host for InstanceState {}

impl key_value::HostStore for InstanceState {
    async fn open(
        &mut self,
        label: String,
    ) -> wasmtime::Result<Result<Resource<Store>, key_value::Error>> {
        if !self.component.key_value_stores.contains(&label) {
            return Ok(Err(key_value::Error::AccessDenied));
        }
        let Some(file) = self.app.key_value_stores.get(&label) else {
            return Ok(Err(key_value::Error::NoSuchStore));
        };
        let store = Store {
            label,
            file: file.clone(),
        };
        Ok(Ok(self.table.push(store)?))
    }

    async fn get(
        &mut self,
        store: Resource<Store>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, key_value::Error>> {
        let (label, file) = self.kv_store(&store)?;
        Ok(tokio::task::block_in_place(|| file.get(&label, &key)).map_err(other))
    }

    async fn set(
        &mut self,
        store: Resource<Store>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), key_value::Error>> {
        let (label, file) = self.kv_store(&store)?;
        Ok(tokio::task::block_in_place(|| file.set(&label, &key, &value)).map_err(other))
    }

    async fn delete(
        &mut self,
        store: Resource<Store>,
        key: String,
    ) -> wasmtime::Result<Result<(), key_value::Error>> {
        let (label, file) = self.kv_store(&store)?;
        Ok(tokio::task::block_in_place(|| file.delete(&label, &key)).map_err(other))
    }

    async fn exists(
        &mut self,
        store: Resource<Store>,
        key: String,
    ) -> wasmtime::Result<Result<bool, key_value::Error>> {
        let (label, file) = self.kv_store(&store)?;
        Ok(tokio::task::block_in_place(|| file.exists(&label, &key)).map_err(other))
    }

    async fn get_keys(
        &mut self,
        store: Resource<Store>,
    ) -> wasmtime::Result<Result<Vec<String>, key_value::Error>> {
        let (label, file) = self.kv_store(&store)?;
        Ok(tokio::task::block_in_place(|| file.keys(&label)).map_err(other))
    }

    async fn drop(&mut self, store: Resource<Store>) -> wasmtime::Result<()> {
        self.table.delete(store)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_sharing_a_file_stay_apart() {
        let dir = tempfile::tempdir().unwrap();
        let kv = KeyValueFile::open(&dir.path().join("kv.db")).unwrap();
        kv.set("a", "k", b"1").unwrap();
        kv.set("b", "k", b"2").unwrap();
        kv.set("a", "k", b"3").unwrap();
        assert_eq!(kv.get("a", "k").unwrap().unwrap(), b"3");
        assert_eq!(kv.get("b", "k").unwrap().unwrap(), b"2");
        assert!(kv.exists("a", "k").unwrap());
        kv.delete("a", "k").unwrap();
        assert!(!kv.exists("a", "k").unwrap());
        assert_eq!(kv.get("a", "k").unwrap(), None);
        assert_eq!(kv.keys("b").unwrap(), ["k"]);
    }

    fn page_size(kv: &KeyValueFile) -> u32 {
        kv.db
            .take()
            .unwrap()
            .pragma_query_value(None, "page_size", |row| row.get(0))
            .unwrap()
    }

    #[test]
    fn a_new_file_gets_large_pages_and_an_old_one_keeps_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let kv = KeyValueFile::open(&dir.path().join("new.db")).unwrap();
        kv.set("default", "chunk", &vec![7u8; 1 << 20]).unwrap();
        assert_eq!(page_size(&kv), PAGE_SIZE);
        assert_eq!(
            kv.get("default", "chunk").unwrap().unwrap(),
            vec![7u8; 1 << 20]
        );

        // A store written before this change (4 KiB pages, WAL) opens and reads as before.
        let old = dir.path().join("old.db");
        {
            let conn = rusqlite::Connection::open(&old).unwrap();
            conn.pragma_update(None, "journal_mode", "WAL").unwrap();
            conn.execute_batch(
                "CREATE TABLE spin_key_value (store TEXT NOT NULL, key TEXT NOT NULL,
                 value BLOB NOT NULL, PRIMARY KEY (store, key));
                 INSERT INTO spin_key_value VALUES ('default', 'k', x'0102');",
            )
            .unwrap();
        }
        let kv = KeyValueFile::open(&old).unwrap();
        assert_eq!(page_size(&kv), 4096);
        assert_eq!(kv.get("default", "k").unwrap().unwrap(), [1, 2]);
        kv.set("default", "k2", b"new").unwrap();
        assert_eq!(kv.get("default", "k2").unwrap().unwrap(), b"new");
    }
}
