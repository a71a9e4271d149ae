//! The opsml registry's domain rules, shared by every component of "opsml on Spin".
//!
//! Everything here is pure (no I/O) so it can be unit-tested natively and reused by each Spin
//! component. The rules reproduce the opsml 2.2.4 Python server wherever clients can observe
//! them; the few deliberate differences are documented on the items concerned.

pub mod access;
pub mod card;
pub mod error;
pub mod filter;
pub mod login;
pub mod multipart;
pub mod naming;
pub mod presigned;
pub mod prod_token;
pub mod query;
pub mod range;
pub mod registry;
pub mod semver;
pub mod write_path;
pub mod zip;

pub use error::{CoreError, HttpError, Status};
pub use filter::{FilterError, VersionFilter};
pub use registry::{RegistryError, RegistryType};
pub use semver::{next_version, Version, VersionError, VersionRequest, VersionScope, VersionType};
pub use write_path::{validate_prefix, validate_write_path, PathError, StorageKey};
