//! The Opsml registry's application layer: every registry operation, written once.
//!
//! A request enters a thin adapter (a Spin component, a test), which builds a [`Head`], a
//! [`Body`] and a [`Ctx`] over its runtime ([`Deployment`]) and calls one of [`routes`]. The
//! route authenticates the caller ([`auth`]), picks the operation and reads its input; the
//! operation ([`cards`], [`files`], [`metrics`], [`models`], [`admin`]) applies the core's
//! rules, asks the [`Caller`] for access and the prod token, and talks to storage through
//! registry-store's traits, with the audit record in the write's own transaction. Every
//! failure is an [`AppError`] with its status. The web pages (registry-ui) call the same
//! operations.

pub mod admin;
pub mod auth;
pub mod caller;
pub mod cards;
pub mod deployment;
pub mod error;
pub mod files;
pub mod metrics;
pub mod models;
pub mod request;
pub mod routes;
pub mod settings;

pub use caller::{Caller, WriteCleared, WritePolicy};
pub use deployment::{Ctx, Deployment};
pub use error::{AppError, Result};
pub use request::{Answer, Body, Head, Method, ResponseSink};

/// A deployment in memory for native tests: SQLite and a key-value map, settings from a map,
/// a clock that moves only when told, counted ids (feature `testing`).
#[cfg(any(test, feature = "testing"))]
pub mod testing;

#[cfg(test)]
mod tests;
