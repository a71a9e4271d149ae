//! The audit trail: one record per write, stored in the write's own transaction
//! ([`crate::sql::transaction`]), so a write and its record exist together or not at all.

use crate::{Result, Row, Sql, SqlValue};
use serde::Serialize;

/// What a write did: the `action` of its record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditAction {
    CardCreate,
    CardUpdate,
    CardDelete,
    FileUpload,
    FileDelete,
    MetricsInsert,
    ModelRegister,
    TokenCreate,
    TokenRevoke,
}

impl AuditAction {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::CardCreate => "card.create",
            AuditAction::CardUpdate => "card.update",
            AuditAction::CardDelete => "card.delete",
            AuditAction::FileUpload => "file.upload",
            AuditAction::FileDelete => "file.delete",
            AuditAction::MetricsInsert => "metrics.insert",
            AuditAction::ModelRegister => "model.register",
            AuditAction::TokenCreate => "token.create",
            AuditAction::TokenRevoke => "token.revoke",
        }
    }
}

/// One write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditRecord {
    /// Microseconds since the Unix epoch.
    pub at: i64,
    /// The request that wrote (one request may write several records, e.g. a folder delete).
    pub request_id: String,
    /// Who: `login:<user>`, `token:<id>`, `admin-token` or `anonymous`; never a secret.
    pub identity: String,
    /// What: an [`AuditAction`]'s name (`card.create`, …).
    pub action: String,
    pub registry: Option<String>,
    pub repository: Option<String>,
    pub name: Option<String>,
    pub version: Option<String>,
    /// The thing written: a card's uid, a file's path, a run's uid, a token's id.
    pub target: String,
    pub detail: Option<String>,
}

impl AuditRecord {
    /// This record, about `card`: its registry, repository, name and version.
    pub fn about_card(self, card: &registry_core::card::Card) -> Self {
        AuditRecord {
            registry: Some(card.registry.as_str().to_string()),
            repository: Some(card.repository.clone()),
            name: Some(card.name.clone()),
            version: Some(card.version.to_string()),
            ..self
        }
    }
}

const COLUMNS: &str =
    "at, request_id, identity, action, registry, repository, name, version, target, detail";

fn optional(value: &Option<String>) -> SqlValue {
    value.as_deref().map_or(SqlValue::Null, SqlValue::from)
}

/// Adds a record; call it inside the write's transaction.
pub fn record(db: &dyn Sql, entry: &AuditRecord) -> Result<()> {
    db.execute(
        &format!("INSERT INTO opsml_audit ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
        &[
            entry.at.into(),
            entry.request_id.as_str().into(),
            entry.identity.as_str().into(),
            entry.action.as_str().into(),
            optional(&entry.registry),
            optional(&entry.repository),
            optional(&entry.name),
            optional(&entry.version),
            entry.target.as_str().into(),
            optional(&entry.detail),
        ],
    )?;
    Ok(())
}

/// Which records to read; every field narrows.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub repository: Option<String>,
    pub identity: Option<String>,
    pub action: Option<String>,
    /// Microseconds, inclusive.
    pub since: Option<i64>,
    /// Microseconds, exclusive.
    pub until: Option<i64>,
    pub limit: i64,
}

fn text_or_null(row: &Row, i: usize) -> Result<Option<String>> {
    if row.is_null(i)? {
        Ok(None)
    } else {
        row.text(i).map(Some)
    }
}

/// The matching records, newest first.
pub fn list(db: &dyn Sql, query: &AuditQuery) -> Result<Vec<AuditRecord>> {
    let mut conditions = Vec::new();
    let mut params = Vec::new();
    for (column, value) in [
        ("repository", &query.repository),
        ("identity", &query.identity),
        ("action", &query.action),
    ] {
        if let Some(value) = value {
            conditions.push(format!("{column} = ?"));
            params.push(SqlValue::from(value.as_str()));
        }
    }
    if let Some(since) = query.since {
        conditions.push("at >= ?".to_string());
        params.push(since.into());
    }
    if let Some(until) = query.until {
        conditions.push("at < ?".to_string());
        params.push(until.into());
    }
    let filter = if conditions.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conditions.join(" AND "))
    };
    params.push(query.limit.into());
    db.execute(
        &format!(
            "SELECT {COLUMNS} FROM opsml_audit {filter} ORDER BY at DESC, request_id, target LIMIT ?"
        ),
        &params,
    )?
    .iter()
    .map(|row| {
        Ok(AuditRecord {
            at: row.int(0)?,
            request_id: row.text(1)?,
            identity: row.text(2)?,
            action: row.text(3)?,
            registry: text_or_null(row, 4)?,
            repository: text_or_null(row, 5)?,
            name: text_or_null(row, 6)?,
            version: text_or_null(row, 7)?,
            target: row.text(8)?,
            detail: text_or_null(row, 9)?,
        })
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{migrate, Migrating};
    use crate::sql::transaction;
    use crate::testing::Sqlite;
    use crate::StoreError;

    fn entry(at: i64, identity: &str, repository: &str) -> AuditRecord {
        AuditRecord {
            at,
            request_id: format!("req-{at}"),
            identity: identity.into(),
            action: "card.create".into(),
            registry: Some("model".into()),
            repository: Some(repository.into()),
            name: Some("m".into()),
            version: Some("1.0.0".into()),
            target: format!("uid-{at}"),
            detail: None,
        }
    }

    #[test]
    fn records_are_filtered_by_repository_identity_and_time() {
        let db = Sqlite::memory();
        migrate(&db).unwrap();
        for (at, who, repo) in [
            (1, "token:a", "r1"),
            (2, "login:x", "r1"),
            (3, "token:a", "r2"),
        ] {
            record(&db, &entry(at, who, repo)).unwrap();
        }
        let all = AuditQuery {
            limit: 10,
            ..AuditQuery::default()
        };
        let ats =
            |q: &AuditQuery| -> Vec<i64> { list(&db, q).unwrap().iter().map(|r| r.at).collect() };
        assert_eq!(ats(&all), [3, 2, 1]);
        assert_eq!(
            ats(&AuditQuery {
                repository: Some("r1".into()),
                ..all.clone()
            }),
            [2, 1]
        );
        assert_eq!(
            ats(&AuditQuery {
                identity: Some("token:a".into()),
                since: Some(2),
                ..all.clone()
            }),
            [3]
        );
        assert_eq!(
            ats(&AuditQuery {
                until: Some(3),
                limit: 1,
                ..all.clone()
            }),
            [2]
        );
        assert_eq!(list(&db, &all).unwrap()[2], entry(1, "token:a", "r1"));
    }

    #[test]
    fn a_failed_write_leaves_no_record_and_a_fresh_database_gets_its_tables() {
        let db = Migrating::new(Sqlite::memory());
        // The first transaction fails on the missing schema, migrates, and runs again.
        transaction(&db, |tx| record(tx, &entry(1, "a", "r"))).unwrap();
        let failed = transaction(&db, |tx| {
            record(tx, &entry(2, "a", "r"))?;
            Err::<(), _>(StoreError::Conflict("the write itself failed".into()))
        });
        assert!(failed.is_err());
        let all = AuditQuery {
            limit: 10,
            ..AuditQuery::default()
        };
        assert_eq!(list(&db, &all).unwrap().len(), 1);
    }
}
