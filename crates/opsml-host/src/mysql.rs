//! `fermyon:spin/mysql@2.0.0` over mysql_async, the client Spin 3.6.3 uses, at the same
//! version, so that errors read as they read under Spin (the components recognise some by
//! their text). As in Spin, a component may only connect to a `mysql://host:port` its
//! `allowed_outbound_hosts` lists; results map to the interface's types as Spin maps them, and
//! one result is limited to Spin's 128 MiB.
//!
//! Beyond Spin, connections are pooled per address (Spin opens a new one per `open`); a pooled
//! connection is reset (`COM_RESET_CONNECTION`: locks released, transactions rolled back)
//! before it is handed out again, so each `open` still starts a session of its own. Plain TCP
//! only: production runs under Spin, which has TLS.

// `Error` is the interface's own type, handed back to the guest as it is.
#![allow(clippy::result_large_err)]

use crate::bindings::mysql::{self, Error, ParameterValue, RowSet};
use crate::bindings::rdbms_types::{Column, DbDataType, DbValue};
use crate::server::InstanceState;
use futures::TryStreamExt;
use mysql_async::consts::{ColumnFlags, ColumnType};
use mysql_async::prelude::{FromValue, Queryable};
use mysql_async::{Conn, Opts, OptsBuilder, Params, Pool, Value};
use std::collections::HashMap;
use std::sync::Mutex;
use wasmtime::component::Resource;

/// The most bytes of rows one query may return, as Spin's `MAX_HOST_BUFFERED_BYTES`.
const MAX_RESULT_BYTES: usize = 128 << 20;

/// One pool per address (the address carries the credentials and the database).
#[derive(Default)]
pub struct MysqlPools {
    pools: Mutex<HashMap<String, Pool>>,
}

impl MysqlPools {
    fn pool(&self, address: &str, opts: Opts) -> Pool {
        self.pools
            .lock()
            .unwrap()
            .entry(address.to_string())
            .or_insert_with(|| Pool::new(opts))
            .clone()
    }
}

/// The guest's `connection` resource: a session taken from the address's pool, given back when
/// the guest drops it.
pub struct Connection {
    conn: Conn,
}

/// `ssl-mode` / `sslmode` query parameters, which mysql_async does not read itself.
fn is_ssl_param(name: &str) -> bool {
    name.eq_ignore_ascii_case("ssl-mode") || name.eq_ignore_ascii_case("sslmode")
}

/// The connection options of a `mysql://` address, as Spin reads them: an `ssl-mode` other
/// than `disabled` asks for TLS (which this host refuses when connecting), and is removed
/// from the URL before mysql_async parses it.
fn options(address: &str) -> anyhow::Result<Opts> {
    let url = url::Url::parse(address)?;
    let wants_tls = url
        .query_pairs()
        .any(|(k, v)| is_ssl_param(&k) && !v.eq_ignore_ascii_case("disabled"));
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| !is_ssl_param(k))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let mut cleaned = url.clone();
    cleaned.set_query(None);
    if !kept.is_empty() {
        cleaned.query_pairs_mut().extend_pairs(kept);
    }
    let opts = Opts::from_url(cleaned.as_str())?;
    Ok(OptsBuilder::from_opts(opts)
        .ssl_opts(wants_tls.then(mysql_async::SslOpts::default))
        .into())
}

fn parameter(value: ParameterValue) -> Value {
    match value {
        ParameterValue::Boolean(v) => v.into(),
        ParameterValue::Int8(v) => v.into(),
        ParameterValue::Int16(v) => v.into(),
        ParameterValue::Int32(v) => v.into(),
        ParameterValue::Int64(v) => v.into(),
        ParameterValue::Uint8(v) => v.into(),
        ParameterValue::Uint16(v) => v.into(),
        ParameterValue::Uint32(v) => v.into(),
        ParameterValue::Uint64(v) => v.into(),
        ParameterValue::Floating32(v) => v.into(),
        ParameterValue::Floating64(v) => v.into(),
        ParameterValue::Str(v) => v.into(),
        ParameterValue::Binary(v) => v.into(),
        ParameterValue::DbNull => Value::NULL,
    }
}

