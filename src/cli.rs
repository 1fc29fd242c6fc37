//! Command-line arguments (clap): the raw `*Args`, resolved into settings by the command layer. No I/O here.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Vigil keeps watch over OCI container registries.
#[derive(Debug, Parser)]
#[command(name = "vigil", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub logging: LoggingArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct LoggingArgs {
    /// More log output (repeat for more).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Log line format on stderr (json suits journald).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// How data is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Table,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List every image of every configured registry: one line per tag and platform.
    Crawl(CrawlArgs),
    /// Print the OS and packages inside one image (every platform of an index).
    Inventory(InventoryArgs),
    /// The advisory database: import OSV files, update from the OSV exports, show its status.
    #[command(subcommand)]
    Db(DbCommand),
    /// Match an inventory (the JSON `vigil inventory --format json` prints) against the advisory DB.
    Match(MatchArgs),
}

/// Where the advisory DB is: `--db`, else the configuration's `advisory_db`, else `./vigil-data/db`.
#[derive(Debug, Args)]
pub struct DbLocation {
    /// The configuration file (for `advisory_db`, `advisory_ecosystems`, `advisory_source`).
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// The advisory DB directory; overrides the configuration.
    #[arg(long)]
    pub db: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Import directories of OSV JSON files and osv.dev zip exports; replaces the DB only when all is read.
    Import {
        /// Directories, `.json` files or `.zip` exports.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        #[command(flatten)]
        location: DbLocation,
    },
    /// Download `<source>/<Ecosystem>/all.zip` for each configured ecosystem and import them; on any
    /// failure the last good DB stays in use.
    Update {
        /// Base URL of the OSV export layout (default: the configuration's, else osv.dev's bucket).
        #[arg(long)]
        source: Option<String>,
        /// Ecosystems to fetch (repeatable; default: the configuration's `advisory_ecosystems`).
        #[arg(long = "ecosystem")]
        ecosystems: Vec<String>,
        #[command(flatten)]
        location: DbLocation,
    },
    /// Record counts per ecosystem, content hash and import time.
    Status {
        #[command(flatten)]
        location: DbLocation,
        #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
        format: OutputFormat,
    },
}

#[derive(Debug, Args)]
pub struct MatchArgs {
    /// An inventory JSON file (one object, or an array for an index).
    #[arg(long)]
    pub inventory: PathBuf,
    #[command(flatten)]
    pub location: DbLocation,
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
}

#[derive(Debug, Args)]
pub struct CrawlArgs {
    /// The configuration file.
    #[arg(long, short, default_value = "vigil.toml", env = "VIGIL_CONFIG")]
    pub config: PathBuf,
    /// Output format: json prints one object per line.
    #[arg(long, value_enum, default_value_t = OutputFormat::Json)]
    pub format: OutputFormat,
}

#[derive(Debug, Args)]
pub struct InventoryArgs {
    /// `host[:port]/repo:tag`, `host[:port]/repo@sha256:...` or `oci:DIR:TAG`.
    pub image: String,
    /// A configuration file: a registry with the image's host lends its auth, CA and limits, and its
    /// layer cache is used.
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// Allow plain HTTP to a registry that is not in the configuration.
    #[arg(long)]
    pub insecure_http: bool,
    /// Layer cache directory (default: the configuration's `cache`, else no cache).
    #[arg(long)]
    pub cache: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
}
