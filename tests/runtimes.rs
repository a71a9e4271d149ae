//! Where the runtimes must behave alike beyond the registry's own routes: a component that
//! breaks wasi:http's resource lifetime rules traps on Spin 3.x (wasmtime 42), what SpinKube
//! runs, so it must trap on `opsml-host` too; either way only that request fails. Spin 4.0.2
//! (wasmtime 44) lets the same component through: the components keep the stricter rule.

use e2e::harness::{build_fixture, AppFiles, Host};
use e2e::runtime::runtime;

#[test]
fn a_parent_resource_dropped_before_its_child_gives_a_500_and_the_next_request_is_served() {
    let wasm = build_fixture("resource-lifetimes");
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("spin.toml");
    std::fs::write(
        &manifest,
        format!(
            r#"spin_manifest_version = 2

[application]
name = "resource-lifetimes"

[[trigger.http]]
route = "/..."
component = "resource-lifetimes"

[component.resource-lifetimes]
source = {:?}
"#,
            wasm.to_str().expect("a UTF-8 path")
        ),
    )
    .unwrap();
    let host = Host::start_app(
        AppFiles {
            manifest,
            runtime_config: None,
        },
        &[],
    );
    // The strict runtimes trap; Spin 4's wasmtime serves the request.
    let traps = runtime().spin_major().is_none_or(|major| major < 4);
    for round in 0..3 {
        let broken = host.get("/parent-dropped-first");
        assert_eq!(
            broken.status,
            if traps { 500 } else { 200 },
            "round {round}: {} on a component that drops an incoming-request before its \
             headers: {:?}",
            runtime().name(),
            broken.text()
        );
        let next = host.get("/after");
        assert_eq!(
            (next.status, next.text().as_str()),
            (200, "ok"),
            "round {round}"
        );
    }
    let log = host.log();
    assert_eq!(
        log.contains("resource has children"),
        traps,
        "{} should log why the component trapped, and only then:\n{log}",
        runtime().name()
    );
}
