//! Validation of the storage paths clients send to the `files/*` routes.
//!
//! The reference client addresses artifacts as `opsml-root:/<TABLE NAME>/<repository>/<name>/
//! v<version>/<file>` (its `opsml_proxy_root` is `opsml-root:/`, its card URIs are built with
//! `pathlib`, so there are never empty, `.` or trailing segments). The reference server only
//! checks that some registry table name occurs *anywhere* in the path and serves absolute paths
//! as they are, which allows reading outside the storage root. Here a path is accepted only when
//! it is exactly `opsml-root:/` + a registry folder + plain segments, and it becomes a storage
//! key relative to the storage root (`OPSML_MODEL_REGISTRY/repo/name/v1.0.0/model.joblib`).
//!
//! Percent-encoding: query parameters are decoded once by the HTTP layer and the `write_path`
//! header is not encoded at all, so a path that still contains `%XX` (two hex digits) was
//! encoded twice or is trying to smuggle something past a later decoder. Such paths are refused
//! rather than decoded again; a `%` not followed by two hex digits (`100%.txt`) is an ordinary
//! character.

use std::fmt;

use crate::error::{HttpError, Status};
use crate::registry::RegistryType;

/// The prefix the reference client puts in front of every storage path.
pub const PROXY_ROOT: &str = "opsml-root:/";

/// Longest accepted storage key, in bytes (S3's object key limit).
pub const MAX_KEY_LEN: usize = 1024;

/// Longest accepted path segment, in bytes (common file-system name limit).
pub const MAX_SEGMENT_LEN: usize = 255;

/// Why a path was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathError {
    /// Empty path.
    Empty,
    /// The path does not start with `opsml-root:/`.
    MissingPrefix,
    /// The first segment is not one of the six registry folders.
    UnknownRegistryFolder(String),
    /// A path that must name something inside a registry names only the registry folder.
    RegistryRootOnly,
    /// `//`, a leading `/` after the prefix, or a trailing `/`.
    EmptySegment,
    /// A `.` or `..` segment.
    DotSegment,
    /// A backslash, which some stores and platforms treat as a separator.
    Backslash,
    /// NUL or another control character.
    ControlCharacter,
    /// A `%XX` sequence (see the module docs).
    PercentEncoded,
    /// Key or segment longer than [`MAX_KEY_LEN`] / [`MAX_SEGMENT_LEN`].
    TooLong,
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Path is not a valid registry path: ")?;
        match self {
            PathError::Empty => f.write_str("no path provided"),
            PathError::MissingPrefix => write!(f, "it must start with {PROXY_ROOT}"),
            PathError::UnknownRegistryFolder(folder) => write!(
                f,
                "{folder:?} is not a registry folder (expected one of: {})",
                RegistryType::ALL
                    .map(RegistryType::storage_folder)
                    .join(", ")
            ),
            PathError::RegistryRootOnly => {
                f.write_str("it must name a file inside a registry folder")
            }
            PathError::EmptySegment => f.write_str("empty path segment"),
            PathError::DotSegment => f.write_str("'.' and '..' segments are not allowed"),
            PathError::Backslash => f.write_str("backslashes are not allowed"),
            PathError::ControlCharacter => f.write_str("control characters are not allowed"),
            PathError::PercentEncoded => f.write_str("percent-encoded sequences are not allowed"),
            PathError::TooLong => write!(
                f,
                "longer than {MAX_KEY_LEN} bytes or with a segment over {MAX_SEGMENT_LEN} bytes"
            ),
        }
    }
}

impl std::error::Error for PathError {}

impl HttpError for PathError {
    /// The reference answers 422 "Path is not a valid registry path".
    fn status(&self) -> Status {
        Status::UnprocessableEntity
    }
}

/// Where `models/register` puts a model version for deployment (the reference's
/// `opsml_registry_path`): readable like a registry folder, written only by the registrar.
pub const DEPLOYMENT_FOLDER: &str = "model_registry";

/// A validated location in storage, relative to the storage root.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StorageKey {
    /// `None` for the deployment folder.
    registry: Option<RegistryType>,
    key: String,
}

impl StorageKey {
    /// The key, e.g. `OPSML_MODEL_REGISTRY/repo/name/v1.0.0/model.joblib`.
    pub fn as_str(&self) -> &str {
        &self.key
    }

    /// The registry the key belongs to (`None` in the deployment folder).
    pub fn registry(&self) -> Option<RegistryType> {
        self.registry
    }

