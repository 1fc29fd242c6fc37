//! Command layer: the only place that knows the whole pipeline. Each command resolves its settings, calls
//! the stages, prints data on stdout and failures on stderr, and chooses the exit code.

pub mod crawl;
pub mod db;
pub mod events;
pub mod inventory;
pub mod output;
pub mod report;
pub mod scan;
pub mod schedules;

use std::path::Path;

use vigil::config;

/// Loads a configuration file with the process environment for secrets.
pub fn load_settings(path: &Path) -> anyhow::Result<config::Settings> {
    Ok(config::load(path, &|name| std::env::var(name).ok())?)
}
