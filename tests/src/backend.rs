//! Which storage the hosts under test use, chosen by `OPSML_TEST_BACKEND`:
//!
//! - `embedded` (the default): SQLite and the key-value store in each host's state directory.
//! - `postgres-s3`: a real PostgreSQL server and a real S3-compatible server (`.ci/run` starts
//!   both on loopback). Each host gets a database of its own and a prefix of its own in the
//!   bucket, so tests stay independent. Needs `OPSML_TEST_POSTGRES_URL`
//!   (`postgres://user:password@host:port`, a role that may create databases),
//!   `OPSML_TEST_S3_ENDPOINT`, `OPSML_TEST_S3_BUCKET`, `OPSML_TEST_S3_ACCESS_KEY_ID`,
//!   `OPSML_TEST_S3_SECRET_ACCESS_KEY` and `OPSML_TEST_S3_ROOT` (the directory the s3s-fs
//!   server stores the bucket in, read to account for stored bytes).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

#[derive(Debug, Clone)]
pub struct Services {
    pub postgres_url: String,
    pub s3_endpoint: String,
    pub bucket: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub s3_root: PathBuf,
}

#[derive(Debug, Clone)]
pub enum Backend {
    Embedded,
    PostgresS3(Services),
}

fn required(name: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| panic!("OPSML_TEST_BACKEND=postgres-s3 needs {name}"))
}

/// The backend of this test run.
pub fn backend() -> &'static Backend {
    static BACKEND: OnceLock<Backend> = OnceLock::new();
    BACKEND.get_or_init(|| match std::env::var("OPSML_TEST_BACKEND").as_deref() {
        Err(_) | Ok("") | Ok("embedded") => Backend::Embedded,
        Ok("postgres-s3") => Backend::PostgresS3(Services {
            postgres_url: required("OPSML_TEST_POSTGRES_URL")
                .trim_end_matches('/')
                .to_string(),
            s3_endpoint: required("OPSML_TEST_S3_ENDPOINT"),
            bucket: required("OPSML_TEST_S3_BUCKET"),
            access_key_id: required("OPSML_TEST_S3_ACCESS_KEY_ID"),
            secret_access_key: required("OPSML_TEST_S3_SECRET_ACCESS_KEY"),
            s3_root: PathBuf::from(required("OPSML_TEST_S3_ROOT")),
        }),
        Ok(other) => panic!("OPSML_TEST_BACKEND={other:?}: expected embedded or postgres-s3"),
    })
}

/// Runs one statement with `psql` against `url`; returns its rows (unaligned, one per line).
pub fn psql(url: &str, statement: &str) -> Vec<String> {
    let output = Command::new("psql")
        .args([
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            url,
            "-c",
            statement,
        ])
        .output()
        .expect(
            "psql (the PostgreSQL client) must be installed for OPSML_TEST_BACKEND=postgres-s3",
        );
    assert!(
        output.status.success(),
        "psql {statement:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// `host:port` of a `postgres://user:password@host:port` URL.
pub fn host_and_port(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or(rest);
    authority
        .rsplit_once('@')
        .map_or(authority, |(_, h)| h)
        .to_string()
}

/// The storage one host uses on `postgres-s3`: its database and its bucket prefix.
#[derive(Debug)]
pub struct Isolated {
    pub services: Services,
    pub database: String,
    pub prefix: String,
}

impl Isolated {
    /// Creates a fresh database named after `id`.
    pub fn create(services: &Services, id: &str) -> Self {
        let database = format!("opsml_e2e_{id}");
        psql(
            &format!("{}/postgres", services.postgres_url),
            &format!("CREATE DATABASE {database}"),
        );
        Self {
            services: services.clone(),
            database,
            prefix: format!("e2e-{id}"),
        }
    }

    pub fn database_url(&self) -> String {
        format!("{}/{}", self.services.postgres_url, self.database)
    }

    /// The host's environment for this storage.
    pub fn envs(&self) -> Vec<(String, String)> {
        let s = &self.services;
        [
            ("OPSML_DATABASE_URL", self.database_url()),
            // Pinned, so the tests also check that the components may reach the database.
            ("OPSML_DATABASE_HOST", host_and_port(&s.postgres_url)),
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

    /// The objects under this host's prefix, with their sizes.
    pub fn objects(&self) -> Vec<(PathBuf, u64)> {
        let mut out = Vec::new();
        walk(
            &self
                .services
                .s3_root
                .join(&self.services.bucket)
                .join(&self.prefix),
            &mut out,
        );
        out
    }

    /// Multipart uploads this host has recorded as in progress (none before the first request
    /// that touches the database has created the schema).
    pub fn recorded_uploads(&self) -> Vec<String> {
        let url = self.database_url();
        let migrated = psql(
            &url,
            "SELECT to_regclass('opsml_multipart_uploads') IS NOT NULL",
        );
        if migrated != ["t"] {
            return Vec::new();
        }
        psql(&url, "SELECT upload_id FROM opsml_multipart_uploads")
    }

    /// Bytes of the parts the server keeps for `upload_ids` (s3s-fs stores them as
    /// `.upload_id-<id>.part-<n>` in its root until the upload completes or is aborted).
    pub fn part_bytes(&self, upload_ids: &[String]) -> u64 {
        let Ok(entries) = std::fs::read_dir(&self.services.s3_root) else {
            return 0;
        };
        entries
            .flatten()
            .filter(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                upload_ids
                    .iter()
                    .any(|id| name.starts_with(&format!(".upload_id-{id}.part-")))
            })
            .filter_map(|e| e.metadata().ok())
            .map(|m| m.len())
            .sum()
    }
}

impl Drop for Isolated {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args([
                "-X",
                "-q",
                "-d",
                &format!("{}/postgres", self.services.postgres_url),
                "-c",
                &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.database),
            ])
            .output();
        let _ = std::fs::remove_dir_all(
            self.services
                .s3_root
                .join(&self.services.bucket)
                .join(&self.prefix),
        );
    }
}

fn walk(dir: &Path, out: &mut Vec<(PathBuf, u64)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        match entry.file_type() {
            Ok(t) if t.is_dir() => walk(&path, out),
            // s3s-fs keeps its own metadata beside the objects in dot-files.
            Ok(t) if t.is_file() && !entry.file_name().to_string_lossy().starts_with('.') => {
                out.push((path, entry.metadata().map(|m| m.len()).unwrap_or(0)));
            }
            _ => {}
        }
    }
}
