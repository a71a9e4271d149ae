//! The schema, applied on first use by whichever request comes first. Every statement is
//! idempotent (`IF NOT EXISTS`). On PostgreSQL the migration runs in one transaction under an
//! advisory lock, because concurrent `CREATE TABLE IF NOT EXISTS` can fail there; on MySQL
//! under a named lock (`GET_LOCK`), since its DDL cannot be in a transaction.

use crate::sql::insert_ignoring_duplicate;
use crate::{Dialect, Result, Row, Sql, SqlValue, StoreError};
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
], &[
    // `cards/version` reads a card's highest version numbers and those above them
    // (`cards::versions_for_next`): with this index, a few index entries, whatever the number
    // of versions.
    "CREATE INDEX IF NOT EXISTS opsml_cards_by_version ON opsml_cards (registry, name, repository, major, minor, patch)",
], &[
    // API tokens (`crate::tokens`): the hash of each, never the token.
    "CREATE TABLE IF NOT EXISTS opsml_tokens (
        token_id TEXT PRIMARY KEY,
        label TEXT NOT NULL,
        secret_hash TEXT NOT NULL,
        scope TEXT NOT NULL,
        repositories TEXT,
        created_at BIGINT NOT NULL,
        created_by TEXT NOT NULL,
        expires_at BIGINT NOT NULL,
        revoked_at BIGINT,
        revoked_by TEXT
    )",
    // Recent login failures per client address (`crate::tokens::record_failure`).
    "CREATE TABLE IF NOT EXISTS opsml_login_failures (
        client TEXT PRIMARY KEY,
        since BIGINT NOT NULL,
        failures BIGINT NOT NULL
    )",
    // The audit trail (`crate::audit`): one row per write, in the write's transaction.
    "CREATE TABLE IF NOT EXISTS opsml_audit (
        at BIGINT NOT NULL,
        request_id TEXT NOT NULL,
        identity TEXT NOT NULL,
        action TEXT NOT NULL,
        registry TEXT,
        repository TEXT,
        name TEXT,
        version TEXT,
        target TEXT NOT NULL,
        detail TEXT
    )",
    "CREATE INDEX IF NOT EXISTS opsml_audit_by_time ON opsml_audit (at)",
    "CREATE INDEX IF NOT EXISTS opsml_audit_by_repository ON opsml_audit (repository, at)",
    "CREATE INDEX IF NOT EXISTS opsml_audit_by_identity ON opsml_audit (identity, at)",
]];

/// The number of the newest migration.
pub const LATEST: i64 = MIGRATIONS.len() as i64;

/// Any number, as long as it is the same everywhere: the key of the migration's advisory lock.
const MIGRATION_LOCK: i64 = 0x006f_7073_6d6c;
/// The name of MySQL's migration lock, and how long to wait for it.
const MYSQL_MIGRATION_LOCK: &str = "opsml_schema_migration";
const MYSQL_LOCK_WAIT_SECONDS: i64 = 60;

/// MySQL cannot index `TEXT`, so a text column that is part of a key becomes `VARBINARY` of
/// at most this many bytes (names and repositories are at most 53 characters, paths at most
/// `MAX_KEY_LEN` = 1024 bytes; the whole unique card key stays under InnoDB's 3072-byte limit),
/// and any other text column `LONGBLOB`. Binary types compare and sort by bytes, as SQLite's
/// default and PostgreSQL's `COLLATE "C"` do, where MySQL's text collations pad trailing
/// spaces or fold case.
const MYSQL_KEY_COLUMN_BYTES: &[(&str, u32)] = &[
    ("uid", 255),
    ("registry", 64),
    ("repository", 255),
    ("name", 255),
    ("version", 255),
    ("path", 1024),
    ("blob_id", 255),
    ("run_uid", 255),
    ("token_id", 64),
    ("client", 255),
    ("identity", 255),
];

