//! Disable rules: data in the warehouse's `disable_rules` table, one row per change, applied by the views
//! at query time. A finding is hidden when it matches every criterion of an unexpired rule of its
//! subscription.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use arrow::array::{
    Array, AsArray, BooleanArray, Date32Array, Float64Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use chrono::{DateTime, NaiveDate, Utc};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde::Serialize;

use crate::matcher::Severity;
use crate::warehouse::schema::Table;
use crate::warehouse::write::RuleChange;
use crate::warehouse::{write_rule_change, WarehouseError};

#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    #[error("no rule {0}")]
    NotFound(String),
    #[error("invalid rule: {0}")]
    Invalid(String),
    #[error(transparent)]
    Warehouse(#[from] WarehouseError),
    #[error("cannot read the rules in {path}: {message}")]
    Read { path: PathBuf, message: String },
}

/// What a rule hides and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleSpec {
    pub subscription: String,
    pub registry: Option<String>,
    /// A glob over repository names: `*` matches any characters (slashes included), `?` one.
    pub repository: Option<String>,
    /// An advisory id, or one of its aliases (a CVE id).
    pub finding_id: Option<String>,
    pub category: Option<String>,
    pub security_check_contains: Option<String>,
    pub cvss_below: Option<f64>,
    pub severity_below: Option<Severity>,
    pub patchable: Option<bool>,
    pub reason: String,
    /// The first day the rule no longer applies.
    pub expires: Option<NaiveDate>,
    pub author: String,
}

/// One version of a rule.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rule {
    pub id: String,
    pub version: i64,
    /// `add`, `update` or `delete`.
    pub op: String,
    #[serde(flatten)]
    pub spec: RuleSpec,
    pub updated_at: DateTime<Utc>,
}

/// Changes to a rule: given fields override, `clear` names criteria to remove.
#[derive(Debug, Clone, Default)]
pub struct RulePatch {
    pub subscription: Option<String>,
    pub registry: Option<String>,
    pub repository: Option<String>,
    pub finding_id: Option<String>,
    pub category: Option<String>,
    pub security_check_contains: Option<String>,
    pub cvss_below: Option<f64>,
    pub severity_below: Option<Severity>,
    pub patchable: Option<bool>,
    pub reason: Option<String>,
    pub expires: Option<NaiveDate>,
    pub clear: Vec<String>,
    pub author: String,
}

impl RuleSpec {
    /// A new rule's spec from the fields given; `subscription` and `reason` are required.
    pub fn from_patch(patch: RulePatch) -> Result<RuleSpec, RuleError> {
        if !patch.clear.is_empty() {
            return Err(RuleError::Invalid("nothing to clear in a new rule".into()));
        }
        Ok(RuleSpec {
            subscription: patch
                .subscription
                .ok_or_else(|| RuleError::Invalid("--subscription is required".into()))?,
            registry: patch.registry,
            repository: patch.repository,
            finding_id: patch.finding_id,
            category: patch.category,
            security_check_contains: patch.security_check_contains,
            cvss_below: patch.cvss_below,
            severity_below: patch.severity_below,
            patchable: patch.patchable,
            reason: patch.reason.unwrap_or_default(),
            expires: patch.expires,
            author: patch.author,
        })
    }
}

/// `Low`, `medium`, `HIGH`, `Critical`.
pub fn parse_severity(text: &str) -> Result<Severity, RuleError> {
    match text.to_ascii_lowercase().as_str() {
        "low" => Ok(Severity::Low),
        "medium" => Ok(Severity::Medium),
        "high" => Ok(Severity::High),
        "critical" => Ok(Severity::Critical),
        _ => Err(RuleError::Invalid(format!(
            "severity {text:?}: expected Low, Medium, High or Critical"
        ))),
    }
}

/// A repository glob as a SQL LIKE pattern with `\` as its escape character.
pub fn glob_to_like(glob: &str) -> String {
    let mut like = String::with_capacity(glob.len());
    for c in glob.chars() {
        match c {
            '*' => like.push('%'),
            '?' => like.push('_'),
            '%' | '_' | '\\' => {
                like.push('\\');
                like.push(c);
            }
            c => like.push(c),
        }
    }
    like
}