    /// The key's segments, the registry folder first.
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.key.split('/')
    }

    /// The repository the key lies in (its second segment), `None` for a registry folder
    /// itself: what access rules limited to some repositories decide on.
    pub fn repository(&self) -> Option<&str> {
        self.segments().nth(1)
    }

    /// Whether this is just a registry folder.
    pub fn is_registry_root(&self) -> bool {
        !self.key.contains('/')
    }

    /// Whether `other` is this key or lies below it (segment-wise, so `a/b` does not contain
    /// `a/bc`).
    pub fn contains(&self, other: &str) -> bool {
        other == self.key
            || other
                .strip_prefix(self.key.as_str())
                .is_some_and(|rest| rest.starts_with('/'))
    }

    /// The path as the client knows it (`opsml-root:/...`), for list responses.
    pub fn client_path(&self) -> String {
        client_path(&self.key)
    }
}

impl fmt::Display for StorageKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.key)
    }
}

impl AsRef<str> for StorageKey {
    fn as_ref(&self) -> &str {
        &self.key
    }
}

/// Maps a storage key back to the client's form, as the reference's `reverse_swap_opsml_root`.
pub fn client_path(key: &str) -> String {
    format!("{PROXY_ROOT}{key}")
}

fn has_percent_escape(segment: &str) -> bool {
    segment
        .as_bytes()
        .windows(3)
        .any(|w| w[0] == b'%' && w[1].is_ascii_hexdigit() && w[2].is_ascii_hexdigit())
}

fn check_segment(segment: &str) -> Result<(), PathError> {
    if segment.is_empty() {
        return Err(PathError::EmptySegment);
    }
    if segment == "." || segment == ".." {
        return Err(PathError::DotSegment);
    }
    if segment.contains('\\') {
        return Err(PathError::Backslash);
    }
    if segment.chars().any(char::is_control) {
        return Err(PathError::ControlCharacter);
    }
    if has_percent_escape(segment) {
        return Err(PathError::PercentEncoded);
    }
    if segment.len() > MAX_SEGMENT_LEN {
        return Err(PathError::TooLong);
    }
    Ok(())
}

fn validate(
    path: &str,
    allow_registry_root: bool,
    allow_deployment: bool,
) -> Result<StorageKey, PathError> {
    if path.is_empty() {
        return Err(PathError::Empty);
    }
    let key = path
        .strip_prefix(PROXY_ROOT)
        .ok_or(PathError::MissingPrefix)?;
    if key.len() > MAX_KEY_LEN {
        return Err(PathError::TooLong);
    }
    let mut segments = key.split('/');
    let folder = segments.next().unwrap_or_default();
    check_segment(folder)?;
    let registry = match RegistryType::from_storage_folder(folder) {
        Some(registry) => Some(registry),
        None if allow_deployment && folder == DEPLOYMENT_FOLDER => None,
        None => return Err(PathError::UnknownRegistryFolder(folder.to_string())),
    };
    let mut rest = 0;
    for segment in segments {
        check_segment(segment)?;
        rest += 1;
    }
    if rest == 0 && !allow_registry_root {
        return Err(PathError::RegistryRootOnly);
    }
    Ok(StorageKey {
        registry,
        key: key.to_string(),
    })
}

/// Validates a path naming one object: uploads (`write_path` header), downloads and deletes.
/// It must lie strictly inside a registry folder.
pub fn validate_write_path(path: &str) -> Result<StorageKey, PathError> {
    validate(path, false, false)
}

/// Validates a path naming one object to read (`files/download`): inside a registry folder
/// or the deployment folder.
pub fn validate_read_path(path: &str) -> Result<StorageKey, PathError> {
    validate(path, false, true)
}

