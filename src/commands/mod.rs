//! Command layer: the only place that knows the whole pipeline. Each command resolves its settings, calls
//! the stages, prints data on stdout and failures on stderr, and chooses the exit code.

pub mod crawl;
pub mod db;
pub mod events;
pub mod failure;
pub mod inventory;
pub mod output;
pub mod report;
pub mod scan;
pub mod schedules;

use std::path::Path;

use vigil::cli::{DbLocation, WarehouseLocation};
use vigil::config::{ConfigChoice, Overrides, Settings};

/// The settings a command runs with, from its command line, the process environment, the configuration
/// file and the defaults, merged by [`Settings::resolve`].
pub fn settings(choice: ConfigChoice, overrides: Overrides) -> anyhow::Result<Settings> {
    Ok(Settings::resolve(choice, overrides, &|name| {
        std::env::var(name).ok()
    })?)
}

/// The settings of a command that needs its configuration file and has no overrides (`crawl`, `scan`,
/// `run`, `daemon`, `events`, `schedules`).
pub fn load_settings(path: &Path) -> anyhow::Result<Settings> {
    settings(
        ConfigChoice::Required(path.to_path_buf()),
        Overrides::default(),
    )
}

/// The settings of a warehouse command (`report`, `sql`, `rules`): a configuration file is optional.
pub fn warehouse_settings(location: &WarehouseLocation) -> anyhow::Result<Settings> {
    settings(
        ConfigChoice::Optional(location.config.clone()),
        Overrides {
            warehouse: location.warehouse.clone(),
            ..Overrides::default()
        },
    )
}

/// The settings of an advisory DB command (`db`, `match`): a configuration file is optional.
pub fn db_settings(location: &DbLocation, overrides: Overrides) -> anyhow::Result<Settings> {
    settings(
        ConfigChoice::Optional(location.config.clone()),
        Overrides {
            advisory_db: location.db.clone(),
            ..overrides
        },
    )
}
