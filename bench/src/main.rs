//! `opsml-bench`: the Rust side of the benchmark harness (bench/run.py drives it).
//!
//! * `load`      — a keep-alive HTTP/1.1 load generator: N connections, for a duration or a
//!   request count; prints one JSON line with requests/s and latency percentiles.
//! * `upload`    — streams a file from disk as a request body (raw, or as one multipart part);
//!   prints MB/s.
//! * `download`  — reads a response body to the end without keeping it; prints MB/s.
//! * `serve`     — the native baseline ("the limit"): the get-card component's `cards/list`
//!   (same request parsing, same `registry_store::cards::list_stored` over SQLite) and a
//!   static file server (GET streams a file, PUT writes one).

mod args;
mod body;
mod load;
mod native;
mod transfer;

fn main() {
    let mut argv = std::env::args().skip(1);
    let Some(command) = argv.next() else {
        usage();
    };
    let rest: Vec<String> = argv.collect();
    let result = match command.as_str() {
        "load" => load::main(rest),
        "upload" => transfer::upload_main(rest),
        "download" => transfer::download_main(rest),
        "serve" => native::main(rest),
        "-h" | "--help" | "help" => usage(),
        other => Err(anyhow::anyhow!("unknown command {other:?}")),
    };
    if let Err(e) = result {
        eprintln!("opsml-bench {command}: {e:#}");
        std::process::exit(1);
    }
}

fn usage() -> ! {
    eprintln!(
        "usage: opsml-bench <command> [options]\n\
         \n\
         load     --base URL (--requests-file F.jsonl | --scenario opsml-create|mlflow-create --prefix P)\n\
                  [--connections N] [--duration S] [--warmup S] [--requests N | --once] [--threads T]\n\
                  [--names-per-connection K] [--run-id R --artifact-uri U (mlflow-create)]\n\
         upload   --url URL --file F [--method POST|PUT] [--multipart FILENAME] [--header 'k: v']...\n\
         download --url URL [--expect-bytes N]\n\
         serve    --listen ADDR [--db SQLITE_FILE] [--files-dir DIR] [--threads T]\n"
    );
    std::process::exit(2);
}
