//! The six card registries, their wire names, SQL table names and storage folders.
//!
//! Reference facts (opsml 2.2.4):
//! * the client sends `registry_type` as the lowercase enum value (`"data"`, `"model"`, ...);
//! * `RegistryType.from_str` (client side) strips whitespace and lowercases before matching;
//! * `/registry/table` uppercases its parameter, so it is case-insensitive;
//! * the `/cards/*` routes look the registry up with `getattr(registries, registry_type)`, so only
//!   the exact lowercase names work there; anything else is an unhandled 500;
//! * old clients send `table_name` instead; the server picks the first registry whose uppercase
//!   name is a *substring* of it (in enum order) and only then falls back to `registry_type`;
//! * artifacts live under `<storage root>/<TABLE NAME>/<repository>/<name>/v<version>/...`, i.e.
//!   the storage folder is the table name.
//!
//! Parsing here is the lenient client rule everywhere (trim + case-insensitive): it accepts every
//! spelling the reference accepts on any route, and answers a typed error (422) instead of a 500
//! for the rest.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{HttpError, Status};
use crate::naming::python_strip;

/// A card registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RegistryType {
    Data,
    Model,
    Run,
    Pipeline,
    Project,
    Audit,
}

/// Why a registry could not be determined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistryError {
    /// A `registry_type` that names no registry.
    Unknown(String),
    /// Neither `table_name` nor `registry_type` identified a registry.
    Undetermined,
}

impl fmt::Display for RegistryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegistryError::Unknown(name) => write!(
                f,
                "Registry type {name} does not exist (expected one of: data, model, run, pipeline, project, audit)"
            ),
            RegistryError::Undetermined => f.write_str("Could not determine registry type"),
        }
    }
}

impl std::error::Error for RegistryError {}

impl HttpError for RegistryError {
    /// The reference answers 500 for both; a bad request field is a validation error.
    fn status(&self) -> Status {
        Status::UnprocessableEntity
    }
}

impl RegistryType {
    /// All registries, in the reference enum's order (which the `table_name` substring rule
    /// depends on).
    pub const ALL: [RegistryType; 6] = [
        RegistryType::Data,
        RegistryType::Model,
        RegistryType::Run,
        RegistryType::Pipeline,
        RegistryType::Audit,
        RegistryType::Project,
    ];

    /// The wire name (`registry_type` value), e.g. `"model"`.
    pub fn as_str(self) -> &'static str {
        match self {
            RegistryType::Data => "data",
            RegistryType::Model => "model",
            RegistryType::Run => "run",
            RegistryType::Pipeline => "pipeline",
            RegistryType::Project => "project",
            RegistryType::Audit => "audit",
        }
    }

    /// The SQL table name, e.g. `"OPSML_MODEL_REGISTRY"`.
    pub fn table_name(self) -> &'static str {
        match self {
            RegistryType::Data => "OPSML_DATA_REGISTRY",
            RegistryType::Model => "OPSML_MODEL_REGISTRY",
            RegistryType::Run => "OPSML_RUN_REGISTRY",
            RegistryType::Pipeline => "OPSML_PIPELINE_REGISTRY",
            RegistryType::Project => "OPSML_PROJECT_REGISTRY",
            RegistryType::Audit => "OPSML_AUDIT_REGISTRY",
        }
    }

    /// The folder under `opsml-root:/` holding this registry's artifacts. The reference client
    /// builds card URIs from `RegistryTableNames`, so it is the table name.
    pub fn storage_folder(self) -> &'static str {
        self.table_name()
    }

    /// Parses a `registry_type` value: surrounding whitespace is ignored and case does not
    /// matter, like the reference's `RegistryType.from_str`.
    pub fn parse(value: &str) -> Result<Self, RegistryError> {
        let trimmed = python_strip(value);
        RegistryType::ALL
            .into_iter()
            .find(|r| trimmed.eq_ignore_ascii_case(r.as_str()))
            .ok_or_else(|| RegistryError::Unknown(value.to_string()))
    }

    /// The registry whose storage folder is exactly `folder` (case-sensitive, as stored).
    pub fn from_storage_folder(folder: &str) -> Option<Self> {
        RegistryType::ALL
            .into_iter()
            .find(|r| r.storage_folder() == folder)
    }

    /// The reference's backwards-compatibility rule for a `table_name` field: the first registry
    /// (in [`RegistryType::ALL`] order) whose uppercase name occurs anywhere in it.
    pub fn from_table_name(table_name: &str) -> Option<Self> {
        RegistryType::ALL
            .into_iter()
            .find(|r| table_name.contains(&r.as_str().to_ascii_uppercase()))
    }

    /// Resolves the `(table_name, registry_type)` pair every `/cards/*` request body carries:
    /// `table_name` wins when it identifies a registry, then `registry_type`.
    pub fn resolve(
        table_name: Option<&str>,
        registry_type: Option<&str>,
    ) -> Result<Self, RegistryError> {
        if let Some(found) = table_name.and_then(RegistryType::from_table_name) {
            return Ok(found);
        }
        match registry_type {
            Some(value) => RegistryType::parse(value),
            None => Err(RegistryError::Undetermined),
        }
    }
}

