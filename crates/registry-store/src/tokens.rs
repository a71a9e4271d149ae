//! API tokens and login failures (the rules are in `registry_core::access`). A token's record
//! holds its SHA-256, never the token.

use crate::sql::upsert;
use crate::{Result, Row, Sql, SqlValue, StoreError};
use registry_core::access::{Failures, Grant, Scope, StoredToken};
use serde::Serialize;

/// A token as the admin API lists it: everything but its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenRecord {
    pub id: String,
    /// What it is for, as its creator named it (`ci-team-a`).
    pub name: String,
    pub scope: Scope,
    /// `null` for every repository.
    pub repositories: Option<Vec<String>>,
    pub created_at: i64,
    pub created_by: String,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
    pub revoked_by: Option<String>,
}

const COLUMNS: &str = "token_id, label, scope, repositories, created_at, created_by, expires_at, \
                       revoked_at, revoked_by, secret_hash";

fn optional_int(row: &Row, i: usize) -> Result<Option<i64>> {
    if row.is_null(i)? {
        Ok(None)
    } else {
        row.int(i).map(Some)
    }
}

fn optional_text(row: &Row, i: usize) -> Result<Option<String>> {
    if row.is_null(i)? {
        Ok(None)
    } else {
        row.text(i).map(Some)
    }
}

/// A row of [`COLUMNS`], and its hash.
fn from_row(row: &Row) -> Result<(TokenRecord, String)> {
    let id = row.text(0)?;
    let scope =
        Scope::parse(&row.text(2)?).map_err(|e| StoreError::Corrupt(format!("token {id}: {e}")))?;
    let repositories = match optional_text(row, 3)? {
        None => None,
        Some(json) => Some(
            serde_json::from_str(&json)
                .map_err(|e| StoreError::Corrupt(format!("token repositories {json:?}: {e}")))?,
        ),
    };
    Ok((
        TokenRecord {
            id,
            name: row.text(1)?,
            scope,
            repositories,
            created_at: row.int(4)?,
            created_by: row.text(5)?,
            expires_at: row.int(6)?,
            revoked_at: optional_int(row, 7)?,
            revoked_by: optional_text(row, 8)?,
        },
        row.text(9)?,
    ))
}

