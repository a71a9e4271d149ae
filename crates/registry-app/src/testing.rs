//! A registry in memory, for fast tests of every operation: real SQLite (rusqlite) with the
//! real schema, the key-value blob layout over a map, settings from a map, a clock that moves
//! only when told, and counted ids. [`Registry::call`] drives a route as a component would.

use crate::deployment::{Ctx, Deployment};
use crate::error::Result;
use crate::request::{Answer, Head, Method, ResponseSink};
use crate::routes::{Route, StreamingRoute};
use registry_store::blobs::{BlobStore, ChunkStore};
use registry_store::testing::{MemoryKv, Sqlite};
use registry_store::Sql;
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;

pub struct Registry {
    pub db: Rc<Sqlite>,
    pub kv: Rc<MemoryKv>,
    pub variables: RefCell<BTreeMap<String, String>>,
    /// Microseconds since the Unix epoch.
    pub clock: Cell<i64>,
    counter: Cell<u64>,
}

impl Default for Registry {
    fn default() -> Self {
        Self::new()
    }
}

impl Registry {
    /// An empty registry in development, its clock at 2025-12-01.
    pub fn new() -> Self {
        let db = Sqlite::memory();
        registry_store::schema::migrate(&db).expect("the schema applies");
        Self {
            db: Rc::new(db),
            kv: Rc::default(),
            variables: RefCell::default(),
            clock: Cell::new(1_764_547_200_000_000),
            counter: Cell::new(0),
        }
    }

    /// Sets deployment variables (`env`, `prod_token`, `admin_token`, …).
    pub fn with(self, settings: &[(&str, &str)]) -> Self {
        for (name, value) in settings {
            self.variables
                .borrow_mut()
                .insert(name.to_string(), value.to_string());
        }
        self
    }

    pub fn advance_seconds(&self, seconds: i64) {
        self.clock.set(self.clock.get() + seconds * 1_000_000);
    }

    /// Calls `route` as a component would, with a fresh [`Ctx`] per request.
    pub fn call(
        &self,
        route: Route,
        method: Method,
        path_and_query: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Reply {
        let head = head(method, path_and_query, headers);
        let ctx = Ctx::new(self);
        let mut body = body;
        Reply::of(route(&ctx, &head, &mut body), Vec::new())
    }

    /// Calls a route that may stream its answer (downloads).
    pub fn call_streamed(
        &self,
        route: StreamingRoute,
        path_and_query: &str,
        headers: &[(&str, &str)],
    ) -> Reply {
        let head = head(Method::Get, path_and_query, headers);
        let ctx = Ctx::new(self);
        let mut sink = Captured::default();
        let answer = route(&ctx, &head, &mut sink);
        let mut reply = Reply::of(answer, sink.body);
        if let Some((status, headers)) = sink.head {
            reply.status = status;
            reply.headers = headers;
        }
        reply
    }
}

fn head(method: Method, path_and_query: &str, headers: &[(&str, &str)]) -> Head {
    Head::new(
        method,
        path_and_query,
        headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
            .collect(),
    )
}

impl Deployment for Registry {
    fn variable(&self, name: &str) -> String {
        self.variables
            .borrow()
            .get(name)
            .cloned()
            .unwrap_or_default()
    }
    fn open_database(&self) -> Result<Box<dyn Sql>> {
        Ok(Box::new(self.db.clone()))
    }
    fn open_blobs(&self) -> Result<Box<dyn BlobStore>> {
        Ok(Box::new(ChunkStore(self.kv.clone())))
    }
    /// Each reading a microsecond after the last, as a real clock moves between writes.
    fn now_micros(&self) -> i64 {
        self.clock.set(self.clock.get() + 1);
        self.clock.get()
    }
    fn fill_random(&self, bytes: &mut [u8]) {
        for byte in bytes.iter_mut() {
            self.counter.set(self.counter.get() + 1);
            *byte = (self.counter.get().wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as u8;
        }
    }
}

/// What a streamed answer wrote.
#[derive(Default)]
struct Captured {
    head: Option<(u16, Vec<(String, String)>)>,
    body: Vec<u8>,
}

impl ResponseSink for Captured {
    fn start(&mut self, status: u16, headers: &[(&'static str, String)]) {
        let headers = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        self.head = Some((status, headers));
    }
    fn write(&mut self, piece: Vec<u8>) -> bool {
        self.body.extend(piece);
        true
    }
}

/// An answer as a client sees it.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    fn of(answer: Result<Answer>, streamed: Vec<u8>) -> Self {
        match answer {
            Ok(Answer::Json { status, text }) => Reply {
                status,
                headers: vec![("content-type".into(), "application/json".into())],
                body: text.into_bytes(),
            },
            Ok(Answer::Bytes {
                status,
                headers,
                body,
            }) => Reply {
                status,
                headers: headers.into_iter().map(|(k, v)| (k.into(), v)).collect(),
                body,
            },
            Ok(Answer::Sent) => Reply {
                status: 0,
                headers: Vec::new(),
                body: streamed,
            },
            Err(e) => Reply {
                status: e.status,
                headers: [
                    e.challenge
                        .map(|c| ("www-authenticate".to_string(), c.to_string())),
                    e.retry_after
                        .map(|s| ("retry-after".to_string(), s.to_string())),
                ]
                .into_iter()
                .flatten()
                .collect(),
                body: serde_json::json!({ "detail": e.detail })
                    .to_string()
                    .into_bytes(),
            },
        }
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    /// The error's `detail`.
    pub fn detail(&self) -> String {
        self.json()["detail"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}
