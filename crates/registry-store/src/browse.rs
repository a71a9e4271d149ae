//! Browsing a registry page by page: the distinct card names (with their repository, how many
//! versions each has and when it last changed), searched by part of the name and filtered by a
//! tag. The web UI's list pages read this; `cards::list` reads the versions of one name.

use crate::cards::tag_text;
use crate::{Result, Row, Sql, SqlValue};
use registry_core::RegistryType;
use serde_json::Value;

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

/// Where a page starts: names are ordered by (name, repository), and a page holds those after
/// (or, going back, before) one such pair. Keyset paging: every page costs what the first does.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Cursor {
    #[default]
    First,
    After {
        name: String,
        repository: String,
    },
    Before {
        name: String,
        repository: String,
    },
}

/// A page of names, ordered by name then repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamePage {
    pub names: Vec<NameSummary>,
    /// Whether names come before this page.
    pub earlier: bool,
    /// Whether names follow this page.
    pub later: bool,
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

/// The names of `registry` that pass `filter`: at most `limit`, from `cursor` on.
///
/// Without a tag this is one grouped query that walks the `(registry, name, repository)` index
/// from the cursor and stops after the page. A tag is inside each card's JSON: SQL keeps the
/// cards whose JSON holds the tag's text, and each of those is checked here.
pub fn names_page(
    db: &dyn Sql,
    registry: RegistryType,
    filter: &NameFilter,
    cursor: &Cursor,
    limit: u64,
) -> Result<NamePage> {
    let mut params: Vec<SqlValue> = vec![registry.as_str().into()];
    let mut conditions = String::from(" WHERE registry = ?");
    if let Some(readable) = &filter.readable_repositories {
        if readable.is_empty() {
            return Ok(NamePage {
                names: Vec::new(),
                earlier: false,
                later: false,
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
    let backwards = matches!(cursor, Cursor::Before { .. });
    if let Cursor::After { name, repository } | Cursor::Before { name, repository } = cursor {
        // The first comparison alone bounds the index range, on every database.
        let (op, op_or_equal) = if backwards { ("<", "<=") } else { (">", ">=") };
        conditions.push_str(&format!(
            " AND name {op_or_equal} ? AND (name {op} ? OR repository {op} ?)"
        ));
        params.push(name.as_str().into());
        params.push(name.as_str().into());
        params.push(repository.as_str().into());
    }
    let order = if backwards {
        " ORDER BY name DESC, repository DESC"
    } else {
        " ORDER BY name, repository"
    };
    let wanted = usize::try_from(limit.saturating_add(1)).unwrap_or(usize::MAX);
    let mut names = match &filter.tag {
        None => {
            let sql = format!(
                "SELECT repository, name, COUNT(*), MAX(timestamp) FROM opsml_cards{conditions} \
                 GROUP BY name, repository{order} LIMIT ?"
            );
            params.push(SqlValue::Integer(i64::try_from(wanted).unwrap_or(i64::MAX)));
            db.execute(&sql, &params)?
                .iter()
                .map(summary)
                .collect::<Result<Vec<_>>>()?
        }
        Some((key, value)) => tagged_names(db, conditions, params, backwards, key, value, wanted)?,
    };
    let more = names.len() > wanted - 1;
    names.truncate(wanted - 1);
    if backwards {
        names.reverse();
    }
    let (earlier, later) = match cursor {
        Cursor::First => (false, more),
        Cursor::After { .. } => (true, more),
        Cursor::Before { .. } => (more, true),
    };
    Ok(NamePage {
        names,
        earlier,
        later,
    })
}

/// Rows a tag filter reads at a time: a page of names stops the reading.
// Small in unit tests, so that they cross chunk boundaries.
const TAGGED_CHUNK: i64 = if cfg!(test) { 2 } else { 512 };

/// [`names_page`] with a tag: the first `wanted` names, in `order`, with a version carrying it.
/// Candidate cards are read a chunk at a time in (name, repository, uid) order, so a page whose
/// names are found early reads no further.
fn tagged_names(
    db: &dyn Sql,
    mut conditions: String,
    mut params: Vec<SqlValue>,
    backwards: bool,
    key: &str,
    value: &str,
    wanted: usize,
) -> Result<Vec<NameSummary>> {
    // Cards are stored as compact JSON, so a card with the tag contains `"key":"value"` (or
    // `"key":value` for a number or boolean).
    let key_json = serde_json::to_string(key).unwrap_or_default();
    let value_json = serde_json::to_string(value).unwrap_or_default();
    conditions.push_str(" AND (card LIKE ? ESCAPE '!' OR card LIKE ? ESCAPE '!')");
    params.push(like_pattern(&format!("{key_json}:{value_json}")).into());
    params.push(like_pattern(&format!("{key_json}:{value}")).into());
    let (op, op_or_equal, direction) = if backwards {
        ("<", "<=", " DESC")
    } else {
        (">", ">=", "")
    };
    let order = format!(" ORDER BY name{direction}, repository{direction}, uid{direction} LIMIT ?");
    let mut names: Vec<NameSummary> = Vec::new();
    let mut last_row: Option<(String, String, String)> = None;
    loop {
        let mut sql =
            format!("SELECT repository, name, timestamp, card, uid FROM opsml_cards{conditions}");
        let mut chunk_params = params.clone();
        if let Some((name, repository, uid)) = &last_row {
            sql.push_str(&format!(
                " AND name {op_or_equal} ? AND (name {op} ? OR repository {op} ? OR (repository = ? AND uid {op} ?))"
            ));
            for value in [name, name, repository, repository, uid] {
                chunk_params.push(value.as_str().into());
            }
        }
        sql.push_str(&order);
        chunk_params.push(SqlValue::Integer(TAGGED_CHUNK));
        let rows = db.execute(&sql, &chunk_params)?;
        for row in &rows {
            let (repository, name, timestamp) = (row.text(0)?, row.text(1)?, row.int(2)?);
            last_row = Some((name.clone(), repository.clone(), row.text(4)?));
            let card: Value = serde_json::from_str(&row.text(3)?).unwrap_or(Value::Null);
            let stored = card.get("tags").and_then(|t| t.get(key));
            if stored.map(tag_text).as_deref() != Some(value) {
                continue;
            }
            let full = names.len() == wanted;
            match names.last_mut() {
                Some(last) if last.name == name && last.repository == repository => {
                    last.versions += 1;
                    last.updated = last.updated.max(timestamp);
                }
                _ if full => return Ok(names),
                _ => names.push(NameSummary {
                    repository,
                    name,
                    versions: 1,
                    updated: timestamp,
                }),
            }
        }
        if (rows.len() as i64) < TAGGED_CHUNK {
            return Ok(names);
        }
    }
}

fn summary(row: &Row) -> Result<NameSummary> {
    Ok(NameSummary {
        repository: row.text(0)?,
        name: row.text(1)?,
        versions: row.int(2)?,
        updated: row.int(3)?,
    })
}

/// The repositories holding cards named `name` in `registry`, in order, of `readable` only
/// when given.
pub fn repositories_of(
    db: &dyn Sql,
    registry: RegistryType,
    name: &str,
    readable: Option<&[String]>,
) -> Result<Vec<String>> {
    let rows = db.execute(
        "SELECT DISTINCT repository FROM opsml_cards WHERE registry = ? AND name = ? ORDER BY repository",
        &[registry.as_str().into(), name.into()],
    )?;
    let mut repositories = rows.iter().map(|r| r.text(0)).collect::<Result<Vec<_>>>()?;
    if let Some(readable) = readable {
        repositories.retain(|r| readable.contains(r));
    }
    Ok(repositories)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cards;
    use crate::testing::Sqlite;
    use registry_core::card::{Card, CardDefaults};
    use serde_json::json;

    fn add(db: &Sqlite, repository: &str, name: &str, version: &str, ts: i64, tag: &str) {
        add_tagged(db, repository, name, version, ts, json!({ "stage": tag }));
    }

    fn add_tagged(db: &Sqlite, repository: &str, name: &str, version: &str, ts: i64, tags: Value) {
        let card = Card::from_fields(
            RegistryType::Model,
            json!({"name": name, "repository": repository, "version": version,
                   "uid": format!("{repository}-{name}-{version}"), "timestamp": ts,
                   "tags": tags})
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
        let first = names_page(&db, RegistryType::Model, &all, &Cursor::First, 2).unwrap();
        assert_eq!(
            listed(&first),
            vec![
                (s("team-a"), s("churn"), 2, 30),
                (s("team-b"), s("churn"), 1, 20)
            ]
        );
        assert!(first.later && !first.earlier);
        let after = Cursor::After {
            name: s("churn"),
            repository: s("team-b"),
        };
        let last = names_page(&db, RegistryType::Model, &all, &after, 2).unwrap();
        assert_eq!(
            listed(&last),
            vec![
                (s("team-a"), s("fraud-model"), 1, 40),
                (s("team-b"), s("zeta"), 1, 50)
            ]
        );
        assert!(last.earlier && !last.later);
        // Back from the last page: the first page again, with nothing before it.
        let before = Cursor::Before {
            name: s("fraud-model"),
            repository: s("team-a"),
        };
        let back = names_page(&db, RegistryType::Model, &all, &before, 2).unwrap();
        assert_eq!(listed(&back), listed(&first));
        assert!(!back.earlier && back.later);
        let other = names_page(&db, RegistryType::Data, &all, &Cursor::First, 10).unwrap();
        assert!(other.names.is_empty());
        assert_eq!(
            repositories_of(&db, RegistryType::Model, "churn", None).unwrap(),
            ["team-a", "team-b"]
        );
        let readable = [s("team-b")];
        assert_eq!(
            repositories_of(&db, RegistryType::Model, "churn", Some(&readable)).unwrap(),
            ["team-b"]
        );
    }

    #[test]
    fn filters_by_repository_search_tag_and_readable_repositories() {
        let db = seeded();
        let names = |filter: NameFilter| {
            names_page(&db, RegistryType::Model, &filter, &Cursor::First, 10)
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
        let tags = json!({"epochs": 3, "ok": true, "note": "50%_off!"});
        add_tagged(&db, "team-c", "numbers", "1.0.0", 1, tags);
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
            let page = names_page(&db, RegistryType::Model, &filter, &Cursor::First, 10).unwrap();
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
        let first = names_page(&db, RegistryType::Model, &filter, &Cursor::First, 1).unwrap();
        assert_eq!(listed(&first), vec![(s("team-a"), s("churn"), 1, 10)]);
        assert!(first.later);
        let after = Cursor::After {
            name: s("churn"),
            repository: s("team-a"),
        };
        let rest = names_page(&db, RegistryType::Model, &filter, &after, 5).unwrap();
        assert_eq!(rest.names.len(), 2);
        assert!(!rest.later);
    }
}
