//! Questions answered from the warehouse: a DataFusion session over its tables and views, the named
//! reports of `queries/*.sql`, read-only SQL, and the disable rules applied at query time.

mod files;
pub mod format;
pub mod rule_sql;
pub mod rules;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use arrow::array::RecordBatch;
use datafusion::config::ConfigOptions;
use datafusion::error::DataFusionError;
use datafusion::execution::context::{SQLOptions, SessionConfig, SessionContext};

pub use format::{format_batches, OutputFormat};

use crate::warehouse::read::{self, PartitionFile};
use crate::warehouse::schema::Table;
use crate::warehouse::{Warehouse, WarehouseError};

include!(concat!(env!("OUT_DIR"), "/reports.rs"));

/// The view definitions: `{rule_matches}` stands for the rule predicate of a join with rule rows `r`,
/// `{hidden_by_rules}` for the rules in force written out, `{rules_reach}` for the partitions they reach,
/// and `{hidden_counts}` for the findings they hide counted per image (see [`rule_sql`]).
pub const VIEWS_SQL: &str = include_str!("views.sql");

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("no warehouse at {0} (run `vigil scan` or `vigil demo` first, or pass --warehouse)")]
    NoWarehouse(String),
    #[error(transparent)]
    Warehouse(#[from] WarehouseError),
    #[error("no report named {name:?}; the reports are: {known}")]
    UnknownReport { name: String, known: String },
    #[error("report {report}: {message}")]
    Params { report: String, message: String },
    #[error("vigil sql is read-only: {0}")]
    ReadOnly(String),
    #[error("{0}")]
    Query(#[from] DataFusionError),
    #[error("environment variable {variable}={value:?}: {source}")]
    Setting {
        variable: String,
        value: String,
        source: DataFusionError,
    },
    #[error(transparent)]
    Rules(#[from] rules::RuleError),
    #[error("cannot format the result: {0}")]
    Format(String),
}

/// The view definitions as run over `warehouse` today, with its rules written in.
pub async fn view_statements(warehouse: &Warehouse) -> Result<Vec<String>, ReportError> {
    Ok(statements_with(&rules::list(warehouse, None).await?))
}

/// The view definitions with the rules `current` written in.
fn statements_with(current: &[rules::Rule]) -> Vec<String> {
    let in_force = rule_sql::in_force(current, chrono::Utc::now().date_naive());
    let rule_matches = format!("({})", rule_sql::rule_predicate(current));
    let hidden_by_rules = format!("({})", rule_sql::hidden_by(&in_force));
    let rules_reach = format!("({})", rule_sql::reach(&in_force));
    let hidden_counts = rule_sql::hidden_counts(&in_force);
    // Split before the rules are written in: a rule's text may hold a `;` of its own.
    view_templates()
        .into_iter()
        .map(|statement| {
            statement
                .replace("{rule_matches}", &rule_matches)
                .replace("{hidden_by_rules}", &hidden_by_rules)
                .replace("{rules_reach}", &rules_reach)
                .replace("{hidden_counts}", &hidden_counts)
        })
        .collect()
}

/// The statements of [`VIEWS_SQL`], comments left out, placeholders still in.
fn view_templates() -> Vec<String> {
    let text: String = VIEWS_SQL
        .lines()
        .filter(|line| !line.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n");
    text.split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// A session over the warehouse: the tables (the files of committed runs only, read from the `scans`
/// rows first), the rules, and the views.
pub async fn open_session(warehouse: &Warehouse) -> Result<SessionContext, ReportError> {
    if warehouse.local_root().is_some_and(|root| !root.is_dir()) {
        return Err(ReportError::NoWarehouse(warehouse.location().to_string()));
    }
    let config = session_config(|name| {
        std::env::var_os(name).map(|value| value.to_string_lossy().into_owned())
    })?;
    let ctx = SessionContext::new_with_config(config);
    let url = url::Url::parse(warehouse.store_url())
        .map_err(|e| DataFusionError::External(Box::new(e)))?;
    ctx.register_object_store(&url, warehouse.session_store());
    let rule_files = register_tables(&ctx, warehouse).await?;
    let current = rules::list_in(warehouse, &rule_files).await?;
    for statement in statements_with(&current) {
        ctx.sql(&statement).await?;
    }
    Ok(ctx)
}

/// The session's settings: DataFusion's defaults, then the `DATAFUSION_*` variables that `var` gives
/// (`DATAFUSION_EXECUTION_TARGET_PARTITIONS=8` sets `datafusion.execution.target_partitions`), as DataFusion's
/// own `from_env` reads them, except that a value that does not parse is an error naming its variable
/// rather than a session silently run on the defaults.
///
/// Two defaults differ from DataFusion's, measured on the 10 M-row bench, unless a variable sets them: file
/// statistics are not collected (reading every footer while planning cost more than the join orders they
/// choose; the views name the smaller side of each join first), and footers are read with one 64 KiB
/// request instead of 512 KiB (Vigil's footers are a few KiB).
fn session_config(var: impl Fn(&str) -> Option<String>) -> Result<SessionConfig, ReportError> {
    let mut options = ConfigOptions::new();
    let mut given = BTreeSet::new();
    for entry in ConfigOptions::new().entries() {
        let variable = entry.key.to_uppercase().replace('.', "_");
        let Some(value) = var(&variable) else {
            continue;
        };
        options
            .set(&entry.key, &value)
            .map_err(|source| ReportError::Setting {
                variable: variable.clone(),
                value,
                source,
            })?;
        given.insert(variable);
    }
    if !given.contains("DATAFUSION_EXECUTION_COLLECT_STATISTICS") {
        options.execution.collect_statistics = false;
    }
    if !given.contains("DATAFUSION_EXECUTION_PARQUET_METADATA_SIZE_HINT") {
        options.execution.parquet.metadata_size_hint = Some(64 * 1024);
    }
    Ok(SessionConfig::from(options)
        .with_information_schema(true)
        .with_default_catalog_and_schema("vigil", "warehouse"))
}

/// Registers every table of the warehouse: the files committed runs name (and, for `latest_images`,
/// `_current_images`, those of the scans since each registry's newest full crawl, and `_current_crawls`,
/// the files of those crawls), and the append-only
/// tables as listed, `activity` without repeated events. Returns the `disable_rules` files, for the rules
/// the views write in.
async fn register_tables(
    ctx: &SessionContext,
    warehouse: &Warehouse,
) -> Result<Vec<PartitionFile>, ReportError> {
    let mut rule_files = Vec::new();
    let scans = read::committed_scans(warehouse).await?;
    let mut files = read::scan_files(warehouse, &scans).await?;
    files.extend(scans.iter().map(|scan| scan.marker.clone()));
    let register = |name: &str, table: Table, files: &[PartitionFile]| {
        let provider = files::FilesTable::new(warehouse, table, files)?;
        ctx.register_table(name, Arc::new(provider)).map(|_| ())
    };
    for table in Table::ALL {
        match table {
            Table::DisableRules => {
                rule_files = read::partition_files(warehouse, table).await?;
                register(table.name(), table, &rule_files)?;
            }
            Table::Activity => {
                let listed = read::partition_files(warehouse, table).await?;
                register("_activity_files", table, &listed)?;
                // The same event may arrive twice (a webhook retried, a file imported again): keep the first.
                ctx.sql(
                    "CREATE VIEW activity AS SELECT * EXCLUDE (_first) FROM (SELECT a.*, row_number() OVER \
                     (PARTITION BY subscription, registry, event_id ORDER BY received_at) AS _first \
                     FROM _activity_files a) events WHERE _first = 1",
                )
                .await?;
            }
            _ => register(table.name(), table, &files)?,
        }
    }
    register(
        "_current_images",
        Table::Images,
        &read::current_files(&files, Table::Images),
    )?;
    register(
        "_current_crawls",
        Table::Crawls,
        &read::newest_crawl_files(&files),
    )?;
    Ok(rule_files)
}

/// A report parameter, from its file's header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportParam {
    pub name: String,
    pub required: bool,
    pub description: String,
}

/// A named report: one file of `queries/`.
#[derive(Debug, Clone)]
pub struct ReportInfo {
    pub name: String,
    /// What it answers (the header's `-- answers:` line).
    pub description: String,
    pub params: Vec<ReportParam>,
    pub sql: &'static str,
}

fn parse_report(name: &str, sql: &'static str) -> ReportInfo {
    let mut description = String::new();
    let mut params = Vec::new();
    for line in sql
        .lines()
        .map(str::trim)
        .take_while(|l| l.starts_with("--"))
    {
        let line = line.trim_start_matches('-').trim();
        if let Some(text) = line.strip_prefix("answers:") {
            description = text.trim().to_string();
        } else if let Some(rest) = line.strip_prefix("param ") {
            let (param, text) = rest.split_once(':').unwrap_or((rest, ""));
            let text = text.trim();
            params.push(ReportParam {
                name: param.trim().to_string(),
                required: !text.starts_with("(optional)"),
                description: text.trim_start_matches("(optional)").trim().to_string(),
            });
        }
    }
    ReportInfo {
        name: name.to_string(),
        description,
        params,
        sql,
    }
}

/// Every report, by name.
pub fn list_reports() -> Vec<ReportInfo> {
    REPORTS
        .iter()
        .map(|(name, sql)| parse_report(name, sql))
        .collect()
}

/// The report's SQL with its parameters filled in as string literals (NULL when an optional one is not
/// given). Unknown and missing parameters are errors.
pub fn bind_report(
    report: &ReportInfo,
    params: &BTreeMap<String, String>,
) -> Result<String, ReportError> {
    let error = |message: String| ReportError::Params {
        report: report.name.clone(),
        message,
    };
    let known: Vec<&str> = report.params.iter().map(|p| p.name.as_str()).collect();
    if let Some(unknown) = params.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(error(format!(
            "unknown parameter {unknown:?} (it takes: {})",
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        )));
    }
    let mut values = BTreeMap::new();
    for param in &report.params {
        match params.get(&param.name) {
            Some(value) => values.insert(param.name.as_str(), quote(value)),
            None if param.required => {
                return Err(error(format!(
                    "missing parameter {} ({}); pass -p {}=VALUE",
                    param.name, param.description, param.name
                )))
            }
            None => values.insert(param.name.as_str(), "NULL".to_string()),
        };
    }
    // Substitute `$name` tokens, never inside a longer identifier.
    let mut out = String::with_capacity(report.sql.len());
    let mut rest = report.sql;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let end = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        match values.get(&after[..end]) {
            Some(value) => out.push_str(value),
            None => {
                return Err(error(format!(
                    "uses ${} but declares no such parameter",
                    &after[..end]
                )))
            }
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Runs one named report.
pub async fn run_report(
    warehouse: &Warehouse,
    name: &str,
    params: &BTreeMap<String, String>,
) -> Result<Vec<RecordBatch>, ReportError> {
    let reports = list_reports();
    let Some(report) = reports.iter().find(|r| r.name == name) else {
        return Err(ReportError::UnknownReport {
            name: name.to_string(),
            known: reports
                .iter()
                .map(|r| r.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        });
    };
    let sql = bind_report(report, params)?;
    let ctx = open_session(warehouse).await?;
    Ok(ctx.sql(&sql).await?.collect().await?)
}

/// Runs one read-only statement (queries, SHOW, DESCRIBE, EXPLAIN); anything that would change the
/// session or the data is refused.
pub async fn run_sql(warehouse: &Warehouse, sql: &str) -> Result<Vec<RecordBatch>, ReportError> {
    let ctx = open_session(warehouse).await?;
    let plan = ctx.state().create_logical_plan(sql).await?;
    SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false)
        .verify_plan(&plan)
        .map_err(|e| ReportError::ReadOnly(e.strip_backtrace()))?;
    Ok(ctx.execute_logical_plan(plan).await?.collect().await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(variables: &[(&str, &str)]) -> Result<SessionConfig, ReportError> {
        session_config(|name| {
            variables
                .iter()
                .find(|(variable, _)| *variable == name)
                .map(|(_, value)| value.to_string())
        })
    }

    #[test]
    fn a_bad_datafusion_variable_is_an_error_naming_it() {
        let error = config(&[("DATAFUSION_EXECUTION_TARGET_PARTITIONS", "notanumber")])
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("DATAFUSION_EXECUTION_TARGET_PARTITIONS=\"notanumber\""),
            "{error}"
        );
    }

    #[test]
    fn datafusion_variables_override_vigil_defaults() {
        let defaults = config(&[]).unwrap();
        assert!(!defaults.options().execution.collect_statistics);
        assert_eq!(
            defaults.options().execution.parquet.metadata_size_hint,
            Some(64 * 1024)
        );
        let given = config(&[
            ("DATAFUSION_EXECUTION_TARGET_PARTITIONS", "3"),
            ("DATAFUSION_EXECUTION_COLLECT_STATISTICS", "true"),
            ("DATAFUSION_EXECUTION_PARQUET_METADATA_SIZE_HINT", "1000"),
        ])
        .unwrap();
        assert_eq!(given.options().execution.target_partitions, 3);
        assert!(given.options().execution.collect_statistics);
        assert_eq!(
            given.options().execution.parquet.metadata_size_hint,
            Some(1000)
        );
    }

    #[tokio::test]
    async fn a_semicolon_in_a_rule_does_not_split_a_view() {
        let dir = tempfile::tempdir().unwrap();
        let warehouse = Warehouse::local(dir.path()).unwrap();
        let spec = rules::RuleSpec::from_patch(rules::RulePatch {
            subscription: Some("prod".into()),
            criteria: rules::RuleCriteria {
                security_check_contains: Some("a; DROP VIEW x".into()),
                ..rules::RuleCriteria::default()
            },
            reason: Some("accepted".into()),
            author: "tester".into(),
            ..rules::RulePatch::default()
        })
        .unwrap();
        rules::add(&warehouse, spec).await.unwrap();
        let statements = view_statements(&warehouse).await.unwrap();
        assert_eq!(statements.len(), view_templates().len());
        assert!(
            statements.iter().all(|s| s.starts_with("CREATE")),
            "{statements:#?}"
        );
        assert!(statements.iter().any(|s| s.contains("'a; DROP VIEW x'")));
    }
}
