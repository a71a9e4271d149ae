//! Cards as the registry stores them: which fields each registry's cards have (the opsml 2.2.4
//! table columns, by the names its client sends), and the checks and defaults applied when a
//! card is created or updated.

use std::fmt;

use serde_json::{Map, Value};

use crate::error::{HttpError, Status};
use crate::naming::db_normalize;
use crate::registry::RegistryType;
use crate::semver::Version;

const COMMON: &[&str] = &[
    "uid",
    "date",
    "timestamp",
    "app_env",
    "name",
    "repository",
    "version",
    "contact",
    "tags",
];

/// The fields of a card of `registry`, in the order the registry returns them.
pub fn card_fields(registry: RegistryType) -> Vec<&'static str> {
    let specific: &[&str] = match registry {
        RegistryType::Data => &[
            "data_type",
            "runcard_uid",
            "pipelinecard_uid",
            "auditcard_uid",
        ],
        RegistryType::Model => &[
            "datacard_uid",
            "sample_data_type",
            "model_type",
            "runcard_uid",
            "pipelinecard_uid",
            "auditcard_uid",
        ],
        RegistryType::Run => &[
            "datacard_uids",
            "modelcard_uids",
            "pipelinecard_uid",
            "project",
            "artifact_uris",
        ],
        RegistryType::Pipeline => &[
            "pipeline_code_uri",
            "datacard_uids",
            "modelcard_uids",
            "runcard_uids",
        ],
        RegistryType::Audit => &["approved", "datacards", "modelcards", "runcards"],
        // Project cards have only these fields in the reference.
        RegistryType::Project => {
            return vec![
                "uid",
                "name",
                "repository",
                "project_id",
                "version",
                "timestamp",
            ]
        }
    };
    COMMON.iter().chain(specific).copied().collect()
}

/// Why a card was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CardError {
    UnknownField {
        registry: RegistryType,
        field: String,
    },
    Missing(&'static str),
    WrongType {
        field: &'static str,
        expected: &'static str,
    },
    InvalidVersion(String),
}

impl fmt::Display for CardError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CardError::UnknownField { registry, field } => write!(
                f,
                "{field:?} is not a field of {registry} cards (fields: {})",
                card_fields(*registry).join(", ")
            ),
            CardError::Missing(field) => write!(f, "card field {field:?} is required"),
            CardError::WrongType { field, expected } => {
                write!(f, "card field {field:?} must be {expected}")
            }
            CardError::InvalidVersion(v) => {
                write!(f, "card version {v:?} is not a valid SemVer version (MAJOR.MINOR.PATCH[-PRE][+BUILD])")
            }
        }
    }
}

impl std::error::Error for CardError {}

impl HttpError for CardError {
    fn status(&self) -> Status {
        Status::UnprocessableEntity
    }
}

/// How names and repositories are stored and looked up: trimmed, lower-case, `-` for `_`, as
/// the reference stores them (project cards keep theirs as given, as in the reference).
pub fn normalize(registry: RegistryType, value: &str) -> String {
    if registry == RegistryType::Project {
        value.trim().to_string()
    } else {
        db_normalize(value.trim())
    }
}

/// Values the server fills in when the client leaves them out.
#[derive(Debug, Clone)]
pub struct CardDefaults {
    pub uid: String,
    /// `YYYY-MM-DD` (UTC).
    pub date: String,
    pub app_env: String,
    /// Microseconds since the Unix epoch.
    pub timestamp: i64,
}

/// A validated card: its indexed columns and the full record returned by `cards/list`.
#[derive(Debug, Clone, PartialEq)]
pub struct Card {
    pub registry: RegistryType,
    pub uid: String,
    pub name: String,
    pub repository: String,
    pub version: Version,
    pub timestamp: i64,
    pub date: String,
    /// Every field of the registry, in order; absent ones are `null`.
    pub record: Map<String, Value>,
}

