//! What an operation needs from the runtime, behind one trait: the deployment's settings, its
//! database and blob store, a clock and randomness. A component implements it over Spin's
//! interfaces (registry-spin); tests over SQLite in memory and a map ([`crate::testing`]).
//! [`Ctx`] opens each store at most once per request, and only when an operation needs it.

use crate::error::Result;
use registry_store::blobs::BlobStore;
use registry_store::Sql;
use std::cell::OnceCell;

pub trait Deployment {
    /// A deployment setting (a Spin variable); absent or undefined is empty.
    fn variable(&self, name: &str) -> String;
    /// The metadata database, migrated to the current schema when a statement needs it.
    fn open_database(&self) -> Result<Box<dyn Sql>>;
    /// The blob store the settings name.
    fn open_blobs(&self) -> Result<Box<dyn BlobStore>>;
    /// Microseconds since the Unix epoch.
    fn now_micros(&self) -> i64;
    /// Fresh random bytes (ids, tokens).
    fn fill_random(&self, bytes: &mut [u8]);
}

/// One request's view of the deployment.
pub struct Ctx<'d> {
    deployment: &'d dyn Deployment,
    db: OnceCell<Box<dyn Sql>>,
    blobs: OnceCell<Box<dyn BlobStore>>,
}

impl<'d> Ctx<'d> {
    pub fn new(deployment: &'d dyn Deployment) -> Self {
        Self {
            deployment,
            db: OnceCell::new(),
            blobs: OnceCell::new(),
        }
    }

    pub fn variable(&self, name: &str) -> String {
        self.deployment.variable(name)
    }

    /// The database, opened on first use.
    pub fn db(&self) -> Result<&dyn Sql> {
        if let Some(db) = self.db.get() {
            return Ok(db.as_ref());
        }
        let db = self.deployment.open_database()?;
        Ok(self.db.get_or_init(|| db).as_ref())
    }

    /// The blob store, opened on first use.
    pub fn blobs(&self) -> Result<&dyn BlobStore> {
        if let Some(blobs) = self.blobs.get() {
            return Ok(blobs.as_ref());
        }
        let blobs = self.deployment.open_blobs()?;
        Ok(self.blobs.get_or_init(|| blobs).as_ref())
    }

    pub fn now_micros(&self) -> i64 {
        self.deployment.now_micros()
    }

    /// Seconds since the Unix epoch.
    pub fn now_unix(&self) -> i64 {
        self.now_micros().div_euclid(1_000_000)
    }

    pub fn random_bytes<const N: usize>(&self) -> [u8; N] {
        let mut bytes = [0u8; N];
        self.deployment.fill_random(&mut bytes);
        bytes
    }

    /// A fresh random identifier (128 bits, hex) for blobs, cards and requests.
    pub fn new_id(&self) -> String {
        self.random_bytes::<16>()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}
