//! Semantic versions and the reference's `cards/version` rule.
//!
//! [`Version`] follows SemVer 2.0 as implemented by python-semver 2.13 (the reference's
//! dependency): `MAJOR.MINOR.PATCH[-PRE][+BUILD]`, no leading zeros in numeric parts or numeric
//! pre-release identifiers, build metadata ignored for precedence.
//!
//! [`next_version`] reproduces `ServerRegistry.set_version` of opsml 2.2.4, including its quirks,
//! because clients depend on the exact versions it hands out:
//! * a supplied version narrows the candidates with SQL `LIKE '<prefix>%'` on the version
//!   *string*, so prefix `1` also selects `10.0.0`;
//! * only the 20 most recent matching rows (by timestamp, then version text, descending) are
//!   considered;
//! * the highest candidate is bumped until the result is not among the candidates; a supplied
//!   version only matters when there are no candidates.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{HttpError, Status};

/// Default pre-release tag (`pre_tag`).
pub const DEFAULT_PRE_TAG: &str = "rc";

/// Default build tag (`build_tag`).
pub const DEFAULT_BUILD_TAG: &str = "build";

/// Everything that can go wrong with versions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionError {
    /// The text is not a SemVer 2.0 version.
    Invalid { input: String, reason: String },
    /// A supplied version (`version` of `cards/version`) that is neither a full nor a partial
    /// (`1`, `1.2`) version.
    InvalidSupplied { input: String },
    /// A version already stored for the card does not parse; the store is inconsistent.
    StoredInvalid { input: String, reason: String },
    /// `version_type` is not one of the six accepted values.
    UnknownVersionType(String),
    /// `pre_tag`/`build_tag` produced a version that is not SemVer (the reference returns it
    /// anyway and then fails on every later call for the card).
    InvalidTag { generated: String },
    /// The tag to bump has no number in it, so bumping cannot move past an existing version
    /// (the reference loops forever here).
    NoIncrement { version: String },
    /// A numeric part would exceed `u64::MAX`.
    Overflow { version: String },
    /// The supplied version is already registered (client-side rule of the reference).
    AlreadyExists { version: String },
    /// A release candidate was supplied for a version that is already released.
    ReleaseCandidateOfReleased { version: String },
}

impl fmt::Display for VersionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VersionError::Invalid { input, reason } => {
                write!(f, "{input} is not valid SemVer string ({reason})")
            }
            VersionError::InvalidSupplied { input } => {
                write!(f, "Version {input} is not a valid semver or partial semver")
            }
            VersionError::StoredInvalid { input, reason } => write!(
                f,
                "stored version {input} is not valid SemVer string ({reason})"
            ),
            VersionError::UnknownVersionType(value) => write!(
                f,
                "version_type {value:?} is invalid: it should be 'major', 'minor', 'patch', 'pre', 'build' or 'pre_build'"
            ),
            VersionError::InvalidTag { generated } => write!(
                f,
                "pre_tag/build_tag would produce {generated:?}, which is not valid SemVer"
            ),
            VersionError::NoIncrement { version } => write!(
                f,
                "Cannot increment {version}: its pre-release/build tag has no number to increment"
            ),
            VersionError::Overflow { version } => {
                write!(f, "Cannot increment {version}: number too large")
            }
            VersionError::AlreadyExists { version } => {
                write!(f, "Version combination already exists. {version}")
            }
            VersionError::ReleaseCandidateOfReleased { version } => write!(
                f,
                "Cannot create a release candidate for an existing official version. {version}"
            ),
        }
    }
}

impl std::error::Error for VersionError {}

impl HttpError for VersionError {
    fn status(&self) -> Status {
        match self {
            VersionError::Invalid { .. }
            | VersionError::InvalidSupplied { .. }
            | VersionError::UnknownVersionType(_)
            | VersionError::InvalidTag { .. }
            | VersionError::Overflow { .. } => Status::UnprocessableEntity,
            VersionError::NoIncrement { .. }
            | VersionError::AlreadyExists { .. }
            | VersionError::ReleaseCandidateOfReleased { .. } => Status::Conflict,
            VersionError::StoredInvalid { .. } => Status::InternalServerError,
        }
    }
}

