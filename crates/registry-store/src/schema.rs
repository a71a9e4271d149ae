//! The schema, applied on first use by whichever request comes first. Every statement is
//! idempotent (`IF NOT EXISTS`). On PostgreSQL the migration runs in one transaction under an
//! advisory lock, because concurrent `CREATE TABLE IF NOT EXISTS` can fail there.

use crate::{Dialect, Result, Row, Sql, SqlValue};
use std::cell::Cell;

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
], &[
    // The S3 multipart upload behind a pending blob, so a dead upload can be aborted.
    "CREATE TABLE IF NOT EXISTS opsml_multipart_uploads (
        blob_id TEXT PRIMARY KEY,
        upload_id TEXT NOT NULL
    )",
]];

/// The number of the newest migration.
pub const LATEST: i64 = MIGRATIONS.len() as i64;

/// Any number, as long as it is the same everywhere: the key of the migration's advisory lock.
const MIGRATION_LOCK: i64 = 0x006f_7073_6d6c;

/// A statement as `dialect` needs it. PostgreSQL gets 64-bit integers (versions and sizes
/// exceed 32 bits) and byte-order text comparison (`COLLATE "C"`), which the SemVer
/// precedence key and the folder range queries rely on, as SQLite's default does.
fn adapt(statement: &str, dialect: Dialect) -> String {
    match dialect {
        Dialect::Sqlite => statement.to_string(),
        Dialect::Postgres => statement
            .replace(" INTEGER", " BIGINT")
            .replace(" TEXT", " TEXT COLLATE \"C\""),
    }
}

fn applied_version(db: &dyn Sql) -> Result<i64> {
    db.execute(
        "SELECT COALESCE(MAX(version), 0) FROM opsml_schema_migrations",
        &[],
    )?
    .first()
    .map(|r| r.int(0))
    .transpose()
    .map(|v| v.unwrap_or(0))
}

/// Brings the schema up to date; one query when it already is.
pub fn migrate(db: &dyn Sql) -> Result<()> {
    if matches!(applied_version(db), Ok(v) if v >= LATEST) {
        return Ok(());
    }
    let dialect = db.dialect();
    if dialect == Dialect::Postgres {
        db.execute("BEGIN", &[])?;
        let applied = db
            .execute(
                "SELECT 1 FROM (SELECT pg_advisory_xact_lock(?)) AS locked",
                &[MIGRATION_LOCK.into()],
            )
            .and_then(|_| apply(db, dialect));
        return match applied {
            Ok(()) => db.execute("COMMIT", &[]).map(drop),
            Err(e) => {
                let _ = db.execute("ROLLBACK", &[]);
                Err(e)
            }
        };
    }
    apply(db, dialect)
}

fn apply(db: &dyn Sql, dialect: Dialect) -> Result<()> {
    db.execute(
        &adapt(
            "CREATE TABLE IF NOT EXISTS opsml_schema_migrations (version INTEGER PRIMARY KEY)",
            dialect,
        ),
        &[],
    )?;
    let applied = applied_version(db)?;
    for (i, statements) in MIGRATIONS.iter().enumerate() {
        let version = i as i64 + 1;
        if version <= applied {
            continue;
        }
        for statement in *statements {
            db.execute(&adapt(statement, dialect), &[])?;
        }
        // Another instance may have recorded it first; either way it is applied.
        db.execute(
            "INSERT INTO opsml_schema_migrations (version) VALUES (?) ON CONFLICT DO NOTHING",
            &[version.into()],
        )?;
    }
    Ok(())
}

/// A database whose schema is brought up to date when a statement fails on an old (or
/// missing) one, rather than checked before every request: the check costs a query per
/// request, and a failure for that reason happens once per database and upgrade. Migrations
/// only add (tables, indexes, columns), so a statement that succeeds on an older schema is
/// right there too. After its first failure a request migrates (one query when the schema is
/// current) and runs the statement once more, even when the schema is current by then: another
/// request may have migrated between the failure and the check. Statements run outside
/// transactions and are atomic, so one that failed for its own reason changed nothing and fails
/// again the same way.
pub struct Migrating<S> {
    db: S,
    checked: Cell<bool>,
}

