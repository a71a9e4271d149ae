//! Variables as Spin resolves them: a component's `variables` are templates over application
//! variables; an application variable comes from the first provider that has it, else its
//! manifest default. Providers are the runtime-config's `[[variables_provider]]` entries in
//! order, then the `SPIN_VARIABLE_*` environment (with `--variable` values laid over it).

use crate::manifest::{ComponentDecl, VariableDecl};
use anyhow::{bail, Result};
use std::collections::{BTreeMap, HashMap};

/// Where application variable values come from.
#[derive(Debug, Clone)]
pub enum Provider {
    /// `NAME` is read from `<PREFIX>_<NAME>` (upper-cased), then from the dotenv file.
    Env {
        prefix: String,
        dotenv: HashMap<String, String>,
    },
    /// Fixed values (the `--variable` flags).
    Static(HashMap<String, String>),
}

impl Provider {
    pub const DEFAULT_ENV_PREFIX: &'static str = "SPIN_VARIABLE";

    fn get(&self, name: &str) -> Option<String> {
        match self {
            Provider::Env { prefix, dotenv } => {
                let key = format!("{prefix}_{name}").to_ascii_uppercase();
                std::env::var(&key)
                    .ok()
                    .or_else(|| dotenv.get(&key).cloned())
            }
            Provider::Static(values) => values.get(name).cloned(),
        }
    }
}

/// Why a variable has no value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VariableError {
    InvalidName(String),
    Undefined(String),
}

impl std::fmt::Display for VariableError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VariableError::InvalidName(n) => write!(f, "invalid variable name {n:?}"),
            VariableError::Undefined(n) => write!(f, "variable {n:?} has no value"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Resolver {
    declarations: BTreeMap<String, VariableDecl>,
    providers: Vec<Provider>,
}

impl Resolver {
    pub fn new(declarations: BTreeMap<String, VariableDecl>, providers: Vec<Provider>) -> Self {
        Self {
            declarations,
            providers,
        }
    }

    /// The value of an application variable.
    pub fn application(&self, name: &str) -> Result<String, VariableError> {
        let decl = self
            .declarations
            .get(name)
            .ok_or_else(|| VariableError::Undefined(name.to_string()))?;
        self.providers
            .iter()
            .find_map(|p| p.get(name))
            .or_else(|| decl.default.clone())
            .ok_or_else(|| VariableError::Undefined(name.to_string()))
    }

    /// The value of a component variable: its template with application variables filled in.
    pub fn component(&self, component: &ComponentDecl, key: &str) -> Result<String, VariableError> {
        if crate::manifest::check_variable_name(key).is_err() {
            return Err(VariableError::InvalidName(key.to_string()));
        }
        let template = component
            .variables
            .get(key)
            .ok_or_else(|| VariableError::Undefined(key.to_string()))?;
        expand(template, |name| self.application(name))
    }

    /// Spin refuses to start when a required variable has no value; so does this host.
    pub fn check_required(&self) -> Result<()> {
        for (name, decl) in &self.declarations {
            if decl.required && self.application(name).is_err() {
                bail!(
                    "required variable {name:?} has no value: set it through a variables provider (e.g. SPIN_VARIABLE_{}) or --variable {name}=...",
                    name.to_ascii_uppercase()
                );
            }
        }
        Ok(())
    }
}

/// Splits a template into literal text and `{{ name }}` references.
fn parse_template(template: &str) -> Result<Vec<(bool, &str)>> {
    let mut parts = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        parts.push((false, &rest[..start]));
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            bail!("unterminated '{{{{' in template {template:?}");
        };
        let name = after[..end].trim();
        crate::manifest::check_variable_name(name)?;
        parts.push((true, name));
        rest = &after[end + 2..];
    }
    if rest.contains("}}") {
        bail!("stray '}}}}' in template {template:?}");
    }
    parts.push((false, rest));
    Ok(parts)
}

/// The application variables a template refers to.
pub fn template_references(template: &str) -> Result<Vec<String>> {
    Ok(parse_template(template)?
        .into_iter()
        .filter(|(is_ref, _)| *is_ref)
        .map(|(_, name)| name.to_string())
        .collect())
}