/// A SemVer 2.0 version.
///
/// `Eq`/`Hash` are textual identity (build metadata included) so that `1.0.0+b.1` and
/// `1.0.0+b.2` are different registry entries; `Ord` is SemVer precedence with build metadata as
/// a final tie-break to stay consistent with `Eq`. Use [`Version::cmp_precedence`] for pure
/// SemVer precedence.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Version {
    major: u64,
    minor: u64,
    patch: u64,
    pre: Option<String>,
    build: Option<String>,
}

fn invalid(input: &str, reason: impl Into<String>) -> VersionError {
    VersionError::Invalid {
        input: input.to_string(),
        reason: reason.into(),
    }
}

/// `0|[1-9][0-9]*` as a `u64`.
fn parse_numeric(part: &str, what: &str, input: &str) -> Result<u64, VersionError> {
    if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(input, format!("{what} must be a number")));
    }
    if part.len() > 1 && part.starts_with('0') {
        return Err(invalid(input, format!("{what} has a leading zero")));
    }
    part.parse()
        .map_err(|_| invalid(input, format!("{what} is too large")))
}

fn is_identifier_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-'
}

/// Pre-release: dot-separated, non-empty `[0-9A-Za-z-]` identifiers; all-digit ones without a
/// leading zero.
fn check_prerelease(pre: &str) -> Result<(), String> {
    for ident in pre.split('.') {
        if ident.is_empty() {
            return Err("empty pre-release identifier".into());
        }
        if !ident.bytes().all(is_identifier_char) {
            return Err(format!(
                "invalid character in pre-release identifier {ident:?}"
            ));
        }
        if ident.len() > 1 && ident.starts_with('0') && ident.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!(
                "numeric pre-release identifier {ident:?} has a leading zero"
            ));
        }
    }
    Ok(())
}

/// Build metadata: dot-separated, non-empty `[0-9A-Za-z-]` identifiers (leading zeros allowed).
fn check_build(build: &str) -> Result<(), String> {
    for ident in build.split('.') {
        if ident.is_empty() {
            return Err("empty build identifier".into());
        }
        if !ident.bytes().all(is_identifier_char) {
            return Err(format!("invalid character in build identifier {ident:?}"));
        }
    }
    Ok(())
}

/// Compares two all-digit strings by value, whatever their length.
fn cmp_numeric_str(a: &str, b: &str) -> Ordering {
    let a = a.trim_start_matches('0');
    let b = b.trim_start_matches('0');
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// SemVer pre-release precedence of two present pre-release strings.
fn cmp_prerelease(a: &str, b: &str) -> Ordering {
    let numeric = |s: &str| s.bytes().all(|c| c.is_ascii_digit());
    let mut left = a.split('.');
    let mut right = b.split('.');
    loop {
        match (left.next(), right.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) => {
                let ord = match (numeric(x), numeric(y)) {
                    (true, true) => cmp_numeric_str(x, y),
                    (true, false) => Ordering::Less,
                    (false, true) => Ordering::Greater,
                    (false, false) => x.cmp(y),
                };
                if ord != Ordering::Equal {
                    return ord;
                }
            }
        }
    }
}

/// Adds one to a string of ASCII digits, keeping it decimal (no size limit).
fn add_one_decimal(digits: &str) -> String {
    let trimmed = digits.trim_start_matches('0');
    let mut bytes: Vec<u8> = if trimmed.is_empty() {
        vec![b'0']
    } else {
        trimmed.bytes().collect()
    };
    let mut i = bytes.len();
    loop {
        if i == 0 {
            bytes.insert(0, b'1');
            break;
        }
        i -= 1;
        if bytes[i] == b'9' {
            bytes[i] = b'0';
        } else {
            bytes[i] += 1;
            break;
        }
    }
    String::from_utf8(bytes).expect("ASCII digits")
}

/// python-semver's `_increment_string`: increments the last run of digits, keeping the run's
/// width when it had leading zeros (`b.0099` → `b.0100`). Unchanged when there is no digit.
fn increment_last_number(value: &str) -> String {
    let bytes = value.as_bytes();
    let Some(last_digit) = bytes.iter().rposition(u8::is_ascii_digit) else {
        return value.to_string();
    };
    let end = last_digit + 1;
    let start = bytes[..end]
        .iter()
        .rposition(|b| !b.is_ascii_digit())
        .map_or(0, |i| i + 1);
    let next = add_one_decimal(&value[start..end]);
    let keep = end.saturating_sub(next.len()).max(start);
    format!("{}{}{}", &value[..keep], next, &value[end..])
}

