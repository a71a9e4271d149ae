//! Version filters of `cards/list`, evaluated on version numbers.
//!
//! The same spellings as opsml 2.2.4: `1`, `1.2`, `1.*`, `1.2.*`, `*`, `~1.2.3`, `^1.2.3`,
//! an exact version, and with `~`/`^` only the highest match is returned. The reference turned
//! each filter into a text prefix for SQL `LIKE`, so `1` also selected `10.0.0` and `~1.2.3`
//! returned `1.20.0`; here the numbers are compared:
//! * `1`, `1.*`, `~1` — major 1; `1.2`, `1.2.*`, `~1.2` — major 1 and minor 2;
//! * `1.2.3` — version 1.2.3, with its pre-releases and build variants;
//! * `1.2.3-rc.1` — exactly that pre-release (any build metadata);
//!   `1.2.3+build.1` — exactly that text;
//! * `~1.2.3` — `>=1.2.3, <1.3.0`; `^1.2.3` — `>=1.2.3, <2.0.0` (pre-releases of the bound excluded) (`^0.2.3`: `<0.3.0`; `^0.0.3`:
//!   `<0.0.4`), as Cargo and npm read them.
//!
//! A filter that is none of these is refused (the reference silently matched nothing).

use std::fmt;

use crate::error::{HttpError, Status};
use crate::semver::{SuppliedVersion, Version};

/// Why a filter was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilterError {
    /// More than one kind of `*`, `^`, `~` appears.
    MultipleSymbols(String),
    /// Not a version, a partial version or one of the range forms.
    Invalid(String),
}

impl fmt::Display for FilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FilterError::MultipleSymbols(raw) => write!(
                f,
                "Only one SemVer character is allowed in the version string (got {raw:?})"
            ),
            FilterError::Invalid(raw) => write!(
                f,
                "invalid version filter {raw:?}: use 1, 1.2, 1.*, 1.2.*, 1.2.3, 1.2.3-rc.1, ~1.2.3 or ^1.2.3"
            ),
        }
    }
}

impl std::error::Error for FilterError {}