/// A statement as `dialect` needs it. PostgreSQL and MySQL get 64-bit integers (versions and
/// sizes exceed 32 bits) and byte-order text comparison (PostgreSQL's `COLLATE "C"`, MySQL's
/// binary types), which the SemVer precedence key and the folder range queries rely on, as
/// SQLite's default does.
fn adapt(statement: &str, dialect: Dialect) -> String {
    match dialect {
        Dialect::Sqlite => statement.to_string(),
        Dialect::Postgres => statement
            .replace(" INTEGER", " BIGINT")
            .replace(" TEXT", " TEXT COLLATE \"C\""),
        Dialect::Mysql => mysql_text_types(&statement.replace(" INTEGER", " BIGINT")),
    }
}

/// Each `column TEXT` line of a `CREATE TABLE` with the MySQL type of [`MYSQL_KEY_COLUMN_BYTES`].
fn mysql_text_types(statement: &str) -> String {
    statement
        .lines()
        .map(|line| match line.trim_start().split_once(" TEXT") {
            Some((column, _)) if !column.contains(' ') => {
                let ty = match MYSQL_KEY_COLUMN_BYTES.iter().find(|(c, _)| *c == column) {
                    Some((_, bytes)) => format!(" VARBINARY({bytes})"),
                    None => " LONGBLOB".to_string(),
                };
                line.replacen(" TEXT", &ty, 1)
            }
            _ => line.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `CREATE INDEX IF NOT EXISTS name ON table (…)`: its index and table names.
fn index_of(statement: &str) -> Option<(&str, &str)> {
    let rest = statement.strip_prefix("CREATE INDEX IF NOT EXISTS ")?;
    let (index, rest) = rest.split_once(" ON ")?;
    let table = rest.split_whitespace().next()?;
    Some((index.trim(), table))
}

/// Runs one migration statement. MySQL has no `CREATE INDEX IF NOT EXISTS` (MariaDB has), so
/// there an index is created only when the catalog does not list it yet.
fn run_migration_statement(db: &dyn Sql, statement: &str, dialect: Dialect) -> Result<()> {
    if let (Dialect::Mysql, Some((index, table))) = (dialect, index_of(statement)) {
        let exists = db.execute(
            "SELECT COUNT(*) FROM information_schema.statistics
             WHERE table_schema = DATABASE() AND table_name = ? AND index_name = ?",
            &[table.into(), index.into()],
        )?;
        if exists.first().map(|r| r.int(0)).transpose()?.unwrap_or(0) > 0 {
            return Ok(());
        }
        let statement = statement.replacen(" IF NOT EXISTS", "", 1);
        return db.execute(&adapt(&statement, dialect), &[]).map(drop);
    }
    db.execute(&adapt(statement, dialect), &[]).map(drop)
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
    if dialect == Dialect::Mysql {
        let locked = db.execute(
            "SELECT GET_LOCK(?, ?)",
            &[MYSQL_MIGRATION_LOCK.into(), MYSQL_LOCK_WAIT_SECONDS.into()],
        )?;
        if locked.first().map(|r| r.int(0)).transpose()? != Some(1) {
            return Err(StoreError::Backend(format!(
                "another instance held the schema migration lock for over \
                 {MYSQL_LOCK_WAIT_SECONDS} s"
            )));
        }
        let applied = apply(db, dialect);
        let _ = db.execute("SELECT RELEASE_LOCK(?)", &[MYSQL_MIGRATION_LOCK.into()]);
        return applied;
    }
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
    // Write-ahead logging: readers do not block the writer nor it them, and a commit syncs
    // once. The mode is kept in the file, so it is set once, with the schema; Spin opens a
    // connection per request and would otherwise use the rollback journal, where a writer
    // waits for every reader and retries on a back-off of up to 100 ms.
    db.execute("PRAGMA journal_mode=WAL", &[])?;
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
            run_migration_statement(db, statement, dialect)?;
        }
        // Another instance may have recorded it first; either way it is applied.
        db.execute(
            &insert_ignoring_duplicate(dialect, "opsml_schema_migrations", "version"),
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
    /// Inside a transaction a failed statement is left to [`crate::sql::transaction`], which
    /// rolls back before migrating.
    in_transaction: Cell<bool>,
}

impl<S: Sql> Migrating<S> {
    pub fn new(db: S) -> Self {
        Self {
            db,
            checked: Cell::new(false),
            in_transaction: Cell::new(false),
        }
    }
}

impl<S: Sql> Sql for Migrating<S> {
    fn execute(&self, statement: &str, params: &[SqlValue]) -> Result<Vec<Row>> {
        let error = match self.db.execute(statement, params) {
            Ok(rows) => return Ok(rows),
            Err(e) => e,
        };
        if self.in_transaction.get() || self.checked.replace(true) {
            return Err(error);
        }
        migrate(&self.db)?;
        self.db.execute(statement, params)
    }

    fn dialect(&self) -> Dialect {
        self.db.dialect()
    }

    fn set_in_transaction(&self, in_transaction: bool) {
        self.in_transaction.set(in_transaction);
    }

    fn migrate_after_failure(&self) -> Result<bool> {
        if self.checked.replace(true) {
            return Ok(false);
        }
        migrate(&self.db)?;
        Ok(true)
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

    #[test]
    fn cards_version_brings_an_older_database_its_index() {
        let old = Sqlite::memory();
        apply_upto(&old, 3);
        let db = Migrating::new(old);
        let scope = registry_core::VersionScope::default();
        let versions = crate::cards::versions_for_next(
            &db,
            registry_core::RegistryType::Model,
            "n",
            "r",
            &scope,
        )
        .unwrap();
        assert!(versions.is_empty());
        assert_eq!(applied_version(&db.db).unwrap(), LATEST);
        let index = db
            .execute(
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name = 'opsml_cards_by_version'",
                &[],
            )
            .unwrap();
        assert_eq!(index[0].int(0).unwrap(), 1);
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
    fn mysql_keys_are_bounded_binary_and_other_text_is_longblob() {
        let table = "CREATE TABLE IF NOT EXISTS t (
        uid TEXT PRIMARY KEY,
        n INTEGER NOT NULL,
        card TEXT NOT NULL
    )";
        assert_eq!(
            adapt(table, Dialect::Mysql),
            "CREATE TABLE IF NOT EXISTS t (
        uid VARBINARY(255) PRIMARY KEY,
        n BIGINT NOT NULL,
        card LONGBLOB NOT NULL
    )"
        );
        assert_eq!(
            index_of("CREATE INDEX IF NOT EXISTS by_name ON opsml_cards (registry, name)"),
            Some(("by_name", "opsml_cards"))
        );
    }

    /// Every column a MySQL key names must be one MySQL can index: bounded binary.
    #[test]
    fn every_mysql_key_column_has_a_length() {
        let mut keys: Vec<String> = Vec::new();
        for statement in MIGRATIONS.iter().flat_map(|m| m.iter()) {
            for line in statement.lines() {
                let line = line.trim();
                if line.contains("PRIMARY KEY") {
                    keys.push(line.split(' ').next().unwrap().to_string());
                }
            }
            for (start, _) in statement.match_indices("UNIQUE (") {
                let list = &statement[start + 8..];
                let list = &list[..list.find(')').unwrap()];
                keys.extend(list.split(',').map(|c| c.trim().to_string()));
            }
            if index_of(statement).is_some() {
                let list =
                    &statement[statement.find('(').unwrap() + 1..statement.find(')').unwrap()];
                keys.extend(list.split(',').map(|c| c.trim().to_string()));
            }
        }
        assert!(keys.len() >= 10, "{keys:?}");
        let adapted: Vec<String> = MIGRATIONS
            .iter()
            .flat_map(|m| m.iter())
            .map(|s| adapt(s, Dialect::Mysql))
            .collect();
        for key in keys {
            let declared = adapted
                .iter()
                .flat_map(|s| s.lines())
                .map(str::trim)
                .find(|line| line.starts_with(&format!("{key} ")))
                .unwrap_or_else(|| panic!("column {key} is not declared"));
            assert!(
                declared.contains("VARBINARY(") || declared.contains("BIGINT"),
                "{declared}"
            );
        }
        assert!(adapted.iter().all(|s| !s.contains(" TEXT")), "{adapted:?}");
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