/// A result column's type as Spin reports it: numbers by width and sign; text, or binary when
/// the column has the binary flag (`VARBINARY`, `BLOB`, `_bin` collations); anything else
/// (`DECIMAL`, dates) is `other`, whose values cannot be converted.
fn data_type(column: &mysql_async::Column) -> DbDataType {
    let ty = column.column_type();
    let flags = column.flags();
    let signed = !flags.contains(ColumnFlags::UNSIGNED_FLAG);
    let binary = flags.contains(ColumnFlags::BINARY_FLAG);
    use ColumnType::*;
    match ty {
        MYSQL_TYPE_DOUBLE => DbDataType::Floating64,
        MYSQL_TYPE_FLOAT => DbDataType::Floating32,
        MYSQL_TYPE_INT24 | MYSQL_TYPE_LONG if signed => DbDataType::Int32,
        MYSQL_TYPE_INT24 | MYSQL_TYPE_LONG => DbDataType::Uint32,
        MYSQL_TYPE_LONGLONG if signed => DbDataType::Int64,
        MYSQL_TYPE_LONGLONG => DbDataType::Uint64,
        MYSQL_TYPE_SHORT if signed => DbDataType::Int16,
        MYSQL_TYPE_SHORT => DbDataType::Uint16,
        MYSQL_TYPE_TINY if signed => DbDataType::Int8,
        MYSQL_TYPE_TINY => DbDataType::Uint8,
        MYSQL_TYPE_BLOB if !binary => DbDataType::Str,
        MYSQL_TYPE_BLOB | MYSQL_TYPE_LONG_BLOB | MYSQL_TYPE_MEDIUM_BLOB => DbDataType::Binary,
        MYSQL_TYPE_STRING | MYSQL_TYPE_VAR_STRING if binary => DbDataType::Binary,
        MYSQL_TYPE_STRING | MYSQL_TYPE_VAR_STRING => DbDataType::Str,
        _ => DbDataType::Other,
    }
}

fn converted<T: FromValue>(
    value: Value,
    wrap: impl FnOnce(T) -> DbValue,
) -> Result<DbValue, Error> {
    mysql_async::from_value_opt::<T>(value)
        .map(wrap)
        .map_err(|e| Error::ValueConversionFailed(e.to_string()))
}

fn db_value(value: Option<Value>, column: &Column) -> Result<DbValue, Error> {
    let value = match value {
        None | Some(Value::NULL) => return Ok(DbValue::DbNull),
        Some(value) => value,
    };
    match column.data_type {
        DbDataType::Boolean => converted(value, DbValue::Boolean),
        DbDataType::Int8 => converted(value, DbValue::Int8),
        DbDataType::Int16 => converted(value, DbValue::Int16),
        DbDataType::Int32 => converted(value, DbValue::Int32),
        DbDataType::Int64 => converted(value, DbValue::Int64),
        DbDataType::Uint8 => converted(value, DbValue::Uint8),
        DbDataType::Uint16 => converted(value, DbValue::Uint16),
        DbDataType::Uint32 => converted(value, DbValue::Uint32),
        DbDataType::Uint64 => converted(value, DbValue::Uint64),
        DbDataType::Floating32 => converted(value, DbValue::Floating32),
        DbDataType::Floating64 => converted(value, DbValue::Floating64),
        DbDataType::Str => converted(value, DbValue::Str),
        DbDataType::Binary => converted(value, DbValue::Binary),
        DbDataType::Other => Err(Error::ValueConversionFailed(format!(
            "Cannot convert value {value:?} in column {} data type {:?}",
            column.name, column.data_type
        ))),
    }
}

/// What a value costs against [`MAX_RESULT_BYTES`], as Spin counts it.
fn size_of(value: &DbValue) -> usize {
    std::mem::size_of::<DbValue>()
        + match value {
            DbValue::Str(s) => s.len(),
            DbValue::Binary(b) => b.len(),
            _ => 0,
        }
}

fn positional(params: Vec<ParameterValue>) -> Params {
    Params::Positional(params.into_iter().map(parameter).collect())
}

impl Connection {
    async fn execute(&mut self, statement: &str, params: Vec<ParameterValue>) -> Result<(), Error> {
        self.conn
            .exec_batch(statement, [positional(params)])
            .await
            .map_err(|e| Error::QueryFailed(format!("{e:?}")))
    }