/// Fills a template's references with `lookup`.
pub fn expand<E>(template: &str, lookup: impl Fn(&str) -> Result<String, E>) -> Result<String, E>
where
    E: From<VariableError>,
{
    let parts =
        parse_template(template).map_err(|e| E::from(VariableError::InvalidName(e.to_string())))?;
    let mut out = String::new();
    for (is_ref, text) in parts {
        if is_ref {
            out.push_str(&lookup(text)?);
        } else {
            out.push_str(text);
        }
    }
    Ok(out)
}

/// `KEY=VALUE` lines of a dotenv file; `#` comments and surrounding quotes allowed.
pub fn parse_dotenv(text: &str) -> HashMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let l = l.strip_prefix("export ").unwrap_or(l);
            let (k, v) = l.split_once('=')?;
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .or_else(|| v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
                .unwrap_or(v);
            Some((k.trim().to_string(), v.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decl(default: Option<&str>, required: bool) -> VariableDecl {
        VariableDecl {
            default: default.map(str::to_string),
            required,
            secret: false,
        }
    }

    fn component(vars: &[(&str, &str)]) -> ComponentDecl {
        toml::from_str::<ComponentDecl>(&format!(
            "source = \"x.wasm\"\nvariables = {{ {} }}",
            vars.iter()
                .map(|(k, v)| format!("{k} = \"{v}\""))
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .unwrap()
    }

    #[test]
    fn earlier_providers_win_and_defaults_fill_the_rest() {
        let decls = BTreeMap::from([
            ("env".to_string(), decl(Some("development"), false)),
            ("prod_token".to_string(), decl(Some(""), false)),
            ("other".to_string(), decl(Some("d"), false)),
        ]);
        let providers = vec![
            Provider::Static(HashMap::from([("env".into(), "production".into())])),
            Provider::Static(HashMap::from([
                ("env".into(), "staging".into()),
                ("prod_token".into(), "t0k".into()),
            ])),
        ];
        let r = Resolver::new(decls, providers);
        assert_eq!(r.application("env").unwrap(), "production");
        assert_eq!(r.application("prod_token").unwrap(), "t0k");
        assert_eq!(r.application("other").unwrap(), "d");
        assert_eq!(
            r.application("missing"),
            Err(VariableError::Undefined("missing".into()))
        );
    }

    #[test]
    fn env_provider_uses_prefix_and_upper_case() {
        // A variable name unique to this test keeps parallel tests apart.
        std::env::set_var("OPSMLTEST_PROBE_VALUE", "from-env");
        let r = Resolver::new(
            BTreeMap::from([("probe_value".to_string(), decl(None, true))]),
            vec![Provider::Env {
                prefix: "OPSMLTEST".into(),
                dotenv: HashMap::new(),
            }],
        );
        assert_eq!(r.application("probe_value").unwrap(), "from-env");
        r.check_required().unwrap();
    }

    #[test]
    fn required_without_value_is_reported() {
        let r = Resolver::new(
            BTreeMap::from([("secret_key".to_string(), decl(None, true))]),
            vec![],
        );
        assert!(format!("{}", r.check_required().unwrap_err()).contains("secret_key"));
    }

    #[test]
    fn component_templates_expand() {
        let r = Resolver::new(
            BTreeMap::from([
                ("host".to_string(), decl(Some("example.com"), false)),
                ("port".to_string(), decl(Some("9000"), false)),
            ]),
            vec![],
        );
        let c = component(&[("endpoint", "http://{{ host }}:{{port}}/x")]);
        assert_eq!(
            r.component(&c, "endpoint").unwrap(),
            "http://example.com:9000/x"
        );
        assert_eq!(
            r.component(&c, "nope"),
            Err(VariableError::Undefined("nope".into()))
        );
        assert_eq!(
            r.component(&c, "Bad"),
            Err(VariableError::InvalidName("Bad".into()))
        );
    }

    #[test]
    fn templates_are_checked() {
        assert_eq!(template_references("a{{ x }}b{{y}}").unwrap(), ["x", "y"]);
        assert!(template_references("{{ x ").is_err());
        assert!(template_references("x }}").is_err());
        assert!(template_references("{{ X }}").is_err());
    }

    #[test]
    fn dotenv_lines() {
        let m = parse_dotenv("# c\nA=1\nexport B = \"two\"\n\nC='3'\n");
        assert_eq!(m["A"], "1");
        assert_eq!(m["B"], "two");
        assert_eq!(m["C"], "3");
    }
}
