//! `spin:postgres/postgres@4.0.0` over tokio-postgres, with idle connections pooled per
//! address. As in Spin, a component may only connect to a `postgres://host:port` its
//! `allowed_outbound_hosts` lists, and each `open` gets a connection of its own, so a
//! component's `BEGIN … COMMIT` covers only its own statements.
//!
//! Connections are plain TCP (no TLS); production runs under Spin, which has TLS.

// `Error` is the interface's own type, handed back to the guest as it is.
#![allow(clippy::result_large_err)]

use crate::bindings::postgres::{
    self, Column, DbDataType, DbError, DbValue, Error, ParameterValue, QueryError, RowSet,
};
use crate::server::InstanceState;
use bytes::BytesMut;
use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_postgres::types::{IsNull, ToSql, Type};
use tokio_postgres::{Client, Statement};
use wasmtime::component::Resource;

/// Idle connections kept per address; more are opened on demand and closed when returned.
const MAX_IDLE_CONNECTIONS: usize = 16;
/// How long connecting may take when the address does not say (`connect_timeout`).
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Prepared statements kept per connection (the components use a few dozen).
const MAX_CACHED_STATEMENTS: usize = 256;

/// A client with its prepared statements.
struct Session {
    client: Client,
    statements: HashMap<String, Statement>,
}

#[derive(Default)]
pub struct PostgresPools {
    idle: Mutex<HashMap<String, Vec<Session>>>,
}

impl PostgresPools {
    fn take_idle(&self, address: &str) -> Option<Session> {
        let mut idle = self.idle.lock().unwrap();
        let sessions = idle.get_mut(address)?;
        while let Some(session) = sessions.pop() {
            if !session.client.is_closed() {
                return Some(session);
            }
        }
        None
    }

    fn give_back(&self, address: String, session: Session) {
        if session.client.is_closed() {
            return;
        }
        let mut idle = self.idle.lock().unwrap();
        let sessions = idle.entry(address).or_default();
        if sessions.len() < MAX_IDLE_CONNECTIONS {
            sessions.push(session);
        }
    }
}

/// The guest's `connection` resource.
pub struct Connection {
    pools: Arc<PostgresPools>,
    address: String,
    session: Option<Session>,
    /// Set by `BEGIN`/`START`, cleared by `COMMIT`/`ROLLBACK`/`END`: such a connection is
    /// rolled back before it is reused, and closed if it cannot be.
    in_transaction: bool,
}

impl Drop for Connection {
    fn drop(&mut self) {
        if let Some(session) = self.session.take() {
            if !self.in_transaction {
                self.pools
                    .give_back(std::mem::take(&mut self.address), session);
            }
        }
    }
}

/// The address's hosts and ports, for the `allowed_outbound_hosts` check. Only TCP hosts
/// can be allowed; a Unix socket path is refused.
fn targets(config: &tokio_postgres::Config) -> Result<Vec<(String, u16)>, String> {
    let ports = config.get_ports();
    config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, host)| {
            let port = match ports {
                [] => 5432,
                [one] => *one,
                many => many.get(i).copied().unwrap_or(5432),
            };
            match host {
                tokio_postgres::config::Host::Tcp(name) => Ok((name.clone(), port)),
                // Spin's words for both refusals.
                #[cfg(unix)]
                tokio_postgres::config::Host::Unix(_) => {
                    Err("Unix sockets are not supported on WebAssembly".to_string())
                }
            }
        })
        .collect()
}

async fn connect(address: &str, allowed: impl Fn(&str, u16) -> bool) -> Result<Session, Error> {
    let mut config = tokio_postgres::Config::from_str(address)
        .map_err(|e| Error::ConnectionFailed(format!("invalid address: {e}")))?;
    let targets = targets(&config).map_err(Error::ConnectionFailed)?;
    if targets.is_empty() {
        return Err(Error::ConnectionFailed("the address names no host".into()));
    }
    if let Some((host, port)) = targets.iter().find(|(h, p)| !allowed(h, *p)) {
        return Err(Error::ConnectionFailed(format!(
            "address postgres://{host}:{port} is not permitted"
        )));
    }
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(DEFAULT_CONNECT_TIMEOUT);
    }
    let (client, connection) = config.connect(tokio_postgres::NoTls).await.map_err(|e| {
        // The server's own report ("password authentication failed for user …") says
        // more than tokio-postgres's "db error".
        Error::ConnectionFailed(match e.as_db_error() {
            Some(db) => db.to_string(),
            None => e.to_string(),
        })
    })?;
    tokio::spawn(async move {
        // Ends when the client is dropped or the server goes away.
        let _ = connection.await;
    });
    Ok(Session {
        client,
        statements: HashMap::new(),
    })
}

