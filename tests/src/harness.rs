//! Builds the host and the components, runs the app on a free loopback port under the runtime
//! of this test run (`opsml-host`, or real Spin: see [`crate::runtime`]), and speaks HTTP to it.
//!
//! ```no_run
//! use e2e::harness::Host;
//! let host = Host::start(&[("APP_ENV", "production"), ("OPSML_PROD_TOKEN", "s3cret")]);
//! let (status, body) = host.get_json("/opsml/healthcheck");
//! assert_eq!(status, 200, "{body}");
//! ```

pub use crate::backend::{backend, Backend, DatabaseServer, Isolated};
pub use crate::bytes::{
    blake3_of, pseudo_random, random_hex, Multipart, MultipartBody, PseudoRandom,
};
use crate::http;
pub use crate::http::{Body, Headers, Response, Timeouts};
use crate::runtime::{runtime, Runtime};
use serde_json::{json, Value};
use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// The component packages (`components/<name>/`), sorted.
pub fn components() -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(workspace_root().join("components"))
        .expect("components/ is readable")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("Cargo.toml").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Environment variables that feed the application's variables through the dev runtime-config
/// (`APP_*`, `OPSML_*`) or Spin's own provider (`SPIN_VARIABLE_*`). The host never inherits
/// them from the developer's shell: a test passes the ones it means.
const VARIABLE_ENV_PREFIXES: [&str; 3] = ["APP_", "OPSML_", "SPIN_VARIABLE_"];

/// How long a host may take to answer its health check (the first start compiles components).
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// The workspace root: the nearest folder with a `Cargo.lock` above the package under test.
/// Read when the tests run (cargo sets `CARGO_MANIFEST_DIR` then too), not when they were
/// built: cargo does not rebuild for a workspace at another path, so two checkouts sharing a
/// target directory would otherwise test each other's files.
pub fn workspace_root() -> PathBuf {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let package = std::env::var_os("CARGO_MANIFEST_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
        package
            .ancestors()
            .find(|dir| dir.join("Cargo.lock").is_file())
            .unwrap_or_else(|| panic!("no Cargo.lock above {}", package.display()))
            .to_path_buf()
    })
    .clone()
}

/// Cargo's target directory: `CARGO_TARGET_DIR` when set, else `<root>/target`.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => workspace_root().join(dir),
        _ => workspace_root().join("target"),
    }
}

/// The `opsml-host` binary that [`build_all`] builds.
pub fn host_binary() -> PathBuf {
    target_dir()
        .join("debug")
        .join(format!("opsml-host{}", std::env::consts::EXE_SUFFIX))
}

/// A built component, e.g. `component_wasm("create-card")` →
/// `target/wasm32-wasip2/release/create_card.wasm` (the `source` in `spin.toml`).
pub fn component_wasm(package: &str) -> PathBuf {
    target_dir()
        .join("wasm32-wasip2/release")
        .join(format!("{}.wasm", package.replace('-', "_")))
}

fn cargo(args: &[&str]) {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    let started = Instant::now();
    let mut command = Command::new(&cargo);
    // What `cargo test` sets for this test process is not the developer's environment: ring's
    // build script watches CARGO_MANIFEST_DIR, so inheriting it made this build and every
    // top-level `cargo` rebuild ring, rustls, wasmtime-wasi-http and the host in turn.
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if [
            "CARGO_MANIFEST_",
            "CARGO_PKG_",
            "CARGO_CRATE_",
            "CARGO_BIN_",
        ]
        .iter()
        .any(|prefix| name.starts_with(prefix))
            || name == "CARGO_PRIMARY_PACKAGE"
            || name == "CARGO_TARGET_TMPDIR"
        {
            command.env_remove(name.as_ref());
        }
    }
    let output = command
        .args(args)
        .current_dir(workspace_root())
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cargo:?}: {e}"));
    assert!(
        output.status.success(),
        "`cargo {}` failed ({}):\n{}{}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    if started.elapsed() > Duration::from_secs(5) {
        eprintln!(
            "e2e: `cargo {}` took {:.1?}",
            args.join(" "),
            started.elapsed()
        );
    }
}

