//! `opsml-registry`: a command-line client for an opsml 2.x registry (this workspace's, or
//! opsml's own server). opsml-cli 0.4's commands with the same flags and files, plus `pull`
//! (verified, atomic, resumable, parallel), `copy` between registries and `ls`.
//! Exit codes: see [`fail::Kind`] and the crate README.

mod api;
mod copy;
mod digest;
mod fail;
mod http;
mod legacy;
mod ls;
mod pull;
mod report;
mod table;
mod transfer;

use clap::{Args, Parser, Subcommand};
use fail::{Failure, Result};
use http::{Credentials, Remote, Settings};
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "opsml-registry",
    about = "Client for an opsml 2.x registry: opsml-cli's commands, verified pulls, copies between registries",
    after_help = "Environment: OPSML_TRACKING_URI (the registry), OPSML_USERNAME + OPSML_PASSWORD \
                  (HTTP Basic) or OPSML_TOKEN (Bearer), OPSML_PROD_TOKEN (sent as X-Prod-Token on \
                  writes).\nExit codes: 0 done, 1 other error, 2 bad arguments, 3 not found, \
                  4 access refused, 5 integrity failure, 6 network failure after retries, \
                  7 some cards skipped (copy)."
)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

/// Options every command takes.
#[derive(Args, Clone)]
struct Global {
    /// The registry's address (default: $OPSML_TRACKING_URI)
    #[arg(long, global = true, value_name = "URL")]
    tracking_uri: Option<String>,
    /// Seconds to wait for a connection
    #[arg(long, global = true, default_value_t = 10.0, value_name = "SECS")]
    connect_timeout: f64,
    /// Seconds a read may wait for bytes before the transfer is retried
    #[arg(long, global = true, default_value_t = 60.0, value_name = "SECS")]
    read_timeout: f64,
    /// Retries after connection errors, cut bodies, 429 and 5xx (never after other 4xx)
    #[arg(long, global = true, default_value_t = 5, value_name = "N")]
    retries: u32,
    /// Print only errors (and what --json asks for)
    #[arg(long, short, global = true)]
    quiet: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Lists cards from a registry (as opsml-cli list-cards)
    ListCards(legacy::ListCardsArgs),
    /// Downloads a model's metadata to <write-dir>/model-metadata.json (as opsml-cli)
    DownloadModelMetadata(legacy::MetadataArgs),
    /// Downloads a model and its metadata (as opsml-cli download-model, verified)
    DownloadModel(legacy::DownloadModelArgs),
    /// Prints a run's metrics (as opsml-cli get-model-metrics; a model's uid works too)
    GetModelMetrics(legacy::MetricsArgs),
    /// Downloads every file of a card: verified, atomic, resumable, parallel
    Pull(pull::PullArgs),
    /// Copies cards, their files and run metrics from one registry to another
    Copy(copy::CopyArgs),
    /// Lists cards and versions, as a table or JSON
    Ls(ls::LsArgs),
    /// Shows this client's version
    Version,
}

impl Global {
    /// The transport settings, with `pool` connections (a command's `--jobs`).
    fn settings(&self, pool: usize) -> Result<Settings> {
        if pool == 0 {
            return Err(Failure::usage("--jobs must be at least 1"));
        }
        let seconds = |name: &str, v: f64| {
            if v.is_finite() && v > 0.0 {
                Ok(Duration::from_secs_f64(v))
            } else {
                Err(Failure::usage(format!(
                    "--{name} must be a positive number of seconds, got {v}"
                )))
            }
        };
        Ok(Settings {
            connect_timeout: seconds("connect-timeout", self.connect_timeout)?,
            read_timeout: seconds("read-timeout", self.read_timeout)?,
            retries: self.retries,
            pool,
        })
    }

    /// The registry of `OPSML_TRACKING_URI` (or `--tracking-uri`) with the environment's
    /// credentials and prod token.
    fn remote(&self, pool: usize) -> Result<Remote> {
        let uri = match &self.tracking_uri {
            Some(uri) => uri.clone(),
            None => std::env::var("OPSML_TRACKING_URI")
                .ok()
                .filter(|v| !v.trim().is_empty())
                .ok_or_else(|| {
                    Failure::usage(
                        "no registry: set OPSML_TRACKING_URI (e.g. http://127.0.0.1:8888) or pass --tracking-uri",
                    )
                })?,
        };
        Remote::new(
            &uri,
            Credentials::from_env("OPSML_")?,
            std::env::var("OPSML_PROD_TOKEN").ok(),
            &self.settings(pool)?,
        )
    }
}

fn run(cli: Cli) -> Result<()> {
    let g = &cli.global;
    match cli.command {
        Command::ListCards(args) => legacy::list_cards(&g.remote(2)?, &args),
        Command::DownloadModelMetadata(args) => legacy::download_metadata(&g.remote(2)?, &args),
        Command::DownloadModel(args) => {
            legacy::download_model(&g.remote(args.jobs)?, &args, g.quiet)
        }
        Command::GetModelMetrics(args) => legacy::model_metrics(&g.remote(2)?, &args),
        Command::Pull(args) => pull::run(&g.remote(args.jobs)?, &args, g.quiet),
        Command::Copy(args) => copy::run(&args, &g.settings(args.jobs)?, g.quiet),
        Command::Ls(args) => ls::run(&g.remote(2)?, &args),
        Command::Version => {
            println!("opsml-registry version {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
    }
}

fn main() {
    let cli = Cli::parse();
    if let Err(failure) = run(cli) {
        eprintln!("error: {failure}");
        std::process::exit(failure.kind.exit_code());
    }
}
