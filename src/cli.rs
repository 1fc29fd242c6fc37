//! Command-line arguments (clap): the raw `*Args`, resolved into [`crate::config::Settings`] by
//! `Settings::resolve` in the command layer. No I/O here.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::{CONFIG_ENV, DEFAULT_CONFIG_FILE};
use crate::warehouse::Shard;

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
    /// Crawl (or take the images named), inventory, match, and commit the findings to the warehouse.
    Scan(ScanArgs),
    /// Scan the bundled example images with the bundled advisory sample into ./vigil-demo and print the
    /// recommendation.
    Demo(DemoArgs),
    /// Commit a sharded run by hand once every shard has written its manifest (safe to repeat).
    Commit(CommitArgs),
    /// Run a named report from queries/ (without NAME: list the reports and their parameters).
    Report(ReportArgs),
    /// Run read-only SQL over the warehouse tables and views.
    Sql(SqlArgs),
    /// Disable rules: hide findings by id, category, text, CVSS, severity or patchability.
    #[command(subcommand)]
    Rules(Box<RulesCommand>),
    /// Registry activity: receive notification webhooks, or import them from a file.
    #[command(subcommand)]
    Events(EventsCommand),
    /// One scheduled run (for a systemd timer or cron): crawl the schedule's registries and scan what its
    /// policy selects.
    Run(RunArgs),
    /// Run every schedule on its cron in one process (and receive webhooks with --listen, scanning pushes
    /// within seconds); stops on SIGTERM or SIGINT.
    Daemon(DaemonArgs),
    /// The schedules in the configured folder: list them, or print systemd units or crontab lines.
    #[command(subcommand)]
    Schedules(SchedulesCommand),
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The schedule's name (its file in the schedules folder, without `.toml`).
    #[arg(long)]
    pub schedule: String,
    #[arg(long, short, default_value = DEFAULT_CONFIG_FILE, env = CONFIG_ENV)]
    pub config: PathBuf,
    /// When another run of the same registries is under way, wait for it instead of skipping.
    #[arg(long)]
    pub wait: bool,
    #[command(flatten)]
    pub shard: ShardArgs,
}

/// One of several workers of a run, e.g. a Kubernetes indexed Job: `--shard $JOB_COMPLETION_INDEX/4
/// --run-id $RUN`. Every worker scans the repositories whose stable hash falls to it; the last to finish
/// commits the run.
#[derive(Debug, Clone, Args)]
pub struct ShardArgs {
    /// This worker's share, INDEX/COUNT with INDEX from 0 (needs --run-id).
    #[arg(long, value_name = "I/N", value_parser = parse_shard, requires = "run_id")]
    pub shard: Option<Shard>,
    /// The run's id, the same for every worker of the run and new for each run (1 to 128 of A-Z a-z 0-9
    /// - _ .). A worker rerun with the same id replaces its own earlier work.
    #[arg(long)]
    pub run_id: Option<String>,
}

fn parse_shard(text: &str) -> Result<Shard, String> {
    Shard::parse(text)
}

#[derive(Debug, Args)]
pub struct CommitArgs {
    /// The run to commit.
    #[arg(long)]
    pub run_id: String,
    #[command(flatten)]
    pub location: WarehouseLocation,
}

#[derive(Debug, Args)]
pub struct DaemonArgs {
    #[arg(long, short, default_value = DEFAULT_CONFIG_FILE, env = CONFIG_ENV)]
    pub config: PathBuf,
    /// Also receive registry webhooks on this address (`/events/SUBSCRIPTION/REGISTRY`).
    #[arg(long, requires = "token_env")]
    pub listen: Option<std::net::SocketAddr>,
    /// The environment variable holding the webhooks' bearer token.
    #[arg(long)]
    pub token_env: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum SchedulesCommand {
    /// Each schedule with its cron, time zone, scope, policy and next three fire times.
    List {
        #[arg(long, short, default_value = DEFAULT_CONFIG_FILE, env = CONFIG_ENV)]
        config: PathBuf,
        #[arg(long, value_enum, default_value_t = TableFormat::Table)]
        format: TableFormat,
    },
    /// A systemd `.service` and `.timer` pair running one schedule.
    Systemd {
        name: String,
        #[arg(long, short, default_value = DEFAULT_CONFIG_FILE, env = CONFIG_ENV)]
        config: PathBuf,
        /// The vigil binary the units run (default: this one).
        #[arg(long)]
        binary: Option<PathBuf>,
    },
    /// Crontab lines running every schedule.
    Crontab {
        #[arg(long, short, default_value = DEFAULT_CONFIG_FILE, env = CONFIG_ENV)]
        config: PathBuf,
        #[arg(long)]
        binary: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// Receive a registry's notification webhooks at `http://LISTEN/events/SUBSCRIPTION/REGISTRY` and store
    /// each manifest push and pull in the `activity` table before answering.
    Serve {
        #[arg(long, short, default_value = DEFAULT_CONFIG_FILE, env = CONFIG_ENV)]
        config: PathBuf,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:5080")]
        listen: std::net::SocketAddr,
        /// The environment variable holding the bearer token senders must present.
        #[arg(long)]
        token_env: String,
    },
    /// Load notification envelopes (one JSON document per line) of one registry into `activity`.
    Import {
        file: PathBuf,
        #[arg(long, short, default_value = DEFAULT_CONFIG_FILE, env = CONFIG_ENV)]
        config: PathBuf,
        #[arg(long)]
        subscription: String,
        #[arg(long)]
        registry: String,
    },
}

/// Where the warehouse is: `--warehouse`, else the `warehouse` of the configuration file (`--config`, else
/// `VIGIL_CONFIG`), else the default `./vigil-data/warehouse`.
#[derive(Debug, Args)]
pub struct WarehouseLocation {
    /// The configuration file (optional here: without one the defaults apply).
    #[arg(long, short, env = CONFIG_ENV)]
    pub config: Option<PathBuf>,
    /// The warehouse: a folder, az://container/prefix or s3://bucket/prefix; overrides the configuration.
    #[arg(long)]
    pub warehouse: Option<String>,
}

/// Formats for query results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TableFormat {
    Table,
    Json,
    Csv,
}

#[derive(Debug, Args)]
pub struct ScanArgs {
    #[arg(long, short, default_value = DEFAULT_CONFIG_FILE, env = CONFIG_ENV)]
    pub config: PathBuf,
    /// Images to scan (`host[:port]/repo:tag`, `...@sha256:...`, `oci:DIR:TAG`); default: every image of
    /// every configured registry.
    pub images: Vec<String>,
    /// Allow plain HTTP to a named image's registry when it is not in the configuration.
    #[arg(long)]
    pub insecure_http: bool,
    #[command(flatten)]
    pub shard: ShardArgs,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where the demo writes its images, advisory DB and warehouse.
    #[arg(long, default_value = "vigil-demo")]
    pub dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The report's name (a file in queries/ without `.sql`).
    pub name: Option<String>,
    /// A report parameter, `key=value` (repeatable).
    #[arg(long = "param", short = 'p', value_parser = parse_key_value)]
    pub params: Vec<(String, String)>,
    #[command(flatten)]
    pub location: WarehouseLocation,
    #[arg(long, value_enum, default_value_t = TableFormat::Table)]
    pub format: TableFormat,
}

fn parse_key_value(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.trim().to_string(), v.to_string()))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| format!("expected key=value, found {text:?}"))
}

