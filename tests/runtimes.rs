//! Where the two runtimes must behave alike beyond the registry's own routes: a component that
//! breaks wasi:http's resource lifetime rules traps on Spin 3.x (wasmtime 42), so it must trap
//! on `opsml-host` too; either way only that request fails.

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
    for round in 0..3 {
        let broken = host.get("/parent-dropped-first");
        assert_eq!(
            broken.status,
            500,
            "round {round}: {} let a component drop an incoming-request before its headers: {:?}",
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
    assert!(
        log.contains("resource has children"),
        "{} should log why the component trapped:\n{log}",
        runtime().name()
    );
}
