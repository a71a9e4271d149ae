//! Failures and the exit codes they map to (documented in the crate README).

use std::fmt;

/// What went wrong, as a script needs to tell it apart: each kind has its own exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Anything not listed below (local I/O, an answer the client cannot read, 409/422...).
    Other,
    /// Bad flags or environment: clap's own usage errors exit 2 too.
    Usage,
    /// The card, version or file does not exist (404, or an empty listing).
    NotFound,
    /// 401 or 403: no or wrong credentials, a scope the identity lacks, a missing prod token.
    Denied,
    /// A digest or size differs from what the server or a `--locked` manifest says.
    Integrity,
    /// The server could not be reached or kept failing (connection errors, cut bodies, 429,
    /// 5xx) after every retry.
    Network,
    /// `copy` finished, but some cards were skipped (a conflict on the target, an unsupported
    /// file path): see its report.
    Skipped,
}

impl Kind {
    pub fn exit_code(self) -> i32 {
        match self {
            Kind::Other => 1,
            Kind::Usage => 2,
            Kind::NotFound => 3,
            Kind::Denied => 4,
            Kind::Integrity => 5,
            Kind::Network => 6,
            Kind::Skipped => 7,
        }
    }
}

/// A failure with a message for a person.
#[derive(Debug, Clone)]
pub struct Failure {
    pub kind: Kind,
    pub message: String,
    /// The HTTP status that ended the request, if one did.
    pub status: Option<u16>,
}

impl Failure {
    pub fn new(kind: Kind, message: impl Into<String>) -> Self {
        Failure {
            kind,
            message: message.into(),
            status: None,
        }
    }

    pub fn other(message: impl Into<String>) -> Self {
        Failure::new(Kind::Other, message)
    }

    pub fn usage(message: impl Into<String>) -> Self {
        Failure::new(Kind::Usage, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Failure::new(Kind::NotFound, message)
    }

    pub fn integrity(message: impl Into<String>) -> Self {
        Failure::new(Kind::Integrity, message)
    }

    /// Prefixes the message with what was being done.
    pub fn context(mut self, what: impl fmt::Display) -> Self {
        self.message = format!("{what}: {}", self.message);
        self
    }

    /// A local file operation that failed, naming the path.
    pub fn io(what: &str, path: &std::path::Path, error: std::io::Error) -> Self {
        Failure::other(format!("{what} {}: {error}", path.display()))
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

pub type Result<T> = std::result::Result<T, Failure>;