fn validate(spec: &RuleSpec) -> Result<(), RuleError> {
    let invalid = |m: &str| Err(RuleError::Invalid(m.to_string()));
    if spec.subscription.trim().is_empty() {
        return invalid("--subscription is empty");
    }
    if spec.reason.trim().is_empty() {
        return invalid("--reason is required: say why these findings are hidden");
    }
    if let Some(score) = spec.cvss_below {
        if !(0.0..=10.0).contains(&score) || score.is_nan() {
            return invalid("--cvss-below must be between 0 and 10");
        }
    }
    let empty = |v: &Option<String>| v.as_deref().is_some_and(|s| s.trim().is_empty());
    if [
        &spec.registry,
        &spec.repository,
        &spec.finding_id,
        &spec.category,
        &spec.security_check_contains,
    ]
    .into_iter()
    .any(empty)
    {
        return invalid("a criterion is given but empty");
    }
    let has_criterion = spec.registry.is_some()
        || spec.repository.is_some()
        || spec.finding_id.is_some()
        || spec.category.is_some()
        || spec.security_check_contains.is_some()
        || spec.cvss_below.is_some()
        || spec.severity_below.is_some()
        || spec.patchable.is_some();
    if !has_criterion {
        return invalid(
            "give at least one of --registry, --repository, --finding-id, --category, \
             --security-check-contains, --cvss-below, --severity-below, --patchable \
             (a rule without one would hide every finding of the subscription)",
        );
    }
    Ok(())
}

fn store(
    root: &Path,
    id: &str,
    version: i64,
    op: &str,
    spec: &RuleSpec,
) -> Result<Rule, RuleError> {
    let updated_at = Utc::now();
    let like = spec.repository.as_deref().map(glob_to_like);
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date");
    write_rule_change(
        root,
        &RuleChange {
            rule_id: id,
            version,
            op,
            subscription: &spec.subscription,
            registry: spec.registry.as_deref(),
            repository_glob: spec.repository.as_deref(),
            repository_like: like.as_deref(),
            finding_id: spec.finding_id.as_deref(),
            category: spec.category.as_deref(),
            security_check_contains: spec.security_check_contains.as_deref(),
            cvss_below: spec.cvss_below,
            severity_below: spec.severity_below,
            patchable: spec.patchable,
            reason: &spec.reason,
            expires: spec.expires.map(|d| (d - epoch).num_days() as i32),
            author: &spec.author,
            updated_at,
        },
    )?;
    Ok(Rule {
        id: id.to_string(),
        version,
        op: op.to_string(),
        spec: spec.clone(),
        updated_at,
    })
}

/// Adds a rule; it applies from the next query on.
pub fn add(root: &Path, spec: RuleSpec) -> Result<Rule, RuleError> {
    validate(&spec)?;
    let id = format!("rule-{:08x}", rand::random::<u32>());
    store(root, &id, 1, "add", &spec)
}

/// Every version of every rule, oldest first within a rule.
fn read_all(root: &Path) -> Result<BTreeMap<String, Vec<Rule>>, RuleError> {
    let dir = root.join(Table::DisableRules.name());
    let mut rules: BTreeMap<String, Vec<Rule>> = BTreeMap::new();
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(rules),
        Err(err) => return Err(WarehouseError::io(&dir)(err).into()),
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "parquet") {
            continue;
        }
        let read_error = |message: String| RuleError::Read {
            path: path.clone(),
            message,
        };
        let file = File::open(&path).map_err(|e| read_error(e.to_string()))?;
        let reader = ParquetRecordBatchReaderBuilder::try_new(file)
            .and_then(|b| b.build())
            .map_err(|e| read_error(e.to_string()))?;
        for batch in reader {
            let batch = batch.map_err(|e| read_error(e.to_string()))?;
            for rule in rows(&batch).map_err(read_error)? {
                rules.entry(rule.id.clone()).or_default().push(rule);
            }
        }
    }
    for versions in rules.values_mut() {
        versions.sort_by_key(|r| (r.version, r.updated_at));
    }
    Ok(rules)
}

