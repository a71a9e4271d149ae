//! Version filters of `cards/list`.
//!
//! The reference does not evaluate ranges. It turns the filter into a string prefix and runs
//! `version LIKE '<prefix>%'` on the stored version text (opsml 2.2.4, SQLite):
//! * more than one *kind* of `*`, `^`, `~` in the filter is an error;
//! * `*`: keep the text before the first `*`, then drop its last character (`1.2.*` → `1.2`,
//!   but `1.2*` → `1.`, `1*` → `` i.e. everything);
//! * `^`: the text before the first `.`, without `^` (`^1.2.3` → `1`);
//! * `~`: the first two dot-separated parts, without `~` (`~1.2.3` → `1.2`);
//! * anything else is used as is (`1.2.3` → `1.2.3`, which also selects `1.2.30` and
//!   `1.2.3-rc.1`).
//!
//! Being `LIKE`, the prefix is matched case-insensitively (ASCII, SQLite's default), `_` matches
//! any one character and `%` any run, and it is purely textual: `1` selects `10.0.0`,
//! `~1.2.3` selects `1.20.0`. With `^` or `~` only the top (highest) record is returned, and
//! `ignore_release_candidates` drops pre-release versions after the query. This module
//! reproduces exactly that, so results match the reference row for row.

use std::fmt;

use crate::error::{HttpError, Status};
use crate::semver::{parse_stored, sort_desc_strs, Version, VersionError};

/// Why a filter was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilterError {
    /// More than one of `*`, `^`, `~` kinds appear.
    MultipleSymbols(String),
}

impl fmt::Display for FilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FilterError::MultipleSymbols(raw) => write!(
                f,
                "Only one SemVer character is allowed in the version string (got {raw:?})"
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

/// Which rule turned the filter into a prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FilterKind {
    /// No symbol: the filter text itself is the prefix.
    Plain,
    /// `*`
    Star,
    /// `^`: also keeps only the top record.
    Caret,
    /// `~`: also keeps only the top record.
    Tilde,
}

/// A parsed `cards/list` version filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionFilter {
    raw: String,
    kind: FilterKind,
    prefix: String,
}

/// Python's `re.sub(".$", "", s)`: drops the last character, except that `.` never matches a
/// newline and `$` also matches before a final newline.
fn drop_last_char_like_python(s: &str) -> String {
    let mut chars: Vec<char> = s.chars().collect();
    match chars.last() {
        None => {}
        Some('\n') => {
            let n = chars.len();
            if n >= 2 && chars[n - 2] != '\n' {
                chars.remove(n - 2);
            }
        }
        Some(_) => {
            chars.pop();
        }
    }
    chars.into_iter().collect()
}

impl VersionFilter {
    /// Parses a filter as the reference's `get_version_to_search` does.
    pub fn parse(raw: &str) -> Result<Self, FilterError> {
        let symbols = ['*', '^', '~'].iter().filter(|&&c| raw.contains(c)).count();
        if symbols > 1 {
            return Err(FilterError::MultipleSymbols(raw.to_string()));
        }
        let (kind, prefix) = if raw.contains('*') {
            let before = raw.split('*').next().unwrap_or_default();
            (FilterKind::Star, drop_last_char_like_python(before))
        } else if raw.contains('^') {
            let first = raw.split('.').next().unwrap_or_default();
            (FilterKind::Caret, first.replace('^', ""))
        } else if raw.contains('~') {
            let first_two: Vec<&str> = raw.split('.').take(2).collect();
            (FilterKind::Tilde, first_two.join(".").replace('~', ""))
        } else {
            (FilterKind::Plain, raw.to_string())
        };
        Ok(VersionFilter {
            raw: raw.to_string(),
            kind,
            prefix,
        })
    }

    /// The filter as received.
    pub fn raw(&self) -> &str {
        &self.raw
    }

    pub fn kind(&self) -> FilterKind {
        self.kind
    }

    /// The text the stored version must start with (in `LIKE` terms).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The pattern for SQL push-down: `version LIKE ?` with this, no `ESCAPE`, on SQLite (whose
    /// `LIKE` is ASCII case-insensitive) gives the same rows as [`VersionFilter::matches_str`].
    pub fn like_pattern(&self) -> String {
        format!("{}%", self.prefix)
    }

    /// Whether only the highest matching record is returned (`^` and `~`).
    pub fn top_only(&self) -> bool {
        matches!(self.kind, FilterKind::Caret | FilterKind::Tilde)
    }

    /// Whether a stored version string passes the filter (textual, like the SQL query).
    pub fn matches_str(&self, version: &str) -> bool {
        like_matches(version, &self.like_pattern())
    }

    /// Whether a version passes the filter (on its canonical text).
    pub fn matches(&self, version: &Version) -> bool {
        self.matches_str(&version.to_string())
    }
}