    async fn query(
        &mut self,
        statement: &str,
        params: Vec<ParameterValue>,
    ) -> Result<RowSet, Error> {
        let mut result = self
            .conn
            .exec_iter(statement, positional(params))
            .await
            .map_err(|e| Error::QueryFailed(format!("{e:?}")))?;
        let columns: Vec<Column> = result
            .columns()
            .map(|columns| {
                columns
                    .iter()
                    .map(|c| Column {
                        name: c.name_str().into_owned(),
                        data_type: data_type(c),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let mut stream = result
            .stream::<mysql_async::Row>()
            .await
            .map_err(|e| Error::Other(e.to_string()))?
            .ok_or_else(|| Error::Other("unable to stream query result".into()))?;
        let mut rows = Vec::new();
        let mut bytes = std::mem::size_of::<RowSet>();
        while let Some(mut row) = stream
            .try_next()
            .await
            .map_err(|e| Error::Other(e.to_string()))?
        {
            let mut values = Vec::with_capacity(row.len());
            for (i, column) in columns.iter().enumerate() {
                let value = db_value(row.take(i), column)?;
                bytes += size_of(&value);
                values.push(value);
            }
            if bytes > MAX_RESULT_BYTES {
                return Err(Error::Other(format!(
                    "query result exceeds limit of {MAX_RESULT_BYTES} bytes"
                )));
            }
            rows.push(values);
        }
        Ok(RowSet { columns, rows })
    }
}

impl mysql::Host for InstanceState {}

impl mysql::HostConnection for InstanceState {
    async fn open(
        &mut self,
        address: String,
    ) -> wasmtime::Result<Result<Resource<Connection>, Error>> {
        // Spin names the whole address in both errors, credentials included: the component
        // redacts what it shows.
        let opts = match options(&address) {
            Ok(opts) => opts,
            Err(e) => return Ok(Err(Error::ConnectionFailed(format!("{e:?}")))),
        };
        let (host, port) = (opts.ip_or_hostname().to_string(), opts.tcp_port());
        if !self.component.outbound.allows_host("mysql", &host, port) {
            return Ok(Err(Error::ConnectionFailed(format!(
                "address {address} is not permitted"
            ))));
        }
        let pool = self.app.mysql.pool(&address, opts);
        match pool.get_conn().await {
            Ok(conn) => Ok(Ok(self.table.push(Connection { conn })?)),
            Err(e) => Ok(Err(Error::ConnectionFailed(format!(
                "{:?}",
                anyhow::Error::from(e)
            )))),
        }
    }

    async fn query(
        &mut self,
        connection: Resource<Connection>,
        statement: String,
        params: Vec<ParameterValue>,
    ) -> wasmtime::Result<Result<RowSet, Error>> {
        let conn = self.table.get_mut(&connection)?;
        Ok(conn.query(&statement, params).await)
    }

    async fn execute(
        &mut self,
        connection: Resource<Connection>,
        statement: String,
        params: Vec<ParameterValue>,
    ) -> wasmtime::Result<Result<(), Error>> {
        let conn = self.table.get_mut(&connection)?;
        Ok(conn.execute(&statement, params).await)
    }

    async fn drop(&mut self, connection: Resource<Connection>) -> wasmtime::Result<()> {
        // Dropping the `Conn` gives it back to its pool, which resets it before reuse.
        self.table.delete(connection)?;
        Ok(())
    }
}

impl crate::bindings::rdbms_types::Host for InstanceState {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssl_mode_is_read_and_removed_as_spin_does() {
        let plain = options("mysql://u:pw@db.internal:3307/opsml").unwrap();
        assert_eq!(
            (plain.ip_or_hostname(), plain.tcp_port()),
            ("db.internal", 3307)
        );
        assert!(plain.ssl_opts().is_none());
        assert_eq!(plain.db_name(), Some("opsml"));
        let disabled = options("mysql://u@h/db?ssl-mode=DISABLED").unwrap();
        assert!(disabled.ssl_opts().is_none());
        assert_eq!(disabled.tcp_port(), 3306);
        let tls = options("mysql://u@h/db?sslMode=VERIFY_CA&pool_max=10").unwrap();
        assert!(tls.ssl_opts().is_some());
        assert_eq!(tls.pool_opts().constraints().max(), 10);
    }

    #[test]
    fn a_malformed_address_is_a_connection_error() {
        assert!(options("mysql//nope").is_err());
    }
}