fn rows(batch: &RecordBatch) -> Result<Vec<Rule>, String> {
    let column = |name: &str| {
        batch
            .column_by_name(name)
            .ok_or_else(|| format!("no column {name}"))
    };
    let text = |name: &str| -> Result<&StringArray, String> {
        column(name)?
            .as_string_opt::<i32>()
            .ok_or_else(|| format!("column {name} is not text"))
    };
    fn typed<'a, T: 'static>(array: &'a dyn Array, name: &str) -> Result<&'a T, String> {
        array
            .as_any()
            .downcast_ref::<T>()
            .ok_or_else(|| format!("column {name} has the wrong type"))
    }
    let optional = |array: &StringArray, row: usize| {
        (!array.is_null(row)).then(|| array.value(row).to_string())
    };
    let (
        id,
        op,
        subscription,
        registry,
        glob,
        finding_id,
        category,
        contains,
        severity,
        reason,
        author,
    ) = (
        text("rule_id")?,
        text("op")?,
        text("subscription")?,
        text("registry")?,
        text("repository_glob")?,
        text("finding_id")?,
        text("category")?,
        text("security_check_contains")?,
        text("severity_below")?,
        text("reason")?,
        text("author")?,
    );
    let version: &Int64Array = typed(column("version")?.as_ref(), "version")?;
    let cvss: &Float64Array = typed(column("cvss_below")?.as_ref(), "cvss_below")?;
    let patchable: &BooleanArray = typed(column("patchable")?.as_ref(), "patchable")?;
    let expires: &Date32Array = typed(column("expires")?.as_ref(), "expires")?;
    let updated: &TimestampMicrosecondArray = typed(column("updated_at")?.as_ref(), "updated_at")?;
    let mut out = Vec::with_capacity(batch.num_rows());
    for row in 0..batch.num_rows() {
        out.push(Rule {
            id: id.value(row).to_string(),
            version: version.value(row),
            op: op.value(row).to_string(),
            spec: RuleSpec {
                subscription: subscription.value(row).to_string(),
                registry: optional(registry, row),
                repository: optional(glob, row),
                finding_id: optional(finding_id, row),
                category: optional(category, row),
                security_check_contains: optional(contains, row),
                cvss_below: (!cvss.is_null(row)).then(|| cvss.value(row)),
                severity_below: optional(severity, row)
                    .map(|s| parse_severity(&s).map_err(|e| e.to_string()))
                    .transpose()?,
                patchable: (!patchable.is_null(row)).then(|| patchable.value(row)),
                reason: reason.value(row).to_string(),
                expires: (!expires.is_null(row))
                    .then(|| expires.value_as_date(row))
                    .flatten(),
                author: author.value(row).to_string(),
            },
            updated_at: DateTime::from_timestamp_micros(updated.value(row)).unwrap_or_default(),
        });
    }
    Ok(out)
}

/// The current version of each rule that is not deleted (expired ones included), optionally of one
/// subscription, by id.
pub fn list(root: &Path, subscription: Option<&str>) -> Result<Vec<Rule>, RuleError> {
    Ok(read_all(root)?
        .into_values()
        .filter_map(|mut versions| versions.pop())
        .filter(|rule| rule.op != "delete")
        .filter(|rule| subscription.is_none_or(|s| rule.spec.subscription == s))
        .collect())
}

/// The current version of one rule.
pub fn show(root: &Path, id: &str) -> Result<Rule, RuleError> {
    list(root, None)?
        .into_iter()
        .find(|r| r.id == id)
        .ok_or_else(|| RuleError::NotFound(id.to_string()))
}

/// Every version of one rule, deletion included, oldest first.
pub fn history(root: &Path, id: &str) -> Result<Vec<Rule>, RuleError> {
    read_all(root)?
        .remove(id)
        .ok_or_else(|| RuleError::NotFound(id.to_string()))
}

/// Applies `patch` to rule `id` as a new version.
pub fn update(root: &Path, id: &str, patch: RulePatch) -> Result<Rule, RuleError> {
    let current = show(root, id)?;
    let mut spec = current.spec.clone();
    for field in &patch.clear {
        match field.replace('-', "_").as_str() {
            "registry" => spec.registry = None,
            "repository" => spec.repository = None,
            "finding_id" => spec.finding_id = None,
            "category" => spec.category = None,
            "security_check_contains" => spec.security_check_contains = None,
            "cvss_below" => spec.cvss_below = None,
            "severity_below" => spec.severity_below = None,
            "patchable" => spec.patchable = None,
            "expires" => spec.expires = None,
            other => {
                return Err(RuleError::Invalid(format!(
                    "--clear {other}: not a criterion (registry, repository, finding_id, category, \
                     security_check_contains, cvss_below, severity_below, patchable, expires)"
                )))
            }
        }
    }
    macro_rules! set {
        ($($field:ident),*) => { $( if let Some(value) = patch.$field { spec.$field = Some(value); } )* };
    }
    set!(
        registry,
        repository,
        finding_id,
        category,
        security_check_contains,
        cvss_below,
        severity_below,
        patchable,
        expires
    );
    if let Some(subscription) = patch.subscription {
        spec.subscription = subscription;
    }
    if let Some(reason) = patch.reason {
        spec.reason = reason;
    }
    spec.author = patch.author;
    validate(&spec)?;
    store(root, id, current.version + 1, "update", &spec)
}

/// Deletes rule `id`: its findings show again from the next query; its history stays.
pub fn delete(root: &Path, id: &str, author: &str) -> Result<Rule, RuleError> {
    let current = show(root, id)?;
    let mut spec = current.spec;
    spec.author = author.to_string();
    store(root, id, current.version + 1, "delete", &spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_become_escaped_like_patterns() {
        assert_eq!(glob_to_like("apps/*"), "apps/%");
        assert_eq!(glob_to_like("my_app?"), "my\\_app_");
        assert_eq!(glob_to_like("100%"), "100\\%");
    }

    #[test]
    fn severities_parse_case_insensitively_and_reject_unknown() {
        assert_eq!(parse_severity("HIGH").unwrap(), Severity::High);
        assert!(parse_severity("urgent").is_err());
        assert!(parse_severity("unknown").is_err());
    }
}