/// Builds `opsml-host` (debug) and the components (wasm32-wasip2, release), once per
/// process. The host is built with the workspace's default members, not `-p opsml-host`:
/// the same package set as `cargo test` unifies dependency features the same way, so
/// wasmtime is compiled once, not twice. Concurrent test processes are fine: cargo's own lock serialises them, and a build
/// with nothing to do takes a fraction of a second. Set `E2E_SKIP_BUILD=1` when a CI step has
/// already built both.
pub fn build_all() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        if std::env::var_os("E2E_SKIP_BUILD").is_some_and(|v| !v.is_empty() && v != "0") {
            return;
        }
        cargo(&["build"]);
        let components = components();
        let mut args = vec!["build", "--target", "wasm32-wasip2", "--release"];
        for c in &components {
            args.extend(["-p", c.as_str()]);
        }
        cargo(&args);
    });
}

/// Builds a test component that is not part of the registry (`tests/fixtures/<package>/`)
/// and returns its `.wasm`.
pub fn build_fixture(package: &str) -> PathBuf {
    if !std::env::var_os("E2E_SKIP_BUILD").is_some_and(|v| !v.is_empty() && v != "0") {
        cargo(&[
            "build",
            "--target",
            "wasm32-wasip2",
            "--release",
            "-p",
            package,
        ]);
    }
    component_wasm(package)
}

/// The files a runtime serves: a Spin manifest and, optionally, a runtime-config.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppFiles {
    pub manifest: PathBuf,
    pub runtime_config: Option<PathBuf>,
}

impl AppFiles {
    /// The registry: this workspace's `spin.toml` with `runtime-config/dev.toml` (whose
    /// providers read `APP_*` and `OPSML_*` from the environment).
    pub fn registry() -> Self {
        AppFiles {
            runtime_config: Some(registry_runtime_config().clone()),
            ..Self::registry_as_shipped()
        }
    }

    /// The registry with `runtime-config/dev.toml` as it is, whatever the backend.
    pub fn registry_as_shipped() -> Self {
        let root = workspace_root();
        AppFiles {
            manifest: root.join("spin.toml"),
            runtime_config: Some(root.join("runtime-config/dev.toml")),
        }
    }
}

/// `runtime-config/dev.toml`, and when the backend's S3 endpoint is `https://` with a CA of
/// its own, a copy that trusts that CA for the components that reach the store, as an
/// operator's runtime-config does (`[[client_tls]]`).
fn registry_runtime_config() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let shipped = workspace_root().join("runtime-config/dev.toml");
        let ca = match backend() {
            Backend::Shared(services) => services.s3_ca.clone(),
            Backend::Embedded => None,
        };
        let Some(ca) = ca else {
            return shipped;
        };
        let mut text = fs::read_to_string(&shipped).expect("runtime-config/dev.toml");
        text.push_str(&format!(
            "\n[[client_tls]]\ncomponent_ids = [\"upload\", \"download\", \"models\", \"ui\"]\n\
             hosts = [\"localhost\"]\nca_roots_file = {:?}\n",
            ca.to_str().expect("a UTF-8 path")
        ));
        let dir = tempfile::Builder::new()
            .prefix("opsml-e2e-tls-")
            .tempdir()
            .expect("a directory for the runtime-config")
            .keep();
        let path = dir.join("runtime-config.toml");
        fs::write(&path, text).expect("write the runtime-config");
        path
    })
}

/// A loopback port that was free a moment ago (bind to port 0, read it, let it go).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("cannot bind a loopback port")
        .port()
}

/// A whole response.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Headers,
    pub body: Vec<u8>,
}

impl Reply {
    /// The body as JSON; panics (showing the status and the body) when it is not JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "expected a JSON body, got status {} with {} bytes ({e}): {:?}",
                self.status,
                self.body.len(),
                String::from_utf8_lossy(&self.body[..self.body.len().min(2000)])
            )
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A download that was hashed on the fly instead of kept.
#[derive(Clone, Debug)]
pub struct HashedDownload {
    pub status: u16,
    pub headers: Headers,
    /// Bytes received.
    pub len: u64,
    /// BLAKE3 of the bytes received.
    pub blake3: blake3::Hash,
    /// The first 64 KiB of the body (enough to show an error's JSON).
    pub prefix: Vec<u8>,
}

