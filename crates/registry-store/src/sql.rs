//! The SQL seam: one `execute` with positional `?` parameters, as Spin's sqlite interface has.
//! Statements are written once, in the SQL that SQLite, PostgreSQL and MySQL share; a
//! PostgreSQL backend numbers the placeholders ([`numbered_placeholders`]), the schema adapts
//! its column types ([`crate::schema`]), and the one statement whose syntax differs, an insert
//! that replaces, is built by [`upsert`].

use crate::{Result, StoreError};

#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    Integer(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
    Null,
}

impl From<&str> for SqlValue {
    fn from(s: &str) -> Self {
        SqlValue::Text(s.to_string())
    }
}

impl From<String> for SqlValue {
    fn from(s: String) -> Self {
        SqlValue::Text(s)
    }
}

impl From<i64> for SqlValue {
    fn from(i: i64) -> Self {
        SqlValue::Integer(i)
    }
}

/// One result row, with typed accessors that name the column on failure.
#[derive(Debug, Clone, PartialEq)]
pub struct Row(pub Vec<SqlValue>);

impl Row {
    fn value(&self, i: usize) -> Result<&SqlValue> {
        self.0
            .get(i)
            .ok_or_else(|| StoreError::Corrupt(format!("missing column {i}")))
    }

    pub fn text(&self, i: usize) -> Result<String> {
        match self.value(i)? {
            SqlValue::Text(s) => Ok(s.clone()),
            other => Err(StoreError::Corrupt(format!(
                "column {i}: expected text, got {other:?}"
            ))),
        }
    }

    pub fn is_null(&self, i: usize) -> Result<bool> {
        Ok(matches!(self.value(i)?, SqlValue::Null))
    }

    pub fn int(&self, i: usize) -> Result<i64> {
        match self.value(i)? {
            SqlValue::Integer(v) => Ok(*v),
            other => Err(StoreError::Corrupt(format!(
                "column {i}: expected integer, got {other:?}"
            ))),
        }
    }
}

/// The database behind a [`Sql`]: only the schema, the migration lock and [`upsert`] differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
    /// MySQL 8 or MariaDB 10.5+.
    Mysql,
}

/// `INSERT INTO table (columns) VALUES (?, …)`, replacing the other columns of the row whose
/// unique `key` column is taken, in one statement.
pub fn upsert(dialect: Dialect, table: &str, columns: &[&str], key: &str) -> String {
    let placeholders = vec!["?"; columns.len()].join(", ");
    let others = columns.iter().filter(|c| **c != key);
    let set: Vec<String> = match dialect {
        Dialect::Sqlite | Dialect::Postgres => {
            others.map(|c| format!("{c} = excluded.{c}")).collect()
        }
        Dialect::Mysql => others.map(|c| format!("{c} = VALUES({c})")).collect(),
    };
    let on_conflict = match dialect {
        Dialect::Sqlite | Dialect::Postgres => format!("ON CONFLICT ({key}) DO UPDATE SET"),
        Dialect::Mysql => "ON DUPLICATE KEY UPDATE".to_string(),
    };
    format!(
        "INSERT INTO {table} ({}) VALUES ({placeholders}) {on_conflict} {}",
        columns.join(", "),
        set.join(", ")
    )
}

pub trait Sql {
    /// Runs one statement; returns its rows (empty for statements without results).
    fn execute(&self, statement: &str, params: &[SqlValue]) -> Result<Vec<Row>>;

    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    /// Told when a [`transaction`] starts and ends: a database that repairs its schema when
    /// a statement fails ([`crate::schema::Migrating`]) must not do so inside one.
    fn set_in_transaction(&self, _in_transaction: bool) {}

    /// After a failed [`transaction`]: brings the schema up to date if this database does
    /// that on demand and has not tried yet; true if the transaction is worth one more try.
    fn migrate_after_failure(&self) -> Result<bool> {
        Ok(false)
    }
}

