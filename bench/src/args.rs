//! A small `--flag value` parser (flags may repeat; `--flag` alone is a switch).

use anyhow::{anyhow, bail, Context, Result};
use std::collections::HashMap;
use std::str::FromStr;

pub struct Args {
    values: HashMap<String, Vec<String>>,
    switches: Vec<String>,
}

impl Args {
    /// `switches` names the flags that take no value.
    pub fn parse(argv: Vec<String>, switches: &[&str]) -> Result<Self> {
        let mut values: HashMap<String, Vec<String>> = HashMap::new();
        let mut on = Vec::new();
        let mut it = argv.into_iter();
        while let Some(arg) = it.next() {
            let Some(name) = arg.strip_prefix("--") else {
                bail!("unexpected argument {arg:?}");
            };
            if let Some((name, value)) = name.split_once('=') {
                values
                    .entry(name.to_string())
                    .or_default()
                    .push(value.to_string());
            } else if switches.contains(&name) {
                on.push(name.to_string());
            } else {
                let value = it.next().ok_or_else(|| anyhow!("--{name} needs a value"))?;
                values.entry(name.to_string()).or_default().push(value);
            }
        }
        Ok(Args {
            values,
            switches: on,
        })
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.values
            .get(name)
            .and_then(|v| v.last())
            .map(String::as_str)
    }

    pub fn all(&self, name: &str) -> Vec<&str> {
        self.values
            .get(name)
            .map(|v| v.iter().map(String::as_str).collect())
            .unwrap_or_default()
    }

    pub fn required(&self, name: &str) -> Result<&str> {
        self.get(name)
            .ok_or_else(|| anyhow!("--{name} is required"))
    }

    pub fn parsed<T: FromStr>(&self, name: &str) -> Result<Option<T>>
    where
        T::Err: std::error::Error + Send + Sync + 'static,
    {
        self.get(name)
            .map(|v| v.parse::<T>().with_context(|| format!("--{name} {v:?}")))
            .transpose()
    }

    pub fn switch(&self, name: &str) -> bool {
        self.switches.iter().any(|s| s == name)
    }
}

/// `http://host:port[/prefix]` → (`host:port` socket address text, path prefix).
pub fn split_base(url: &str) -> Result<(String, String)> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| anyhow!("only http:// URLs are supported: {url:?}"))?;
    Ok(match rest.find('/') {
        Some(i) => (
            rest[..i].to_string(),
            rest[i..].trim_end_matches('/').to_string(),
        ),
        None => (rest.to_string(), String::new()),
    })
}

/// A runtime with `threads` workers (1: current-thread).
pub fn runtime(threads: usize) -> Result<tokio::runtime::Runtime> {
    let rt = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()?
    };
    Ok(rt)
}