impl<S: Sql> Migrating<S> {
    pub fn new(db: S) -> Self {
        Self {
            db,
            checked: Cell::new(false),
        }
    }
}

impl<S: Sql> Sql for Migrating<S> {
    fn execute(&self, statement: &str, params: &[SqlValue]) -> Result<Vec<Row>> {
        let error = match self.db.execute(statement, params) {
            Ok(rows) => return Ok(rows),
            Err(e) => e,
        };
        if self.checked.replace(true) {
            return Err(error);
        }
        migrate(&self.db)?;
        self.db.execute(statement, params)
    }

    fn dialect(&self) -> Dialect {
        self.db.dialect()
    }
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
        assert_eq!(v[0].int(0).unwrap(), LATEST);
    }

    #[test]
    fn a_fresh_or_old_database_is_migrated_by_its_first_failing_statement() {
        let db = Migrating::new(Sqlite::memory());
        let rows = db
            .execute("SELECT COUNT(*) FROM opsml_multipart_uploads", &[])
            .unwrap();
        assert_eq!(rows[0].int(0).unwrap(), 0);
        // A failure on a current schema is the statement's own.
        let err = db.execute("SELECT nope FROM opsml_cards", &[]).unwrap_err();
        assert!(err.to_string().contains("nope"), "{err}");
        // An older schema (migration 1 and 2 only) gets the missing table on demand.
        let old = Sqlite::memory();
        apply_upto(&old, 2);
        let db = Migrating::new(old);
        db.execute("SELECT COUNT(*) FROM opsml_multipart_uploads", &[])
            .unwrap();
        assert_eq!(applied_version(&db.db).unwrap(), LATEST);
    }

    /// A database that another request migrates just after this request's statement failed.
    struct MigratedByAnother {
        db: Sqlite,
        raced: Cell<bool>,
    }

    impl Sql for MigratedByAnother {
        fn execute(&self, statement: &str, params: &[SqlValue]) -> Result<Vec<Row>> {
            let result = self.db.execute(statement, params);
            if result.is_err() && !self.raced.replace(true) {
                migrate(&self.db).unwrap();
            }
            result
        }
    }

    #[test]
    fn a_statement_that_failed_before_another_request_migrated_runs_again() {
        let db = Migrating::new(MigratedByAnother {
            db: Sqlite::memory(),
            raced: Cell::new(false),
        });
        let rows = db.execute("SELECT COUNT(*) FROM opsml_cards", &[]).unwrap();
        assert_eq!(rows[0].int(0).unwrap(), 0);
    }

    fn apply_upto(db: &Sqlite, last: usize) {
        db.execute(
            "CREATE TABLE opsml_schema_migrations (version INTEGER PRIMARY KEY)",
            &[],
        )
        .unwrap();
        for (i, statements) in MIGRATIONS[..last].iter().enumerate() {
            for statement in *statements {
                db.execute(statement, &[]).unwrap();
            }
            db.execute(
                "INSERT INTO opsml_schema_migrations (version) VALUES (?)",
                &[(i as i64 + 1).into()],
            )
            .unwrap();
        }
    }

    #[test]
    fn postgres_gets_wide_integers_and_byte_order_text() {
        assert_eq!(
            adapt(
                "CREATE TABLE t (v INTEGER PRIMARY KEY, p TEXT NOT NULL)",
                Dialect::Postgres
            ),
            "CREATE TABLE t (v BIGINT PRIMARY KEY, p TEXT COLLATE \"C\" NOT NULL)"
        );
        let sqlite = "CREATE TABLE t (v INTEGER)";
        assert_eq!(adapt(sqlite, Dialect::Sqlite), sqlite);
    }
}
