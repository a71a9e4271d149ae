//! Which storage the hosts under test use, chosen by `OPSML_TEST_BACKEND`:
//!
//! - `embedded` (the default): SQLite and the key-value store in each host's state directory.
//! - `postgres-s3` / `mysql-s3`: a real PostgreSQL or MySQL (MariaDB) server and a real
//!   S3-compatible server (`scripts/services.sh` starts them on loopback). Each host gets a
//!   database of its own and a prefix of its own in the bucket, so tests stay independent.
//!   Needs `OPSML_TEST_POSTGRES_URL` (`postgres://user:password@host:port`) or
//!   `OPSML_TEST_MYSQL_URL` (`mysql://user:password@host:port`), a user that may create
//!   databases, and `OPSML_TEST_S3_ENDPOINT`, `OPSML_TEST_S3_BUCKET`,
//!   `OPSML_TEST_S3_ACCESS_KEY_ID`, `OPSML_TEST_S3_SECRET_ACCESS_KEY` and `OPSML_TEST_S3_ROOT`
//!   (the directory the s3s-fs server stores the bucket in, read to account for stored bytes).
//!   With `OPSML_TEST_S3_CA` (a CA's PEM) the endpoint is `https://` and the registry's
//!   runtime-config trusts that CA for it (`[[client_tls]]`, see `AppFiles::registry`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The shared database server of a run: its kind and `scheme://user:password@host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseServer {
    Postgres(String),
    Mysql(String),
}

impl DatabaseServer {
    /// `scheme://user:password@host:port` (no database).
    pub fn url(&self) -> &str {
        match self {
            DatabaseServer::Postgres(url) | DatabaseServer::Mysql(url) => url,
        }
    }

    /// The URL of one database on this server.
    pub fn database_url(&self, database: &str) -> String {
        format!("{}/{database}", self.url())
    }

    /// Runs one statement in `database` (None: the server's default one) with the server's
    /// own command-line client; returns its rows, one line each (columns tab-separated).
    pub fn query(&self, database: Option<&str>, statement: &str) -> Vec<String> {
        self.run(database, statement)
            .unwrap_or_else(|e| panic!("{statement:?}: {e}"))
    }

