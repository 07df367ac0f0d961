//! promoctl: run the platform locally, and drive campaigns. Each command is a module of
//! `commands`.

mod commands;

use std::process::ExitCode;

use promoctl::config;

/// mimalloc: per-thread heaps, where glibc's malloc showed lock contention between the
/// runtime's threads under load (see BENCHMARKS.md, cached price reads).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = commands::parse();
    init_logging();
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(cli.run()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is::<commands::Silent>() => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e:#}");
            // A script that asked for JSON gets its error as JSON too, on stdout.
            if std::env::args().any(|a| a == "--json") {
                println!("{}", serde_json::json!({"error": {"code": "failed", "message": format!("{e:#}")}}));
            }
            ExitCode::FAILURE
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_new(config::log_filter())
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if config::log_json() {
        builder.json().init();
    } else {
        builder.init();
    }
}