fn tag_or_default<'a>(tag: &'a str, default: &'a str) -> &'a str {
    if tag.is_empty() {
        default
    } else {
        tag
    }
}

impl Version {
    /// A release version without pre-release or build metadata.
    pub fn new(major: u64, minor: u64, patch: u64) -> Self {
        Version {
            major,
            minor,
            patch,
            pre: None,
            build: None,
        }
    }

    /// Parses `MAJOR.MINOR.PATCH[-PRE][+BUILD]` strictly (no `v` prefix, no whitespace).
    pub fn parse(input: &str) -> Result<Self, VersionError> {
        let (rest, build) = match input.split_once('+') {
            Some((rest, build)) => (rest, Some(build)),
            None => (input, None),
        };
        let (core, pre) = match rest.split_once('-') {
            Some((core, pre)) => (core, Some(pre)),
            None => (rest, None),
        };
        let parts: Vec<&str> = core.split('.').collect();
        if parts.len() != 3 {
            return Err(invalid(input, "expected MAJOR.MINOR.PATCH"));
        }
        let major = parse_numeric(parts[0], "major", input)?;
        let minor = parse_numeric(parts[1], "minor", input)?;
        let patch = parse_numeric(parts[2], "patch", input)?;
        if let Some(pre) = pre {
            check_prerelease(pre).map_err(|reason| invalid(input, reason))?;
        }
        if let Some(build) = build {
            check_build(build).map_err(|reason| invalid(input, reason))?;
        }
        Ok(Version {
            major,
            minor,
            patch,
            pre: pre.map(str::to_string),
            build: build.map(str::to_string),
        })
    }

    pub fn major(&self) -> u64 {
        self.major
    }

    pub fn minor(&self) -> u64 {
        self.minor
    }

    pub fn patch(&self) -> u64 {
        self.patch
    }

    /// The pre-release part, without the `-`.
    pub fn pre(&self) -> Option<&str> {
        self.pre.as_deref()
    }

    /// The build metadata, without the `+`.
    pub fn build(&self) -> Option<&str> {
        self.build.as_deref()
    }

    /// The reference calls any pre-release version a "release candidate".
    pub fn is_prerelease(&self) -> bool {
        self.pre.is_some()
    }

    /// The same `MAJOR.MINOR.PATCH` without pre-release or build metadata.
    pub fn finalized(&self) -> Version {
        Version::new(self.major, self.minor, self.patch)
    }

    /// SemVer 2.0 precedence (build metadata ignored).
    pub fn cmp_precedence(&self, other: &Version) -> Ordering {
        (self.major, self.minor, self.patch)
            .cmp(&(other.major, other.minor, other.patch))
            .then_with(|| match (&self.pre, &other.pre) {
                (None, None) => Ordering::Equal,
                (None, Some(_)) => Ordering::Greater,
                (Some(_), None) => Ordering::Less,
                (Some(a), Some(b)) => cmp_prerelease(a, b),
            })
    }

    fn overflow(&self) -> VersionError {
        VersionError::Overflow {
            version: self.to_string(),
        }
    }

    /// `X.Y.Z` → `(X+1).0.0`, dropping pre-release and build.
    pub fn bump_major(&self) -> Result<Version, VersionError> {
        let major = self.major.checked_add(1).ok_or_else(|| self.overflow())?;
        Ok(Version::new(major, 0, 0))
    }

    /// `X.Y.Z` → `X.(Y+1).0`, dropping pre-release and build.
    pub fn bump_minor(&self) -> Result<Version, VersionError> {
        let minor = self.minor.checked_add(1).ok_or_else(|| self.overflow())?;
        Ok(Version::new(self.major, minor, 0))
    }

    /// `X.Y.Z` → `X.Y.(Z+1)`, dropping pre-release and build.
    pub fn bump_patch(&self) -> Result<Version, VersionError> {
        let patch = self.patch.checked_add(1).ok_or_else(|| self.overflow())?;
        Ok(Version::new(self.major, self.minor, patch))
    }

