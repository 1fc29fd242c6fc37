//! Command layer: the exit code of a command that ended with an error, chosen by the error's kind.
//!
//! The codes (also in `main.rs` and the README): 0 all well; 1 some registries or images failed (listed on
//! stderr), or a sharded run is not committed yet; 2 bad configuration or usage (a warehouse URL, option,
//! container, bucket or credentials that do not work included); 3 Vigil could not do its job for another
//! reason (the warehouse could not be read or committed, the advisory DB is missing or unreadable, an I/O
//! error).

use datafusion::error::DataFusionError;
use vigil::config::ConfigError;
use vigil::demo::DemoError;
use vigil::events::EventsError;
use vigil::inventory::ImageRefError;
use vigil::report::rules::RuleError;
use vigil::report::ReportError;
use vigil::scan::ScanError;
use vigil::schedule::ScheduleError;
use vigil::warehouse::WarehouseError;

/// Some registries or images failed; the rest was done.
pub const PARTIAL: u8 = 1;
/// Bad configuration or usage (clap's own usage errors exit 2 as well).
pub const USAGE: u8 = 2;
/// Vigil could not do its job: the warehouse, the advisory DB or the file system failed it.
pub const FAILED: u8 = 3;

/// A mistake in what the command was given, found by the command layer itself (a bad input file, an
/// unset variable an option names).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// The exit code for an error that ended a command: the first cause in the chain whose kind is known
/// decides; an error of no known kind is a failure to do the job (3), not a usage error.
pub fn exit_code(error: &anyhow::Error) -> u8 {
    // A warehouse named wrongly or unreachable with the credentials given is configuration, whichever
    // stage met it.
    if error
        .chain()
        .filter_map(|cause| cause.downcast_ref::<WarehouseError>())
        .any(WarehouseError::is_configuration)
    {
        return USAGE;
    }
    error
        .chain()
        .find_map(|cause| {
            if cause.is::<ConfigError>()
                || cause.is::<UsageError>()
                || cause.is::<ImageRefError>()
                || cause.is::<super::db::InventoryFileError>()
                || cause.is::<chrono::ParseError>()
            {
                return Some(USAGE);
            }
            // A scan reads the warehouse with queries of its own: whatever failed there is not the user's.
            if cause.is::<ScanError>() {
                return Some(FAILED);
            }
            if let Some(error) = cause.downcast_ref::<ReportError>() {
                return Some(report_error(error));
            }
            if let Some(error) = cause.downcast_ref::<RuleError>() {
                return Some(rule_error(error));
            }
            if let Some(error) = cause.downcast_ref::<EventsError>() {
                return Some(match error {
                    EventsError::UnknownRegistry { .. } | EventsError::Parse { .. } => USAGE,
                    _ => FAILED,
                });
            }
            if let Some(error) = cause.downcast_ref::<ScheduleError>() {
                return Some(match error {
                    ScheduleError::Io { .. } => FAILED,
                    _ => USAGE,
                });
            }
            if let Some(error) = cause.downcast_ref::<DemoError>() {
                return Some(match error {
                    DemoError::Config(_) => USAGE,
                    DemoError::Write { .. } => FAILED,
                });
            }
            None
        })
        .unwrap_or(FAILED)
}

/// A report or query the user got wrong is usage; a warehouse that cannot be read is a failure.
fn report_error(error: &ReportError) -> u8 {
    match error {
        ReportError::UnknownReport { .. }
        | ReportError::Params { .. }
        | ReportError::ReadOnly(_)
        | ReportError::Setting { .. } => USAGE,
        ReportError::Query(error) => match error.find_root() {
            DataFusionError::SQL(..)
            | DataFusionError::Plan(_)
            | DataFusionError::SchemaError(..)
            | DataFusionError::NotImplemented(_) => USAGE,
            _ => FAILED,
        },
        ReportError::Rules(error) => rule_error(error),
        _ => FAILED,
    }
}

/// An unknown rule or an invalid change is usage; rules that cannot be read or written are a failure.
fn rule_error(error: &RuleError) -> u8 {
    match error {
        RuleError::NotFound(_) | RuleError::Invalid(_) => USAGE,
        _ => FAILED,
    }
}