    fn run(&self, database: Option<&str>, statement: &str) -> Result<Vec<String>, String> {
        let (program, args) = match self {
            DatabaseServer::Postgres(url) => (
                "psql",
                vec![
                    "-X".to_string(),
                    "-q".into(),
                    "-A".into(),
                    "-t".into(),
                    "-F".into(),
                    "\t".into(),
                    "-v".into(),
                    "ON_ERROR_STOP=1".into(),
                    "-d".into(),
                    format!("{url}/{}", database.unwrap_or("postgres")),
                    "-c".into(),
                    statement.into(),
                ],
            ),
            DatabaseServer::Mysql(url) => {
                let (user, password, host, port) = mysql_parts(url);
                let mut args = vec![
                    "--protocol=TCP".to_string(),
                    format!("--host={host}"),
                    format!("--port={port}"),
                    format!("--user={user}"),
                    format!("--password={password}"),
                    "--batch".into(),
                    "--skip-column-names".into(),
                    "--execute".into(),
                    statement.into(),
                ];
                args.extend(database.map(str::to_string));
                ("mariadb", args)
            }
        };
        let output = Command::new(program)
            .args(&args)
            .output()
            .map_err(|e| format!("{program} (the database's client) cannot run: {e}"))?;
        if !output.status.success() {
            return Err(format!(
                "{program}: {}",
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        Ok(String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect())
    }

    /// Whether `table` exists in `database`.
    pub fn has_table(&self, database: &str, table: &str) -> bool {
        let statement = match self {
            DatabaseServer::Postgres(_) => {
                format!(
                    "SELECT COUNT(*) FROM information_schema.tables WHERE table_name = '{table}'"
                )
            }
            DatabaseServer::Mysql(_) => format!(
                "SELECT COUNT(*) FROM information_schema.tables \
                 WHERE table_schema = DATABASE() AND table_name = '{table}'"
            ),
        };
        self.query(Some(database), &statement) != ["0"]
    }

    fn drop_database(&self, database: &str) {
        let statement = match self {
            DatabaseServer::Postgres(_) => {
                format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)")
            }
            DatabaseServer::Mysql(_) => format!("DROP DATABASE IF EXISTS {database}"),
        };
        let _ = self.run(None, &statement);
    }
}

/// User, password, host and port of a `mysql://user:password@host:port` URL.
fn mysql_parts(url: &str) -> (String, String, String, String) {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let (user_info, host_port) = rest.rsplit_once('@').unwrap_or(("root:", rest));
    let (user, password) = user_info.split_once(':').unwrap_or((user_info, ""));
    let (host, port) = host_port.split_once(':').unwrap_or((host_port, "3306"));
    (user.into(), password.into(), host.into(), port.into())
}

#[derive(Debug, Clone)]
pub struct Services {
    pub database: DatabaseServer,
    pub s3_endpoint: String,
    pub bucket: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub s3_root: PathBuf,
    /// The CA that signed an `https://` endpoint's certificate.
    pub s3_ca: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub enum Backend {
    Embedded,
    /// `postgres-s3` or `mysql-s3`.
    Shared(Services),
}

impl Backend {
    /// The shared database server, if the backend has one.
    pub fn database(&self) -> Option<&DatabaseServer> {
        match self {
            Backend::Embedded => None,
            Backend::Shared(services) => Some(&services.database),
        }
    }
}

/// The backend of this test run.
pub fn backend() -> &'static Backend {
    static BACKEND: OnceLock<Backend> = OnceLock::new();
    BACKEND.get_or_init(|| {
        let name = std::env::var("OPSML_TEST_BACKEND").unwrap_or_default();
        let required = |var: &str| {
            std::env::var(var)
                .ok()
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| panic!("OPSML_TEST_BACKEND={name} needs {var}"))
        };
        let database = match name.as_str() {
            "" | "embedded" => return Backend::Embedded,
            "postgres-s3" => DatabaseServer::Postgres(
                required("OPSML_TEST_POSTGRES_URL")
                    .trim_end_matches('/')
                    .to_string(),
            ),
            "mysql-s3" => DatabaseServer::Mysql(
                required("OPSML_TEST_MYSQL_URL")
                    .trim_end_matches('/')
                    .to_string(),
            ),
            other => {
                panic!("OPSML_TEST_BACKEND={other:?}: expected embedded, postgres-s3 or mysql-s3")
            }
        };
        Backend::Shared(Services {
            database,
            s3_endpoint: required("OPSML_TEST_S3_ENDPOINT"),
            bucket: required("OPSML_TEST_S3_BUCKET"),
            access_key_id: required("OPSML_TEST_S3_ACCESS_KEY_ID"),
            secret_access_key: required("OPSML_TEST_S3_SECRET_ACCESS_KEY"),
            s3_root: PathBuf::from(required("OPSML_TEST_S3_ROOT")),
            s3_ca: std::env::var_os("OPSML_TEST_S3_CA")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
        })
    })
}

/// `host:port` of a `scheme://user:password@host:port` URL.
pub fn host_and_port(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or(rest);
    authority
        .rsplit_once('@')
        .map_or(authority, |(_, h)| h)
        .to_string()
}

/// The storage one host (or one fleet of replicas) uses on a shared backend: its database and
/// its bucket prefix.
#[derive(Debug, Clone)]
pub struct Isolated {
    pub services: Services,
    pub database: String,
    pub prefix: String,
}

impl Isolated {
    /// Creates a fresh database named after `id`.
    pub fn create(services: &Services, id: &str) -> Self {
        let database = format!("opsml_e2e_{id}");
        services
            .database
            .query(None, &format!("CREATE DATABASE {database}"));
        Self {
            services: services.clone(),
            database,
            prefix: format!("e2e-{id}"),
        }
    }

    pub fn database_url(&self) -> String {
        self.services.database.database_url(&self.database)
    }

