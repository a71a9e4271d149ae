//! A MySQL (or MariaDB) database through Spin's `fermyon:spin/mysql@2.0.0` interface.
//!
//! Spin reports a server's errors as the text of mysql_async's error value
//! (`Server(ServerError { code: 1062, message: "…", state: "23000" })`), so the code is read
//! from that text; and it names the whole address, password included, when it refuses one,
//! so every message is redacted here. Text columns come back as binary (the schema stores
//! text in binary types, see `registry_store::schema`) and are read as UTF-8.

use crate::storage::{first_paragraph, outside_allowed_hosts, redact_password, returns_rows};
use registry_app::AppError;
use registry_store::{Dialect, Row, Sql, SqlValue, StoreError};
use spin_sdk::mysql;

/// MySQL's `ER_DUP_ENTRY`: a unique key is taken.
const DUPLICATE_ENTRY: u32 = 1062;

pub struct SpinMysql {
    conn: mysql::Connection,
    /// The address with its password redacted, and the raw one to redact from messages.
    address: String,
    raw_address: String,
}

impl SpinMysql {
    pub fn open(url: &str) -> Result<Self, AppError> {
        let address = redact_password(url);
        let conn = mysql::Connection::open(url).map_err(|e| {
            AppError::unavailable(format!(
                "the metadata database {address} (OPSML_DATABASE_URL) cannot be used: {}",
                error_text(&e, url, &address)
            ))
        })?;
        Ok(Self {
            conn,
            address,
            raw_address: url.to_string(),
        })
    }
}

/// A server error's code and message, from the text Spin reports.
fn server_error(text: &str) -> Option<(u32, &str)> {
    let code = text.split("code: ").nth(1)?;
    let code: u32 = code[..code.find(|c: char| !c.is_ascii_digit())?]
        .parse()
        .ok()?;
    let message = text.split("message: \"").nth(1)?;
    let message = &message[..message.rfind("\", state").unwrap_or(message.len())];
    Some((code, message))
}

/// What an error says, without the password it may carry.
fn error_text(e: &mysql::MysqlError, raw_address: &str, address: &str) -> String {
    let redacted = |m: &str| m.replace(raw_address, address);
    match e {
        mysql::MysqlError::ConnectionFailed(m) if m.ends_with("is not permitted") => format!(
            "connection failed: {}: {}",
            redacted(m),
            outside_allowed_hosts("mysql")
        ),
        mysql::MysqlError::ConnectionFailed(m) => {
            format!("connection failed: {}", redacted(first_paragraph(m)))
        }
        mysql::MysqlError::QueryFailed(m) => match server_error(m) {
            Some((code, message)) => format!("MySQL error {code}: {message}"),
            None => redacted(first_paragraph(m)),
        },
        mysql::MysqlError::BadParameter(m) => format!("bad parameter: {}", first_paragraph(m)),
        mysql::MysqlError::ValueConversionFailed(m) => {
            format!("value conversion failed: {}", first_paragraph(m))
        }
        mysql::MysqlError::Other(m) => redacted(first_paragraph(m)),
    }
}

fn to_mysql(value: &SqlValue) -> mysql::ParameterValue {
    match value {
        SqlValue::Integer(i) => mysql::ParameterValue::Int64(*i),
        SqlValue::Real(f) => mysql::ParameterValue::Floating64(*f),
        SqlValue::Text(s) => mysql::ParameterValue::Str(s.clone()),
        SqlValue::Blob(b) => mysql::ParameterValue::Binary(b.clone()),
        SqlValue::Null => mysql::ParameterValue::DbNull,
    }
}