impl HttpError for FilterError {
    /// The reference answers 500 ("Error listing cards. ..."); it is a bad request field.
    fn status(&self) -> Status {
        Status::UnprocessableEntity
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Constraint {
    Any,
    Major(u64),
    MajorMinor(u64, u64),
    /// This core version, any pre-release or build of it.
    Core(Version),
    /// This version by precedence; with build metadata, that build only.
    Exact(Version),
    /// `low <= v < high` by precedence; no `high` when nothing is above (`^18446744073709551615`).
    Range {
        low: Version,
        high: Option<Version>,
    },
}

/// A parsed `cards/list` version filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionFilter {
    raw: String,
    constraint: Constraint,
    top_only: bool,
}

fn partial(raw: &str, text: &str) -> Result<Constraint, FilterError> {
    let invalid = || FilterError::Invalid(raw.to_string());
    Ok(match SuppliedVersion::parse(text).map_err(|_| invalid())? {
        SuppliedVersion::Partial { major, minor: None } => Constraint::Major(major),
        SuppliedVersion::Partial {
            major,
            minor: Some(minor),
        } => Constraint::MajorMinor(major, minor),
        SuppliedVersion::Full(v) if v.pre().is_none() && v.build().is_none() => Constraint::Core(v),
        SuppliedVersion::Full(v) => Constraint::Exact(v),
    })
}

/// `(major + 1).0.0`, the exclusive bound above a major series; none above `u64::MAX`.
fn next_major(major: u64) -> Option<Version> {
    major.checked_add(1).map(|m| Version::new(m, 0, 0))
}

/// `major.(minor + 1).0`; at `u64::MAX` no higher minor exists, so the next major bounds it.
fn next_minor(major: u64, minor: u64) -> Option<Version> {
    match minor.checked_add(1) {
        Some(n) => Some(Version::new(major, n, 0)),
        None => next_major(major),
    }
}

/// `major.minor.(patch + 1)`, carrying into the minor at `u64::MAX`.
fn next_patch(major: u64, minor: u64, patch: u64) -> Option<Version> {
    match patch.checked_add(1) {
        Some(p) => Some(Version::new(major, minor, p)),
        None => next_minor(major, minor),
    }
}

/// The lowest version of a (possibly partial) range start, e.g. `1.2` → `1.2.0`.
fn lower_bound(c: &Constraint) -> Option<Version> {
    match c {
        Constraint::Major(m) => Some(Version::new(*m, 0, 0)),
        Constraint::MajorMinor(m, n) => Some(Version::new(*m, *n, 0)),
        Constraint::Core(v) | Constraint::Exact(v) => Some(v.clone()),
        _ => None,
    }
}

impl VersionFilter {
    pub fn parse(raw: &str) -> Result<Self, FilterError> {
        let text = raw.trim();
        let symbols = ['*', '^', '~']
            .iter()
            .filter(|&&c| text.contains(c))
            .count();
        if symbols > 1 {
            return Err(FilterError::MultipleSymbols(raw.to_string()));
        }
        let invalid = || FilterError::Invalid(raw.to_string());
        let (constraint, top_only) = if text.is_empty() || text == "*" {
            (Constraint::Any, false)
        } else if text.contains('*') {
            let head = text.strip_suffix(".*").ok_or_else(invalid)?;
            match partial(raw, head)? {
                c @ (Constraint::Major(_) | Constraint::MajorMinor(..)) => (c, false),
                _ => return Err(invalid()),
            }
        } else if let Some(rest) = text.strip_prefix('~') {
            let c = partial(raw, rest)?;
            let c = match c {
                Constraint::Core(v) | Constraint::Exact(v) => Constraint::Range {
                    high: next_minor(v.major(), v.minor()),
                    low: v,
                },
                other => other,
            };
            (c, true)
        } else if let Some(rest) = text.strip_prefix('^') {
            let c = partial(raw, rest)?;
            let low = lower_bound(&c).ok_or_else(invalid)?;
            let high = match (low.major(), low.minor(), &c) {
                (0, _, Constraint::Major(_)) => next_major(0),
                (0, 0, Constraint::Core(_) | Constraint::Exact(_)) => next_patch(0, 0, low.patch()),
                (0, minor, _) => next_minor(0, minor),
                (major, _, _) => next_major(major),
            };
            (Constraint::Range { low, high }, true)
        } else {
            (partial(raw, text)?, false)
        };
        Ok(VersionFilter {
            raw: raw.to_string(),
            constraint,
            top_only,
        })
    }

    /// The filter as received.
    pub fn raw(&self) -> &str {
        &self.raw
    }

    /// Whether only the highest matching record is returned (`^` and `~`).
    pub fn top_only(&self) -> bool {
        self.top_only
    }

    /// The majors a matching version can have, `low..=high`; `None` when unbounded. Lets a
    /// query skip whole majors before [`matches`](Self::matches) decides.
    pub fn major_bounds(&self) -> Option<(u64, u64)> {
        match &self.constraint {
            Constraint::Any => None,
            Constraint::Major(m) | Constraint::MajorMinor(m, _) => Some((*m, *m)),
            Constraint::Core(v) | Constraint::Exact(v) => Some((v.major(), v.major())),
            Constraint::Range { low, high } => high.as_ref().map(|h| (low.major(), h.major())),
        }
    }

    pub fn matches(&self, v: &Version) -> bool {
        use std::cmp::Ordering::*;
        match &self.constraint {
            Constraint::Any => true,
            Constraint::Major(m) => v.major() == *m,
            Constraint::MajorMinor(m, n) => v.major() == *m && v.minor() == *n,
            Constraint::Core(c) => v.finalized() == *c,
            Constraint::Exact(e) => {
                v.cmp_precedence(e) == Equal && (e.build().is_none() || e.build() == v.build())
            }
            // Pre-releases of the upper bound (`1.3.0-rc.1` for `~1.2.3`) sort below it but
            // belong to the next series.
            Constraint::Range { low, high } => {
                v.cmp_precedence(low) != Less
                    && high
                        .as_ref()
                        .is_none_or(|high| v.cmp_precedence(high) == Less && v.finalized() != *high)
            }
        }
    }
}

impl std::str::FromStr for VersionFilter {
    type Err = FilterError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        VersionFilter::parse(s)
    }
}