fn query_error(e: tokio_postgres::Error) -> Error {
    if let Some(db) = e.as_db_error() {
        let mut extras = Vec::new();
        let mut extra = |name: &str, value: Option<&str>| {
            if let Some(v) = value {
                extras.push((name.to_string(), v.to_string()));
            }
        };
        extra("hint", db.hint());
        extra("schema", db.schema());
        extra("table", db.table());
        extra("column", db.column());
        extra("constraint", db.constraint());
        return Error::QueryFailed(QueryError::DbError(DbError {
            as_text: db.to_string(),
            severity: db.severity().to_string(),
            code: db.code().code().to_string(),
            message: db.message().to_string(),
            detail: db.detail().map(str::to_string),
            extras,
        }));
    }
    if e.is_closed() {
        return Error::ConnectionFailed(format!("the connection was lost: {e}"));
    }
    Error::QueryFailed(QueryError::Text(e.to_string()))
}

/// A guest parameter, converted to whatever type the statement expects where that is
/// lossless (an `int64` for an `INT4` column, say), as PostgreSQL itself would.
#[derive(Debug)]
enum Param {
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
    Bytes(Vec<u8>),
    Jsonb(Vec<u8>),
    Null,
}

fn param(value: ParameterValue) -> Result<Param, Error> {
    Ok(match value {
        ParameterValue::Boolean(b) => Param::Bool(b),
        ParameterValue::Int8(i) => Param::Int(i.into()),
        ParameterValue::Int16(i) => Param::Int(i.into()),
        ParameterValue::Int32(i) => Param::Int(i.into()),
        ParameterValue::Int64(i) => Param::Int(i),
        ParameterValue::Floating32(f) => Param::Float(f.into()),
        ParameterValue::Floating64(f) => Param::Float(f),
        ParameterValue::Str(s) => Param::Text(s),
        ParameterValue::Binary(b) => Param::Bytes(b),
        ParameterValue::Jsonb(b) => Param::Jsonb(b),
        ParameterValue::DbNull => Param::Null,
        other => {
            return Err(Error::BadParameter(format!(
                "this host does not support {other:?} parameters"
            )))
        }
    })
}

type BoxError = Box<dyn std::error::Error + Sync + Send>;

impl ToSql for Param {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        let kind = match self {
            Param::Bool(_) => "a boolean",
            Param::Int(_) => "an integer",
            Param::Float(_) => "a float",
            Param::Text(_) => "a string",
            Param::Bytes(_) => "binary",
            Param::Jsonb(_) => "jsonb",
            Param::Null => "null",
        };
        let mismatch = || -> BoxError { format!("cannot send {kind} as {ty}").into() };
        // `to_sql_checked` refuses a type the value cannot be sent as.
        match self {
            Param::Null => Ok(IsNull::Yes),
            Param::Bool(b) => b.to_sql_checked(ty, out),
            Param::Int(i) => match *ty {
                Type::INT2 => i16::try_from(*i)
                    .map_err(|_| mismatch())?
                    .to_sql_checked(ty, out),
                Type::INT4 => i32::try_from(*i)
                    .map_err(|_| mismatch())?
                    .to_sql_checked(ty, out),
                Type::FLOAT8 => (*i as f64).to_sql_checked(ty, out),
                _ => i.to_sql_checked(ty, out),
            },
            Param::Float(f) => match *ty {
                Type::FLOAT4 => (*f as f32).to_sql_checked(ty, out),
                _ => f.to_sql_checked(ty, out),
            },
            Param::Text(s) => s.to_sql_checked(ty, out),
            Param::Bytes(b) => b.to_sql_checked(ty, out),
            Param::Jsonb(b) => {
                if *ty != Type::JSONB {
                    return Err(mismatch());
                }
                out.extend_from_slice(&[1]);
                out.extend_from_slice(b);
                Ok(IsNull::No)
            }
        }
    }

    fn accepts(_: &Type) -> bool {
        // Checked per value in `to_sql`, which knows the value.
        true
    }

    tokio_postgres::types::to_sql_checked!();
}

/// A column's raw bytes, whatever its type (for the types without a typed case).
struct Raw(Vec<u8>);