fn from_mysql(value: &mysql::DbValue) -> Result<SqlValue, StoreError> {
    use mysql::DbValue as V;
    Ok(match value {
        V::Boolean(b) => SqlValue::Integer(i64::from(*b)),
        V::Int8(i) => SqlValue::Integer(i64::from(*i)),
        V::Int16(i) => SqlValue::Integer(i64::from(*i)),
        V::Int32(i) => SqlValue::Integer(i64::from(*i)),
        V::Int64(i) => SqlValue::Integer(*i),
        V::Uint8(i) => SqlValue::Integer(i64::from(*i)),
        V::Uint16(i) => SqlValue::Integer(i64::from(*i)),
        V::Uint32(i) => SqlValue::Integer(i64::from(*i)),
        V::Uint64(i) => SqlValue::Integer(i64::try_from(*i).map_err(|_| {
            StoreError::Corrupt(format!("MySQL value {i} does not fit 64 signed bits"))
        })?),
        V::Floating32(f) => SqlValue::Real(f64::from(*f)),
        V::Floating64(f) => SqlValue::Real(*f),
        V::Str(s) => SqlValue::Text(s.clone()),
        // Text is stored in binary types; nothing else the store keeps is binary.
        V::Binary(b) => match String::from_utf8(b.clone()) {
            Ok(s) => SqlValue::Text(s),
            Err(e) => SqlValue::Blob(e.into_bytes()),
        },
        V::DbNull => SqlValue::Null,
        V::Unsupported => {
            return Err(StoreError::Corrupt(
                "a MySQL value of a type Spin does not convert".into(),
            ))
        }
    })
}

impl Sql for SpinMysql {
    fn execute(&self, statement: &str, params: &[SqlValue]) -> registry_store::Result<Vec<Row>> {
        let params: Vec<_> = params.iter().map(to_mysql).collect();
        let failed = |e: mysql::MysqlError| match &e {
            mysql::MysqlError::QueryFailed(m)
                if matches!(server_error(m), Some((DUPLICATE_ENTRY, _))) =>
            {
                StoreError::Conflict(
                    server_error(m)
                        .map(|(_, m)| m.to_string())
                        .unwrap_or_default(),
                )
            }
            mysql::MysqlError::ConnectionFailed(_) => StoreError::Backend(format!(
                "the metadata database {} (OPSML_DATABASE_URL): {}",
                self.address,
                error_text(&e, &self.raw_address, &self.address)
            )),
            _ => StoreError::Backend(error_text(&e, &self.raw_address, &self.address)),
        };
        if !returns_rows(statement) {
            self.conn.execute(statement, &params).map_err(failed)?;
            return Ok(Vec::new());
        }
        let result = self.conn.query(statement, &params).map_err(failed)?;
        result
            .rows
            .iter()
            .map(|r| r.iter().map(from_mysql).collect::<Result<_, _>>().map(Row))
            .collect()
    }

    fn dialect(&self) -> Dialect {
        Dialect::Mysql
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_errors_are_read_from_spins_text() {
        let text = r#"Server(ServerError { code: 1062, message: "Duplicate entry 'a' for key 'PRIMARY'", state: "23000" })"#;
        assert_eq!(
            server_error(text),
            Some((1062, "Duplicate entry 'a' for key 'PRIMARY'"))
        );
        assert_eq!(server_error("Io(Io(Os { code: 111 }))"), None);
    }

    #[test]
    fn a_connection_error_keeps_its_first_paragraph() {
        let failed = mysql::MysqlError::ConnectionFailed(
            "Input/output error: Connection refused (os error 111)\n\nCaused by:\n    0: …\n\n\
             Stack backtrace:\n   0: <unknown>"
                .into(),
        );
        assert_eq!(
            error_text(&failed, "mysql://u:p@h/d", "mysql://u:***@h/d"),
            "connection failed: Input/output error: Connection refused (os error 111)"
        );
    }

    #[test]
    fn refusals_name_the_setting_and_never_the_password() {
        let raw = "mysql://opsml:s3cr3t@db.elsewhere:3306/opsml";
        let shown = redact_password(raw);
        let refused =
            mysql::MysqlError::ConnectionFailed(format!("address {raw} is not permitted"));
        let text = error_text(&refused, raw, &shown);
        assert!(!text.contains("s3cr3t"), "{text}");
        assert!(
            text.contains("mysql://opsml:***@db.elsewhere:3306/opsml"),
            "{text}"
        );
        assert!(text.contains("OPSML_DATABASE_HOST"), "{text}");
        assert!(text.contains("mysql://{{ database_host }}"), "{text}");
    }
}
