//! Run metrics (`PUT`/`POST /opsml/metrics`): named values with an optional step and
//! timestamp, many per run.

use crate::{Result, Row, Sql, SqlValue, StoreError};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metric {
    pub run_uid: String,
    pub name: String,
    #[serde(default)]
    pub value: Option<f64>,
    #[serde(default)]
    pub step: Option<i64>,
    #[serde(default)]
    pub timestamp: Option<i64>,
}

fn opt_int(v: Option<i64>) -> SqlValue {
    v.map_or(SqlValue::Null, SqlValue::Integer)
}

pub fn insert(db: &dyn Sql, metrics: &[Metric]) -> Result<()> {
    for m in metrics {
        db.execute(
            "INSERT INTO opsml_run_metrics (run_uid, name, value, step, timestamp) VALUES (?, ?, ?, ?, ?)",
            &[
                m.run_uid.as_str().into(),
                m.name.as_str().into(),
                m.value.map_or(SqlValue::Null, SqlValue::Real),
                opt_int(m.step),
                opt_int(m.timestamp),
            ],
        )?;
    }
    Ok(())
}

fn number(row: &Row, i: usize) -> Result<Option<f64>> {
    match &row.0[i] {
        SqlValue::Null => Ok(None),
        SqlValue::Real(f) => Ok(Some(*f)),
        SqlValue::Integer(n) => Ok(Some(*n as f64)),
        other => Err(StoreError::Corrupt(format!("metric value {other:?}"))),
    }
}

fn opt_i64(row: &Row, i: usize) -> Result<Option<i64>> {
    match &row.0[i] {
        SqlValue::Null => Ok(None),
        _ => row.int(i).map(Some),
    }
}

/// A run's metrics by name, then step and timestamp; only those named in `names` if given.
pub fn get(db: &dyn Sql, run_uid: &str, names: Option<&[String]>) -> Result<Vec<Metric>> {
    let mut sql = String::from(
        "SELECT run_uid, name, value, step, timestamp FROM opsml_run_metrics WHERE run_uid = ?",
    );
    let mut params: Vec<SqlValue> = vec![run_uid.into()];
    if let Some(names) = names {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        sql.push_str(&format!(
            " AND name IN ({})",
            vec!["?"; names.len()].join(", ")
        ));
        params.extend(names.iter().map(|n| n.as_str().into()));
    }
    sql.push_str(" ORDER BY name, COALESCE(step, 0), COALESCE(timestamp, 0)");
    db.execute(&sql, &params)?
        .iter()
        .map(|r| {
            Ok(Metric {
                run_uid: r.text(0)?,
                name: r.text(1)?,
                value: number(r, 2)?,
                step: opt_i64(r, 3)?,
                timestamp: opt_i64(r, 4)?,
            })
        })
        .collect()
}

/// The distinct metric names of a run, sorted.
pub fn names(db: &dyn Sql, run_uid: &str) -> Result<Vec<String>> {
    db.execute(
        "SELECT DISTINCT name FROM opsml_run_metrics WHERE run_uid = ? ORDER BY name",
        &[run_uid.into()],
    )?
    .iter()
    .map(|r| r.text(0))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Sqlite;

    fn metric(run: &str, name: &str, value: f64, step: Option<i64>) -> Metric {
        Metric {
            run_uid: run.into(),
            name: name.into(),
            value: Some(value),
            step,
            timestamp: Some(7),
        }
    }

    #[test]
    fn metrics_round_trip_per_run() {
        let db = Sqlite::memory();
        crate::schema::migrate(&db).unwrap();
        let ms = [
            metric("r1", "mae", 0.5, Some(1)),
            metric("r1", "mae", 0.25, Some(2)),
            metric("r1", "r2", 0.9, None),
            metric("r2", "mae", 9.0, None),
        ];
        insert(&db, &ms).unwrap();
        assert_eq!(get(&db, "r1", None).unwrap(), ms[..3].to_vec());
        assert_eq!(
            get(&db, "r1", Some(&["r2".into()])).unwrap(),
            vec![ms[2].clone()]
        );
        assert!(get(&db, "r1", Some(&[])).unwrap().is_empty());
        assert_eq!(names(&db, "r1").unwrap(), ["mae", "r2"]);
        assert!(get(&db, "nope", None).unwrap().is_empty());
    }
}