/// Validates a path used as a prefix (`files/list`, `files/exists`, `files/delete`): a registry
/// folder itself is allowed, as in the reference, so is the deployment folder, and one
/// trailing `/` is tolerated.
pub fn validate_prefix(path: &str) -> Result<StorageKey, PathError> {
    let trimmed = match path.strip_suffix('/') {
        Some(rest) if rest.len() >= PROXY_ROOT.len() => rest,
        _ => path,
    };
    validate(trimmed, true, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deployment_folder_is_readable_not_writable() {
        let path = "opsml-root:/model_registry/repo/name/v1/model.onnx";
        assert!(validate_write_path(path).is_err());
        let key = validate_read_path(path).unwrap();
        assert_eq!((key.registry(), key.as_str()), (None, &path[12..]));
        assert!(validate_prefix("opsml-root:/model_registry/repo").is_ok());
        assert!(validate_read_path("opsml-root:/model_registry/../x").is_err());
        assert!(validate_read_path("opsml-root:/other/x").is_err());
    }

    #[test]
    fn accepted_paths() {
        let table = [
            (
                "opsml-root:/OPSML_MODEL_REGISTRY/repo/name/v1.0.0/model.joblib",
                RegistryType::Model,
                "OPSML_MODEL_REGISTRY/repo/name/v1.0.0/model.joblib",
            ),
            (
                "opsml-root:/OPSML_DATA_REGISTRY/repo/name/v1.2.0-rc.1+build.1/data.parquet",
                RegistryType::Data,
                "OPSML_DATA_REGISTRY/repo/name/v1.2.0-rc.1+build.1/data.parquet",
            ),
            (
                "opsml-root:/OPSML_RUN_REGISTRY/repo/run/0a1b2c/artifacts/my file (1).txt",
                RegistryType::Run,
                "OPSML_RUN_REGISTRY/repo/run/0a1b2c/artifacts/my file (1).txt",
            ),
            (
                "opsml-root:/OPSML_AUDIT_REGISTRY/r/n/v1.0.0/100%.txt",
                RegistryType::Audit,
                "OPSML_AUDIT_REGISTRY/r/n/v1.0.0/100%.txt",
            ),
            (
                "opsml-root:/OPSML_PIPELINE_REGISTRY/r/n/v1.0.0/caf\u{e9}..json",
                RegistryType::Pipeline,
                "OPSML_PIPELINE_REGISTRY/r/n/v1.0.0/caf\u{e9}..json",
            ),
            (
                "opsml-root:/OPSML_PROJECT_REGISTRY/x",
                RegistryType::Project,
                "OPSML_PROJECT_REGISTRY/x",
            ),
        ];
        for (path, registry, key) in table {
            let k = validate_write_path(path).unwrap();
            assert_eq!((k.registry(), k.as_str()), (Some(registry), key), "{path}");
            assert_eq!(k.client_path(), path);
            assert_eq!(validate_prefix(path).unwrap(), k);
        }
    }

    #[test]
    fn refused_paths() {
        let table = [
            ("", PathError::Empty),
            ("OPSML_MODEL_REGISTRY/a/b", PathError::MissingPrefix),
            ("/etc/passwd", PathError::MissingPrefix),
            (
                "/etc/OPSML_MODEL_REGISTRY/../passwd",
                PathError::MissingPrefix,
            ),
            (
                "opsml-root:OPSML_MODEL_REGISTRY/a",
                PathError::MissingPrefix,
            ),
            (
                "OPSML-ROOT:/OPSML_MODEL_REGISTRY/a",
                PathError::MissingPrefix,
            ),
            (
                "s3://bucket/OPSML_MODEL_REGISTRY/a",
                PathError::MissingPrefix,
            ),
            ("opsml-root://etc/passwd", PathError::EmptySegment),
            (
                "opsml-root://OPSML_MODEL_REGISTRY/a",
                PathError::EmptySegment,
            ),
            (
                "opsml-root:/etc/passwd",
                PathError::UnknownRegistryFolder("etc".into()),
            ),
            (
                "opsml-root:/opsml_model_registry/a",
                PathError::UnknownRegistryFolder("opsml_model_registry".into()),
            ),
            (
                "opsml-root:/OPSML_BASE_REGISTRY/a",
                PathError::UnknownRegistryFolder("OPSML_BASE_REGISTRY".into()),
            ),
            (
                "opsml-root:/OPSML_RUN_METRICS/a",
                PathError::UnknownRegistryFolder("OPSML_RUN_METRICS".into()),
            ),
            (
                "opsml-root:/x/OPSML_MODEL_REGISTRY/a",
                PathError::UnknownRegistryFolder("x".into()),
            ),
            (
                "opsml-root:/OPSML_MODEL_REGISTRY",
                PathError::RegistryRootOnly,
            ),
            ("opsml-root:/OPSML_MODEL_REGISTRY/", PathError::EmptySegment),
            (
                "opsml-root:/OPSML_MODEL_REGISTRY/a//b",
                PathError::EmptySegment,
            ),
            (
                "opsml-root:/OPSML_MODEL_REGISTRY/a/",
                PathError::EmptySegment,
            ),
            (
                "opsml-root:/OPSML_MODEL_REGISTRY/../../etc/passwd",
                PathError::DotSegment,
            ),
            (
                "opsml-root:/OPSML_MODEL_REGISTRY/a/../../b",
                PathError::DotSegment,
            ),
            (
                "opsml-root:/OPSML_MODEL_REGISTRY/./a",
                PathError::DotSegment,
            ),
            (
                "opsml-root:/OPSML_MODEL_REGISTRY/a/..",
                PathError::DotSegment,
            ),
            (
                "opsml-root:/../OPSML_MODEL_REGISTRY/a",
                PathError::DotSegment,
            ),
            (
                "opsml-root:/OPSML_MODEL_REGISTRY/a\\..\\..\\b",
                PathError::Backslash,
            ),
            (
                "opsml-root:/OPSML_MODEL_REGISTRY/a\0b",
                PathError::ControlCharacter,
            ),
            (
                "opsml-root:/OPSML_MODEL_REGISTRY/a\nb",
                PathError::ControlCharacter,
            ),
            (
                "opsml-root:/OPSML_MODEL_REGISTRY/a\u{7f}",
                PathError::ControlCharacter,
            ),
            (
                "opsml-root:/OPSML_MODEL_REGISTRY/a\u{85}",
                PathError::ControlCharacter,
            ),
            (
                "opsml-root:/OPSML_MODEL_REGISTRY/%2e%2e/x",
                PathError::PercentEncoded,
            ),
            (
                "opsml-root:/OPSML_MODEL_REGISTRY/a%2fb",
                PathError::PercentEncoded,
            ),
            (
                "opsml-root:/OPSML_MODEL_REGISTRY/a%5Cb",
                PathError::PercentEncoded,
            ),
            (
                "opsml-root:/OPSML_MODEL_REGISTRY/a%00",
                PathError::PercentEncoded,
            ),
            (
                "opsml-root:/OPSML_MODEL_REGISTRY/%252e",
                PathError::PercentEncoded,
            ),
            (
                "opsml-root:/OPSML_MODEL_REGISTRY/caf%C3%A9",
                PathError::PercentEncoded,
            ),
        ];
        for (path, expected) in table {
            assert_eq!(validate_write_path(path), Err(expected), "{path:?}");
        }
    }

    #[test]
    fn lengths() {
        let long_segment = "a".repeat(MAX_SEGMENT_LEN + 1);
        let path = format!("opsml-root:/OPSML_MODEL_REGISTRY/{long_segment}");
        assert_eq!(validate_write_path(&path), Err(PathError::TooLong));
        let ok_segment = "a".repeat(MAX_SEGMENT_LEN);
        let path = format!("opsml-root:/OPSML_MODEL_REGISTRY/{ok_segment}");
        assert!(validate_write_path(&path).is_ok());
        let many = vec!["abcdefghi"; 110].join("/");
        let path = format!("opsml-root:/OPSML_MODEL_REGISTRY/{many}");
        assert_eq!(validate_write_path(&path), Err(PathError::TooLong));
    }

    #[test]
    fn prefixes() {
        let table = [
            (
                "opsml-root:/OPSML_MODEL_REGISTRY",
                Ok("OPSML_MODEL_REGISTRY"),
            ),
            (
                "opsml-root:/OPSML_MODEL_REGISTRY/",
                Ok("OPSML_MODEL_REGISTRY"),
            ),
            (
                "opsml-root:/OPSML_MODEL_REGISTRY/repo/name/v1.0.0/",
                Ok("OPSML_MODEL_REGISTRY/repo/name/v1.0.0"),
            ),
            (
                "opsml-root:/OPSML_MODEL_REGISTRY//",
                Err(PathError::EmptySegment),
            ),
            ("opsml-root:/", Err(PathError::EmptySegment)),
            ("opsml-root:", Err(PathError::MissingPrefix)),
            (
                "opsml-root:/OPSML_MODEL_REGISTRY/..",
                Err(PathError::DotSegment),
            ),
        ];
        for (path, expected) in table {
            assert_eq!(
                validate_prefix(path).as_ref().map(StorageKey::as_str),
                expected.as_ref().map(|s| *s),
                "{path:?}"
            );
        }
        let root = validate_prefix("opsml-root:/OPSML_DATA_REGISTRY").unwrap();
        assert!(root.is_registry_root());
        assert!(root.contains("OPSML_DATA_REGISTRY/a/b"));
        assert!(!root.contains("OPSML_DATA_REGISTRYX/a"));
        assert_eq!(root.segments().collect::<Vec<_>>(), ["OPSML_DATA_REGISTRY"]);
        assert_eq!(root.client_path(), "opsml-root:/OPSML_DATA_REGISTRY");
    }

    #[test]
    fn messages() {
        let err = validate_write_path("opsml-root:/etc/passwd").unwrap_err();
        assert!(err
            .to_string()
            .starts_with("Path is not a valid registry path: \"etc\""));
        assert_eq!(err.status().code(), 422);
        assert_eq!(
            PathError::MissingPrefix.to_string(),
            "Path is not a valid registry path: it must start with opsml-root:/"
        );
    }
}