    /// Increments the last number of the pre-release (or starts `<tag>.1`; an empty tag means
    /// `rc`), dropping build metadata. An existing pre-release keeps its own tag.
    pub fn bump_prerelease(&self, tag: &str) -> Result<Version, VersionError> {
        let base = match &self.pre {
            Some(pre) => pre.clone(),
            None => format!("{}.0", tag_or_default(tag, DEFAULT_PRE_TAG)),
        };
        let pre = increment_last_number(&base);
        let mut next = self.finalized();
        if check_prerelease(&pre).is_err() {
            return Err(VersionError::InvalidTag {
                generated: format!("{next}-{pre}"),
            });
        }
        next.pre = Some(pre);
        Ok(next)
    }

    /// Increments the last number of the build metadata (or starts `<tag>.1`; an empty tag means
    /// `build`), keeping the pre-release.
    pub fn bump_build(&self, tag: &str) -> Result<Version, VersionError> {
        let base = match &self.build {
            Some(build) => build.clone(),
            None => format!("{}.0", tag_or_default(tag, DEFAULT_BUILD_TAG)),
        };
        let build = increment_last_number(&base);
        let mut next = self.clone();
        next.build = None;
        if check_build(&build).is_err() {
            return Err(VersionError::InvalidTag {
                generated: format!("{next}+{build}"),
            });
        }
        next.build = Some(build);
        Ok(next)
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        self.cmp_precedence(other)
            .then_with(|| self.build.cmp(&other.build))
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)?;
        if let Some(pre) = &self.pre {
            write!(f, "-{pre}")?;
        }
        if let Some(build) = &self.build {
            write!(f, "+{build}")?;
        }
        Ok(())
    }
}

impl FromStr for Version {
    type Err = VersionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Version::parse(s)
    }
}

impl Serialize for Version {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Version {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = String::deserialize(deserializer)?;
        Version::parse(&value).map_err(serde::de::Error::custom)
    }
}

/// Sorts highest first exactly like the reference's `sort_semvers`: a stable ascending sort by
/// precedence, then reversed, so versions of equal precedence (differing only in build
/// metadata) end up in reverse input order.
pub fn sort_desc(versions: &mut [Version]) {
    versions.sort_by(Version::cmp_precedence);
    versions.reverse();
}

/// Parses stored version strings and sorts them with [`sort_desc`].
pub fn sort_desc_strs<S: AsRef<str>>(versions: &[S]) -> Result<Vec<Version>, VersionError> {
    let mut parsed = versions
        .iter()
        .map(|v| parse_stored(v.as_ref()))
        .collect::<Result<Vec<_>, _>>()?;
    sort_desc(&mut parsed);
    Ok(parsed)
}

/// Parses a version read from storage; failure is the store's fault, not the caller's.
pub fn parse_stored(input: &str) -> Result<Version, VersionError> {
    Version::parse(input).map_err(|err| match err {
        VersionError::Invalid { input, reason } => VersionError::StoredInvalid { input, reason },
        other => other,
    })
}

/// The kind of increment asked of `cards/version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VersionType {
    Major,
    Minor,
    Patch,
    Pre,
    Build,
    PreBuild,
}

impl VersionType {
    pub const ALL: [VersionType; 6] = [
        VersionType::Major,
        VersionType::Minor,
        VersionType::Patch,
        VersionType::Pre,
        VersionType::Build,
        VersionType::PreBuild,
    ];

    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            VersionType::Major => "major",
            VersionType::Minor => "minor",
            VersionType::Patch => "patch",
            VersionType::Pre => "pre",
            VersionType::Build => "build",
            VersionType::PreBuild => "pre_build",
        }
    }

    /// The request body's `version_type`: exact lowercase values only, as the reference's
    /// pydantic enum validation (`"MAJOR"` is a 422 there).
    pub fn parse(value: &str) -> Result<Self, VersionError> {
        VersionType::ALL
            .into_iter()
            .find(|t| t.as_str() == value)
            .ok_or_else(|| VersionError::UnknownVersionType(value.to_string()))
    }

    /// The client library's `VersionType.from_str`: trimmed and case-insensitive.
    pub fn parse_lenient(value: &str) -> Result<Self, VersionError> {
        let trimmed = crate::naming::python_strip(value);
        VersionType::ALL
            .into_iter()
            .find(|t| trimmed.eq_ignore_ascii_case(t.as_str()))
            .ok_or_else(|| VersionError::UnknownVersionType(value.to_string()))
    }

    /// `major`, `minor` or `patch`.
    pub fn is_release_bump(self) -> bool {
        matches!(
            self,
            VersionType::Major | VersionType::Minor | VersionType::Patch
        )
    }

    fn step(
        self,
        version: &Version,
        pre_tag: &str,
        build_tag: &str,
    ) -> Result<Version, VersionError> {
        match self {
            VersionType::Major => version.bump_major(),
            VersionType::Minor => version.bump_minor(),
            VersionType::Patch => version.bump_patch(),
            VersionType::Pre => version.bump_prerelease(pre_tag),
            VersionType::Build => version.bump_build(build_tag),
            VersionType::PreBuild => version.bump_prerelease(pre_tag)?.bump_build(build_tag),
        }
    }
}