impl<'a> tokio_postgres::types::FromSql<'a> for Raw {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        Ok(Raw(raw.to_vec()))
    }
    fn accepts(_: &Type) -> bool {
        true
    }
}

fn data_type(ty: &Type) -> DbDataType {
    match *ty {
        Type::BOOL => DbDataType::Boolean,
        Type::CHAR => DbDataType::Int8,
        Type::INT2 => DbDataType::Int16,
        Type::INT4 => DbDataType::Int32,
        Type::INT8 => DbDataType::Int64,
        Type::FLOAT4 => DbDataType::Floating32,
        Type::FLOAT8 => DbDataType::Floating64,
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => DbDataType::Str,
        Type::BYTEA => DbDataType::Binary,
        Type::JSONB => DbDataType::Jsonb,
        _ => DbDataType::Other(ty.name().to_string()),
    }
}

fn value(row: &tokio_postgres::Row, i: usize) -> Result<DbValue, Error> {
    let ty = row.columns()[i].type_();
    let failed = |e: tokio_postgres::Error| {
        Error::ValueConversionFailed(format!("column {}: {e}", row.columns()[i].name()))
    };
    macro_rules! get {
        ($t:ty, $case:expr) => {
            row.try_get::<_, Option<$t>>(i)
                .map_err(failed)?
                .map($case)
                .unwrap_or(DbValue::DbNull)
        };
    }
    Ok(match *ty {
        Type::BOOL => get!(bool, DbValue::Boolean),
        Type::CHAR => get!(i8, DbValue::Int8),
        Type::INT2 => get!(i16, DbValue::Int16),
        Type::INT4 => get!(i32, DbValue::Int32),
        Type::INT8 => get!(i64, DbValue::Int64),
        Type::FLOAT4 => get!(f32, DbValue::Floating32),
        Type::FLOAT8 => get!(f64, DbValue::Floating64),
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => get!(String, DbValue::Str),
        Type::BYTEA => get!(Vec<u8>, DbValue::Binary),
        // JSONB's binary form is a version byte, then the JSON text.
        Type::JSONB => get!(Raw, |r: Raw| DbValue::Jsonb(
            r.0.get(1..).unwrap_or_default().to_vec()
        )),
        _ => get!(Raw, |r: Raw| DbValue::Unsupported(r.0)),
    })
}

impl Connection {
    fn session(&mut self) -> &mut Session {
        self.session.as_mut().expect("a session until drop")
    }

    /// Prepares `statement` once per connection.
    async fn prepared(&mut self, statement: &str) -> Result<Statement, Error> {
        let session = self.session();
        if let Some(prepared) = session.statements.get(statement) {
            return Ok(prepared.clone());
        }
        let prepared = session
            .client
            .prepare(statement)
            .await
            .map_err(query_error)?;
        if session.statements.len() >= MAX_CACHED_STATEMENTS {
            session.statements.clear();
        }
        session
            .statements
            .insert(statement.to_string(), prepared.clone());
        Ok(prepared)
    }

    fn note_transaction(&mut self, statement: &str) {
        let first = statement
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .trim_end_matches(';')
            .to_ascii_uppercase();
        match first.as_str() {
            "BEGIN" | "START" => self.in_transaction = true,
            "COMMIT" | "ROLLBACK" | "END" | "ABORT" => self.in_transaction = false,
            _ => {}
        }
    }

    /// The prepared statement and its parameters, checked against each other.
    async fn bind(
        &mut self,
        statement: &str,
        params: Vec<ParameterValue>,
    ) -> Result<(Statement, Vec<Param>), Error> {
        let params = params
            .into_iter()
            .map(param)
            .collect::<Result<Vec<_>, _>>()?;
        let prepared = self.prepared(statement).await?;
        if prepared.params().len() != params.len() {
            return Err(Error::BadParameter(format!(
                "the statement expects {} parameters, {} were given",
                prepared.params().len(),
                params.len()
            )));
        }
        Ok((prepared, params))
    }

    async fn run(
        &mut self,
        statement: &str,
        params: Vec<ParameterValue>,
    ) -> Result<(Statement, Vec<tokio_postgres::Row>), Error> {
        let (prepared, params) = self.bind(statement, params).await?;
        let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p as _).collect();
        let rows = self
            .session()
            .client
            .query(&prepared, &refs)
            .await
            .map_err(query_error)?;
        self.note_transaction(statement);
        Ok((prepared, rows))
    }

    async fn count(&mut self, statement: &str, params: Vec<ParameterValue>) -> Result<u64, Error> {
        let (prepared, params) = self.bind(statement, params).await?;
        let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p as _).collect();
        let changed = self
            .session()
            .client
            .execute(&prepared, &refs)
            .await
            .map_err(query_error)?;
        self.note_transaction(statement);
        Ok(changed)
    }
}

