//! Shared by the end-to-end tests in this folder (see [`harness`]).
//!
//! The tests build `opsml-host` and the components, start the app under `opsml-host` or real
//! Spin ([`runtime`]) on a free loopback port with a fresh state directory, and speak the opsml 2.x wire protocol to it over real
//! HTTP, the way the Python client does (see `/work/notes/protocol.md`, §8).
//!
//! - [`harness`]: `build_all`, `Host` (start, restart, HTTP helpers), opsml request bodies;
//! - [`http`]: the small HTTP/1.1 client underneath (streamed bodies, early responses);
//! - [`bytes`]: deterministic test data, BLAKE3 of a stream, multipart framing.

pub mod backend;
pub mod bytes;
pub mod harness;
pub mod http;
pub mod runtime;

pub use harness::*;