impl fmt::Display for VersionType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for VersionType {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for VersionType {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = String::deserialize(deserializer)?;
        VersionType::parse(&value).map_err(serde::de::Error::custom)
    }
}

impl FromStr for VersionType {
    type Err = VersionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        VersionType::parse(s)
    }
}

/// A version supplied with `cards/version`: full SemVer, or partial `MAJOR` / `MAJOR.MINOR`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SuppliedVersion {
    Full(Version),
    Partial { major: u64, minor: Option<u64> },
}

impl SuppliedVersion {
    /// Three or more dot-separated parts must be a full SemVer version; fewer must all be
    /// numbers. Unlike the reference, partial parts with leading zeros are refused: it would
    /// hand out `01.0.0`, which no later SemVer parse accepts.
    pub fn parse(input: &str) -> Result<Self, VersionError> {
        let bad = || VersionError::InvalidSupplied {
            input: input.to_string(),
        };
        let parts: Vec<&str> = input.split('.').collect();
        if parts.len() >= 3 {
            return Version::parse(input)
                .map(SuppliedVersion::Full)
                .map_err(|_| bad());
        }
        let number = |part: &str| parse_numeric(part, "part", input).map_err(|_| bad());
        let major = number(parts[0])?;
        let minor = parts.get(1).map(|p| number(p)).transpose()?;
        Ok(SuppliedVersion::Partial { major, minor })
    }

    /// The reference's `valid_version`: a full version finalized, a partial one as given.
    pub fn valid_version(&self) -> String {
        match self {
            SuppliedVersion::Full(v) => v.finalized().to_string(),
            SuppliedVersion::Partial { major, minor: None } => major.to_string(),
            SuppliedVersion::Partial {
                major,
                minor: Some(minor),
            } => format!("{major}.{minor}"),
        }
    }

    /// The version used when the card has no versions yet: partial ones padded with zeros.
    pub fn base_version(&self) -> Version {
        match self {
            SuppliedVersion::Full(v) => v.finalized(),
            SuppliedVersion::Partial { major, minor } => {
                Version::new(*major, minor.unwrap_or(0), 0)
            }
        }
    }

    fn major(&self) -> u64 {
        match self {
            SuppliedVersion::Full(v) => v.major(),
            SuppliedVersion::Partial { major, .. } => *major,
        }
    }

    fn minor(&self) -> Option<u64> {
        match self {
            SuppliedVersion::Full(v) => Some(v.minor()),
            SuppliedVersion::Partial { minor, .. } => *minor,
        }
    }
}

/// The inputs of `cards/version` other than the card's existing versions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionRequest {
    pub version_type: VersionType,
    /// The `version.version` field, if any.
    pub version: Option<String>,
    pub pre_tag: String,
    pub build_tag: String,
}

impl VersionRequest {
    /// A request with the reference's default tags (`rc`, `build`) and no supplied version.
    pub fn new(version_type: VersionType) -> Self {
        VersionRequest {
            version_type,
            version: None,
            pre_tag: DEFAULT_PRE_TAG.to_string(),
            build_tag: DEFAULT_BUILD_TAG.to_string(),
        }
    }

    pub fn with_version(mut self, version: impl Into<String>) -> Self {
        self.version = Some(version.into());
        self
    }

    pub fn with_pre_tag(mut self, tag: impl Into<String>) -> Self {
        self.pre_tag = tag.into();
        self
    }

    pub fn with_build_tag(mut self, tag: impl Into<String>) -> Self {
        self.build_tag = tag.into();
        self
    }

    /// The supplied version, validated.
    pub fn supplied(&self) -> Result<Option<SuppliedVersion>, VersionError> {
        self.version
            .as_deref()
            .map(SuppliedVersion::parse)
            .transpose()
    }
}