impl postgres::Host for InstanceState {}

impl postgres::HostConnection for InstanceState {
    async fn open(
        &mut self,
        address: String,
    ) -> wasmtime::Result<Result<Resource<Connection>, Error>> {
        let pools = self.app.postgres.clone();
        let session = match pools.take_idle(&address) {
            Some(session) => session,
            None => {
                let policy = &self.component.outbound;
                match connect(&address, |host, port| {
                    policy.allows_host("postgres", host, port)
                })
                .await
                {
                    Ok(session) => session,
                    Err(e) => return Ok(Err(e)),
                }
            }
        };
        Ok(Ok(self.table.push(Connection {
            pools,
            address,
            session: Some(session),
            in_transaction: false,
        })?))
    }

    async fn query(
        &mut self,
        connection: Resource<Connection>,
        statement: String,
        params: Vec<ParameterValue>,
    ) -> wasmtime::Result<Result<RowSet, Error>> {
        let conn = self.table.get_mut(&connection)?;
        let (prepared, rows) = match conn.run(&statement, params).await {
            Ok(ran) => ran,
            Err(e) => return Ok(Err(e)),
        };
        let columns: Vec<Column> = prepared
            .columns()
            .iter()
            .map(|c| Column {
                name: c.name().to_string(),
                data_type: data_type(c.type_()),
            })
            .collect();
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            match (0..row.len()).map(|i| value(row, i)).collect() {
                Ok(values) => out.push(values),
                Err(e) => return Ok(Err(e)),
            }
        }
        Ok(Ok(RowSet { columns, rows: out }))
    }

    async fn execute(
        &mut self,
        connection: Resource<Connection>,
        statement: String,
        params: Vec<ParameterValue>,
    ) -> wasmtime::Result<Result<u64, Error>> {
        let conn = self.table.get_mut(&connection)?;
        Ok(conn.count(&statement, params).await)
    }

    async fn drop(&mut self, connection: Resource<Connection>) -> wasmtime::Result<()> {
        let mut conn = self.table.delete(connection)?;
        if conn.in_transaction
            && conn
                .session()
                .client
                .batch_execute("ROLLBACK")
                .await
                .is_ok()
        {
            conn.in_transaction = false;
        }
        // Pooled again by `Drop` unless still in a transaction.
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_name_their_hosts_and_ports() {
        let config =
            tokio_postgres::Config::from_str("postgres://u:secret@db.internal:6543/opsml").unwrap();
        assert_eq!(
            targets(&config).unwrap(),
            [("db.internal".to_string(), 6543)]
        );
        let config = tokio_postgres::Config::from_str("host=a,b port=1,2 user=u").unwrap();
        assert_eq!(
            targets(&config).unwrap(),
            [("a".to_string(), 1), ("b".to_string(), 2)]
        );
        let config = tokio_postgres::Config::from_str("postgres://u@h/db").unwrap();
        assert_eq!(targets(&config).unwrap(), [("h".to_string(), 5432)]);
    }

    #[tokio::test]
    async fn a_host_outside_the_allowed_list_is_refused_before_connecting() {
        let refused = connect("postgres://u:pw@10.255.255.1:5432/db", |_, _| false).await;
        match refused {
            Err(Error::ConnectionFailed(m)) => {
                assert_eq!(m, "address postgres://10.255.255.1:5432 is not permitted");
                assert!(!m.contains("pw"), "{m}");
            }
            other => panic!("{:?}", other.err()),
        }
    }

    #[test]
    fn integer_parameters_fit_the_column_type() {
        let mut out = BytesMut::new();
        assert!(Param::Int(7).to_sql(&Type::INT4, &mut out).is_ok());
        assert_eq!(&out[..], &7i32.to_be_bytes());
        assert!(Param::Int(1 << 40).to_sql(&Type::INT4, &mut out).is_err());
        assert!(Param::Text("x".into())
            .to_sql(&Type::INT8, &mut out)
            .is_err());
        assert!(matches!(
            Param::Null.to_sql(&Type::INT8, &mut out),
            Ok(IsNull::Yes)
        ));
    }
}