impl<S: Sql + ?Sized> Sql for Box<S> {
    fn execute(&self, statement: &str, params: &[SqlValue]) -> Result<Vec<Row>> {
        (**self).execute(statement, params)
    }
    fn dialect(&self) -> Dialect {
        (**self).dialect()
    }
    fn set_in_transaction(&self, in_transaction: bool) {
        (**self).set_in_transaction(in_transaction)
    }
    fn migrate_after_failure(&self) -> Result<bool> {
        (**self).migrate_after_failure()
    }
}

/// Runs `work` in one transaction: all of its statements take effect, or none. SQLite takes
/// its write lock at the start (`BEGIN IMMEDIATE`), so two writers queue rather than fail
/// on upgrading a read lock. If it fails on an older schema, the schema is brought up to date
/// and `work` runs once more (as [`crate::schema::Migrating`] does for single statements).
pub fn transaction<T>(db: &dyn Sql, mut work: impl FnMut(&dyn Sql) -> Result<T>) -> Result<T> {
    let begin = match db.dialect() {
        Dialect::Sqlite => "BEGIN IMMEDIATE",
        Dialect::Postgres => "BEGIN",
        Dialect::Mysql => "START TRANSACTION",
    };
    let mut attempt = || {
        db.set_in_transaction(true);
        let result = db.execute(begin, &[]).and_then(|_| {
            let done = work(db).and_then(|value| db.execute("COMMIT", &[]).map(|_| value));
            if done.is_err() {
                let _ = db.execute("ROLLBACK", &[]);
            }
            done
        });
        db.set_in_transaction(false);
        result
    };
    match attempt() {
        Ok(value) => Ok(value),
        Err(error) => {
            if db.migrate_after_failure()? {
                attempt()
            } else {
                Err(error)
            }
        }
    }
}

/// `?` placeholders as PostgreSQL's `$1, $2, …`; a `?` inside a quoted string or identifier
/// stays as it is.
pub fn numbered_placeholders(statement: &str) -> String {
    let mut out = String::with_capacity(statement.len() + 8);
    let mut quote: Option<char> = None;
    let mut next = 1;
    for c in statement.chars() {
        match (quote, c) {
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '?') => {
                out.push('$');
                out.push_str(&next.to_string());
                next += 1;
                continue;
            }
            _ => {}
        }
        out.push(c);
    }
    out
}

/// A PostgreSQL row-returning statement rewritten to return at least one row, for Spin 4.0.x:
/// its synchronous `spin:postgres` `query` never returns when a statement matches no row
/// (spinframework/spin issue 3671, a 4.0.0 regression fixed by pull request 3673 after 4.0.2).
/// Each row gets a marker column first: true on the statement's own rows, NULL on the one
/// stand-in row that the outer join adds when it has none. [`without_stand_in`] takes both
/// away again. The join's outer side is one row, so PostgreSQL runs it as a nested loop that
/// yields the statement's rows in the statement's own order.
pub fn with_stand_in_row(statement: &str) -> String {
    format!(
        "SELECT opsml_rows.* FROM (SELECT) AS opsml_one LEFT JOIN LATERAL \
         (SELECT TRUE AS opsml_row, opsml_statement.* FROM ({statement}) AS opsml_statement) \
         AS opsml_rows ON TRUE"
    )
}

/// The statement's own rows from the answer to [`with_stand_in_row`], without the marker.
pub fn without_stand_in(rows: Vec<Row>) -> Result<Vec<Row>> {
    let mut own = Vec::with_capacity(rows.len());
    for Row(mut values) in rows {
        match values.first() {
            Some(SqlValue::Integer(1)) => {
                values.remove(0);
                own.push(Row(values));
            }
            Some(SqlValue::Null) => {}
            other => {
                return Err(StoreError::Corrupt(format!(
                    "expected the stand-in marker (true or NULL) first, got {other:?}"
                )))
            }
        }
    }
    Ok(own)
}

