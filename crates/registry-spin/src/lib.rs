//! The Spin side shared by every Opsml component: storage traits implemented over Spin's
//! SQLite and key-value interfaces, settings from Spin variables, and the HTTP plumbing
//! (JSON in, JSON out, `{"detail": ...}` errors) that makes a component a thin adapter.

pub mod http;
pub mod mysql;
pub mod s3;
pub mod settings;
pub mod storage;

pub use http::ApiError;