/// `path?k1=v1&k2=v2` with the keys and values percent-encoded.
pub fn with_query(path: &str, pairs: &[(&str, &str)]) -> String {
    let query: Vec<String> = pairs
        .iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                registry_core::query::encode(k),
                registry_core::query::encode(v)
            )
        })
        .collect();
    if query.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{}", query.join("&"))
    }
}

/// Reads the rest of a response; a failure names the request.
fn read_reply(what: &str, mut response: Response) -> Reply {
    let mut body = Vec::new();
    response.read_to_end(&mut body).unwrap_or_else(|e| {
        panic!(
            "{what}: status {}, reading the body failed: {e}",
            response.status
        )
    });
    Reply {
        status: response.status,
        headers: response.headers,
        body,
    }
}

/// The storage path of a file in the opsml layout:
/// `opsml-root:/<TABLE>/<repository>/<name>/v<version>/<file>`.
pub fn storage_path(
    table: &str,
    repository: &str,
    name: &str,
    version: &str,
    file: &str,
) -> String {
    format!("opsml-root:/{table}/{repository}/{name}/v{version}/{file}")
}

/// A running runtime (`opsml-host` or Spin) serving an app, by default this workspace's
/// `spin.toml` with `runtime-config/dev.toml`, with a fresh state directory and a free loopback
/// port. Killed on drop, with every process it started (and its output printed when the test is
/// failing).
pub struct Host {
    app: AppFiles,
    child: Option<Child>,
    port: u16,
    state: TempDir,
    envs: Vec<(String, String)>,
    /// Set once the host's output has been shown (a failed start), so that drop does not
    /// print it twice.
    log_shown: bool,
    /// The database and bucket prefix of this host on a shared backend.
    storage: Option<Isolated>,
    /// `envs` as `start` set them.
    initial_envs: Vec<(String, String)>,
}

impl Host {
    /// Builds everything (once per process) and starts a host whose environment has the given
    /// variables and none of the developer's `APP_*`, `OPSML_*` or `SPIN_VARIABLE_*` ones.
    /// Returns once `GET /opsml/healthcheck` answers 200.
    pub fn start(envs: &[(&str, &str)]) -> Host {
        Host::start_app_on_backend(AppFiles::registry(), envs)
    }

    /// Starts the registry from `app`'s files on the backend of this run.
    pub fn start_app_on_backend(app: AppFiles, envs: &[(&str, &str)]) -> Host {
        build_all();
        let storage = match backend() {
            Backend::Embedded => None,
            Backend::Shared(services) => Some(Isolated::create(services, &random_hex()[..16])),
        };
        Host::launch(app, storage, envs)
    }

    /// Starts another app (a test fixture) with the given environment, on the runtime of this
    /// run; the backend of the run is not used. Returns once `GET /opsml/healthcheck` answers
    /// 200, so the app must serve that path.
    pub fn start_app(app: AppFiles, envs: &[(&str, &str)]) -> Host {
        if *runtime() == Runtime::OpsmlHost {
            build_all();
        }
        Host::launch(app, None, envs)
    }

