//! The `vigil` binary: parse the CLI, set up logging, run the command, map errors to exit codes.
//!
//! Exit codes (also in the README):
//! - 0: all well;
//! - 1: some registries or images failed (listed on stderr), the rest was done;
//! - 2: bad configuration or usage (clap's own usage errors exit 2 as well);
//! - 3: Vigil could not do its job for another reason: the warehouse could not be read or committed, the
//!   advisory DB is missing or unreadable, an I/O error.
//!
//! Commands return 0 or 1 themselves; an error that ends a command gets its code from its kind, in
//! [`commands::failure::exit_code`].

mod commands;

use std::process::ExitCode;

use clap::Parser;
use vigil::cli::{Cli, Command, LogFormat, LoggingArgs};

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli.logging);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::from(commands::failure::FAILED);
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Crawl(args) => commands::crawl::run(args).await,
            Command::Inventory(args) => commands::inventory::run(args).await,
            Command::Db(command) => commands::db::run(command).await,
            Command::Match(args) => commands::db::run_match(args),
            Command::Scan(args) => commands::scan::run(args).await,
            Command::Demo(args) => commands::scan::demo(args).await,
            Command::Commit(args) => commands::scan::commit(args).await,
            Command::Report(args) => commands::report::run_report(args).await,
            Command::Sql(args) => commands::report::run_sql(args).await,
            Command::Rules(command) => commands::report::run_rules(*command).await,
            Command::Events(command) => commands::events::run(command).await,
            Command::Run(args) => commands::schedules::run(args).await,
            Command::Daemon(args) => commands::schedules::daemon(args).await,
            Command::Schedules(command) => commands::schedules::schedules(command),
        }
    });
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {}", describe(&err));
            ExitCode::from(commands::failure::exit_code(&err))
        }
    }
}

/// The error and its causes on one line. Many stage errors already write their cause into their own
/// message (`cannot read config F: <io error>`), so a cause whose text is already there is not repeated.
fn describe(err: &anyhow::Error) -> String {
    let mut text = err.to_string();
    for cause in err.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}

fn init_logging(args: &LoggingArgs) {
    let level = match (args.quiet, args.verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("VIGIL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("vigil={level},warn")));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match args.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
