//! Which runtime serves the app under test, chosen by `OPSML_TEST_RUNTIME`:
//!
//! - `opsml-host` (the default): the workspace's own Spin-compatible host, built by
//!   [`crate::harness::build_all`].
//! - `spin`: the real Spin CLI, what production runs. `scripts/find-spin` finds it
//!   (`OPSML_TEST_SPIN`, `spin` on the PATH, or the Spin 3.6.3 kept in `../shared/spin`).
//!
//! Both are started the same way (`<binary> up -f … --listen … --state-dir …
//! --runtime-config-file …`) with the same files.

use crate::harness::{host_binary, workspace_root};
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Runtime {
    OpsmlHost,
    Spin(PathBuf),
}

impl Runtime {
    /// The program whose `up` subcommand serves an app.
    pub fn binary(&self) -> PathBuf {
        match self {
            Runtime::OpsmlHost => host_binary(),
            Runtime::Spin(path) => path.clone(),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Runtime::OpsmlHost => "opsml-host",
            Runtime::Spin(_) => "spin",
        }
    }

    pub fn is_spin(&self) -> bool {
        matches!(self, Runtime::Spin(_))
    }

    /// The Spin CLI's major version (`spin 4.0.2 (…)` → 4); None for opsml-host.
    pub fn spin_major(&self) -> Option<u32> {
        let Runtime::Spin(path) = self else {
            return None;
        };
        let output = Command::new(path)
            .arg("--version")
            .output()
            .unwrap_or_else(|e| panic!("{} --version: {e}", path.display()));
        let text = String::from_utf8_lossy(&output.stdout);
        let major = text
            .strip_prefix("spin ")
            .and_then(|rest| rest.split('.').next())
            .and_then(|major| major.parse().ok());
        Some(major.unwrap_or_else(|| panic!("{} --version said {text:?}", path.display())))
    }
}

/// The runtime of this test run.
pub fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| match std::env::var("OPSML_TEST_RUNTIME").as_deref() {
        Err(_) | Ok("") | Ok("opsml-host") => Runtime::OpsmlHost,
        Ok("spin") => Runtime::Spin(
            find_spin().unwrap_or_else(|e| panic!("OPSML_TEST_RUNTIME=spin, but {e}")),
        ),
        Ok(other) => panic!("OPSML_TEST_RUNTIME={other:?}: expected opsml-host or spin"),
    })
}

/// The Spin CLI's path, or why there is none (as `scripts/find-spin` explains it).
pub fn find_spin() -> Result<PathBuf, String> {
    let script = workspace_root().join("scripts/find-spin");
    let output = Command::new(&script)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    if output.status.success() {
        Ok(PathBuf::from(
            String::from_utf8_lossy(&output.stdout).trim().to_string(),
        ))
    } else {
        Err(String::from_utf8_lossy(&output.stderr).trim().to_string())
    }
}
