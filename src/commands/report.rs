//! `vigil report`, `vigil sql` and `vigil rules`: questions answered from the warehouse.

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::Context as _;
use vigil::cli::{ReportArgs, RuleFields, RulesCommand, SqlArgs, TableFormat, WarehouseLocation};
use vigil::report::{self, rules, OutputFormat};
use vigil::warehouse::Warehouse;

use super::output::write_table;

fn warehouse(location: &WarehouseLocation) -> anyhow::Result<Warehouse> {
    Ok(super::warehouse_settings(location)?.open_warehouse()?)
}

fn output_format(format: TableFormat) -> OutputFormat {
    match format {
        TableFormat::Table => OutputFormat::Table,
        TableFormat::Json => OutputFormat::Json,
        TableFormat::Csv => OutputFormat::Csv,
    }
}

pub async fn run_report(args: ReportArgs) -> anyhow::Result<ExitCode> {
    let Some(name) = args.name else {
        let rows: Vec<Vec<String>> = report::list_reports()
            .into_iter()
            .map(|r| {
                let params: Vec<String> = r
                    .params
                    .iter()
                    .map(|p| {
                        if p.required {
                            p.name.clone()
                        } else {
                            format!("[{}]", p.name)
                        }
                    })
                    .collect();
                vec![r.name, params.join(" "), r.description]
            })
            .collect();
        write_table(
            &mut std::io::stdout().lock(),
            &["REPORT", "PARAMS", "ANSWERS"],
            &rows,
        )?;
        return Ok(ExitCode::SUCCESS);
    };
    let root = warehouse(&args.location)?;
    let params: BTreeMap<String, String> = args.params.into_iter().collect();
    let batches = report::run_report(&root, &name, &params).await?;
    let (gets, lists, _, _) = root.requests().snapshot();
    tracing::debug!(report = %name, gets, lists, "warehouse requests of the session");
    println!(
        "{}",
        report::format_batches(&batches, output_format(args.format))?
    );
    Ok(ExitCode::SUCCESS)
}

pub async fn run_sql(args: SqlArgs) -> anyhow::Result<ExitCode> {
    let root = warehouse(&args.location)?;
    let batches = report::run_sql(&root, &args.query).await?;
    println!(
        "{}",
        report::format_batches(&batches, output_format(args.format))?
    );
    Ok(ExitCode::SUCCESS)
}

fn author(given: Option<String>) -> String {
    given
        .or_else(|| std::env::var("USER").ok())
        .or_else(|| std::env::var("LOGNAME").ok())
        .filter(|a| !a.trim().is_empty())
        .unwrap_or_else(|| "unknown".into())
}

fn parse_date(text: &str) -> anyhow::Result<chrono::NaiveDate> {
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .with_context(|| format!("--expires {text:?}: expected YYYY-MM-DD"))
}

fn print_rule(rule: &rules::Rule) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(rule)?);
    Ok(())
}

/// The rule fields given on the command line, as a change to apply: the one place the CLI's text becomes
/// typed criteria.
fn patch(
    fields: RuleFields,
    subscription: Option<String>,
    reason: Option<String>,
    clear: Vec<String>,
) -> anyhow::Result<rules::RulePatch> {
    let criteria = rules::RuleCriteria {
        registry: fields.registry,
        repository: fields.repository,
        finding_id: fields.finding_id,
        category: fields.category,
        security_check_contains: fields.security_check_contains,
        cvss_below: fields.cvss_below,
        severity_below: fields
            .severity_below
            .as_deref()
            .map(rules::parse_severity)
            .transpose()?,
        patchable: fields.patchable,
    };
    Ok(rules::RulePatch {
        subscription,
        criteria,
        reason,
        expires: fields.expires.as_deref().map(parse_date).transpose()?,
        clear: clear
            .iter()
            .map(|name| rules::ClearField::parse(name))
            .collect::<Result<_, _>>()?,
        author: author(fields.author),
    })
}

pub async fn run_rules(command: RulesCommand) -> anyhow::Result<ExitCode> {
    match command {
        RulesCommand::Add {
            subscription,
            fields,
            reason,
            location,
        } => {
            let root = warehouse(&location)?;
            let patch = patch(fields, Some(subscription), Some(reason), Vec::new())?;
            print_rule(&rules::add(&root, rules::RuleSpec::from_patch(patch)?).await?)?;
        }
        RulesCommand::List {
            subscription,
            location,
            format,
        } => {
            let root = warehouse(&location)?;
            let list = rules::list(&root, subscription.as_deref()).await?;
            match format {
                TableFormat::Json => println!("{}", serde_json::to_string_pretty(&list)?),
                TableFormat::Table | TableFormat::Csv => {
                    let rows: Vec<Vec<String>> = list
                        .iter()
                        .map(|r| {
                            vec![
                                r.id.clone(),
                                r.spec.subscription.clone(),
                                r.spec.reason.clone(),
                                r.spec.expires.map(|d| d.to_string()).unwrap_or_default(),
                                r.spec.author.clone(),
                                r.updated_at.to_rfc3339(),
                            ]
                        })
                        .collect();
                    write_table(
                        &mut std::io::stdout().lock(),
                        &[
                            "ID",
                            "SUBSCRIPTION",
                            "REASON",
                            "EXPIRES",
                            "AUTHOR",
                            "UPDATED",
                        ],
                        &rows,
                    )?;
                }
            }
        }
        RulesCommand::Show { id, location } => {
            let root = warehouse(&location)?;
            print_rule(&rules::show(&root, &id).await?)?;
            let history = rules::history(&root, &id).await?;
            println!("history: {} versions", history.len());
            for version in &history {
                println!(
                    "  v{} {} by {} at {}",
                    version.version,
                    version.op,
                    version.spec.author,
                    version.updated_at.to_rfc3339()
                );
            }
        }
        RulesCommand::Update {
            id,
            subscription,
            fields,
            reason,
            clear,
            location,
        } => {
            let root = warehouse(&location)?;
            let patch = patch(fields, subscription, reason, clear)?;
            print_rule(&rules::update(&root, &id, patch).await?)?;
        }
        RulesCommand::Delete {
            id,
            author: who,
            location,
        } => {
            let root = warehouse(&location)?;
            print_rule(&rules::delete(&root, &id, &author(who)).await?)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