/// Stores a new token's record with the hash of the token.
pub fn insert(db: &dyn Sql, token: &TokenRecord, hash: &str) -> Result<()> {
    let repositories = match &token.repositories {
        Some(list) => SqlValue::Text(serde_json::to_string(list).expect("strings serialize")),
        None => SqlValue::Null,
    };
    db.execute(
        &format!("INSERT INTO opsml_tokens ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
        &[
            token.id.as_str().into(),
            token.name.as_str().into(),
            token.scope.as_str().into(),
            repositories,
            token.created_at.into(),
            token.created_by.as_str().into(),
            token.expires_at.into(),
            SqlValue::Null,
            SqlValue::Null,
            hash.into(),
        ],
    )?;
    Ok(())
}

/// One token's record.
pub fn get(db: &dyn Sql, id: &str) -> Result<Option<TokenRecord>> {
    Ok(find_with_hash(db, id)?.map(|(record, _)| record))
}

fn find_with_hash(db: &dyn Sql, id: &str) -> Result<Option<(TokenRecord, String)>> {
    db.execute(
        &format!("SELECT {COLUMNS} FROM opsml_tokens WHERE token_id = ?"),
        &[id.into()],
    )?
    .first()
    .map(from_row)
    .transpose()
}

/// What authentication compares a presented token with.
pub fn find(db: &dyn Sql, id: &str) -> Result<Option<StoredToken>> {
    let Some((record, hash)) = find_with_hash(db, id)? else {
        return Ok(None);
    };
    Ok(Some(StoredToken {
        id: record.id,
        hash,
        grant: Grant {
            scope: record.scope,
            repositories: record.repositories,
        },
        expires_at: record.expires_at,
        revoked_at: record.revoked_at,
    }))
}

/// Every token, newest first.
pub fn list(db: &dyn Sql) -> Result<Vec<TokenRecord>> {
    db.execute(
        &format!("SELECT {COLUMNS} FROM opsml_tokens ORDER BY created_at DESC, token_id"),
        &[],
    )?
    .iter()
    .map(|row| from_row(row).map(|(record, _)| record))
    .collect()
}

/// Revokes a token from `now` on; a revoked token keeps its first revocation. `None` if there
/// is no such token.
pub fn revoke(db: &dyn Sql, id: &str, now: i64, by: &str) -> Result<Option<TokenRecord>> {
    db.execute(
        "UPDATE opsml_tokens SET revoked_at = ?, revoked_by = ?
         WHERE token_id = ? AND revoked_at IS NULL",
        &[now.into(), by.into(), id.into()],
    )?;
    get(db, id)
}

/// The recent failures of a client address.
pub fn failures(db: &dyn Sql, client: &str) -> Result<Option<Failures>> {
    db.execute(
        "SELECT since, failures FROM opsml_login_failures WHERE client = ?",
        &[client.into()],
    )?
    .first()
    .map(|row| {
        Ok(Failures {
            since: row.int(0)?,
            count: row.int(1)?,
        })
    })
    .transpose()
}

/// Stores a client's failures (read, counted by `Failures::after_failure`, written back:
/// concurrent failures of one client may count once).
pub fn record_failures(db: &dyn Sql, client: &str, record: Failures) -> Result<()> {
    db.execute(
        &upsert(
            db.dialect(),
            "opsml_login_failures",
            &["client", "since", "failures"],
            "client",
        ),
        &[client.into(), record.since.into(), record.count.into()],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::migrate;
    use crate::testing::Sqlite;

    fn token(id: &str, created_at: i64, repositories: Option<Vec<String>>) -> TokenRecord {
        TokenRecord {
            id: id.into(),
            name: format!("{id}-name"),
            scope: Scope::Read,
            repositories,
            created_at,
            created_by: "admin-token".into(),
            expires_at: created_at + 100,
            revoked_at: None,
            revoked_by: None,
        }
    }

    #[test]
    fn tokens_are_stored_listed_found_and_revoked_once() {
        let db = Sqlite::memory();
        migrate(&db).unwrap();
        let a = token("a", 1, Some(vec!["team-a".into()]));
        let b = token("b", 2, None);
        insert(&db, &a, "hash-a").unwrap();
        insert(&db, &b, "hash-b").unwrap();
        assert!(matches!(
            insert(&db, &b, "again"),
            Err(StoreError::Conflict(_))
        ));
        assert_eq!(list(&db).unwrap(), vec![b.clone(), a.clone()]);
        let found = find(&db, "a").unwrap().unwrap();
        assert_eq!(found.hash, "hash-a");
        assert_eq!(found.grant.repositories, Some(vec!["team-a".to_string()]));
        assert_eq!(find(&db, "zz").unwrap(), None);
        let revoked = revoke(&db, "a", 50, "login:alice").unwrap().unwrap();
        assert_eq!(revoked.revoked_at, Some(50));
        let again = revoke(&db, "a", 60, "token:other").unwrap().unwrap();
        assert_eq!(again.revoked_at, Some(50));
        assert_eq!(again.revoked_by.as_deref(), Some("login:alice"));
        assert_eq!(revoke(&db, "zz", 60, "x").unwrap(), None);
    }

    #[test]
    fn failures_are_kept_per_client() {
        let db = Sqlite::memory();
        migrate(&db).unwrap();
        assert_eq!(failures(&db, "10.0.0.1").unwrap(), None);
        let first = Failures::after_failure(None, 100);
        record_failures(&db, "10.0.0.1", first).unwrap();
        let second = Failures::after_failure(Some(first), 101);
        record_failures(&db, "10.0.0.1", second).unwrap();
        assert_eq!(failures(&db, "10.0.0.1").unwrap(), Some(second));
        assert_eq!(second.count, 2);
        assert_eq!(failures(&db, "10.0.0.2").unwrap(), None);
    }
}
