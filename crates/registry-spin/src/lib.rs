//! The Spin side shared by every Opsml component: the application layer's deployment over
//! Spin's variables, SQLite, PostgreSQL, MySQL and key-value interfaces and S3 over outbound
//! HTTP ([`storage`]), and the HTTP adapter that makes a component one call ([`http::serve`]).

pub mod http;
pub mod mysql;
pub mod s3;
pub mod storage;

pub use http::{serve, serve_streaming, serve_with_blobs};
