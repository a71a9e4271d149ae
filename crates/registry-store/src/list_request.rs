//! `cards/list` requests: the opsml client's JSON body, checked and turned into a store query.
//! Shared by every component that selects cards (`cards/list`, `models/metadata`) and by the
//! benchmark's native baseline.

use crate::cards::ListQuery;
use registry_core::card::{self, card_fields};
use registry_core::filter::default_list_limit;
use registry_core::{CoreError, RegistryType, Status, VersionFilter};
use serde::Deserialize;
use serde_json::{Map, Value};

#[derive(Deserialize)]
pub struct ListRequest {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    repository: Option<String>,
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    uid: Option<String>,
    #[serde(default)]
    max_date: Option<String>,
    #[serde(default, deserialize_with = "integer_or_numeric_string")]
    limit: Option<i64>,
    #[serde(default)]
    tags: Option<Map<String, Value>>,
    /// `models/metadata` spells it in the singular.
    #[serde(default, alias = "ignore_release_candidate")]
    ignore_release_candidates: Option<bool>,
    /// Accepted for compatibility; the reference ignores it too.
    #[serde(default)]
    #[allow(dead_code)]
    project_id: Option<Value>,
    #[serde(default)]
    registry_type: Option<String>,
    #[serde(default)]
    table_name: Option<String>,
    #[serde(default)]
    query_terms: Option<Map<String, Value>>,
    #[serde(default)]
    sort_by_timestamp: Option<bool>,
}

/// `limit` as a number or a numeric string (`"2"`), as the reference accepts it.
fn integer_or_numeric_string<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<i64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Limit {
        Number(i64),
        Text(String),
    }
    match Option::<Limit>::deserialize(d)? {
        None => Ok(None),
        Some(Limit::Number(n)) => Ok(Some(n)),
        Some(Limit::Text(t)) => t
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| serde::de::Error::custom(format!("{t:?} is not an integer"))),
    }
}

fn unprocessable(detail: impl Into<String>) -> CoreError {
    CoreError::new(Status::UnprocessableEntity, detail)
}

impl ListRequest {
    /// The registry to search and the query, or why the request is invalid.
    pub fn into_query(self) -> Result<(RegistryType, ListQuery), CoreError> {
        let registry =
            RegistryType::resolve(self.table_name.as_deref(), self.registry_type.as_deref())?;
        let non_empty = |s: Option<String>| s.filter(|s| !s.trim().is_empty());
        let name = non_empty(self.name).map(|n| card::normalize(registry, &n));
        let repository = non_empty(self.repository).map(|r| card::normalize(registry, &r));
        let limit = match default_list_limit(name.as_deref(), repository.as_deref(), self.limit) {
            Some(l) if l < 0 => return Err(unprocessable("limit must not be negative")),
            Some(0) | None => None,
            Some(l) => Some(l as u64),
        };
        let max_timestamp = match &self.max_date {
            Some(date) => Some(card::end_of_day_micros(date).ok_or_else(|| {
                unprocessable(format!("max_date {date:?} must be a date as YYYY-MM-DD"))
            })?),
            None => None,
        };
        let query_terms = self.query_terms.unwrap_or_default();
        let fields = card_fields(registry);
        if let Some(term) = query_terms.keys().find(|k| !fields.contains(&k.as_str())) {
            return Err(unprocessable(format!(
                "query_terms: {term:?} is not a field of {registry} cards"
            )));
        }
        let query = ListQuery {
            name,
            repository,
            uid: non_empty(self.uid),
            version: non_empty(self.version)
                .map(|v| VersionFilter::parse(&v))
                .transpose()?,
            max_timestamp,
            limit,
            tags: self.tags.unwrap_or_default(),
            query_terms,
            ignore_release_candidates: self.ignore_release_candidates.unwrap_or(false),
            sort_by_timestamp: self.sort_by_timestamp.unwrap_or(false),
            readable_repositories: None,
        };
        Ok((registry, query))
    }

    /// Pins the registry for routes that have one (`models/*`), whatever the body says.
    pub fn for_registry(mut self, registry: RegistryType) -> Self {
        self.registry_type = Some(registry.as_str().to_string());
        self.table_name = None;
        self
    }

    /// At most `limit` cards.
    pub fn with_limit(mut self, limit: i64) -> Self {
        self.limit = Some(limit);
        self
    }
}
