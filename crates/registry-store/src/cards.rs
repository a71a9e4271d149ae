//! Card metadata: one table for every registry, the full record as JSON plus the columns that
//! queries need. (registry, repository, name, version) is unique in the database itself, so
//! two concurrent registrations of one version cannot both succeed.

use crate::{Result, Row, Sql, SqlValue, StoreError};
use registry_core::card::Card;
use registry_core::{RegistryType, Version, VersionFilter, VersionScope};
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// Sorts pre-releases by SemVer precedence as plain text (byte order): numeric identifiers
/// (`0` + a length letter + digits) before alphanumeric ones (`1` + text), identifiers joined by
/// a space (below every identifier character, so fewer identifiers sort first), and a release
/// (`~`) above all of its pre-releases.
pub fn precedence_key(version: &Version) -> String {
    let Some(pre) = version.pre() else {
        return "~".to_string();
    };
    pre.split('.')
        .map(|ident| {
            if ident.bytes().all(|b| b.is_ascii_digit()) {
                let len = (b'A' + ident.len().min(25) as u8) as char;
                format!("0{len}{ident}")
            } else {
                format!("1{ident}")
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn version_params(version: &Version) -> [SqlValue; 5] {
    [
        SqlValue::Text(version.to_string()),
        SqlValue::Integer(version.major() as i64),
        SqlValue::Integer(version.minor() as i64),
        SqlValue::Integer(version.patch() as i64),
        SqlValue::Text(precedence_key(version)),
    ]
}

fn conflict_message(card: &Card) -> String {
    format!(
        "{} card {}/{} version {} already exists",
        card.registry, card.repository, card.name, card.version
    )
}

/// Stores a new card; `Conflict` if its uid or its version is taken.
pub fn insert(db: &dyn Sql, card: &Card) -> Result<()> {
    let mut params = vec![
        SqlValue::Text(card.uid.clone()),
        card.registry.as_str().into(),
        card.repository.as_str().into(),
        card.name.as_str().into(),
    ];
    params.extend(version_params(&card.version));
    params.extend([
        SqlValue::Integer(card.timestamp),
        card.date.as_str().into(),
        SqlValue::Text(Value::Object(card.record.clone()).to_string()),
    ]);
    db.execute(
        "INSERT INTO opsml_cards (uid, registry, repository, name, version, major, minor, patch,
           precedence, timestamp, date, card) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        &params,
    )
    .map_err(|e| match e {
        StoreError::Conflict(m) if m.contains("uid") => {
            StoreError::Conflict(format!("a card with uid {} already exists", card.uid))
        }
        StoreError::Conflict(_) => StoreError::Conflict(conflict_message(card)),
        other => other,
    })?;
    Ok(())
}

/// The stored record of a card, if it exists in `registry`.
pub fn get(db: &dyn Sql, registry: RegistryType, uid: &str) -> Result<Option<Map<String, Value>>> {
    db.execute(
        "SELECT card FROM opsml_cards WHERE registry = ? AND uid = ?",
        &[registry.as_str().into(), uid.into()],
    )?
    .first()
    .map(record)
    .transpose()
}

/// Replaces a card's record (same uid); false if there is no such card.
pub fn update(db: &dyn Sql, card: &Card) -> Result<bool> {
    if get(db, card.registry, &card.uid)?.is_none() {
        return Ok(false);
    }
    let mut params = vec![card.repository.as_str().into(), card.name.as_str().into()];
    params.extend(version_params(&card.version));
    params.extend([
        SqlValue::Integer(card.timestamp),
        card.date.as_str().into(),
        SqlValue::Text(Value::Object(card.record.clone()).to_string()),
        card.registry.as_str().into(),
        card.uid.as_str().into(),
    ]);
    db.execute(
        "UPDATE opsml_cards SET repository = ?, name = ?, version = ?, major = ?, minor = ?,
           patch = ?, precedence = ?, timestamp = ?, date = ?, card = ?
         WHERE registry = ? AND uid = ?",
        &params,
    )
    .map_err(|e| match e {
        StoreError::Conflict(_) => StoreError::Conflict(conflict_message(card)),
        other => other,
    })?;
    Ok(true)
}

/// Deletes a card; returns its record if it existed.
pub fn delete(
    db: &dyn Sql,
    registry: RegistryType,
    uid: &str,
) -> Result<Option<Map<String, Value>>> {
    let existing = get(db, registry, uid)?;
    if existing.is_some() {
        db.execute(
            "DELETE FROM opsml_cards WHERE registry = ? AND uid = ?",
            &[registry.as_str().into(), uid.into()],
        )?;
    }
    Ok(existing)
}

/// The versions of a card that [`registry_core::next_version`] needs for a request in `scope`
/// ([`registry_core::VersionRequest::scope`]): those whose numbers are at least the highest
/// numbers in scope, none if nothing is in scope. With the index on the version numbers, a
/// card with thousands of versions costs a few index entries, not all of them.
///
/// That index came with a migration that no failing statement brings to an older database,
/// so the same statement also reads the schema's version, and an older schema is brought up
/// to date (once) before the statement runs again.
pub fn versions_for_next(
    db: &dyn Sql,
    registry: RegistryType,
    name: &str,
    repository: &str,
    scope: &VersionScope,
) -> Result<Vec<String>> {
    let card = [registry.as_str().into(), name.into(), repository.into()];
    let mut params = card.to_vec();
    params.extend(card);
    let mut in_scope = String::new();
    for (column, value) in [
        ("major", scope.major),
        ("minor", scope.minor),
        ("patch", scope.patch),
    ] {
        if let Some(value) = value {
            in_scope.push_str(&format!(" AND {column} = ?"));
            // Stored the same way (see `version_params`).
            params.push(SqlValue::Integer(value as i64));
        }
    }
    // The subquery is uncorrelated, so it runs once, whatever the planner's statistics say.
    let statement = format!(
        "SELECT NULL, COALESCE(MAX(version), 0) FROM opsml_schema_migrations
         UNION ALL
         SELECT version, NULL FROM opsml_cards
         WHERE registry = ? AND name = ? AND repository = ?
           AND (major, minor, patch) >= (
             SELECT major, minor, patch FROM opsml_cards
             WHERE registry = ? AND name = ? AND repository = ?{in_scope}
             ORDER BY major DESC, minor DESC, patch DESC LIMIT 1)"
    );
    let mut rows = db.execute(&statement, &params)?;
    let schema_current = |rows: &[Row]| -> Result<bool> {
        for row in rows {
            if row.is_null(0)? {
                return Ok(row.int(1)? >= crate::schema::LATEST);
            }
        }
        Ok(false)
    };
    if !schema_current(&rows)? {
        crate::schema::migrate(db)?;
        rows = db.execute(&statement, &params)?;
    }
    let mut versions = Vec::new();
    for row in &rows {
        if !row.is_null(0)? {
            versions.push(row.text(0)?);
        }
    }
    Ok(versions)
}

pub fn repositories(db: &dyn Sql, registry: RegistryType) -> Result<Vec<String>> {
    db.execute(
        "SELECT DISTINCT repository FROM opsml_cards WHERE registry = ? ORDER BY repository",
        &[registry.as_str().into()],
    )?
    .iter()
    .map(|r| r.text(0))
    .collect()
}

pub fn names(
    db: &dyn Sql,
    registry: RegistryType,
    repository: Option<&str>,
) -> Result<Vec<String>> {
    let rows = match repository {
        Some(repo) => db.execute(
            "SELECT DISTINCT name FROM opsml_cards WHERE registry = ? AND repository = ? ORDER BY name",
            &[registry.as_str().into(), repo.into()],
        )?,
        None => db.execute(
            "SELECT DISTINCT name FROM opsml_cards WHERE registry = ? ORDER BY name",
            &[registry.as_str().into()],
        )?,
    };
    rows.iter().map(|r| r.text(0)).collect()
}

/// The project id of (name, repository): its existing one, else one more than the highest.
pub fn project_id(db: &dyn Sql, name: &str, repository: &str) -> Result<i64> {
    let mut highest = 0;
    for row in db.execute(
        "SELECT card FROM opsml_cards WHERE registry = ?",
        &[RegistryType::Project.as_str().into()],
    )? {
        let card = record(&row)?;
        let Some(id) = card.get("project_id").and_then(Value::as_i64) else {
            continue;
        };
        if card.get("name").and_then(Value::as_str) == Some(name)
            && card.get("repository").and_then(Value::as_str) == Some(repository)
        {
            return Ok(id);
        }
        highest = highest.max(id);
    }
    Ok(highest + 1)
}

/// A `cards/list` query, already validated.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub name: Option<String>,
    pub repository: Option<String>,
    pub uid: Option<String>,
    pub version: Option<VersionFilter>,
    /// Only cards whose `timestamp` (microseconds) is at most this: `max_date`'s end of day.
    pub max_timestamp: Option<i64>,
    pub limit: Option<u64>,
    pub tags: Map<String, Value>,
    pub query_terms: Map<String, Value>,
    pub ignore_release_candidates: bool,
    /// Newest first instead of highest version first (only without a name).
    pub sort_by_timestamp: bool,
    /// Only cards in these repositories (those the caller may read); `None` for all.
    pub readable_repositories: Option<Vec<String>>,
}

fn record(row: &Row) -> Result<Map<String, Value>> {
    parse_card(&row.text(0)?)
}

fn parse_card(text: &str) -> Result<Map<String, Value>> {
    match serde_json::from_str(text) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(not_an_object()),
    }
}

fn not_an_object() -> StoreError {
    StoreError::Corrupt("a stored card is not a JSON object".into())
}

/// A card's JSON as it was stored (checked to be one JSON object, not parsed into values).
fn stored_card(row: &Row) -> Result<Box<RawValue>> {
    let raw = RawValue::from_string(row.text(0)?).map_err(|_| not_an_object())?;
    if !raw.get().starts_with('{') {
        return Err(not_an_object());
    }
    Ok(raw)
}

/// The answer to `cards/list`: the cards as stored, copied out without being parsed.
#[derive(Serialize)]
pub struct CardList {
    pub cards: Vec<Box<RawValue>>,
}

/// A tag value as text: a string as itself, anything else as its JSON.
pub(crate) fn tag_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Tag values compare as text, as the reference's JSON lookup did (`{"idx": "3"}` finds 3).
fn same_text(stored: Option<&Value>, wanted: &Value) -> bool {
    stored.is_some_and(|s| tag_text(s) == tag_text(wanted))
}

/// Cards matching `query`, highest version first (or newest first), at most `limit`.
pub fn list(
    db: &dyn Sql,
    registry: RegistryType,
    query: &ListQuery,
) -> Result<Vec<Map<String, Value>>> {
    list_stored(db, registry, query)?
        .iter()
        .map(|card| parse_card(card.get()))
        .collect()
}

/// [`list`], each card as its stored JSON: a card is parsed only to check tags or query terms.
pub fn list_stored(
    db: &dyn Sql,
    registry: RegistryType,
    query: &ListQuery,
) -> Result<Vec<Box<RawValue>>> {
    let mut sql = String::from("SELECT card, version FROM opsml_cards WHERE registry = ?");
    let mut params: Vec<SqlValue> = vec![registry.as_str().into()];
    if let Some(readable) = &query.readable_repositories {
        if readable.is_empty() {
            return Ok(Vec::new());
        }
        sql.push_str(&format!(
            " AND repository IN ({})",
            vec!["?"; readable.len()].join(", ")
        ));
        params.extend(readable.iter().map(|r| SqlValue::from(r.as_str())));
    }
    let mut add = |clause: &str, value: SqlValue| {
        sql.push_str(clause);
        params.push(value);
    };
    // A uid names one card: the other filters do not apply (as in the reference).
    if let Some(uid) = &query.uid {
        add(" AND uid = ?", uid.as_str().into());
        sql.push_str(" ORDER BY uid");
        return db.execute(&sql, &params)?.iter().map(stored_card).collect();
    }
    if let Some(name) = &query.name {
        add(" AND name = ?", name.as_str().into());
    }
    if let Some(repository) = &query.repository {
        add(" AND repository = ?", repository.as_str().into());
    }
    if let Some(max) = query.max_timestamp {
        add(" AND timestamp <= ?", SqlValue::Integer(max));
    }
    // Whole majors outside the filter are skipped in SQL (majors are stored as i64: only
    // bounds that fit are used); `matches` below still decides every row.
    if let Some((low, high)) = query.version.as_ref().and_then(|f| f.major_bounds()) {
        if let (Ok(low), Ok(high)) = (i64::try_from(low), i64::try_from(high)) {
            add(" AND major >= ?", SqlValue::Integer(low));
            add(" AND major <= ?", SqlValue::Integer(high));
        }
    }
    if query.ignore_release_candidates {
        sql.push_str(" AND precedence = '~'");
    }
    if query.sort_by_timestamp && query.name.is_none() {
        sql.push_str(" ORDER BY timestamp DESC, uid");
    } else {
        sql.push_str(
            " ORDER BY major DESC, minor DESC, patch DESC, precedence DESC, timestamp DESC, uid",
        );
    }
    let filtered_here =
        query.version.is_some() || !query.tags.is_empty() || !query.query_terms.is_empty();
    if let (Some(limit), false) = (query.limit, filtered_here) {
        sql.push_str(" LIMIT ?");
        params.push(SqlValue::Integer(limit.min(i64::MAX as u64) as i64));
    }

    let mut out = Vec::new();
    for row in db.execute(&sql, &params)? {
        if let Some(filter) = &query.version {
            let version = Version::parse(&row.text(1)?)
                .map_err(|e| StoreError::Corrupt(format!("stored version: {e}")))?;
            if !filter.matches(&version) {
                continue;
            }
        }
        if !query.tags.is_empty() || !query.query_terms.is_empty() {
            let card = record(&row)?;
            let tags = card.get("tags").and_then(Value::as_object);
            if !query
                .tags
                .iter()
                .all(|(k, v)| same_text(tags.and_then(|t| t.get(k)), v))
            {
                continue;
            }
            if !query
                .query_terms
                .iter()
                .all(|(k, v)| card.get(k) == Some(v))
            {
                continue;
            }
        }
        out.push(stored_card(&row)?);
        let top_only = query.version.as_ref().is_some_and(VersionFilter::top_only);
        if top_only || query.limit.is_some_and(|l| out.len() as u64 >= l) {
            break;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Sqlite;
    use registry_core::card::CardDefaults;
    use serde_json::json;

    fn db() -> Sqlite {
        let db = Sqlite::memory();
        crate::schema::migrate(&db).unwrap();
        db
    }

    fn card(registry: RegistryType, name: &str, version: &str, uid: &str, ts: i64) -> Card {
        Card::from_fields(
            registry,
            json!({"name": name, "repository": "repo", "version": version, "uid": uid,
                   "timestamp": ts, "tags": {"idx": ts.to_string()}})
            .as_object()
            .unwrap()
            .clone(),
            &CardDefaults {
                uid: "unused".into(),
                date: format!("2026-01-{:02}", ts % 28 + 1),
                app_env: "development".into(),
                timestamp: 0,
            },
        )
        .unwrap()
    }

    fn versions_of(cards: &[Map<String, Value>]) -> Vec<&str> {
        cards
            .iter()
            .map(|c| c["version"].as_str().unwrap())
            .collect()
    }

    fn seeded() -> Sqlite {
        let db = db();
        let versions = [
            "1.0.0",
            "1.1.0",
            "1.1.1",
            "1.2.0-rc.1",
            "1.2.0",
            "2.0.0",
            "10.0.0",
            "1.10.0",
            "1.1.10",
            "2.1.0-rc.1",
            "1.1.1-rc.1",
            "1.2.0-alpha",
            "1.2.0-rc.10",
            "1.2.0-rc.2",
        ];
        for (i, v) in versions.iter().enumerate() {
            insert(
                &db,
                &card(RegistryType::Data, "lc", v, &format!("u{i}"), i as i64),
            )
            .unwrap();
        }
        db
    }

    #[test]
    fn list_sorts_by_precedence_and_limits_after_sorting() {
        let db = seeded();
        let q = ListQuery {
            name: Some("lc".into()),
            ..Default::default()
        };
        assert_eq!(
            versions_of(&list(&db, RegistryType::Data, &q).unwrap()),
            [
                "10.0.0",
                "2.1.0-rc.1",
                "2.0.0",
                "1.10.0",
                "1.2.0",
                "1.2.0-rc.10",
                "1.2.0-rc.2",
                "1.2.0-rc.1",
                "1.2.0-alpha",
                "1.1.10",
                "1.1.1",
                "1.1.1-rc.1",
                "1.1.0",
                "1.0.0"
            ]
        );
        let q = ListQuery {
            name: Some("lc".into()),
            limit: Some(1),
            version: Some(VersionFilter::parse("1.2").unwrap()),
            ..Default::default()
        };
        assert_eq!(
            versions_of(&list(&db, RegistryType::Data, &q).unwrap()),
            ["1.2.0"]
        );
    }

    #[test]
    fn list_filters() {
        let db = seeded();
        let run = |q: ListQuery| {
            versions_of(&list(&db, RegistryType::Data, &q).unwrap())
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
        };
        let filter = |f: &str| Some(VersionFilter::parse(f).unwrap());
        assert_eq!(
            run(ListQuery {
                version: filter("~1.1.0"),
                ..Default::default()
            }),
            ["1.1.10"]
        );
        assert_eq!(
            run(ListQuery {
                version: filter("^1.1.0"),
                ..Default::default()
            }),
            ["1.10.0"]
        );
        assert_eq!(
            run(ListQuery {
                version: filter("1.1"),
                ignore_release_candidates: true,
                ..Default::default()
            }),
            ["1.1.10", "1.1.1", "1.1.0"]
        );
        let mut tags = Map::new();
        tags.insert("idx".into(), json!(3));
        assert_eq!(
            run(ListQuery {
                tags,
                ..Default::default()
            }),
            ["1.2.0-rc.1"]
        );
        assert_eq!(
            run(ListQuery {
                uid: Some("u6".into()),
                ..Default::default()
            }),
            ["10.0.0"]
        );
        assert_eq!(
            run(ListQuery {
                max_timestamp: Some(1),
                ..Default::default()
            }),
            ["1.1.0", "1.0.0"]
        );
        assert_eq!(
            run(ListQuery {
                uid: Some("u6".into()),
                name: Some("other".into()),
                ..Default::default()
            }),
            ["10.0.0"],
            "a uid ignores the other filters"
        );
        assert_eq!(
            run(ListQuery {
                sort_by_timestamp: true,
                limit: Some(2),
                ..Default::default()
            }),
            ["1.2.0-rc.2", "1.2.0-rc.10"]
        );
        // A caller limited to other repositories sees nothing, not even by uid.
        for uid in [None, Some("u6".to_string())] {
            let only = |repositories: &[&str]| ListQuery {
                uid: uid.clone(),
                readable_repositories: Some(repositories.iter().map(|r| r.to_string()).collect()),
                ..Default::default()
            };
            assert!(run(only(&["other", "more"])).is_empty());
            assert!(!run(only(&["other", "repo"])).is_empty());
        }
        let mut terms = Map::new();
        terms.insert("version".into(), json!("2.0.0"));
        assert_eq!(
            run(ListQuery {
                query_terms: terms,
                ..Default::default()
            }),
            ["2.0.0"]
        );
        assert!(list(&db, RegistryType::Model, &ListQuery::default())
            .unwrap()
            .is_empty());
    }

    #[test]
    fn listed_cards_are_the_stored_json() {
        let db = seeded();
        let q = ListQuery {
            name: Some("lc".into()),
            ..Default::default()
        };
        let stored = list_stored(&db, RegistryType::Data, &q).unwrap();
        let parsed = list(&db, RegistryType::Data, &q).unwrap();
        assert_eq!(stored.len(), 14);
        for (raw, card) in stored.iter().zip(&parsed) {
            assert_eq!(raw.get(), Value::Object(card.clone()).to_string());
        }
        let answer = serde_json::to_value(CardList { cards: stored }).unwrap();
        assert_eq!(answer, json!({ "cards": parsed }));
    }

    #[test]
    fn a_stored_card_that_is_not_a_json_object_is_reported() {
        for bad in ["{\"name\": ", "[1, 2]", "\"text\""] {
            let db = seeded();
            db.execute(
                "UPDATE opsml_cards SET card = ? WHERE uid = 'u6'",
                &[bad.into()],
            )
            .unwrap();
            for q in [
                ListQuery::default(),
                ListQuery {
                    uid: Some("u6".into()),
                    ..Default::default()
                },
            ] {
                let err = list_stored(&db, RegistryType::Data, &q).unwrap_err();
                assert!(
                    matches!(&err, StoreError::Corrupt(m) if m.contains("not a JSON object")),
                    "{bad}: {err}"
                );
            }
        }
    }

    #[test]
    fn versions_are_unique_per_card_in_the_database() {
        let db = seeded();
        let err = insert(&db, &card(RegistryType::Data, "lc", "1.0.0", "new", 99)).unwrap_err();
        assert_eq!(
            err,
            StoreError::Conflict("data card repo/lc version 1.0.0 already exists".into())
        );
        // The same version in another registry or under another name is fine.
        insert(&db, &card(RegistryType::Model, "lc", "1.0.0", "m1", 1)).unwrap();
        insert(&db, &card(RegistryType::Data, "other", "1.0.0", "o1", 1)).unwrap();
        let err = insert(&db, &card(RegistryType::Data, "x", "1.0.0", "m1", 1)).unwrap_err();
        assert!(matches!(err, StoreError::Conflict(m) if m.contains("uid m1")));
    }

    #[test]
    fn versions_for_next_are_those_from_the_highest_in_scope() {
        let db = seeded();
        let sent = |major, minor| {
            let scope = VersionScope {
                major,
                minor,
                patch: None,
            };
            let mut got = versions_for_next(&db, RegistryType::Data, "lc", "repo", &scope).unwrap();
            got.sort();
            got
        };
        assert_eq!(sent(None, None), ["10.0.0"]);
        assert_eq!(
            sent(Some(1), None),
            ["1.10.0", "10.0.0", "2.0.0", "2.1.0-rc.1"]
        );
        assert_eq!(
            sent(Some(1), Some(2)),
            [
                "1.10.0",
                "1.2.0",
                "1.2.0-alpha",
                "1.2.0-rc.1",
                "1.2.0-rc.10",
                "1.2.0-rc.2",
                "10.0.0",
                "2.0.0",
                "2.1.0-rc.1"
            ]
        );
        assert!(sent(Some(3), None).is_empty());
        assert!(versions_for_next(
            &db,
            RegistryType::Data,
            "other",
            "repo",
            &VersionScope::default()
        )
        .unwrap()
        .is_empty());
    }

    #[test]
    fn update_delete_and_lookups() {
        let db = seeded();
        let mut c = card(RegistryType::Data, "lc", "3.0.0", "u0", 0);
        c.record.insert("contact".into(), json!("new"));
        assert!(update(&db, &c).unwrap());
        assert_eq!(
            get(&db, RegistryType::Data, "u0").unwrap().unwrap()["contact"],
            "new"
        );
        assert!(!update(&db, &card(RegistryType::Data, "lc", "9.0.0", "nope", 0)).unwrap());
        // Moving onto an existing version conflicts.
        let clash = card(RegistryType::Data, "lc", "2.0.0", "u1", 0);
        assert!(matches!(update(&db, &clash), Err(StoreError::Conflict(_))));
        assert!(delete(&db, RegistryType::Data, "u0").unwrap().is_some());
        assert!(delete(&db, RegistryType::Data, "u0").unwrap().is_none());
        assert_eq!(repositories(&db, RegistryType::Data).unwrap(), ["repo"]);
        assert_eq!(
            names(&db, RegistryType::Data, Some("repo")).unwrap(),
            ["lc"]
        );
        assert!(names(&db, RegistryType::Data, Some("nope"))
            .unwrap()
            .is_empty());
    }

    #[test]
    fn project_ids_are_reused_or_next() {
        let db = db();
        assert_eq!(project_id(&db, "p", "r").unwrap(), 1);
        for (uid, name, id) in [("a", "p", 1), ("b", "q", 4)] {
            let card = Card::from_fields(
                RegistryType::Project,
                json!({"name": name, "repository": "r", "version": "1.0.0", "uid": uid, "project_id": id})
                    .as_object()
                    .unwrap()
                    .clone(),
                &CardDefaults {
                    uid: "x".into(),
                    date: "2026-01-01".into(),
                    app_env: "development".into(),
                    timestamp: 1,
                },
            )
            .unwrap();
            insert(&db, &card).unwrap();
        }
        assert_eq!(project_id(&db, "p", "r").unwrap(), 1);
        assert_eq!(project_id(&db, "q", "r").unwrap(), 4);
        assert_eq!(project_id(&db, "new", "r").unwrap(), 5);
    }

    #[test]
    fn precedence_keys_order_like_semver() {
        let ordered = [
            "1.0.0-1",
            "1.0.0-2",
            "1.0.0-10",
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-alpha-x",
            "1.0.0-beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
        ];
        for pair in ordered.windows(2) {
            let (a, b) = (
                Version::parse(pair[0]).unwrap(),
                Version::parse(pair[1]).unwrap(),
            );
            assert_eq!(a.cmp_precedence(&b), std::cmp::Ordering::Less, "{pair:?}");
            assert!(precedence_key(&a) < precedence_key(&b), "{pair:?}");
        }
    }
}