impl FromStr for RegistryType {
    type Err = RegistryError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RegistryType::parse(s)
    }
}

impl fmt::Display for RegistryType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for RegistryType {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for RegistryType {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = String::deserialize(deserializer)?;
        RegistryType::parse(&value).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_tables() {
        let table = [
            (RegistryType::Data, "data", "OPSML_DATA_REGISTRY"),
            (RegistryType::Model, "model", "OPSML_MODEL_REGISTRY"),
            (RegistryType::Run, "run", "OPSML_RUN_REGISTRY"),
            (
                RegistryType::Pipeline,
                "pipeline",
                "OPSML_PIPELINE_REGISTRY",
            ),
            (RegistryType::Project, "project", "OPSML_PROJECT_REGISTRY"),
            (RegistryType::Audit, "audit", "OPSML_AUDIT_REGISTRY"),
        ];
        for (reg, name, table_name) in table {
            assert_eq!(reg.as_str(), name);
            assert_eq!(reg.to_string(), name);
            assert_eq!(reg.table_name(), table_name);
            assert_eq!(reg.storage_folder(), table_name);
            assert_eq!(RegistryType::parse(name), Ok(reg));
            assert_eq!(RegistryType::from_storage_folder(table_name), Some(reg));
        }
    }

    #[test]
    fn parse_is_trimmed_and_case_insensitive() {
        // Each of these is accepted by the reference on at least one route
        // (`/registry/table` uppercases; the client's from_str strips and lowercases).
        let ok = [
            ("model", RegistryType::Model),
            ("Model", RegistryType::Model),
            ("MODEL", RegistryType::Model),
            (" data\n", RegistryType::Data),
            ("\u{1c}run\u{a0}", RegistryType::Run),
            ("PiPeLiNe", RegistryType::Pipeline),
        ];
        for (input, expected) in ok {
            assert_eq!(input.parse::<RegistryType>(), Ok(expected), "{input:?}");
        }
        for bad in [
            "",
            "models",
            "base",
            "metrics",
            "OPSML_MODEL_REGISTRY",
            "mo del",
        ] {
            assert_eq!(
                RegistryType::parse(bad),
                Err(RegistryError::Unknown(bad.to_string())),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn unknown_message_is_clear() {
        let err = RegistryType::parse("bogus").unwrap_err();
        assert_eq!(
            err.to_string(),
            "Registry type bogus does not exist (expected one of: data, model, run, pipeline, project, audit)"
        );
        assert_eq!(err.status().code(), 422);
    }

    #[test]
    fn storage_folder_is_case_sensitive() {
        assert_eq!(
            RegistryType::from_storage_folder("opsml_model_registry"),
            None
        );
        assert_eq!(
            RegistryType::from_storage_folder("OPSML_BASE_REGISTRY"),
            None
        );
    }

    #[test]
    fn table_name_substring_rule() {
        let table = [
            (Some("OPSML_MODEL_REGISTRY"), None, Ok(RegistryType::Model)),
            // Substring match, checked against the running reference (`OPSML_RUN_METRICS` lists runs).
            (Some("OPSML_RUN_METRICS"), None, Ok(RegistryType::Run)),
            (Some("xDATAx"), Some("model"), Ok(RegistryType::Data)),
            // table_name that names nothing falls back to registry_type
            (Some("nothing"), Some("audit"), Ok(RegistryType::Audit)),
            (
                Some("opsml_model_registry"),
                None,
                Err(RegistryError::Undetermined),
            ),
            (None, Some("project"), Ok(RegistryType::Project)),
            (None, None, Err(RegistryError::Undetermined)),
            (None, Some("x"), Err(RegistryError::Unknown("x".into()))),
        ];
        for (table_name, registry_type, expected) in table {
            assert_eq!(
                RegistryType::resolve(table_name, registry_type),
                expected,
                "{table_name:?} {registry_type:?}"
            );
        }
        assert_eq!(
            RegistryError::Undetermined.to_string(),
            "Could not determine registry type"
        );
    }

    #[test]
    fn serde_round_trip() {
        let json = serde_json::to_string(&RegistryType::Pipeline).unwrap();
        assert_eq!(json, "\"pipeline\"");
        let back: RegistryType = serde_json::from_str("\"Pipeline\"").unwrap();
        assert_eq!(back, RegistryType::Pipeline);
        assert!(serde_json::from_str::<RegistryType>("\"nope\"").is_err());
    }
}
