//! Card name and repository normalisation and validation.
//!
//! Reference facts (opsml 2.2.4):
//! * cards clean `name` and `repository` with `clean_string`: strip surrounding whitespace,
//!   lowercase, delete ASCII punctuation except `-` and `_`, then turn `_` into `-`. Inner spaces
//!   are kept (and then fail validation);
//! * the server cleans `name`/`repository` the same way before `cards/list` queries;
//! * the SQL column validators store `name`/`repository` lowercased with `_` → `-` (no other
//!   cleaning): [`db_normalize`];
//! * a card is valid when `"{repository}/{name}"` matches
//!   `^[a-z0-9]+([-a-z0-9]+)*/[-a-z0-9]+$` and is at most 53 characters; the pattern is checked
//!   first.

use std::fmt;

use crate::error::{HttpError, Status};

/// The reference's pattern for `"{repository}/{name}"`.
pub const NAME_REPOSITORY_PATTERN: &str = r"^[a-z0-9]+([-a-z0-9]+)*/[-a-z0-9]+$";

/// Longest allowed `"{repository}/{name}"`, in characters.
pub const MAX_NAME_REPOSITORY_LEN: usize = 53;

/// Why a name/repository pair is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamingError {
    /// The field is empty (possibly only after cleaning removed everything).
    Missing(&'static str),
    /// `"{repository}/{name}"` does not match [`NAME_REPOSITORY_PATTERN`].
    PatternMismatch { repository: String, name: String },
    /// `"{repository}/{name}"` is longer than [`MAX_NAME_REPOSITORY_LEN`].
    TooLong { len: usize },
}

impl fmt::Display for NamingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NamingError::Missing(field) => write!(f, "{field} must be set"),
            NamingError::PatternMismatch { repository, name } => write!(
                f,
                "Name and Repository failed to match the required pattern. Pattern: {NAME_REPOSITORY_PATTERN} (got {repository:?}/{name:?})"
            ),
            NamingError::TooLong { len } => write!(
                f,
                "Name and Repository combination must be {MAX_NAME_REPOSITORY_LEN} characters or less (got {len})"
            ),
        }
    }
}

impl std::error::Error for NamingError {}

impl HttpError for NamingError {
    fn status(&self) -> Status {
        Status::UnprocessableEntity
    }
}

/// A cleaned and validated card identity.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CardIdentity {
    pub repository: String,
    pub name: String,
}

/// Whitespace as Python's `str.strip()` sees it: Unicode `White_Space` plus the ASCII
/// separators U+001C..U+001F (checked against CPython 3.11's `str.isspace`).
pub fn is_python_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// `str.strip()` with no arguments.
pub fn python_strip(value: &str) -> &str {
    value.trim_matches(is_python_space)
}

/// ASCII punctuation (Python's `string.punctuation`) minus `-` and `_`: removed by cleaning.
fn is_removed_punctuation(c: char) -> bool {
    c.is_ascii_punctuation() && c != '-' && c != '_'
}

/// The reference's `clean_string`: strip, lowercase, drop punctuation except `-`/`_`, `_` → `-`.
///
/// Lowercasing is full Unicode lowercasing (as Python's `str.lower`), so non-ASCII letters
/// survive cleaning and are then rejected by [`validate_name_repository`].
pub fn clean_string(value: &str) -> String {
    python_strip(value)
        .to_lowercase()
        .chars()
        .filter(|&c| !is_removed_punctuation(c))
        .map(|c| if c == '_' { '-' } else { c })
        .collect()
}

/// What the reference's SQL column validators store for `name`/`repository`: lowercase with
/// `_` → `-`, nothing else.
pub fn db_normalize(value: &str) -> String {
    value.to_lowercase().replace('_', "-")
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'
}

/// Checks an already-cleaned pair against the reference's pattern, then its length.
pub fn validate_name_repository(name: &str, repository: &str) -> Result<(), NamingError> {
    let repository_ok = repository
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && repository.chars().all(is_name_char);
    let name_ok = !name.is_empty() && name.chars().all(is_name_char);
    if !(repository_ok && name_ok) {
        return Err(NamingError::PatternMismatch {
            repository: repository.to_string(),
            name: name.to_string(),
        });
    }
    // Both parts are ASCII here, so bytes are characters.
    let len = repository.len() + 1 + name.len();
    if len > MAX_NAME_REPOSITORY_LEN {
        return Err(NamingError::TooLong { len });
    }
    Ok(())
}

