//! The schema, applied on first use by whichever request comes first. Every statement is
//! idempotent (`IF NOT EXISTS`), so concurrent first requests cannot fail each other.

use crate::{Result, Sql};

/// Migrations in order; a deployed entry never changes, new ones are appended.
const MIGRATIONS: &[&[&str]] = &[&[
    "CREATE TABLE IF NOT EXISTS opsml_cards (
        uid TEXT PRIMARY KEY,
        registry TEXT NOT NULL,
        repository TEXT NOT NULL,
        name TEXT NOT NULL,
        version TEXT NOT NULL,
        major INTEGER NOT NULL,
        minor INTEGER NOT NULL,
        patch INTEGER NOT NULL,
        precedence TEXT NOT NULL,
        timestamp BIGINT NOT NULL,
        date TEXT NOT NULL,
        card TEXT NOT NULL,
        UNIQUE (registry, repository, name, version)
    )",
    "CREATE INDEX IF NOT EXISTS opsml_cards_by_name ON opsml_cards (registry, name, repository)",
    "CREATE TABLE IF NOT EXISTS opsml_files (
        path TEXT PRIMARY KEY,
        size BIGINT NOT NULL,
        digest TEXT NOT NULL,
        digest_algorithm TEXT NOT NULL,
        blob_id TEXT NOT NULL,
        chunk_size BIGINT NOT NULL,
        created BIGINT NOT NULL
    )",
    "CREATE TABLE IF NOT EXISTS opsml_pending_blobs (
        blob_id TEXT PRIMARY KEY,
        started BIGINT NOT NULL,
        touched BIGINT NOT NULL
    )",
], &[
    "CREATE TABLE IF NOT EXISTS opsml_run_metrics (
        run_uid TEXT NOT NULL,
        name TEXT NOT NULL,
        value DOUBLE PRECISION,
        step BIGINT,
        timestamp BIGINT
    )",
    "CREATE INDEX IF NOT EXISTS opsml_run_metrics_by_run ON opsml_run_metrics (run_uid, name)",
]];

/// Brings the schema up to date; cheap when it already is (one query).
pub fn migrate(db: &dyn Sql) -> Result<()> {
    db.execute(
        "CREATE TABLE IF NOT EXISTS opsml_schema_migrations (version INTEGER PRIMARY KEY)",
        &[],
    )?;
    let applied = db
        .execute(
            "SELECT COALESCE(MAX(version), 0) FROM opsml_schema_migrations",
            &[],
        )?
        .first()
        .map(|r| r.int(0))
        .transpose()?
        .unwrap_or(0);
    for (i, statements) in MIGRATIONS.iter().enumerate() {
        let version = i as i64 + 1;
        if version <= applied {
            continue;
        }
        for statement in *statements {
            db.execute(statement, &[])?;
        }
        // Another instance may have recorded it first; either way it is applied.
        let _ = db.execute(
            "INSERT INTO opsml_schema_migrations (version) VALUES (?)",
            &[version.into()],
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Sqlite;

    #[test]
    fn migrating_twice_is_harmless() {
        let db = Sqlite::memory();
        migrate(&db).unwrap();
        migrate(&db).unwrap();
        let v = db
            .execute("SELECT MAX(version) FROM opsml_schema_migrations", &[])
            .unwrap();
        assert_eq!(v[0].int(0).unwrap(), MIGRATIONS.len() as i64);
    }
}
