//! Browsing a registry page by page: the distinct card names (with their repository, how many
//! versions each has and when it last changed), searched by part of the name and filtered by a
//! tag. The web UI's list pages read this; `cards::list` reads the versions of one name.

use crate::{Result, Row, Sql, SqlValue};
use registry_core::RegistryType;
use serde_json::Value;
use std::collections::BTreeMap;

/// Which names to list.
#[derive(Debug, Clone, Default)]
pub struct NameFilter {
    /// Only this repository.
    pub repository: Option<String>,
    /// Only names containing this text (case-insensitive).
    pub search: Option<String>,
    /// Only names with at least one version carrying this tag (`key`, `value`); values compare
    /// as text, as in `cards/list`.
    pub tag: Option<(String, String)>,
    /// Only these repositories (those the caller may read); `None` for all.
    pub readable_repositories: Option<Vec<String>>,
}

/// One name of a registry in one repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameSummary {
    pub repository: String,
    pub name: String,
    pub versions: i64,
    /// The newest version's `timestamp` (microseconds since the Unix epoch).
    pub updated: i64,
}

/// A page of names, ordered by name then repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamePage {
    pub names: Vec<NameSummary>,
    /// Whether names follow this page.
    pub more: bool,
}

/// A `LIKE` pattern finding `text` anywhere, with `!` as the escape character: the same on
/// SQLite, PostgreSQL and MySQL (a backslash would need escaping again in MySQL's literals).
fn like_pattern(text: &str) -> String {
    let mut pattern = String::from("%");
    for c in text.chars() {
        if matches!(c, '!' | '%' | '_') {
            pattern.push('!');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// [`like_pattern`] for a case-insensitive search (compared with `LOWER(column)`).
fn contains_pattern(text: &str) -> String {
    like_pattern(&text.to_lowercase())
}

/// The names of `registry` that pass `filter`, `limit` of them after skipping `offset`.
///
/// Without a tag this is one grouped query that walks the `(registry, name, repository)` index
/// and stops after the page. A tag is inside each card's JSON, so a tag filter reads every card
/// of the registry that passes the other filters.
pub fn names_page(
    db: &dyn Sql,
    registry: RegistryType,
    filter: &NameFilter,
    offset: u64,
    limit: u64,
) -> Result<NamePage> {
    let mut sql = String::new();
    let mut params: Vec<SqlValue> = vec![registry.as_str().into()];
    let mut conditions = String::from(" WHERE registry = ?");
    if let Some(readable) = &filter.readable_repositories {
        if readable.is_empty() {
            return Ok(NamePage {
                names: Vec::new(),
                more: false,
            });
        }
        conditions.push_str(&format!(
            " AND repository IN ({})",
            vec!["?"; readable.len()].join(", ")
        ));
        params.extend(readable.iter().map(|r| SqlValue::from(r.as_str())));
    }
    if let Some(repository) = &filter.repository {
        conditions.push_str(" AND repository = ?");
        params.push(repository.as_str().into());
    }
    if let Some(search) = filter.search.as_deref().filter(|s| !s.is_empty()) {
        conditions.push_str(" AND LOWER(name) LIKE ? ESCAPE '!'");
        params.push(contains_pattern(search).into());
    }
    let to_i64 = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    let Some((key, value)) = &filter.tag else {
        sql.push_str("SELECT repository, name, COUNT(*), MAX(timestamp) FROM opsml_cards");
        sql.push_str(&conditions);
        sql.push_str(" GROUP BY name, repository ORDER BY name, repository LIMIT ? OFFSET ?");
        params.push(SqlValue::Integer(to_i64(limit.saturating_add(1))));
        params.push(SqlValue::Integer(to_i64(offset)));
        let rows = db.execute(&sql, &params)?;
        return page(rows.iter().map(summary).collect::<Result<Vec<_>>>()?, limit);
    };
    // Cards are stored as compact JSON, so a card with the tag contains `"key":"value"` (or
    // `"key":value` for a number or boolean): SQL keeps those candidates, Rust checks each.
    let key_json = serde_json::to_string(key).unwrap_or_default();
    let value_json = serde_json::to_string(value).unwrap_or_default();
    conditions.push_str(" AND (card LIKE ? ESCAPE '!' OR card LIKE ? ESCAPE '!')");
    params.push(like_pattern(&format!("{key_json}:{value_json}")).into());
    params.push(like_pattern(&format!("{key_json}:{value}")).into());
    sql.push_str("SELECT repository, name, timestamp, card FROM opsml_cards");
    sql.push_str(&conditions);
    let mut tagged: BTreeMap<(String, String), (i64, i64)> = BTreeMap::new();
    for row in db.execute(&sql, &params)? {
        let card: Value = serde_json::from_str(&row.text(3)?).unwrap_or(Value::Null);
        let stored = card.get("tags").and_then(|t| t.get(key.as_str()));
        let as_text = |v: &Value| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        if stored.map(as_text).as_deref() != Some(value.as_str()) {
            continue;
        }
        let entry = tagged
            .entry((row.text(1)?, row.text(0)?))
            .or_insert((0, i64::MIN));
        entry.0 += 1;
        entry.1 = entry.1.max(row.int(2)?);
    }
    let names = tagged
        .into_iter()
        .skip(usize::try_from(offset).unwrap_or(usize::MAX))
        .take(usize::try_from(limit.saturating_add(1)).unwrap_or(usize::MAX))
        .map(|((name, repository), (versions, updated))| NameSummary {
            repository,
            name,
            versions,
            updated,
        })
        .collect();
    page(names, limit)
}

fn summary(row: &Row) -> Result<NameSummary> {
    Ok(NameSummary {
        repository: row.text(0)?,
        name: row.text(1)?,
        versions: row.int(2)?,
        updated: row.int(3)?,
    })
}

fn page(mut names: Vec<NameSummary>, limit: u64) -> Result<NamePage> {
    let more = names.len() as u64 > limit;
    names.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    Ok(NamePage { names, more })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cards;
    use crate::testing::Sqlite;
    use registry_core::card::{Card, CardDefaults};
    use serde_json::json;

    fn add(db: &Sqlite, repository: &str, name: &str, version: &str, ts: i64, tag: &str) {
        let card = Card::from_fields(
            RegistryType::Model,
            json!({"name": name, "repository": repository, "version": version,
                   "uid": format!("{repository}-{name}-{version}"), "timestamp": ts,
                   "tags": {"stage": tag}})
            .as_object()
            .unwrap()
            .clone(),
            &CardDefaults {
                uid: "unused".into(),
                date: "2026-11-30".into(),
                app_env: "development".into(),
                timestamp: 0,
            },
        )
        .unwrap();
        cards::insert(db, &card).unwrap();
    }

    fn seeded() -> Sqlite {
        let db = Sqlite::memory();
        crate::schema::migrate(&db).unwrap();
        add(&db, "team-a", "churn", "1.0.0", 10, "dev");
        add(&db, "team-a", "churn", "1.1.0", 30, "prod");
        add(&db, "team-b", "churn", "0.1.0", 20, "dev");
        add(&db, "team-a", "fraud_model", "2.0.0", 40, "dev");
        add(&db, "team-b", "zeta", "1.0.0", 50, "prod");
        db
    }

    fn listed(page: &NamePage) -> Vec<(String, String, i64, i64)> {
        page.names
            .iter()
            .map(|n| (n.repository.clone(), n.name.clone(), n.versions, n.updated))
            .collect()
    }

    fn s(v: &str) -> String {
        v.to_string()
    }

    #[test]
    fn pages_names_in_order_with_counts_and_last_change() {
        let db = seeded();
        let all = NameFilter::default();
        let first = names_page(&db, RegistryType::Model, &all, 0, 2).unwrap();
        assert_eq!(
            listed(&first),
            vec![
                (s("team-a"), s("churn"), 2, 30),
                (s("team-b"), s("churn"), 1, 20)
            ]
        );
        assert!(first.more);
        let last = names_page(&db, RegistryType::Model, &all, 2, 2).unwrap();
        assert_eq!(
            listed(&last),
            vec![
                (s("team-a"), s("fraud-model"), 1, 40),
                (s("team-b"), s("zeta"), 1, 50)
            ]
        );
        assert!(!last.more);
        let other = names_page(&db, RegistryType::Data, &all, 0, 10).unwrap();
        assert!(other.names.is_empty());
    }

    #[test]
    fn filters_by_repository_search_tag_and_readable_repositories() {
        let db = seeded();
        let names = |filter: NameFilter| {
            names_page(&db, RegistryType::Model, &filter, 0, 10)
                .unwrap()
                .names
                .into_iter()
                .map(|n| format!("{}/{}", n.repository, n.name))
                .collect::<Vec<_>>()
        };
        let repository = Some(s("team-b"));
        assert_eq!(
            names(NameFilter {
                repository,
                ..Default::default()
            }),
            ["team-b/churn", "team-b/zeta"]
        );
        let search = Some(s("UD-M"));
        assert_eq!(
            names(NameFilter {
                search,
                ..Default::default()
            }),
            ["team-a/fraud-model"]
        );
        // LIKE's wildcards are searched for as text.
        for wildcard in ["%", "_", "!"] {
            let search = Some(s(wildcard));
            assert!(names(NameFilter {
                search,
                ..Default::default()
            })
            .is_empty());
        }
        let tag = Some((s("stage"), s("prod")));
        assert_eq!(
            names(NameFilter {
                tag,
                ..Default::default()
            }),
            ["team-a/churn", "team-b/zeta"]
        );
        let readable = Some(vec![s("team-a")]);
        assert_eq!(
            names(NameFilter {
                readable_repositories: readable,
                ..Default::default()
            }),
            ["team-a/churn", "team-a/fraud-model"]
        );
        assert!(names(NameFilter {
            readable_repositories: Some(Vec::new()),
            ..Default::default()
        })
        .is_empty());
    }

    #[test]
    fn a_tag_compares_as_text_whatever_its_json_type() {
        let db = seeded();
        let card = Card::from_fields(
            RegistryType::Model,
            json!({"name": "numbers", "repository": "team-c", "version": "1.0.0", "uid": "n1",
                   "timestamp": 1, "tags": {"epochs": 3, "ok": true, "note": "50%_off!"}})
            .as_object()
            .unwrap()
            .clone(),
            &CardDefaults {
                uid: "unused".into(),
                date: "2026-11-30".into(),
                app_env: "development".into(),
                timestamp: 0,
            },
        )
        .unwrap();
        cards::insert(&db, &card).unwrap();
        for (key, value, found) in [
            ("epochs", "3", true),
            ("epochs", "30", false),
            ("ok", "true", true),
            ("note", "50%_off!", true),
            ("note", "50", false),
            ("stage", "3", false),
        ] {
            let filter = NameFilter {
                tag: Some((s(key), s(value))),
                ..Default::default()
            };
            let page = names_page(&db, RegistryType::Model, &filter, 0, 10).unwrap();
            let names: Vec<&str> = page.names.iter().map(|n| n.name.as_str()).collect();
            assert_eq!(
                names.contains(&"numbers"),
                found,
                "{key}:{value} -> {names:?}"
            );
        }
    }

    #[test]
    fn a_tag_filter_pages_and_counts_only_tagged_versions() {
        let db = seeded();
        let filter = NameFilter {
            tag: Some((s("stage"), s("dev"))),
            ..Default::default()
        };
        let first = names_page(&db, RegistryType::Model, &filter, 0, 1).unwrap();
        assert_eq!(listed(&first), vec![(s("team-a"), s("churn"), 1, 10)]);
        assert!(first.more);
        let rest = names_page(&db, RegistryType::Model, &filter, 1, 5).unwrap();
        assert_eq!(rest.names.len(), 2);
        assert!(!rest.more);
    }
}