fn string_field(record: &Map<String, Value>, field: &'static str) -> Result<String, CardError> {
    match record.get(field) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.clone()),
        None | Some(Value::Null) => Err(CardError::Missing(field)),
        Some(Value::String(_)) => Err(CardError::Missing(field)),
        Some(_) => Err(CardError::WrongType {
            field,
            expected: "a string",
        }),
    }
}

impl Card {
    /// Checks `fields` against the registry's schema, fills defaults and [`normalize`]s the
    /// name and repository.
    pub fn from_fields(
        registry: RegistryType,
        fields: Map<String, Value>,
        defaults: &CardDefaults,
    ) -> Result<Card, CardError> {
        let schema = card_fields(registry);
        if let Some(field) = fields.keys().find(|k| !schema.contains(&k.as_str())) {
            return Err(CardError::UnknownField {
                registry,
                field: field.clone(),
            });
        }
        let mut record = Map::new();
        for field in &schema {
            record.insert(
                field.to_string(),
                fields.get(*field).cloned().unwrap_or(Value::Null),
            );
        }
        let name = normalize(registry, &string_field(&record, "name")?);
        let repository = normalize(registry, &string_field(&record, "repository")?);
        let version_text = string_field(&record, "version")?;
        let version = Version::parse(&version_text)
            .map_err(|_| CardError::InvalidVersion(version_text.clone()))?;
        let uid = match record.get("uid") {
            // The opsml client sends the text "None" for a card it has not registered yet.
            Some(Value::String(s)) if !s.is_empty() && s != "None" => s.clone(),
            None | Some(Value::Null) | Some(Value::String(_)) => defaults.uid.clone(),
            Some(_) => {
                return Err(CardError::WrongType {
                    field: "uid",
                    expected: "a string",
                })
            }
        };
        let timestamp = match record.get("timestamp") {
            None | Some(Value::Null) => defaults.timestamp,
            Some(Value::Number(n)) => n.as_i64().ok_or(CardError::WrongType {
                field: "timestamp",
                expected: "an integer (microseconds since the epoch)",
            })?,
            Some(_) => {
                return Err(CardError::WrongType {
                    field: "timestamp",
                    expected: "an integer (microseconds since the epoch)",
                })
            }
        };
        if let Some(tags) = record.get("tags") {
            if !matches!(tags, Value::Null | Value::Object(_)) {
                return Err(CardError::WrongType {
                    field: "tags",
                    expected: "an object",
                });
            }
        }
        let date = match record.get("date") {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            _ => defaults.date.clone(),
        };
        record.insert("uid".into(), Value::String(uid.clone()));
        record.insert("name".into(), Value::String(name.clone()));
        record.insert("repository".into(), Value::String(repository.clone()));
        record.insert("version".into(), Value::String(version.to_string()));
        record.insert("timestamp".into(), Value::from(timestamp));
        if schema.contains(&"date") {
            record.insert("date".into(), Value::String(date.clone()));
        }
        if schema.contains(&"app_env") && record["app_env"].is_null() {
            record.insert("app_env".into(), Value::String(defaults.app_env.clone()));
        }
        if schema.contains(&"tags") && record["tags"].is_null() {
            record.insert("tags".into(), Value::Object(Map::new()));
        }
        Ok(Card {
            registry,
            uid,
            name,
            repository,
            version,
            timestamp,
            date,
            record,
        })
    }
}