/// Cleans both fields as a card does, requires them to be non-empty, then validates them.
pub fn normalize_card_identity(name: &str, repository: &str) -> Result<CardIdentity, NamingError> {
    let name = clean_string(name);
    let repository = clean_string(repository);
    if name.is_empty() {
        return Err(NamingError::Missing("name"));
    }
    if repository.is_empty() {
        return Err(NamingError::Missing("repository"));
    }
    validate_name_repository(&name, &repository)?;
    Ok(CardIdentity { repository, name })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_string_matches_reference() {
        // Expected values produced by opsml 2.2.4's clean_string.
        let table = [
            ("  TEST  ", "test"),
            ("  !!_-TEST-_!!   ", "--test--"),
            ("My_Model", "my-model"),
            ("my model", "my model"),
            ("\u{dc}n\u{ef}code", "\u{fc}n\u{ef}code"),
            ("a.b/c", "abc"),
            ("x\u{1c}y\u{1c}", "x\u{1c}y"),
            ("\u{a0}ab\u{a0}", "ab"),
            ("\u{391}\u{3a3}", "\u{3b1}\u{3c2}"),
            ("\u{130}", "i\u{307}"),
            ("a@b#c$d%e", "abcde"),
            ("a:b;c", "abc"),
            ("", ""),
        ];
        for (input, expected) in table {
            assert_eq!(clean_string(input), expected, "{input:?}");
        }
    }

    #[test]
    fn python_whitespace_set() {
        // CPython 3.11: [c for c in range(0x110000) if chr(c).isspace()]
        let expected: Vec<u32> = vec![
            0x9, 0xa, 0xb, 0xc, 0xd, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x85, 0xa0, 0x1680, 0x2000,
            0x2001, 0x2002, 0x2003, 0x2004, 0x2005, 0x2006, 0x2007, 0x2008, 0x2009, 0x200a, 0x2028,
            0x2029, 0x202f, 0x205f, 0x3000,
        ];
        let actual: Vec<u32> = (0..=0x10ffffu32)
            .filter_map(char::from_u32)
            .filter(|&c| is_python_space(c))
            .map(|c| c as u32)
            .collect();
        assert_eq!(actual, expected);
    }

    #[test]
    fn db_normalize_only_lowers_and_swaps_underscores() {
        assert_eq!(db_normalize("My_Repo.X"), "my-repo.x");
        assert_eq!(db_normalize(" a_b "), " a-b ");
    }

    #[test]
    fn pattern_and_length_match_reference() {
        let long_name = "a".repeat(40);
        let too_long_name = "a".repeat(41);
        let repo12 = "b".repeat(12);
        // (name, repository, ok?) — verdicts from opsml 2.2.4's validate_name_repository_pattern.
        let table: [(&str, &str, Result<(), &str>); 14] = [
            ("name", "repo", Ok(())),
            ("-name", "repo", Ok(())),
            ("name", "-repo", Err("pattern")),
            ("na_me", "repo", Err("pattern")),
            ("name", "re--po", Ok(())),
            ("name", "r", Ok(())),
            ("", "", Err("pattern")),
            (&long_name, &repo12, Ok(())),
            (&too_long_name, &repo12, Err("length")),
            ("name", "Repo", Err("pattern")),
            ("na me", "repo", Err("pattern")),
            ("name-", "repo-", Ok(())),
            ("n/m", "repo", Err("pattern")),
            ("name", "repo\n", Err("pattern")),
        ];
        for (name, repository, expected) in table {
            let got = validate_name_repository(name, repository).map_err(|e| match e {
                NamingError::PatternMismatch { .. } => "pattern",
                NamingError::TooLong { .. } => "length",
                NamingError::Missing(_) => "missing",
            });
            assert_eq!(got, expected, "{repository:?}/{name:?}");
        }
    }

    #[test]
    fn pattern_is_checked_before_length() {
        let err = validate_name_repository(&"A".repeat(60), "repo").unwrap_err();
        assert!(matches!(err, NamingError::PatternMismatch { .. }));
    }

    #[test]
    fn normalize_identity() {
        let ok = normalize_card_identity(" My_Model ", "Team.Repo").unwrap();
        assert_eq!(
            ok,
            CardIdentity {
                repository: "teamrepo".into(),
                name: "my-model".into()
            }
        );
        assert_eq!(
            normalize_card_identity("!!!", "repo"),
            Err(NamingError::Missing("name"))
        );
        assert_eq!(
            normalize_card_identity("name", "  "),
            Err(NamingError::Missing("repository"))
        );
        assert!(matches!(
            normalize_card_identity("my model", "repo"),
            Err(NamingError::PatternMismatch { .. })
        ));
        assert!(matches!(
            normalize_card_identity("caf\u{e9}", "repo"),
            Err(NamingError::PatternMismatch { .. })
        ));
    }

    #[test]
    fn messages() {
        let err = validate_name_repository("x", "-r").unwrap_err();
        assert!(err.to_string().starts_with(
            "Name and Repository failed to match the required pattern. Pattern: ^[a-z0-9]+([-a-z0-9]+)*/[-a-z0-9]+$"
        ));
        let err = validate_name_repository(&"a".repeat(60), "r").unwrap_err();
        assert_eq!(
            err.to_string(),
            "Name and Repository combination must be 53 characters or less (got 62)"
        );
    }
}