/// `INSERT INTO table (column) VALUES (?)` that does nothing when the value is taken (and,
/// unlike MySQL's `INSERT IGNORE`, still fails on any other error).
pub fn insert_ignoring_duplicate(dialect: Dialect, table: &str, column: &str) -> String {
    match dialect {
        Dialect::Sqlite | Dialect::Postgres => {
            format!("INSERT INTO {table} ({column}) VALUES (?) ON CONFLICT DO NOTHING")
        }
        Dialect::Mysql => format!(
            "INSERT INTO {table} ({column}) VALUES (?) ON DUPLICATE KEY UPDATE {column} = {column}"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stand_in_rows_are_dropped_and_the_marker_removed() {
        let statement = with_stand_in_row("SELECT a, b FROM t WHERE a = $1");
        assert!(statement.contains(" FROM (SELECT a, b FROM t WHERE a = $1) AS opsml_statement"));
        let row = |values: Vec<SqlValue>| Row(values);
        // PostgreSQL's boolean arrives as an integer (see the adapters' value mapping).
        let answer = vec![
            row(vec![
                SqlValue::Integer(1),
                SqlValue::Integer(7),
                SqlValue::Null,
            ]),
            row(vec![SqlValue::Integer(1), SqlValue::Null, SqlValue::Null]),
        ];
        assert_eq!(
            without_stand_in(answer).unwrap(),
            vec![
                row(vec![SqlValue::Integer(7), SqlValue::Null]),
                row(vec![SqlValue::Null, SqlValue::Null])
            ],
            "a row of NULLs of the statement's own is kept"
        );
        let stand_in = vec![row(vec![SqlValue::Null, SqlValue::Null, SqlValue::Null])];
        assert_eq!(without_stand_in(stand_in).unwrap(), Vec::<Row>::new());
        assert!(without_stand_in(vec![row(vec![SqlValue::Text("x".into())])]).is_err());
    }

    #[test]
    fn ignoring_inserts_in_each_dialect() {
        assert_eq!(
            insert_ignoring_duplicate(Dialect::Sqlite, "t", "v"),
            "INSERT INTO t (v) VALUES (?) ON CONFLICT DO NOTHING"
        );
        assert_eq!(
            insert_ignoring_duplicate(Dialect::Mysql, "t", "v"),
            "INSERT INTO t (v) VALUES (?) ON DUPLICATE KEY UPDATE v = v"
        );
    }

    #[test]
    fn upserts_in_each_dialect() {
        let columns = ["path", "size", "digest"];
        assert_eq!(
            upsert(Dialect::Sqlite, "files", &columns, "path"),
            "INSERT INTO files (path, size, digest) VALUES (?, ?, ?) \
             ON CONFLICT (path) DO UPDATE SET size = excluded.size, digest = excluded.digest"
        );
        assert_eq!(
            upsert(Dialect::Postgres, "files", &columns, "path"),
            upsert(Dialect::Sqlite, "files", &columns, "path")
        );
        assert_eq!(
            upsert(Dialect::Mysql, "files", &columns, "path"),
            "INSERT INTO files (path, size, digest) VALUES (?, ?, ?) \
             ON DUPLICATE KEY UPDATE size = VALUES(size), digest = VALUES(digest)"
        );
    }

    #[test]
    fn placeholders_are_numbered_outside_quotes() {
        assert_eq!(
            numbered_placeholders("SELECT a FROM t WHERE b = ? AND c = '?' AND \"d?\" < ? LIMIT ?"),
            "SELECT a FROM t WHERE b = $1 AND c = '?' AND \"d?\" < $2 LIMIT $3"
        );
        // A doubled quote inside a string closes and reopens it: still inside.
        assert_eq!(numbered_placeholders("'it''s ?' ?"), "'it''s ?' $1");
        assert_eq!(numbered_placeholders("no params"), "no params");
    }
}