impl std::str::FromStr for VersionFilter {
    type Err = FilterError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        VersionFilter::parse(s)
    }
}

fn like_char_eq(a: char, b: char) -> bool {
    a == b || (a.is_ascii() && b.is_ascii() && a.eq_ignore_ascii_case(&b))
}

/// SQLite's `value LIKE pattern` without `ESCAPE`: `%` is any run of characters, `_` exactly one
/// character, ASCII letters compare case-insensitively, everything else exactly.
pub fn like_matches(value: &str, pattern: &str) -> bool {
    let value: Vec<char> = value.chars().collect();
    let pattern: Vec<char> = pattern.chars().collect();
    let (mut v, mut p) = (0, 0);
    // Position of the last `%` seen and the value position it is currently standing in for.
    let mut backtrack: Option<(usize, usize)> = None;
    while v < value.len() {
        match pattern.get(p) {
            Some('%') => {
                backtrack = Some((p, v));
                p += 1;
            }
            Some(&c) if c == '_' || like_char_eq(c, value[v]) => {
                v += 1;
                p += 1;
            }
            _ => match backtrack {
                Some((star, consumed)) => {
                    backtrack = Some((star, consumed + 1));
                    p = star + 1;
                    v = consumed + 1;
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == '%')
}

/// The reference's "release candidate" test: any pre-release version.
pub fn is_release_candidate(version: &str) -> Result<bool, VersionError> {
    Ok(parse_stored(version)?.is_prerelease())
}

/// The post-query rules of `cards/list`, for records already in their final order (highest
/// first when a name was given): drop release candidates when asked, then keep only the first
/// record for `^`/`~` filters.
pub fn apply_list_rules<T>(
    records: Vec<T>,
    filter: Option<&VersionFilter>,
    ignore_release_candidates: bool,
    version_of: impl Fn(&T) -> &str,
) -> Result<Vec<T>, VersionError> {
    let mut records = if ignore_release_candidates {
        let mut kept = Vec::with_capacity(records.len());
        for record in records {
            if !is_release_candidate(version_of(&record))? {
                kept.push(record);
            }
        }
        kept
    } else {
        records
    };
    if filter.is_some_and(VersionFilter::top_only) {
        records.truncate(1);
    }
    Ok(records)
}

/// The versions `cards/list` returns for one card (name given, no limit): filter, sort highest
/// first like the reference, then [`apply_list_rules`].
pub fn select_versions<S: AsRef<str>>(
    versions: &[S],
    filter: Option<&VersionFilter>,
    ignore_release_candidates: bool,
) -> Result<Vec<Version>, VersionError> {
    let matching: Vec<&str> = versions
        .iter()
        .map(AsRef::as_ref)
        .filter(|v| filter.is_none_or(|f| f.matches_str(v)))
        .collect();
    let sorted = sort_desc_strs(&matching)?;
    let versions: Vec<(Version, String)> = sorted
        .into_iter()
        .map(|v| {
            let text = v.to_string();
            (v, text)
        })
        .collect();
    let kept = apply_list_rules(versions, filter, ignore_release_candidates, |(_, s)| s)?;
    Ok(kept.into_iter().map(|(v, _)| v).collect())
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

    /// Versions stored for one card on the reference server.
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
    ];

    type Case<'a> = (&'a str, bool, Result<&'a [&'a str], &'a str>);

    /// (filter, ignore_release_candidates, versions returned by the opsml 2.2.4 server for
    /// `cards/list` with the card's name and repository).
    #[rustfmt::skip]
    const REFERENCE_CASES: &[Case] = &[
        ("1", false, Ok(&["10.0.0", "1.20.0", "1.3.0", "1.3.0-rc.1", "1.2.10", "1.2.4-rc.1", "1.2.3", "1.2.0", "1.0.1", "1.0.0"])),
        ("1.2", false, Ok(&["1.20.0", "1.2.10", "1.2.4-rc.1", "1.2.3", "1.2.0"])),
        ("1.*", false, Ok(&["10.0.0", "1.20.0", "1.3.0", "1.3.0-rc.1", "1.2.10", "1.2.4-rc.1", "1.2.3", "1.2.0", "1.0.1", "1.0.0"])),
        ("1.2.*", false, Ok(&["1.20.0", "1.2.10", "1.2.4-rc.1", "1.2.3", "1.2.0"])),
        ("~1.2.3", false, Ok(&["1.20.0"])),
        ("^1.2.3", false, Ok(&["10.0.0"])),
        ("1.2.3", false, Ok(&["1.2.3"])),
        ("*", false, Ok(&["10.0.0", "2.1.0+build.1", "2.0.0", "2.0.0-rc.1", "1.20.0", "1.3.0", "1.3.0-rc.1", "1.2.10", "1.2.4-rc.1", "1.2.3", "1.2.0", "1.0.1", "1.0.0"])),
        ("1*", false, Ok(&["10.0.0", "2.1.0+build.1", "2.0.0", "2.0.0-rc.1", "1.20.0", "1.3.0", "1.3.0-rc.1", "1.2.10", "1.2.4-rc.1", "1.2.3", "1.2.0", "1.0.1", "1.0.0"])),
        ("1.2*", false, Ok(&["1.20.0", "1.3.0", "1.3.0-rc.1", "1.2.10", "1.2.4-rc.1", "1.2.3", "1.2.0", "1.0.1", "1.0.0"])),
        ("2.0.0-rc", false, Ok(&["2.0.0-rc.1"])),
        ("2.0.0-RC", false, Ok(&["2.0.0-rc.1"])),
        ("1_2", false, Ok(&["1.20.0", "1.2.10", "1.2.4-rc.1", "1.2.3", "1.2.0"])),
        ("1.%", false, Ok(&["1.20.0", "1.3.0", "1.3.0-rc.1", "1.2.10", "1.2.4-rc.1", "1.2.3", "1.2.0", "1.0.1", "1.0.0"])),
        ("^1.*", false, Err("MultipleSymbols")),
        ("~", false, Ok(&["10.0.0"])),
        ("^", false, Ok(&["10.0.0"])),
        ("", false, Ok(&["10.0.0", "2.1.0+build.1", "2.0.0", "2.0.0-rc.1", "1.20.0", "1.3.0", "1.3.0-rc.1", "1.2.10", "1.2.4-rc.1", "1.2.3", "1.2.0", "1.0.1", "1.0.0"])),
        ("1.2.3-rc", false, Ok(&[])),
        ("~1", false, Ok(&["10.0.0"])),
        ("^2.0.0-rc.1", false, Ok(&["2.1.0+build.1"])),
        ("1.2.3.*", false, Ok(&["1.2.3"])),
        ("*1", false, Ok(&["10.0.0", "2.1.0+build.1", "2.0.0", "2.0.0-rc.1", "1.20.0", "1.3.0", "1.3.0-rc.1", "1.2.10", "1.2.4-rc.1", "1.2.3", "1.2.0", "1.0.1", "1.0.0"])),
        ("2.*.9", false, Ok(&["2.1.0+build.1", "2.0.0", "2.0.0-rc.1"])),
        ("^0.1.0", false, Ok(&[])),
        ("9", false, Ok(&[])),
        ("1.3.0", false, Ok(&["1.3.0", "1.3.0-rc.1"])),
        ("~1.3.0", false, Ok(&["1.3.0"])),
        ("2.1.0+build.1", false, Ok(&["2.1.0+build.1"])),
        ("2.1.0+BUILD", false, Ok(&["2.1.0+build.1"])),
        ("1", true, Ok(&["10.0.0", "1.20.0", "1.3.0", "1.2.10", "1.2.3", "1.2.0", "1.0.1", "1.0.0"])),
        ("1.*", true, Ok(&["10.0.0", "1.20.0", "1.3.0", "1.2.10", "1.2.3", "1.2.0", "1.0.1", "1.0.0"])),
        ("~1.2.3", true, Ok(&["1.20.0"])),
        ("^1.2.3", true, Ok(&["10.0.0"])),
        ("1.3.0", true, Ok(&["1.3.0"])),
        ("^2.0.0", true, Ok(&["2.1.0+build.1"])),
        ("*", true, Ok(&["10.0.0", "2.1.0+build.1", "2.0.0", "1.20.0", "1.3.0", "1.2.10", "1.2.3", "1.2.0", "1.0.1", "1.0.0"])),
        ("2.0.0-rc", true, Ok(&[])),
    ];

    #[test]
    fn list_results_match_reference_server() {
        for (raw, ignore_rc, expected) in REFERENCE_CASES {
            let got = VersionFilter::parse(raw)
                .map_err(|_| "MultipleSymbols")
                .and_then(|f| {
                    select_versions(STORED, Some(&f), *ignore_rc).map_err(|_| "VersionError")
                })
                .map(|vs| vs.iter().map(ToString::to_string).collect::<Vec<_>>());
            let expected = expected.map(|vs| vs.iter().map(|s| s.to_string()).collect::<Vec<_>>());
            assert_eq!(got, expected, "filter {raw:?} ignore_rc={ignore_rc}");
        }
    }

    #[test]
    fn no_filter() {
        // Checked against the reference: name given, `version` null.
        let stored = ["1.0.0", "1.1.0-rc.1", "2.0.0+b.1", "0.9.0"];
        let all: Vec<String> = select_versions(&stored, None, false)
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(all, ["2.0.0+b.1", "1.1.0-rc.1", "1.0.0", "0.9.0"]);
        let released: Vec<String> = select_versions(&stored, None, true)
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(released, ["2.0.0+b.1", "1.0.0", "0.9.0"]);
    }

    #[test]
    fn prefixes() {
        let table = [
            ("1", FilterKind::Plain, "1"),
            ("1.2", FilterKind::Plain, "1.2"),
            ("1.2.3", FilterKind::Plain, "1.2.3"),
            ("1.*", FilterKind::Star, "1"),
            ("1.2.*", FilterKind::Star, "1.2"),
            ("1.2*", FilterKind::Star, "1."),
            ("1*", FilterKind::Star, ""),
            ("*", FilterKind::Star, ""),
            ("**", FilterKind::Star, ""),
            ("1.2.3.*", FilterKind::Star, "1.2.3"),
            ("2.*.9", FilterKind::Star, "2"),
            ("1.\n*", FilterKind::Star, "1\n"),
            ("a\n\n*", FilterKind::Star, "a\n\n"),
            ("^1.2.3", FilterKind::Caret, "1"),
            ("^", FilterKind::Caret, ""),
            ("1.^2", FilterKind::Caret, "1"),
            ("~1.2.3", FilterKind::Tilde, "1.2"),
            ("~1", FilterKind::Tilde, "1"),
            ("~~1.2", FilterKind::Tilde, "1.2"),
            ("", FilterKind::Plain, ""),
        ];
        for (raw, kind, prefix) in table {
            let f = VersionFilter::parse(raw).unwrap();
            assert_eq!((f.kind(), f.prefix()), (kind, prefix), "{raw:?}");
            assert_eq!(f.like_pattern(), format!("{prefix}%"));
            assert_eq!(f.raw(), raw);
        }
    }

    #[test]
    fn several_symbol_kinds_are_refused() {
        for raw in ["^1.*", "~1.*", "^~1", "*^"] {
            let err = VersionFilter::parse(raw).unwrap_err();
            assert_eq!(err, FilterError::MultipleSymbols(raw.to_string()));
            assert_eq!(err.status().code(), 422);
        }
    }

    #[test]
    fn like_semantics() {
        let table = [
            ("1.2.3", "1.2%", true),
            ("1.20.0", "1.2%", true),
            ("1.3.0", "1.2%", false),
            ("1.2.0", "1_2%", true),
            ("1x2", "1_2%", true),
            ("12", "1_2%", false),
            ("2.0.0-rc.1", "2.0.0-RC%", true),
            ("1.0.0-\u{e9}", "1.0.0-\u{c9}%", false),
            ("1.0.0-\u{e9}", "1.0.0-_", true),
            ("abc", "%", true),
            ("", "%", true),
            ("", "_%", false),
            ("1.2.3", "1.%.3%", true),
            ("1.2.4", "%.3", false),
            ("a%b", "a%b", true),
            ("aXXb", "a%b", true),
            ("aXXbc", "a%b", false),
        ];
        for (value, pattern, expected) in table {
            assert_eq!(
                like_matches(value, pattern),
                expected,
                "{value:?} LIKE {pattern:?}"
            );
        }
    }

    #[test]
    fn matches_version_values() {
        let f = VersionFilter::parse("~1.2.3").unwrap();
        assert!(f.matches(&Version::parse("1.2.9").unwrap()));
        assert!(f.matches(&Version::parse("1.20.0").unwrap()));
        assert!(!f.matches(&Version::parse("1.3.0").unwrap()));
        assert!(f.top_only());
        assert!(!VersionFilter::parse("1.*").unwrap().top_only());
    }

    #[test]
    fn list_rules_keep_order_and_fail_on_bad_versions() {
        let records = vec![("a", "2.0.0-rc.1"), ("b", "1.0.0"), ("c", "0.1.0")];
        let caret = VersionFilter::parse("^1").unwrap();
        let kept = apply_list_rules(records.clone(), Some(&caret), true, |r| r.1).unwrap();
        assert_eq!(kept, [("b", "1.0.0")]);
        let kept = apply_list_rules(records.clone(), None, false, |r| r.1).unwrap();
        assert_eq!(kept, records);
        let err = apply_list_rules(vec!["bogus"], None, true, |r| r).unwrap_err();
        assert_eq!(err.status().code(), 500);
        assert_eq!(is_release_candidate("1.0.0-rc.1"), Ok(true));
        assert_eq!(is_release_candidate("1.0.0+b.1"), Ok(false));
    }

    #[test]
    fn default_limit() {
        let table = [
            (None, None, None, Some(20)),
            (Some(""), Some(""), Some(0), Some(20)),
            (Some("n"), None, None, None),
            (None, Some("r"), None, None),
            (None, None, Some(5), Some(5)),
            (Some("n"), None, Some(3), Some(3)),
        ];
        for (name, repository, limit, expected) in table {
            assert_eq!(default_list_limit(name, repository, limit), expected);
        }
    }
}