#[derive(Debug, Args)]
pub struct SqlArgs {
    /// One read-only statement (SELECT, WITH, SHOW, DESCRIBE, EXPLAIN).
    pub query: String,
    #[command(flatten)]
    pub location: WarehouseLocation,
    #[arg(long, value_enum, default_value_t = TableFormat::Table)]
    pub format: TableFormat,
}

/// The criteria and notes of a rule; on `update`, only the fields given change.
#[derive(Debug, Args)]
pub struct RuleFields {
    /// Only findings of this registry of the subscription.
    #[arg(long)]
    pub registry: Option<String>,
    /// Only findings of repositories matching this glob.
    #[arg(long)]
    pub repository: Option<String>,
    /// The finding (advisory) id, e.g. CVE-2023-0286's DSA-5343-1.
    #[arg(long)]
    pub finding_id: Option<String>,
    /// The category (Debian, Ubuntu, Alpine, AlmaLinux, PyPI, npm, crates.io, Go, Maven...).
    #[arg(long)]
    pub category: Option<String>,
    /// Text the security check (summary) contains, case-insensitively.
    #[arg(long)]
    pub security_check_contains: Option<String>,
    /// Findings whose CVSS v3 score is below this.
    #[arg(long)]
    pub cvss_below: Option<f64>,
    /// Findings whose severity is below this level (Low, Medium, High, Critical).
    #[arg(long)]
    pub severity_below: Option<String>,
    /// Findings that are (true) or are not (false) patchable.
    #[arg(long)]
    pub patchable: Option<bool>,
    /// Until when the rule applies (YYYY-MM-DD); expired rules hide nothing.
    #[arg(long)]
    pub expires: Option<String>,
    /// Who made the change (default: the user name).
    #[arg(long)]
    pub author: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// Add a rule; a finding is hidden when it matches every criterion of an unexpired rule in scope.
    Add {
        #[arg(long)]
        subscription: String,
        #[command(flatten)]
        fields: RuleFields,
        /// Why the findings are hidden (required).
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        location: WarehouseLocation,
    },
    /// List the rules in force (optionally of one subscription).
    List {
        #[arg(long)]
        subscription: Option<String>,
        #[command(flatten)]
        location: WarehouseLocation,
        #[arg(long, value_enum, default_value_t = TableFormat::Table)]
        format: TableFormat,
    },
    /// Show one rule with its history.
    Show {
        id: String,
        #[command(flatten)]
        location: WarehouseLocation,
    },
    /// Change a rule's fields (those given override; `--clear FIELD` removes a criterion).
    Update {
        id: String,
        #[arg(long)]
        subscription: Option<String>,
        #[command(flatten)]
        fields: RuleFields,
        #[arg(long)]
        reason: Option<String>,
        /// A criterion to remove (repeatable): registry, repository, finding_id, category,
        /// security_check_contains, cvss_below, severity_below, patchable, expires.
        #[arg(long)]
        clear: Vec<String>,
        #[command(flatten)]
        location: WarehouseLocation,
    },
    /// Delete a rule (its history stays).
    Delete {
        id: String,
        #[arg(long)]
        author: Option<String>,
        #[command(flatten)]
        location: WarehouseLocation,
    },
}

/// Where the advisory DB is: `--db`, else the `advisory_db` of the configuration file (`--config`, else
/// `VIGIL_CONFIG`), else the default `./vigil-data/db`.
#[derive(Debug, Args)]
pub struct DbLocation {
    /// The configuration file (for `advisory_db`, `advisory_ecosystems`, `advisory_source`; optional here:
    /// without one the defaults apply).
    #[arg(long, short, env = CONFIG_ENV)]
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
    #[arg(long, short, default_value = DEFAULT_CONFIG_FILE, env = CONFIG_ENV)]
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
    /// layer cache is used (optional here).
    #[arg(long, short, env = CONFIG_ENV)]
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
