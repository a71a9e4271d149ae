//! `spin.toml` (manifest version 2): the subset of Spin's manifest this host runs.
//!
//! Unknown fields are refused rather than ignored: a field Spin would honour and this host
//! silently dropped would make local runs differ from production.

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

// Some fields below are read only to accept what Spin accepts (and refuse what it refuses);
// this host has no use for them.

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct Manifest {
    pub spin_manifest_version: u32,
    pub application: Application,
    #[serde(default)]
    pub variables: BTreeMap<String, VariableDecl>,
    #[serde(default)]
    pub trigger: Triggers,
    #[serde(default)]
    pub component: BTreeMap<String, ComponentDecl>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct Application {
    pub name: String,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub authors: Vec<String>,
}

/// An application variable: `default`, `required` and `secret` as in Spin.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct VariableDecl {
    #[serde(default)]
    pub default: Option<String>,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub secret: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Triggers {
    #[serde(default)]
    pub http: Vec<HttpTrigger>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct HttpTrigger {
    #[serde(default)]
    pub id: Option<String>,
    pub route: String,
    pub component: String,
    #[serde(default)]
    pub executor: Option<toml::Value>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct ComponentDecl {
    pub source: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub allowed_outbound_hosts: Vec<String>,
    #[serde(default)]
    pub key_value_stores: Vec<String>,
    #[serde(default)]
    pub sqlite_databases: Vec<String>,
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    #[serde(default)]
    pub build: Option<BuildDecl>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct BuildDecl {
    pub command: String,
    #[serde(default)]
    pub workdir: Option<String>,
    #[serde(default)]
    pub watch: Vec<String>,
}

/// A manifest together with the directory its relative paths are resolved against.
#[derive(Debug)]
pub struct LoadedManifest {
    pub path: PathBuf,
    pub dir: PathBuf,
    pub manifest: Manifest,
}

impl LoadedManifest {
    /// Reads and validates `spin.toml`; a directory means the `spin.toml` inside it.
    pub fn load(path: &Path) -> Result<Self> {
        let path = if path.is_dir() {
            path.join("spin.toml")
        } else {
            path.to_path_buf()
        };
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read manifest {}", path.display()))?;
        let manifest: Manifest = toml::from_str(&text)
            .map_err(|e| anyhow::anyhow!("invalid manifest {}: {e}", path.display()))?;
        let dir = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let loaded = Self {
            path,
            dir,
            manifest,
        };
        loaded
            .validate()
            .with_context(|| format!("invalid manifest {}", loaded.path.display()))?;
        Ok(loaded)
    }

    fn validate(&self) -> Result<()> {
        let m = &self.manifest;
        if m.spin_manifest_version != 2 {
            bail!(
                "spin_manifest_version: {} is not supported (only 2)",
                m.spin_manifest_version
            );
        }
        for (name, decl) in &m.variables {
            check_variable_name(name).with_context(|| format!("variables.{name}"))?;
            if decl.required && decl.default.is_some() {
                bail!(
                    "variables.{name}: a variable cannot be both `required` and have a `default`"
                );
            }
            if !decl.required && decl.default.is_none() {
                bail!("variables.{name}: give it a `default` or mark it `required = true`");
            }
        }
        for (i, trigger) in m.trigger.http.iter().enumerate() {
            if !m.component.contains_key(&trigger.component) {
                bail!(
                    "trigger.http[{i}].component: no component named {:?}",
                    trigger.component
                );
            }
            crate::routes::RoutePattern::parse(&trigger.route)
                .with_context(|| format!("trigger.http[{i}].route"))?;
        }
        for (id, component) in &m.component {
            for (key, template) in &component.variables {
                check_variable_name(key)
                    .with_context(|| format!("component.{id}.variables.{key}"))?;
                for reference in crate::variables::template_references(template)
                    .with_context(|| format!("component.{id}.variables.{key}"))?
                {
                    if !m.variables.contains_key(&reference) {
                        bail!(
                            "component.{id}.variables.{key}: refers to undeclared application variable {reference:?}"
                        );
                    }
                }
            }
            for host in &component.allowed_outbound_hosts {
                crate::outbound::AllowedHost::parse(host)
                    .with_context(|| format!("component.{id}.allowed_outbound_hosts"))?;
            }
        }
        Ok(())
    }

    /// The absolute path of a component's `.wasm` file.
    pub fn component_source(&self, id: &str) -> Result<PathBuf> {
        let component = self
            .manifest
            .component
            .get(id)
            .with_context(|| format!("no component named {id:?}"))?;
        Ok(self.dir.join(&component.source))
    }
}

/// Spin's rule for variable names: lowercase ASCII letters, digits and single underscores,
/// starting with a letter.
pub fn check_variable_name(name: &str) -> Result<()> {
    let mut chars = name.chars();
    let starts_with_letter = chars.next().is_some_and(|c| c.is_ascii_lowercase());
    let valid_chars = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !starts_with_letter || !valid_chars || name.contains("__") || name.ends_with('_') {
        bail!("{name:?} is not a valid variable name (lowercase letters, digits and single underscores, starting with a letter)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<()> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spin.toml");
        std::fs::write(&path, text).unwrap();
        LoadedManifest::load(&path).map(|_| ())
    }

    const MINIMAL: &str = r#"
spin_manifest_version = 2
[application]
name = "app"
[variables]
env = { default = "development" }
[[trigger.http]]
route = "/x/..."
component = "c"
[component.c]
source = "c.wasm"
variables = { env = "{{ env }}" }
"#;

    #[test]
    fn accepts_a_minimal_manifest() {
        parse(MINIMAL).unwrap();
    }

    #[test]
    fn unknown_fields_are_named() {
        let err = parse(&MINIMAL.replace("source = \"c.wasm\"", "source = \"c.wasm\"\nbogus = 1"))
            .unwrap_err();
        assert!(format!("{err:#}").contains("bogus"), "{err:#}");
    }

    #[test]
    fn undeclared_template_variable_is_refused() {
        let err = parse(&MINIMAL.replace("{{ env }}", "{{ nope }}")).unwrap_err();
        assert!(format!("{err:#}").contains("nope"), "{err:#}");
    }

    #[test]
    fn trigger_to_unknown_component_is_refused() {
        let err = parse(&MINIMAL.replace("component = \"c\"", "component = \"d\"")).unwrap_err();
        assert!(
            format!("{err:#}").contains("trigger.http[0].component"),
            "{err:#}"
        );
    }

    #[test]
    fn variable_names_follow_spin() {
        for good in ["env", "prod_token", "a1"] {
            check_variable_name(good).unwrap();
        }
        for bad in ["Env", "1a", "a__b", "a-b", "", "a_"] {
            assert!(check_variable_name(bad).is_err(), "{bad}");
        }
    }
}
