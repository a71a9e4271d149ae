//! The runtime-config file (`--runtime-config-file`): variables providers, SQLite databases and
//! key-value stores, in Spin's format. Relative paths resolve against the file's directory, as
//! in Spin; stores and databases not configured get Spin's defaults under the state directory.

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeConfigFile {
    #[serde(default)]
    pub variables_provider: Vec<VariablesProvider>,
    #[serde(default)]
    pub sqlite_database: BTreeMap<String, SpinFileStore>,
    #[serde(default)]
    pub key_value_store: BTreeMap<String, SpinFileStore>,
    /// Spin's cap on one instance's linear memory, in bytes (`--max-instance-memory` wins).
    #[serde(default)]
    pub max_instance_memory: Option<usize>,
    /// `[[client_tls]]` tables, read by [`crate::tls::ClientTls`].
    #[serde(default)]
    pub client_tls: Vec<toml::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", deny_unknown_fields)]
pub enum VariablesProvider {
    #[serde(rename = "env")]
    Env {
        #[serde(default)]
        prefix: Option<String>,
        #[serde(default)]
        dotenv_path: Option<PathBuf>,
    },
}

/// `type = "spin"`: a local SQLite file (the only kind this host implements).
#[derive(Debug, Deserialize)]
#[serde(tag = "type", deny_unknown_fields)]
pub enum SpinFileStore {
    #[serde(rename = "spin")]
    Spin {
        #[serde(default)]
        path: Option<PathBuf>,
    },
}

/// The runtime configuration with every path made absolute.
#[derive(Debug)]
pub struct RuntimeConfig {
    pub providers: Vec<crate::variables::Provider>,
    pub sqlite_databases: BTreeMap<String, PathBuf>,
    pub key_value_stores: BTreeMap<String, PathBuf>,
    pub max_instance_memory: Option<usize>,
    pub client_tls: crate::tls::ClientTls,
}

impl RuntimeConfig {
    /// Spin's default file for the `default` SQLite database.
    pub const DEFAULT_SQLITE_FILE: &'static str = "sqlite_db.db";
    /// Spin's default file for the `default` key-value store.
    pub const DEFAULT_KEY_VALUE_FILE: &'static str = "sqlite_key_value.db";

    pub fn load(
        file: Option<&Path>,
        state_dir: &Path,
        cli_variables: BTreeMap<String, String>,
    ) -> Result<Self> {
        let (parsed, base_dir) = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read runtime config {}", path.display()))?;
                let parsed: RuntimeConfigFile = toml::from_str(&text).map_err(|e| {
                    anyhow::anyhow!("invalid runtime config {}: {e}", path.display())
                })?;
                let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
                (parsed, dir)
            }
            None => (RuntimeConfigFile::default(), PathBuf::new()),
        };
        let file_name = file.map(|p| p.display().to_string()).unwrap_or_default();

        let mut providers = Vec::new();
        for (i, provider) in parsed.variables_provider.into_iter().enumerate() {
            let VariablesProvider::Env {
                prefix,
                dotenv_path,
            } = provider;
            let prefix =
                prefix.unwrap_or_else(|| crate::variables::Provider::DEFAULT_ENV_PREFIX.into());
            if prefix.is_empty() {
                bail!("invalid runtime config {file_name}: variables_provider[{i}].prefix must not be empty");
            }
            let dotenv = match dotenv_path {
                Some(p) => {
                    let p = base_dir.join(p);
                    match std::fs::read_to_string(&p) {
                        Ok(text) => crate::variables::parse_dotenv(&text),
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Default::default(),
                        Err(e) => bail!(
                            "invalid runtime config {file_name}: variables_provider[{i}].dotenv_path {}: {e}",
                            p.display()
                        ),
                    }
                }
                None => Default::default(),
            };
            providers.push(crate::variables::Provider::Env { prefix, dotenv });
        }
        providers.push(crate::variables::Provider::Static(
            cli_variables.into_iter().collect(),
        ));
        providers.push(crate::variables::Provider::Env {
            prefix: crate::variables::Provider::DEFAULT_ENV_PREFIX.into(),
            dotenv: Default::default(),
        });

        let resolve = |map: BTreeMap<String, SpinFileStore>, default_file: &str| {
            let mut out: BTreeMap<String, PathBuf> = map
                .into_iter()
                .map(|(label, SpinFileStore::Spin { path })| {
                    let path = match path {
                        Some(p) => base_dir.join(p),
                        None => state_dir.join(default_file),
                    };
                    (label, path)
                })
                .collect();
            out.entry("default".into())
                .or_insert_with(|| state_dir.join(default_file));
            out
        };
        Ok(Self {
            providers,
            sqlite_databases: resolve(parsed.sqlite_database, Self::DEFAULT_SQLITE_FILE),
            key_value_stores: resolve(parsed.key_value_store, Self::DEFAULT_KEY_VALUE_FILE),
            max_instance_memory: parsed.max_instance_memory,
            client_tls: crate::tls::ClientTls::from_tables(parsed.client_tls, &base_dir)
                .map_err(|e| {
                    anyhow::anyhow!(
                        "invalid runtime config {file_name}: failed to parse [[client_tls]] table: {e:#}"
                    )
                })?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<RuntimeConfig> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rc.toml");
        std::fs::write(&path, text).unwrap();
        RuntimeConfig::load(Some(&path), Path::new("/state"), BTreeMap::new())
    }

    #[test]
    fn defaults_live_in_the_state_dir() {
        let rc = RuntimeConfig::load(None, Path::new("/state"), BTreeMap::new()).unwrap();
        assert_eq!(
            rc.sqlite_databases["default"],
            Path::new("/state/sqlite_db.db")
        );
        assert_eq!(
            rc.key_value_stores["default"],
            Path::new("/state/sqlite_key_value.db")
        );
        // `--variable` values, then SPIN_VARIABLE_*.
        assert_eq!(rc.providers.len(), 2);
    }

    #[test]
    fn the_instance_memory_cap_is_read_as_spin_reads_it() {
        assert_eq!(
            load("max_instance_memory = 67108864\n")
                .unwrap()
                .max_instance_memory,
            Some(64 << 20)
        );
        assert_eq!(load("").unwrap().max_instance_memory, None);
        assert!(load("max_instance_memory = \"64M\"\n").is_err());
    }

    #[test]
    fn providers_keep_file_order_before_spin_variable() {
        let rc = load(
            "[[variables_provider]]\ntype = \"env\"\nprefix = \"APP\"\n[[variables_provider]]\ntype = \"env\"\nprefix = \"OPSML\"\n",
        )
        .unwrap();
        let prefixes: Vec<_> = rc
            .providers
            .iter()
            .filter_map(|p| match p {
                crate::variables::Provider::Env { prefix, .. } => Some(prefix.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(prefixes, ["APP", "OPSML", "SPIN_VARIABLE"]);
    }

    #[test]
    fn unknown_sections_and_types_are_named() {
        let err = load("[llm_compute]\ntype = \"spin\"\n").unwrap_err();
        assert!(format!("{err:#}").contains("llm_compute"), "{err:#}");
        let err = load("[key_value_store.default]\ntype = \"redis\"\n").unwrap_err();
        assert!(format!("{err:#}").contains("redis"), "{err:#}");
        assert!(format!("{err:#}").contains("rc.toml"), "{err:#}");
    }

    #[test]
    fn relative_paths_follow_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rc.toml");
        std::fs::write(
            &path,
            "[sqlite_database.default]\ntype = \"spin\"\npath = \"data/meta.db\"\n",
        )
        .unwrap();
        let rc = RuntimeConfig::load(Some(&path), Path::new("/state"), BTreeMap::new()).unwrap();
        assert_eq!(
            rc.sqlite_databases["default"],
            dir.path().join("data/meta.db")
        );
    }
}