    fn launch(app: AppFiles, storage: Option<Isolated>, envs: &[(&str, &str)]) -> Host {
        let state = tempfile::Builder::new()
            .prefix("opsml-e2e-")
            .tempdir()
            .expect("cannot create a state directory");
        // The test's own variables come last, so they win over the backend's.
        let mut all_envs: Vec<(String, String)> =
            storage.as_ref().map(Isolated::envs).unwrap_or_default();
        all_envs.extend(envs.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let mut host = Host {
            app,
            child: None,
            port: 0,
            state,
            initial_envs: all_envs.clone(),
            envs: all_envs,
            log_shown: false,
            storage,
        };
        // Spin keeps its own cache of compiled code (wasmtime's, under ~/.cache).
        let share_compiled = *runtime() == Runtime::OpsmlHost && host.app == AppFiles::registry();
        if share_compiled {
            compiled_cache::seed(host.state_dir());
        }
        // The port was free when we looked; if another process takes it before the host binds
        // it, try another one.
        let mut attempt = 0;
        loop {
            attempt += 1;
            host.port = free_port();
            match host.spawn_and_wait() {
                Ok(()) => break,
                // opsml-host says "cannot listen on", Spin "is already in use".
                Err(e)
                    if attempt < 3
                        && (host.log().contains("cannot listen")
                            || host.log().contains("already in use")) =>
                {
                    eprintln!("e2e: port {} was taken ({e}); trying another", host.port);
                }
                Err(e) => host.fail(&e),
            }
        }
        if share_compiled {
            compiled_cache::save(host.state_dir());
        }
        host
    }

    /// Another host serving the same app from the same database and bucket (a shared backend)
    /// with the same environment, on its own port and state directory: a replica, as a fleet
    /// runs. Panics on the embedded backend, whose state is the host's own directory.
    pub fn replica(&self) -> Host {
        let storage = self
            .storage
            .clone()
            .expect("replicas need a shared backend (OPSML_TEST_BACKEND=postgres-s3 or mysql-s3)");
        // `initial_envs` already holds the storage's variables.
        let envs: Vec<(&str, &str)> = self
            .initial_envs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let mut replica = Host::launch(self.app.clone(), None, &envs);
        replica.storage = Some(storage);
        replica
    }

    /// Changes (or adds) variables of the host's environment for its next (re)start.
    pub fn set_envs(&mut self, change: &[(&str, &str)]) {
        for (key, value) in change {
            self.envs.retain(|(k, _)| k != key);
            self.envs.push((key.to_string(), value.to_string()));
        }
    }

    /// The environment the host was started with, for its next (re)start.
    pub fn reset_envs(&mut self) {
        self.envs = self.initial_envs.clone();
    }

    /// The database and bucket prefix this host uses (shared backends only).
    pub fn storage(&self) -> Option<&Isolated> {
        self.storage.as_ref()
    }

    /// Every byte of file content the host has stored, visible or not: key-value chunks, or
    /// objects under its prefix plus the parts of its unfinished multipart uploads.
    pub fn stored_bytes(&self) -> u64 {
        match &self.storage {
            Some(storage) => {
                let objects: u64 = storage.objects().iter().map(|(_, size)| size).sum();
                objects + storage.part_bytes(&storage.recorded_uploads())
            }
            None => {
                // The store's file, where Spin and opsml-host keep the `default` store. Spin 4
                // creates it on first use: until then nothing is stored. Any other failure to
                // read it is an error, not a 0.
                let path = self.state_dir().join("sqlite_key_value.db");
                if !path.exists() {
                    assert!(self.state_dir().is_dir(), "the state directory is gone");
                    return 0;
                }
                let conn = rusqlite::Connection::open_with_flags(
                    &path,
                    rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
                )
                .unwrap_or_else(|e| {
                    panic!("cannot open the key-value store {}: {e}", path.display())
                });
                conn.busy_timeout(Duration::from_secs(5))
                    .expect("set a busy timeout");
                conn.query_row(
                    "SELECT COALESCE(SUM(LENGTH(value)), 0) FROM spin_key_value WHERE key LIKE 'blob/%'",
                    [],
                    |r| r.get::<_, i64>(0),
                )
                .map(|n| n as u64)
                .unwrap_or_else(|e| panic!("cannot measure the key-value store {}: {e}", path.display()))
            }
        }
    }

    /// A host in the default (development) environment.
    pub fn dev() -> Host {
        Host::start(&[])
    }

    /// Stops the host and starts a new process on the same port with the same state directory
    /// and environment (what a redeploy or a crash-and-restart does).
    pub fn restart(&mut self) {
        self.stop();
        if let Err(e) = self.spawn_and_wait() {
            self.fail(&e);
        }
    }

    /// Kills the runtime (if running) with SIGKILL, and every process it started: Spin serves
    /// from a child process (`spin trigger http`) that would outlive its parent.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: `kill` takes no pointers; the group is the one the child leads.
            unsafe { libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL) };
            let _ = child.wait();
        }
    }

    /// Sends SIGTERM to the runtime, as Kubernetes does before it kills a pod.
    pub fn terminate(&self) {
        if let Some(child) = &self.child {
            // SAFETY: `kill` takes no pointers.
            unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        }
    }

    /// Waits up to `timeout` for the runtime to exit by itself; its exit status, or `None` if
    /// it is still running.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        let child = self.child.as_mut()?;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The runtime's process id (None once stopped).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The `--state-dir`: SQLite files, key-value store, compiled components (opsml-host),
    /// component logs (Spin), `host.log`.
    pub fn state_dir(&self) -> &Path {
        self.state.path()
    }

    /// Everything the host printed so far (stdout and stderr of every process of this host).
    pub fn log(&self) -> String {
        fs::read(self.log_path())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    fn log_path(&self) -> PathBuf {
        self.state_dir().join("host.log")
    }

    fn fail(&mut self, error: &str) -> ! {
        self.stop();
        self.log_shown = true;
        panic!(
            "{} did not start: {error}\n--- its output ({}) ---\n{}--- end of its output ---",
            runtime().name(),
            self.log_path().display(),
            self.log()
        );
    }

    fn spawn_and_wait(&mut self) -> Result<(), String> {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .map_err(|e| format!("cannot open the log file: {e}"))?;
        let log_err = log
            .try_clone()
            .map_err(|e| format!("cannot clone the log file: {e}"))?;
        let binary = runtime().binary();
        let mut command = Command::new(&binary);
        command
            .current_dir(workspace_root())
            .arg("up")
            .arg("-f")
            .arg(&self.app.manifest)
            .arg("--listen")
            .arg(format!("127.0.0.1:{}", self.port))
            .arg("--state-dir")
            .arg(self.state.path());
        if let Some(runtime_config) = &self.app.runtime_config {
            command.arg("--runtime-config-file").arg(runtime_config);
        }
        // Its own process group, so that `stop` reaches every process it starts.
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        command.stdin(Stdio::null()).stdout(log).stderr(log_err);
        for (key, _) in std::env::vars_os() {
            let name = key.to_string_lossy();
            if VARIABLE_ENV_PREFIXES.iter().any(|p| name.starts_with(p)) {
                command.env_remove(&key);
            }
        }
        command.envs(self.envs.iter().map(|(k, v)| (k, v)));
        let child = command
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", binary.display()))?;
        self.child = Some(child);
        self.wait_ready()
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let probe = Timeouts {
            connect: Duration::from_secs(1),
            io: Duration::from_secs(10),
        };
        let url = self.url("/opsml/healthcheck");
        // With a login or an admin token configured, the health check itself answers 401
        // without credentials (500 when half configured): an answer from the component is what
        // readiness means then.
        let login_set = self.envs.iter().any(|(k, v)| {
            matches!(
                k.as_str(),
                "OPSML_USERNAME" | "OPSML_PASSWORD" | "OPSML_ADMIN_TOKEN"
            ) && !v.is_empty()
        });
        let started = Instant::now();
        loop {
            let child = self.child.as_mut().expect("spawned");
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Err(format!(
                    "{} exited ({status}) before answering",
                    runtime().name()
                ));
            }
            let last = match http::send(self.addr(), "GET", "/opsml/healthcheck", &[], None, probe)
            {
                Ok(r) if r.status == 200 => return Ok(()),
                Ok(r) if login_set && (r.status == 401 || r.status == 500) => return Ok(()),
                Ok(r) => format!("status {}", r.status),
                Err(e) => e.to_string(),
            };
            if started.elapsed() > STARTUP_TIMEOUT {
                return Err(format!(
                    "GET {url} did not answer 200 within {STARTUP_TIMEOUT:?} (last: {last})"
                ));
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    // ----- HTTP -----

    /// `127.0.0.1:<port>`.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Sends a request on a new connection and returns the response with its body unread.
    /// `target` is the path and query, already encoded (see [`with_query`]). Panics when no
    /// HTTP response comes back.
    pub fn send(
        &self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: Option<Body<'_>>,
    ) -> Response {
        let len = body.as_ref().map(|b| b.len);
        http::send(
            self.addr(),
            method,
            target,
            headers,
            body,
            Timeouts::default(),
        )
        .unwrap_or_else(|e| {
            let body = len.map(|n| format!(" ({n}-byte body)")).unwrap_or_default();
            panic!("{method} {target}{body}: no HTTP response: {e}")
        })
    }

    /// Any request with a small body; headers are sent as given (`write_path` included).
    pub fn request(
        &self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Reply {
        let response = self.send(method, target, headers, body.map(Body::bytes));
        read_reply(&format!("{method} {target}"), response)
    }

    pub fn get(&self, target: &str) -> Reply {
        self.request("GET", target, &[], None)
    }

    /// `GET target` (path and encoded query: see [`with_query`]) → (status, JSON body).
    pub fn get_json(&self, target: &str) -> (u16, Value) {
        let reply = self.get(target);
        (reply.status, reply.json())
    }

    /// `POST path` with a compact JSON body, as the client sends it → (status, JSON body).
    pub fn post_json(&self, path: &str, body: &Value, headers: &[(&str, &str)]) -> (u16, Value) {
        let bytes = serde_json::to_vec(body).expect("serialisable");
        let mut all = vec![("Content-Type", "application/json")];
        all.extend_from_slice(headers);
        let reply = self.request("POST", path, &all, Some(&bytes));
        (reply.status, reply.json())
    }

    /// `POST path` with a streamed body of exactly `len` bytes, sent with `Content-Length: len`
    /// (not chunked), and the given headers.
    pub fn post_stream(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Read,
        len: u64,
    ) -> Reply {
        let response = self.send("POST", path, headers, Some(Body::new(body, len)));
        read_reply(&format!("POST {path} ({len}-byte body)"), response)
    }

    /// Uploads `len` bytes from `file` to `write_path` exactly as the opsml client does: one
    /// streamed `multipart/form-data` request with a `Content-Length`, header
    /// `write_path: <write_path>`, and a single part named `file` whose filename is the
    /// basename of `write_path`. `headers` adds e.g. `X-Prod-Token`.
    pub fn upload(
        &self,
        write_path: &str,
        file: impl Read,
        len: u64,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        let filename = write_path.rsplit('/').next().unwrap_or(write_path);
        let multipart = Multipart::new(filename);
        let content_type = multipart.content_type();
        let body_len = multipart.body_len(len);
        let mut all = vec![("write_path", write_path), ("Content-Type", &content_type)];
        all.extend_from_slice(headers);
        let reply = self.post_stream("/opsml/files/upload", &all, multipart.body(file), body_len);
        (reply.status, reply.json())
    }

    /// `GET /opsml/files/download?path=<path>` → (status, headers, whole body).
    pub fn download(&self, path: &str) -> (u16, Headers, Vec<u8>) {
        let reply = self.get(&with_query("/opsml/files/download", &[("path", path)]));
        (reply.status, reply.headers, reply.body)
    }

    /// Like [`Host::download`], but hashes the body as it arrives instead of keeping it.
    pub fn download_hashed(&self, path: &str) -> HashedDownload {
        let target = with_query("/opsml/files/download", &[("path", path)]);
        let mut response = self.send("GET", &target, &[], None);
        let mut prefix = Vec::new();
        let mut reader = Tee {
            inner: &mut response,
            prefix: &mut prefix,
            limit: 64 << 10,
        };
        let (len, blake3) = blake3_of(&mut reader);
        HashedDownload {
            status: response.status,
            headers: response.headers,
            len,
            blake3,
            prefix,
        }
    }

    /// `GET /opsml/files/exists?path=<path>` → (status, JSON).
    pub fn files_exists(&self, path: &str) -> (u16, Value) {
        self.get_json(&with_query("/opsml/files/exists", &[("path", path)]))
    }

    /// `GET /opsml/files/list?path=<path>` → (status, JSON).
    pub fn files_list(&self, path: &str) -> (u16, Value) {
        self.get_json(&with_query("/opsml/files/list", &[("path", path)]))
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() && !self.log_shown {
            // `eprintln!` goes to the failing test's captured output.
            let log = self.log();
            let lines: Vec<&str> = log.lines().collect();
            let from = lines.len().saturating_sub(200);
            eprintln!(
                "--- {} output (port {}, last {} lines) ---\n{}\n--- end ---",
                runtime().name(),
                self.port,
                lines.len() - from,
                lines[from..].join("\n")
            );
        }
    }
}

/// Reads through, hashing elsewhere, keeping only the first `limit` bytes.
struct Tee<'a, R> {
    inner: R,
    prefix: &'a mut Vec<u8>,
    limit: usize,
}

impl<R: Read> Read for Tee<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let keep = n.min(self.limit.saturating_sub(self.prefix.len()));
        self.prefix.extend_from_slice(&buf[..keep]);
        Ok(n)
    }
}

