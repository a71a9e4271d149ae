//! `opsml-host`: runs a Spin application (manifest v2, HTTP trigger) locally, the way
//! `spin up` does for the interfaces this project uses.

mod bindings;
mod key_value;
mod manifest;
mod mysql;
mod observe;
mod outbound;
mod postgres;
mod routes;
mod runtime_config;
mod server;
mod sqlite;
mod tls;
mod variables;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "opsml-host",
    version,
    about = "A Spin-compatible local host for the Opsml registry"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the application, as `spin up` does.
    Up(UpArgs),
}

#[derive(clap::Args)]
struct UpArgs {
    /// The manifest, or a directory containing `spin.toml`.
    #[arg(short = 'f', long = "from", default_value = "spin.toml")]
    from: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:3000")]
    listen: String,
    /// Spin runtime-config file (variables providers, SQLite databases, key-value stores).
    #[arg(long = "runtime-config-file")]
    runtime_config_file: Option<PathBuf>,
    /// Directory for default stores and compiled components (default: `.spin` beside the manifest).
    #[arg(long = "state-dir")]
    state_dir: Option<PathBuf>,
    /// Set an application variable: `--variable name=value` (repeatable).
    #[arg(long = "variable", value_name = "NAME=VALUE")]
    variables: Vec<String>,
    /// Run each component's `build.command` before starting.
    #[arg(long)]
    build: bool,
    /// On SIGTERM or Ctrl-C: how long requests in flight may take to finish, in seconds, before
    /// the host exits anyway (no new connections are accepted meanwhile).
    #[arg(
        long = "shutdown-timeout",
        env = "OPSML_HOST_SHUTDOWN_TIMEOUT",
        default_value_t = 30.0
    )]
    shutdown_timeout: f64,
    /// Serve Prometheus metrics (`GET /metrics`) and readiness (`GET /readyz`) on this address,
    /// apart from the app's.
    #[arg(long = "metrics-listen", env = "OPSML_HOST_METRICS_LISTEN")]
    metrics_listen: Option<String>,
    /// The app's readiness route (e.g. `/opsml/readyz`), which `GET /readyz` on the metrics
    /// address asks; without one, ready means serving and not shutting down.
    #[arg(long = "readiness-route", env = "OPSML_HOST_READINESS_ROUTE")]
    readiness_route: Option<String>,
    /// Print one JSON line per request on stdout (request id, client address, method, path
    /// without query, route, component, status, duration, body bytes; never a header value).
    #[arg(
        long = "access-log",
        env = "OPSML_HOST_ACCESS_LOG",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    access_log: bool,
    /// How long one request may run (its component's code and everything it waits on), e.g.
    /// `30s` or `500ms` (a plain number is seconds); past it the request answers 500 and its
    /// instance is stopped, even in a loop. Off by default, as in Spin.
    #[arg(long = "request-timeout", env = "OPSML_HOST_REQUEST_TIMEOUT", value_parser = parse_duration)]
    request_timeout: Option<std::time::Duration>,
    /// The most linear memory one instance may grow to, in bytes (Spin's flag and variable);
    /// an instance that asks for more gets a failed allocation, and only its request fails.
    /// Default: the runtime-config's `max_instance_memory`, else 4 GiB as in Spin.
    #[arg(long = "max-instance-memory", env = "SPIN_MAX_INSTANCE_MEMORY")]
    max_instance_memory: Option<usize>,
}

/// A duration as Spin writes it: a number of seconds, or a number with `s`, `ms`, `us` or `ns`.
fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?}: expected a number, e.g. 30s or 500ms"))?;
    let seconds = match unit.trim() {
        "" | "s" => value,
        "ms" => value / 1e3,
        "us" | "µs" | "μs" => value / 1e6,
        "ns" => value / 1e9,
        other => {
            return Err(format!(
                "{text:?}: unknown unit {other:?} (s, ms, us or ns)"
            ))
        }
    };
    std::time::Duration::try_from_secs_f64(seconds)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("{text:?}: expected a duration above zero"))
}

/// Completes on the first SIGTERM (what Kubernetes sends before it kills a pod) or Ctrl-C.
async fn stop_requested() {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM can be handled");
    tokio::select! {
        _ = terminate.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

fn parse_variables(pairs: &[String]) -> Result<BTreeMap<String, String>> {
    pairs
        .iter()
        .map(|pair| {
            let Some((name, value)) = pair.split_once('=') else {
                bail!("--variable {pair:?}: expected NAME=VALUE");
            };
            manifest::check_variable_name(name).with_context(|| format!("--variable {name}"))?;
            Ok((name.to_string(), value.to_string()))
        })
        .collect()
}

/// Runs every component's build command in its working directory, stopping at the first failure.
fn build(manifest_path: &std::path::Path) -> Result<()> {
    let loaded = manifest::LoadedManifest::load(manifest_path)?;
    for (id, component) in &loaded.manifest.component {
        let Some(build) = &component.build else {
            continue;
        };
        let workdir = loaded.dir.join(build.workdir.as_deref().unwrap_or("."));
        tracing::info!("building component {id}: {}", build.command);
        let status = std::process::Command::new("sh")
            .arg("-c")
            .arg(&build.command)
            .current_dir(&workdir)
            .status()
            .with_context(|| format!("cannot run the build command of component {id}"))?;
        if !status.success() {
            bail!("component.{id}.build.command failed ({status})");
        }
    }
    Ok(())
}

fn main() -> Result<()> {
    // Errors of components and connections go to stderr; `RUST_LOG` chooses how much.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let Cli {
        command: Command::Up(args),
    } = Cli::parse();
    if args.build {
        build(&args.from)?;
    }
    let options = server::UpOptions {
        manifest: args.from,
        runtime_config: args.runtime_config_file,
        state_dir: args.state_dir,
        variables: parse_variables(&args.variables)?,
        access_log: args.access_log,
        request_timeout: args.request_timeout,
        max_instance_memory: args.max_instance_memory,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let app = server::App::load(&options)?;
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        eprintln!("Serving http://{}", listener.local_addr()?);
        eprintln!("Available Routes:");
        for (route, component) in app.routes() {
            eprintln!("  {component}: {route}");
        }
        if let Some(address) = &args.metrics_listen {
            let metrics = tokio::net::TcpListener::bind(address)
                .await
                .with_context(|| format!("cannot listen on {address} for metrics"))?;
            eprintln!("Metrics on http://{}/metrics", metrics.local_addr()?);
            let readiness = observe::Readiness {
                app: listener.local_addr()?,
                route: args.readiness_route.clone(),
            };
            tokio::task::spawn(observe::serve_metrics(
                app.observer.clone(),
                readiness,
                metrics,
            ));
        }
        let drain = std::time::Duration::try_from_secs_f64(args.shutdown_timeout)
            .context("--shutdown-timeout: expected a number of seconds")?;
        server::serve(app, listener, stop_requested(), drain).await
    })
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn durations_read_as_spin_writes_them() {
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("10us"), Ok(Duration::from_micros(10)));
        for bad in ["", "soon", "5m", "0", "-1s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