/// `YYYY-MM-DD` (UTC) of a Unix time in seconds.
pub fn utc_date(unix_seconds: i64) -> String {
    // Days to civil date (proleptic Gregorian), after H. Hinnant's algorithm.
    let days = unix_seconds.div_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// The last microsecond of a `YYYY-MM-DD` day (UTC), for `max_date` filters; `None` if the
/// text is not a real date.
pub fn end_of_day_micros(date: &str) -> Option<i64> {
    let b = date.as_bytes();
    let digits = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = date.get(r)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (year, month, day) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    // Days from the civil date, after H. Hinnant's algorithm (inverse of `utc_date`).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    // Rejects days that do not exist (2023-02-30 would otherwise roll into March).
    if utc_date(days * 86_400) != date {
        return None;
    }
    Some((days + 1) * 86_400 * 1_000_000 - 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn defaults() -> CardDefaults {
        CardDefaults {
            uid: "generated".into(),
            date: "2026-11-27".into(),
            app_env: "development".into(),
            timestamp: 42,
        }
    }

    fn fields(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn data_card_is_completed_and_normalised() {
        let card = Card::from_fields(
            RegistryType::Data,
            fields(json!({"name": "My_Data", "repository": "Test_Repo", "version": "1.0.0", "uid": "None", "contact": "me"})),
            &defaults(),
        )
        .unwrap();
        assert_eq!(
            (card.name.as_str(), card.repository.as_str()),
            ("my-data", "test-repo")
        );
        assert_eq!(card.uid, "generated");
        assert_eq!(card.timestamp, 42);
        let keys: Vec<&str> = card.record.keys().map(String::as_str).collect();
        assert_eq!(keys, card_fields(RegistryType::Data));
        assert_eq!(card.record["app_env"], "development");
        assert_eq!(card.record["tags"], json!({}));
        assert_eq!(card.record["date"], "2026-11-27");
        assert_eq!(card.record["runcard_uid"], Value::Null);
    }

    #[test]
    fn project_cards_have_their_own_fields() {
        let card = Card::from_fields(
            RegistryType::Project,
            fields(json!({"name": "P_x", "repository": "R", "version": "1.0.0", "project_id": 3})),
            &defaults(),
        )
        .unwrap();
        assert_eq!(card.name, "P_x");
        assert!(!card.record.contains_key("date"));
        let err = Card::from_fields(
            RegistryType::Project,
            fields(json!({"name": "p", "repository": "r", "version": "1.0.0", "tags": {}})),
            &defaults(),
        )
        .unwrap_err();
        assert!(matches!(err, CardError::UnknownField { .. }));
    }

    #[test]
    fn bad_cards_are_refused_with_a_reason() {
        let cases = [
            (
                json!({"name": "n", "repository": "r", "version": "1.0.0", "bogus": 1}),
                "bogus",
            ),
            (
                json!({"repository": "r", "version": "1.0.0"}),
                "\"name\" is required",
            ),
            (
                json!({"name": "n", "repository": 5, "version": "1.0.0"}),
                "must be a string",
            ),
            (
                json!({"name": "n", "repository": "r", "version": "1.0"}),
                "not a valid SemVer",
            ),
            (
                json!({"name": "n", "repository": "r"}),
                "\"version\" is required",
            ),
            (
                json!({"name": "n", "repository": "r", "version": "1.0.0", "timestamp": "x"}),
                "integer",
            ),
            (
                json!({"name": "n", "repository": "r", "version": "1.0.0", "tags": [1]}),
                "object",
            ),
        ];
        for (card, expected) in cases {
            let err = Card::from_fields(RegistryType::Data, fields(card.clone()), &defaults())
                .unwrap_err();
            assert!(err.to_string().contains(expected), "{card}: {err}");
            assert_eq!(err.status(), Status::UnprocessableEntity);
        }
    }

    #[test]
    fn end_of_day() {
        assert_eq!(end_of_day_micros("1970-01-01"), Some(86_400_000_000 - 1));
        assert_eq!(
            end_of_day_micros("2026-11-27"),
            Some((1_795_803_989 / 86_400 + 1) * 86_400_000_000 - 1)
        );
        assert_eq!(
            end_of_day_micros("2000-02-29").map(|m| m / 1_000_000 / 86_400),
            Some(11_016)
        );
        for bad in [
            "2023-02-30",
            "2024/01/03",
            "2024-13-01",
            "2024-1-01",
            "x",
            "2024-01-00",
        ] {
            assert_eq!(end_of_day_micros(bad), None, "{bad}");
        }
    }

    #[test]
    fn utc_dates() {
        assert_eq!(utc_date(0), "1970-01-01");
        assert_eq!(utc_date(951_782_400), "2000-02-29");
        assert_eq!(utc_date(1_795_803_989), "2026-11-27");
        assert_eq!(utc_date(-86_400), "1969-12-31");
    }
}