/// Which stored versions are candidates for the next one, as equalities on the version
/// numbers a store can filter by (`None` is any). The reference picks candidates with a
/// textual `LIKE '<prefix>%'` (so `1` also selected `10.0.0`); here the same scope applies to
/// version numbers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VersionScope {
    pub major: Option<u64>,
    pub minor: Option<u64>,
    pub patch: Option<u64>,
}

impl VersionScope {
    pub fn contains(&self, version: &Version) -> bool {
        self.major.is_none_or(|m| version.major() == m)
            && self.minor.is_none_or(|m| version.minor() == m)
            && self.patch.is_none_or(|p| version.patch() == p)
    }
}

impl VersionRequest {
    /// The candidates' scope. [`next_version`] reads only the stored versions whose numbers are
    /// at least the highest numbers in this scope (the highest candidate, its pre-releases and
    /// builds, and any higher version it might step onto), so a store may send just those.
    pub fn scope(&self) -> Result<VersionScope, VersionError> {
        let Some(supplied) = self.supplied()? else {
            return Ok(VersionScope::default());
        };
        let major = Some(supplied.major());
        Ok(match (self.version_type, &supplied) {
            (VersionType::Major, _) => VersionScope::default(),
            (VersionType::Minor, _) => VersionScope {
                major,
                ..VersionScope::default()
            },
            (
                VersionType::Pre | VersionType::Build | VersionType::PreBuild,
                SuppliedVersion::Full(v),
            ) => VersionScope {
                major,
                minor: Some(v.minor()),
                patch: Some(v.patch()),
            },
            (
                VersionType::Patch | VersionType::Pre | VersionType::Build | VersionType::PreBuild,
                _,
            ) => VersionScope {
                major,
                minor: supplied.minor(),
                patch: None,
            },
        })
    }
}

/// Chooses the version for a new card, as the reference's `cards/version` does, with two
/// fixes: candidates are chosen by version numbers rather than by text prefix, and every
/// existing version counts (the reference read only the 20 newest, so it could hand out a
/// version that already existed).
///
/// `existing` are the card's stored versions (same registry, name and repository), any order.
pub fn next_version<S: AsRef<str>>(
    existing: &[S],
    request: &VersionRequest,
) -> Result<Version, VersionError> {
    let supplied = request.supplied()?;
    let scope = request.scope()?;
    let all = sort_desc_strs(existing)?;
    let sorted: Vec<Version> = all.iter().filter(|v| scope.contains(v)).cloned().collect();

    let step = |v: &Version| {
        request
            .version_type
            .step(v, &request.pre_tag, &request.build_tag)
    };

    let Some(highest) = sorted.first() else {
        let base = supplied
            .as_ref()
            .map_or_else(|| Version::new(1, 0, 0), SuppliedVersion::base_version);
        return if request.version_type.is_release_bump() {
            Ok(base)
        } else {
            step(&base)
        };
    };

    let mut current = highest.clone();
    if request.version_type.is_release_bump() && current.is_prerelease() {
        current = current.finalized();
        // Only release candidates so far: release the highest one.
        if sorted.iter().all(Version::is_prerelease) {
            return Ok(current);
        }
    }
    while all.contains(&current) {
        let next = step(&current)?;
        if next == current {
            return Err(VersionError::NoIncrement {
                version: current.to_string(),
            });
        }
        current = next;
    }
    Ok(current)
}

/// The reference client's check of an explicitly chosen full version before registering it
/// (partial versions pass). `existing` are the card's stored versions.
pub fn check_supplied_version<S: AsRef<str>>(
    existing: &[S],
    supplied: &str,
) -> Result<(), VersionError> {
    let SuppliedVersion::Full(version) = SuppliedVersion::parse(supplied)? else {
        return Ok(());
    };
    let prefix = version.finalized().to_string();
    let candidates: Vec<&str> = existing
        .iter()
        .map(AsRef::as_ref)
        .filter(|v| v.starts_with(&prefix))
        .collect();
    for record in sort_desc_strs(&candidates)? {
        if !record.is_prerelease() && version.is_prerelease() {
            return Err(VersionError::ReleaseCandidateOfReleased {
                version: supplied.to_string(),
            });
        }
        if record.to_string() == supplied {
            return Err(VersionError::AlreadyExists {
                version: supplied.to_string(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