/// `cards/list`'s default limit: 20 when none of `name`, `repository`, `limit` is given (empty
/// strings and `0` count as not given, as in the reference).
pub fn default_list_limit(
    name: Option<&str>,
    repository: Option<&str>,
    limit: Option<i64>,
) -> Option<i64> {
    let given = name.is_some_and(|s| !s.is_empty())
        || repository.is_some_and(|s| !s.is_empty())
        || limit.is_some_and(|l| l != 0);
    if given {
        limit
    } else {
        Some(20)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STORED: &[&str] = &[
        "1.0.0",
        "1.0.1",
        "1.2.0",
        "1.2.3",
        "1.2.10",
        "1.20.0",
        "1.3.0-rc.1",
        "1.3.0",
        "10.0.0",
        "2.0.0-rc.1",
        "2.0.0",
        "2.1.0+build.1",
        "1.2.4-rc.1",
        "0.2.5",
        "0.3.0",
        "0.0.3",
        "0.0.4",
    ];

    /// The stored versions a filter selects, highest first (top only for `~`/`^`).
    fn select(filter: &str) -> Vec<String> {
        let f = VersionFilter::parse(filter).unwrap();
        let mut versions: Vec<Version> = STORED
            .iter()
            .map(|v| Version::parse(v).unwrap())
            .filter(|v| f.matches(v))
            .collect();
        versions.sort_by(|a, b| b.cmp(a));
        if f.top_only() {
            versions.truncate(1);
        }
        versions.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn filters_compare_numbers_not_text() {
        let cases: &[(&str, &[&str])] = &[
            (
                "1",
                &[
                    "1.20.0",
                    "1.3.0",
                    "1.3.0-rc.1",
                    "1.2.10",
                    "1.2.4-rc.1",
                    "1.2.3",
                    "1.2.0",
                    "1.0.1",
                    "1.0.0",
                ],
            ),
            (
                "1.*",
                &[
                    "1.20.0",
                    "1.3.0",
                    "1.3.0-rc.1",
                    "1.2.10",
                    "1.2.4-rc.1",
                    "1.2.3",
                    "1.2.0",
                    "1.0.1",
                    "1.0.0",
                ],
            ),
            ("1.2", &["1.2.10", "1.2.4-rc.1", "1.2.3", "1.2.0"]),
            ("1.2.*", &["1.2.10", "1.2.4-rc.1", "1.2.3", "1.2.0"]),
            ("1.2.3", &["1.2.3"]),
            ("1.3.0", &["1.3.0", "1.3.0-rc.1"]),
            ("1.3.0-rc.1", &["1.3.0-rc.1"]),
            ("2.1.0+build.1", &["2.1.0+build.1"]),
            ("2.1.0+build.2", &[]),
            ("9", &[]),
            ("~1.2.3", &["1.2.10"]),
            ("~1.2", &["1.2.10"]),
            ("~1", &["1.20.0"]),
            ("^1.2.3", &["1.20.0"]),
            ("^2.0.0", &["2.1.0+build.1"]),
            ("^0.2.3", &["0.2.5"]),
            ("^0.0.3", &["0.0.3"]),
            ("^0", &["0.3.0"]),
        ];
        for (filter, want) in cases {
            assert_eq!(select(filter), *want, "{filter}");
        }
        assert_eq!(select("*").len(), STORED.len());
        assert_eq!(select("").len(), STORED.len());
    }

    #[test]
    fn bad_filters_are_refused() {
        assert_eq!(
            VersionFilter::parse("^1.*"),
            Err(FilterError::MultipleSymbols("^1.*".into()))
        );
        for bad in [
            "abc", "1.x", "1*", "1.2*", "*1", "1.2.3.4", "~", "^", "1.2.3.*", "%", "1_2",
        ] {
            assert!(
                matches!(VersionFilter::parse(bad), Err(FilterError::Invalid(_))),
                "{bad}"
            );
        }
        let e = VersionFilter::parse("abc").unwrap_err();
        assert_eq!(e.status(), Status::UnprocessableEntity);
    }

    /// Regression (found by fuzz/version): the upper bound of `~`/`^` was computed with `+ 1`,
    /// which overflowed at `u64::MAX` (a panic in debug builds, an empty range in release).
    #[test]
    fn bounds_at_u64_max() {
        let max = u64::MAX;
        let cases: &[(String, &[String], &[String])] = &[
            (
                format!("^{max}.0.0"),
                &[format!("{max}.0.0"), format!("{max}.5.1")],
                &[],
            ),
            (
                format!("^{max}"),
                &[format!("{max}.{max}.{max}")],
                &[format!("{max}.0.0-rc.1")],
            ),
            (
                format!("~1.{max}.0"),
                &[format!("1.{max}.3")],
                &["2.0.0".into(), "2.0.0-rc.1".into()],
            ),
            (
                format!("^0.{max}.1"),
                &[format!("0.{max}.2")],
                &["1.0.0".into(), "1.0.0-rc.1".into()],
            ),
            (
                format!("^0.0.{max}"),
                &[format!("0.0.{max}"), format!("0.0.{max}+b.1")],
                &["0.1.0".into(), "0.1.0-rc.1".into()],
            ),
            (
                format!("~{max}.{max}.0"),
                &[format!("{max}.{max}.{max}")],
                &[],
            ),
        ];
        for (filter, hits, misses) in cases {
            let f = VersionFilter::parse(filter).unwrap();
            for v in hits.iter() {
                assert!(f.matches(&Version::parse(v).unwrap()), "{filter} {v}");
            }
            for v in misses.iter() {
                assert!(!f.matches(&Version::parse(v).unwrap()), "{filter} {v}");
            }
        }
    }

    #[test]
    fn default_limit() {
        assert_eq!(default_list_limit(None, None, None), Some(20));
        assert_eq!(default_list_limit(Some(""), None, Some(0)), Some(20));
        assert_eq!(default_list_limit(Some("n"), None, None), None);
        assert_eq!(default_list_limit(None, Some("r"), Some(3)), Some(3));
        assert_eq!(default_list_limit(None, None, Some(5)), Some(5));
    }

    #[test]
    fn major_bounds_cover_every_match() {
        let bounds = |f: &str| VersionFilter::parse(f).unwrap().major_bounds();
        assert_eq!(bounds("1"), Some((1, 1)));
        assert_eq!(bounds("1.2"), Some((1, 1)));
        assert_eq!(bounds("1.*"), Some((1, 1)));
        assert_eq!(bounds("2.3.4"), Some((2, 2)));
        assert_eq!(bounds("~1.2.3"), Some((1, 1)));
        assert_eq!(bounds("^1.2.3"), Some((1, 2)));
        assert_eq!(bounds("^18446744073709551615"), None);
        // Whatever `matches` accepts lies inside the bounds.
        for f in ["1", "1.2", "~1.2.3", "^0.2.3", "^1.2.3", "1.2.3-rc.1"] {
            let filter = VersionFilter::parse(f).unwrap();
            let (low, high) = filter.major_bounds().unwrap();
            for v in [
                "0.2.9",
                "1.0.0",
                "1.2.3-rc.1",
                "1.2.4",
                "1.9.0",
                "2.0.0-rc.1",
                "2.0.0",
                "3.1.0",
            ] {
                let v = Version::parse(v).unwrap();
                if filter.matches(&v) {
                    assert!((low..=high).contains(&v.major()), "{f} {v}");
                }
            }
        }
    }
}