// ----- opsml client request bodies -----

/// `POST /opsml/cards/version` body as the client sends it for a new card (`version: null`).
pub fn version_request(
    registry_type: &str,
    name: &str,
    repository: &str,
    version_type: &str,
) -> Value {
    json!({
        "name": name,
        "repository": repository,
        "version": null,
        "version_type": version_type,
        "registry_type": registry_type,
        "pre_tag": "rc",
        "build_tag": "build",
    })
}

/// A data card record as the client's `DataRegistryRecord.model_dump()` sends it.
pub fn data_card(name: &str, repository: &str, version: &str, uid: &str) -> Value {
    json!({
        "name": name,
        "repository": repository,
        "contact": "me@x.com",
        "uid": uid,
        "version": version,
        "tags": {},
        "data_type": "pandas.core.frame.DataFrame",
        "timestamp": 1_795_803_989_095_560_u64,
        "runcard_uid": null,
        "pipelinecard_uid": null,
        "auditcard_uid": null,
    })
}

/// `POST /opsml/cards/create` body.
pub fn create_request(registry_type: &str, card: Value) -> Value {
    json!({"card": card, "registry_type": registry_type})
}

/// `POST /opsml/cards/list` body with the client's 11 keys.
pub fn list_request(
    registry_type: &str,
    name: Option<&str>,
    repository: Option<&str>,
    limit: Option<u64>,
) -> Value {
    json!({
        "name": name,
        "repository": repository,
        "version": null,
        "uid": null,
        "max_date": null,
        "limit": limit,
        "tags": null,
        "registry_type": registry_type,
        "ignore_release_candidates": false,
        "query_terms": null,
        "sort_by_timestamp": false,
    })
}

