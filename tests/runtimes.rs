//! Where the runtimes must behave alike beyond the registry's own routes: a component that
//! breaks wasi:http's resource lifetime rules traps on Spin 3.x (wasmtime 42), what SpinKube
//! runs, so it must trap on `opsml-host` too; either way only that request fails. Spin 4.0.2
//! (wasmtime 44) lets the same component through: the components keep the stricter rule.

use e2e::harness::{build_all, build_fixture, free_port, workspace_root, AppFiles, Host};
use e2e::runtime::runtime;

/// Serves one fixture component on every path; the directory holds its manifest.
fn serve_fixture(package: &str, envs: &[(&str, &str)]) -> (Host, tempfile::TempDir) {
    let wasm = build_fixture(package);
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("spin.toml");
    std::fs::write(
        &manifest,
        format!(
            r#"spin_manifest_version = 2

[application]
name = "{package}"

[[trigger.http]]
route = "/..."
component = "{package}"

[component.{package}]
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
        envs,
    );
    (host, dir)
}

#[test]
fn a_parent_resource_dropped_before_its_child_gives_a_500_and_the_next_request_is_served() {
    let (host, _dir) = serve_fixture("resource-lifetimes", &[]);
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

#[test]
fn a_request_that_never_returns_is_stopped_at_the_request_timeout() {
    if runtime().is_spin() {
        // Spin's --request-timeout applies only to WASIp3 components (4.0.2's own help).
        eprintln!("opsml-host only: Spin does not time out WASIp2 requests");
        return;
    }
    let (host, _dir) = serve_fixture("runaway", &[("OPSML_HOST_REQUEST_TIMEOUT", "1s")]);
    for round in 0..2 {
        let started = std::time::Instant::now();
        let stopped = host.get("/loop");
        let took = started.elapsed();
        assert_eq!(stopped.status, 500, "round {round}");
        assert!(
            took >= std::time::Duration::from_secs(1) && took < std::time::Duration::from_secs(5),
            "round {round}: answered after {took:?}"
        );
        let next = host.get("/after");
        assert_eq!((next.status, next.text().as_str()), (200, "ok"));
    }
    assert!(
        host.log().contains("within the request timeout"),
        "{}",
        host.log()
    );
}

#[test]
fn an_instance_that_allocates_without_bound_fails_alone() {
    // Spin and opsml-host read the cap from the same variable (Spin's --max-instance-memory).
    let (host, _dir) = serve_fixture("runaway", &[("SPIN_MAX_INSTANCE_MEMORY", "67108864")]);
    for round in 0..3 {
        let failed = host.get("/grow");
        assert_eq!(failed.status, 500, "round {round}");
        let next = host.get("/after");
        assert_eq!(
            (next.status, next.text().as_str()),
            (200, "ok"),
            "round {round}"
        );
    }
}

/// Runs `up` with a runtime-config holding `client_tls`; it must refuse to start, saying `why`.
fn refuses_to_start(client_tls: &str, why: &str) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("runtime-config.toml");
    std::fs::write(&config, format!("[[client_tls]]\n{client_tls}\n")).unwrap();
    let mut command = std::process::Command::new(runtime().binary());
    command
        .current_dir(workspace_root())
        .args(["up", "-f", "spin.toml", "--listen"])
        .arg(format!("127.0.0.1:{}", free_port()))
        .arg("--runtime-config-file")
        .arg(&config)
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .stdin(std::process::Stdio::null());
    let mut child = command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // A refused runtime-config stops start-up at once; one that starts would serve forever.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!(
                "{} started with [[client_tls]] {client_tls:?}",
                runtime().name()
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let output = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!status.success(), "{said}");
    assert!(
        said.contains("failed to parse [[client_tls]] table") && said.contains(why),
        "{} should say {why:?}:\n{said}",
        runtime().name()
    );
}

#[test]
fn a_broken_client_tls_table_is_refused_with_spins_reasons() {
    build_all();
    for (table, why) in [
        (
            "component_ids = [\"upload\"]\nhosts = [\"localhost:9000\"]",
            "invalid TLS 'host' \"localhost:9000\"; ports not currently supported",
        ),
        (
            "component_ids = [\"upload\"]\nhosts = [\"localhost\"]\nca_roots_file = \"missing.pem\"",
            "failed to load certificate(s) from",
        ),
        (
            "component_ids = [\"upload\"]\nhosts = [\"localhost\"]\nclient_cert_file = \"c.pem\"",
            "client_cert_file specified without client_private_key_file",
        ),
        (
            "component_ids = []\nhosts = [\"localhost\"]",
            "'component_ids' list may not be empty",
        ),
        (
            "component_ids = [\"upload\"]\nhosts = [\"localhost\"]\nca_root_file = \"ca.pem\"",
            "unknown field `ca_root_file`",
        ),
        (
            "component_ids = [\"Not_Kebab\"]\nhosts = [\"localhost\"]",
            "words must be separated with '-', not '_'",
        ),
    ] {
        refuses_to_start(table, why);
    }
}