    /// The host's environment for this storage.
    pub fn envs(&self) -> Vec<(String, String)> {
        let s = &self.services;
        [
            ("OPSML_DATABASE_URL", self.database_url()),
            // Pinned, so the tests also check that the components may reach the database.
            ("OPSML_DATABASE_HOST", host_and_port(s.database.url())),
            (
                "OPSML_STORAGE_URI",
                format!("s3://{}/{}", s.bucket, self.prefix),
            ),
            ("OPSML_S3_ENDPOINT", s.s3_endpoint.clone()),
            ("OPSML_S3_REGION", "us-east-1".to_string()),
            ("OPSML_S3_ACCESS_KEY_ID", s.access_key_id.clone()),
            ("OPSML_S3_SECRET_ACCESS_KEY", s.secret_access_key.clone()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// The objects under this host's prefix, with their sizes. The bucket's folder must exist
    /// (s3s-fs made it at start); the prefix's folder appears with the first object.
    pub fn objects(&self) -> Vec<(PathBuf, u64)> {
        let bucket = self.services.s3_root.join(&self.services.bucket);
        assert!(
            bucket.is_dir(),
            "the S3 server's bucket folder {} is missing: nothing could be measured",
            bucket.display()
        );
        let mut out = Vec::new();
        walk(&bucket.join(&self.prefix), &mut out);
        out
    }

    /// Multipart uploads this host has recorded as in progress (none before the first request
    /// that touches the database has created the schema).
    pub fn recorded_uploads(&self) -> Vec<String> {
        let server = &self.services.database;
        if !server.has_table(&self.database, "opsml_multipart_uploads") {
            return Vec::new();
        }
        server.query(
            Some(&self.database),
            "SELECT upload_id FROM opsml_multipart_uploads",
        )
    }

    /// Bytes of the parts the server keeps for `upload_ids` (s3s-fs stores them as
    /// `.upload_id-<id>.part-<n>` in its root until the upload completes or is aborted).
    pub fn part_bytes(&self, upload_ids: &[String]) -> u64 {
        let root = &self.services.s3_root;
        let entries = std::fs::read_dir(root)
            .unwrap_or_else(|e| panic!("cannot list the S3 server's root {}: {e}", root.display()));
        let mut total = 0;
        for entry in entries {
            let entry = entry.unwrap_or_else(|e| panic!("cannot list {}: {e}", root.display()));
            let name = entry.file_name().to_string_lossy().into_owned();
            if upload_ids
                .iter()
                .any(|id| name.starts_with(&format!(".upload_id-{id}.part-")))
            {
                total += file_len(&entry);
            }
        }
        total
    }
}

impl Drop for Isolated {
    fn drop(&mut self) {
        // Not while panicking: a failing test keeps its database to look at.
        if !std::thread::panicking() {
            self.services.database.drop_database(&self.database);
        }
        let _ = std::fs::remove_dir_all(
            self.services
                .s3_root
                .join(&self.services.bucket)
                .join(&self.prefix),
        );
    }
}

/// Every file under `dir` with its size; a `dir` that does not exist holds nothing, any other
/// failure to read it is an error (a measurement that could not be made is not a 0).
fn walk(dir: &Path, out: &mut Vec<(PathBuf, u64)>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
        Err(e) => panic!("cannot list {}: {e}", dir.display()),
    };
    for entry in entries {
        let entry = entry.unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
        let path = entry.path();
        let file_type = entry
            .file_type()
            .unwrap_or_else(|e| panic!("cannot stat {}: {e}", path.display()));
        if file_type.is_dir() {
            walk(&path, out);
        } else if file_type.is_file() && !entry.file_name().to_string_lossy().starts_with('.') {
            // s3s-fs keeps its own metadata beside the objects in dot-files.
            out.push((path, file_len(&entry)));
        }
    }
}

fn file_len(entry: &std::fs::DirEntry) -> u64 {
    entry
        .metadata()
        .unwrap_or_else(|e| panic!("cannot stat {}: {e}", entry.path().display()))
        .len()
}