/// The `detail` string of an error body; panics with the body when there is none.
pub fn detail(body: &Value) -> &str {
    body.get("detail")
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("expected {{\"detail\": \"...\"}}, got {body}"))
}

/// Compiled components shared between the state directories of one build: the host caches
/// machine code under `<state-dir>/compiled`, and every test starts with a fresh state
/// directory, so without this each test would compile the four components again. Everything
/// here is best effort: a miss only costs compile time.
mod compiled_cache {
    use super::*;

    /// Files that decide the compiled code: the host binary (its engine) and the components.
    fn key() -> Option<String> {
        let mut hasher = blake3::Hasher::new();
        let host = fs::metadata(host_binary()).ok()?;
        hasher.update(&host.len().to_le_bytes());
        let modified = host
            .modified()
            .ok()?
            .duration_since(std::time::UNIX_EPOCH)
            .ok()?;
        hasher.update(&modified.as_nanos().to_le_bytes());
        for c in components() {
            let (_, digest) = blake3_of(File::open(component_wasm(&c)).ok()?);
            hasher.update(digest.as_bytes());
        }
        Some(hasher.finalize().to_hex()[..16].to_string())
    }

    fn root() -> PathBuf {
        target_dir().join("e2e-compiled")
    }

    fn copy_dir(from: &Path, to: &Path) -> io::Result<usize> {
        fs::create_dir_all(to)?;
        let mut n = 0;
        for entry in fs::read_dir(from)? {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                fs::copy(entry.path(), to.join(entry.file_name()))?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// Copies the machine code of this build (if some earlier host compiled it) into a new
    /// state directory.
    pub fn seed(state_dir: &Path) {
        if let Some(key) = key() {
            let cached = root().join(key);
            if cached.is_dir() {
                let _ = copy_dir(&cached, &state_dir.join("compiled"));
            }
        }
    }

    /// After a successful start: keeps what the host compiled for later hosts, and drops the
    /// code of older builds.
    pub fn save(state_dir: &Path) {
        let Some(key) = key() else { return };
        let compiled = state_dir.join("compiled");
        let target = root().join(&key);
        if !target.is_dir() && compiled.is_dir() {
            let tmp = root().join(format!(".tmp-{key}-{}", std::process::id()));
            if copy_dir(&compiled, &tmp).is_ok() && fs::rename(&tmp, &target).is_ok() {
                // Another build's entries are stale now.
                if let Ok(entries) = fs::read_dir(root()) {
                    for entry in entries.flatten() {
                        let name = entry.file_name();
                        if name != key.as_str() && !name.to_string_lossy().starts_with(".tmp-") {
                            let _ = fs::remove_dir_all(entry.path());
                        }
                    }
                }
            }
            let _ = fs::remove_dir_all(&tmp);
        }
    }
}
