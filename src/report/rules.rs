//! Disable rules: data in the warehouse's `disable_rules` table, one row per change, applied by the views
//! at query time. A finding is hidden when it matches every criterion of an unexpired rule of its
//! subscription.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use arrow::array::{
    Array, BooleanArray, Date32Array, Float64Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use arrow::datatypes::DataType;
use bytes::Bytes;
use chrono::{DateTime, NaiveDate, Utc};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde::Serialize;

use crate::matcher::Severity;
use crate::warehouse::schema::Table;
use crate::warehouse::write::RuleChange;
use crate::warehouse::{read, write_rule_change, Warehouse, WarehouseError};

#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    #[error("no rule {0}")]
    NotFound(String),
    #[error("invalid rule: {0}")]
    Invalid(String),
    #[error(transparent)]
    Warehouse(#[from] WarehouseError),
    #[error("cannot read the rules in {path}: {source}")]
    Read { path: PathBuf, source: ReadError },
}

/// What is wrong with a file of `disable_rules`: it cannot be read, or it holds a row Vigil never writes.
/// Such a row is an error rather than a guess, so a damaged file never silently hides or shows findings.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("listed but gone when read")]
    Vanished,
    #[error(transparent)]
    Parquet(#[from] parquet::errors::ParquetError),
    #[error(transparent)]
    Arrow(#[from] arrow::error::ArrowError),
    #[error("no column {0}")]
    MissingColumn(&'static str),
    #[error("column {column} is {found}, not the type Vigil writes")]
    WrongType {
        column: &'static str,
        found: DataType,
    },
    #[error("row {row}: {column} is null")]
    Null { row: usize, column: &'static str },
    #[error("row {row}: op {op:?} is not add, update or delete")]
    UnknownOp { row: usize, op: String },
    #[error("row {row}: updated_at ({micros} µs since 1970) is not a representable time")]
    Timestamp { row: usize, micros: i64 },
    #[error("row {row}: expires ({days} days since 1970) is not a representable date")]
    Expires { row: usize, days: i32 },
    #[error("row {row}: severity_below {text:?} is not Low, Medium, High or Critical")]
    Severity { row: usize, text: String },
}

/// The change a version of a rule made; stored as `add`, `update` or `delete` in `disable_rules.op`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleOp {
    Add,
    Update,
    Delete,
}

impl RuleOp {
    const ALL: [RuleOp; 3] = [RuleOp::Add, RuleOp::Update, RuleOp::Delete];

    /// The stored text.
    pub fn as_str(self) -> &'static str {
        match self {
            RuleOp::Add => "add",
            RuleOp::Update => "update",
            RuleOp::Delete => "delete",
        }
    }

    /// The op stored as `text`; `None` for anything Vigil does not write.
    pub fn parse(text: &str) -> Option<RuleOp> {
        RuleOp::ALL.into_iter().find(|op| op.as_str() == text)
    }
}

impl fmt::Display for RuleOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One criterion a rule may set beyond its subscription, by its name in `--clear`, in the rule SQL
/// template (`rule_matches.sql`) and (for most) in `disable_rules`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Criterion {
    Registry,
    Repository,
    FindingId,
    Category,
    SecurityCheckContains,
    CvssBelow,
    SeverityBelow,
    Patchable,
}

impl Criterion {
    pub const ALL: [Criterion; 8] = [
        Criterion::Registry,
        Criterion::Repository,
        Criterion::FindingId,
        Criterion::Category,
        Criterion::SecurityCheckContains,
        Criterion::CvssBelow,
        Criterion::SeverityBelow,
        Criterion::Patchable,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Criterion::Registry => "registry",
            Criterion::Repository => "repository",
            Criterion::FindingId => "finding_id",
            Criterion::Category => "category",
            Criterion::SecurityCheckContains => "security_check_contains",
            Criterion::CvssBelow => "cvss_below",
            Criterion::SeverityBelow => "severity_below",
            Criterion::Patchable => "patchable",
        }
    }

    /// The criterion named `name`, with `-` or `_` between words.
    pub fn parse(name: &str) -> Option<Criterion> {
        let name = name.replace('-', "_");
        Criterion::ALL.into_iter().find(|c| c.name() == name)
    }
}

/// What a rule hides beyond its subscription: every criterion it sets must hold. `None` sets nothing.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RuleCriteria {
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
}

impl RuleCriteria {
    /// Whether `criterion` is set.
    pub fn sets(&self, criterion: Criterion) -> bool {
        match criterion {
            Criterion::Registry => self.registry.is_some(),
            Criterion::Repository => self.repository.is_some(),
            Criterion::FindingId => self.finding_id.is_some(),
            Criterion::Category => self.category.is_some(),
            Criterion::SecurityCheckContains => self.security_check_contains.is_some(),
            Criterion::CvssBelow => self.cvss_below.is_some(),
            Criterion::SeverityBelow => self.severity_below.is_some(),
            Criterion::Patchable => self.patchable.is_some(),
        }
    }

    fn clear(&mut self, criterion: Criterion) {
        match criterion {
            Criterion::Registry => self.registry = None,
            Criterion::Repository => self.repository = None,
            Criterion::FindingId => self.finding_id = None,
            Criterion::Category => self.category = None,
            Criterion::SecurityCheckContains => self.security_check_contains = None,
            Criterion::CvssBelow => self.cvss_below = None,
            Criterion::SeverityBelow => self.severity_below = None,
            Criterion::Patchable => self.patchable = None,
        }
    }

    /// These criteria with those `given` sets replacing theirs.
    fn overridden_by(self, given: RuleCriteria) -> RuleCriteria {
        RuleCriteria {
            registry: given.registry.or(self.registry),
            repository: given.repository.or(self.repository),
            finding_id: given.finding_id.or(self.finding_id),
            category: given.category.or(self.category),
            security_check_contains: given
                .security_check_contains
                .or(self.security_check_contains),
            cvss_below: given.cvss_below.or(self.cvss_below),
            severity_below: given.severity_below.or(self.severity_below),
            patchable: given.patchable.or(self.patchable),
        }
    }

    /// The criteria given as text.
    fn texts(&self) -> [&Option<String>; 5] {
        [
            &self.registry,
            &self.repository,
            &self.finding_id,
            &self.category,
            &self.security_check_contains,
        ]
    }
}

/// What a rule hides and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleSpec {
    pub subscription: String,
    #[serde(flatten)]
    pub criteria: RuleCriteria,
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
    pub op: RuleOp,
    #[serde(flatten)]
    pub spec: RuleSpec,
    pub updated_at: DateTime<Utc>,
}

/// A field `--clear` removes from a rule: a criterion, or its expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClearField {
    Criterion(Criterion),
    Expires,
}

impl ClearField {
    /// The field named `name` (`-` or `_` between words).
    pub fn parse(name: &str) -> Result<ClearField, RuleError> {
        match Criterion::parse(name) {
            Some(criterion) => Ok(ClearField::Criterion(criterion)),
            None if name == "expires" => Ok(ClearField::Expires),
            None => Err(RuleError::Invalid(format!(
                "--clear {}: not a criterion (registry, repository, finding_id, category, \
                 security_check_contains, cvss_below, severity_below, patchable, expires)",
                name.replace('-', "_")
            ))),
        }
    }
}

/// Changes to a rule: given fields override, `clear` names fields to remove.
#[derive(Debug, Clone, Default)]
pub struct RulePatch {
    pub subscription: Option<String>,
    pub criteria: RuleCriteria,
    pub reason: Option<String>,
    pub expires: Option<NaiveDate>,
    pub clear: Vec<ClearField>,
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
            criteria: patch.criteria,
            // An absent reason is refused by `validate`, with the message that says why one is needed.
            reason: patch.reason.unwrap_or_default(),
            expires: patch.expires,
            author: patch.author,
        })
    }

    /// This spec with `patch` applied: its fields cleared first, then those it gives set.
    fn patched(self, patch: RulePatch) -> RuleSpec {
        let mut criteria = self.criteria;
        let mut expires = self.expires;
        for field in patch.clear {
            match field {
                ClearField::Criterion(criterion) => criteria.clear(criterion),
                ClearField::Expires => expires = None,
            }
        }
        RuleSpec {
            subscription: patch.subscription.unwrap_or(self.subscription),
            criteria: criteria.overridden_by(patch.criteria),
            reason: patch.reason.unwrap_or(self.reason),
            expires: patch.expires.or(expires),
            author: patch.author,
        }
    }
}

/// `Low`, `medium`, `HIGH`, `Critical`.
pub fn parse_severity(text: &str) -> Result<Severity, RuleError> {
    severity_level(text).ok_or_else(|| {
        RuleError::Invalid(format!(
            "severity {text:?}: expected Low, Medium, High or Critical"
        ))
    })
}

fn severity_level(text: &str) -> Option<Severity> {
    match text.to_ascii_lowercase().as_str() {
        "low" => Some(Severity::Low),
        "medium" => Some(Severity::Medium),
        "high" => Some(Severity::High),
        "critical" => Some(Severity::Critical),
        _ => None,
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
    let criteria = &spec.criteria;
    if let Some(score) = criteria.cvss_below {
        if !(0.0..=10.0).contains(&score) || score.is_nan() {
            return invalid("--cvss-below must be between 0 and 10");
        }
    }
    let empty = |v: &Option<String>| v.as_deref().is_some_and(|s| s.trim().is_empty());
    if criteria.texts().into_iter().any(empty) {
        return invalid("a criterion is given but empty");
    }
    if !Criterion::ALL.into_iter().any(|c| criteria.sets(c)) {
        return invalid(
            "give at least one of --registry, --repository, --finding-id, --category, \
             --security-check-contains, --cvss-below, --severity-below, --patchable \
             (a rule without one would hide every finding of the subscription)",
        );
    }
    Ok(())
}

async fn store(
    warehouse: &Warehouse,
    id: &str,
    version: i64,
    op: RuleOp,
    spec: &RuleSpec,
) -> Result<Rule, RuleError> {
    let updated_at = Utc::now();
    let criteria = &spec.criteria;
    let like = criteria.repository.as_deref().map(glob_to_like);
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date");
    write_rule_change(
        warehouse,
        &RuleChange {
            rule_id: id,
            version,
            op: op.as_str(),
            subscription: &spec.subscription,
            registry: criteria.registry.as_deref(),
            repository_glob: criteria.repository.as_deref(),
            repository_like: like.as_deref(),
            finding_id: criteria.finding_id.as_deref(),
            category: criteria.category.as_deref(),
            security_check_contains: criteria.security_check_contains.as_deref(),
            cvss_below: criteria.cvss_below,
            severity_below: criteria.severity_below,
            patchable: criteria.patchable,
            reason: &spec.reason,
            expires: spec.expires.map(|d| (d - epoch).num_days() as i32),
            author: &spec.author,
            updated_at,
        },
    )
    .await?;
    Ok(Rule {
        id: id.to_string(),
        version,
        op,
        spec: spec.clone(),
        updated_at,
    })
}

/// Adds a rule; it applies from the next query on.
pub async fn add(warehouse: &Warehouse, spec: RuleSpec) -> Result<Rule, RuleError> {
    validate(&spec)?;
    let id = format!("rule-{:08x}", rand::random::<u32>());
    store(warehouse, &id, 1, RuleOp::Add, &spec).await
}

/// Every version of every rule, oldest first within a rule.
async fn read_all(warehouse: &Warehouse) -> Result<BTreeMap<String, Vec<Rule>>, RuleError> {
    let files = read::partition_files(warehouse, Table::DisableRules).await?;
    read_versions(warehouse, &files).await
}

/// Every version of the rules in `files` (the `disable_rules` files, listed by the caller).
async fn read_versions(
    warehouse: &Warehouse,
    files: &[read::PartitionFile],
) -> Result<BTreeMap<String, Vec<Rule>>, RuleError> {
    let mut rules: BTreeMap<String, Vec<Rule>> = BTreeMap::new();
    // An unreadable file may be a rule: it is an error, never skipped.
    for file in files {
        let bytes = warehouse
            .get(&file.key)
            .await?
            .ok_or_else(|| RuleError::Read {
                path: file.path.clone(),
                source: ReadError::Vanished,
            })?;
        let file_rules = read_file(bytes).map_err(|source| RuleError::Read {
            path: file.path.clone(),
            source,
        })?;
        for rule in file_rules {
            rules.entry(rule.id.clone()).or_default().push(rule);
        }
    }
    for versions in rules.values_mut() {
        versions.sort_by_key(|r| (r.version, r.updated_at));
    }
    Ok(rules)
}

/// The rule versions of one file.
fn read_file(bytes: Bytes) -> Result<Vec<Rule>, ReadError> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)?.build()?;
    let mut rules = Vec::new();
    for batch in reader {
        let batch = batch?;
        let columns = RuleColumns::of(&batch, rules.len())?;
        for row in 0..batch.num_rows() {
            rules.push(columns.rule(row, rules.len())?);
        }
    }
    Ok(rules)
}

/// The columns of one batch of `disable_rules`, typed (`repository_like` and `severity_below_rank` are
/// derived from `repository_glob` and `severity_below`, so they are not read back).
struct RuleColumns<'a> {
    id: &'a StringArray,
    version: &'a Int64Array,
    op: &'a StringArray,
    subscription: &'a StringArray,
    registry: &'a StringArray,
    repository_glob: &'a StringArray,
    finding_id: &'a StringArray,
    category: &'a StringArray,
    security_check_contains: &'a StringArray,
    cvss_below: &'a Float64Array,
    severity_below: &'a StringArray,
    patchable: &'a BooleanArray,
    reason: &'a StringArray,
    expires: &'a Date32Array,
    author: &'a StringArray,
    updated_at: &'a TimestampMicrosecondArray,
}

/// The column `name` of `batch` as an array of type `T`.
fn column<'a, T: Array + 'static>(
    batch: &'a RecordBatch,
    name: &'static str,
) -> Result<&'a T, ReadError> {
    let array = batch
        .column_by_name(name)
        .ok_or(ReadError::MissingColumn(name))?;
    array
        .as_any()
        .downcast_ref::<T>()
        .ok_or_else(|| ReadError::WrongType {
            column: name,
            found: array.data_type().clone(),
        })
}

impl<'a> RuleColumns<'a> {
    /// `first_row` is the file's row number of the batch's first row, for errors.
    fn of(batch: &'a RecordBatch, first_row: usize) -> Result<RuleColumns<'a>, ReadError> {
        let columns = RuleColumns {
            id: column(batch, "rule_id")?,
            version: column(batch, "version")?,
            op: column(batch, "op")?,
            subscription: column(batch, "subscription")?,
            registry: column(batch, "registry")?,
            repository_glob: column(batch, "repository_glob")?,
            finding_id: column(batch, "finding_id")?,
            category: column(batch, "category")?,
            security_check_contains: column(batch, "security_check_contains")?,
            cvss_below: column(batch, "cvss_below")?,
            severity_below: column(batch, "severity_below")?,
            patchable: column(batch, "patchable")?,
            reason: column(batch, "reason")?,
            expires: column(batch, "expires")?,
            author: column(batch, "author")?,
            updated_at: column(batch, "updated_at")?,
        };
        // Read as they are, nulls in these would become empty text or 1970.
        let required: [(&'static str, &dyn Array); 7] = [
            ("rule_id", columns.id),
            ("version", columns.version),
            ("op", columns.op),
            ("subscription", columns.subscription),
            ("reason", columns.reason),
            ("author", columns.author),
            ("updated_at", columns.updated_at),
        ];
        for (column, array) in required {
            if let Some(row) = (0..array.len()).find(|&row| array.is_null(row)) {
                return Err(ReadError::Null {
                    row: first_row + row,
                    column,
                });
            }
        }
        Ok(columns)
    }

    /// The rule version in `row`, the file's row `row_in_file`.
    fn rule(&self, row: usize, row_in_file: usize) -> Result<Rule, ReadError> {
        let op = self.op.value(row);
        let micros = self.updated_at.value(row);
        Ok(Rule {
            id: self.id.value(row).to_string(),
            version: self.version.value(row),
            op: RuleOp::parse(op).ok_or_else(|| ReadError::UnknownOp {
                row: row_in_file,
                op: op.to_string(),
            })?,
            spec: RuleSpec {
                subscription: self.subscription.value(row).to_string(),
                criteria: self.criteria(row, row_in_file)?,
                reason: self.reason.value(row).to_string(),
                expires: self.expires(row, row_in_file)?,
                author: self.author.value(row).to_string(),
            },
            updated_at: DateTime::from_timestamp_micros(micros).ok_or(ReadError::Timestamp {
                row: row_in_file,
                micros,
            })?,
        })
    }

    fn criteria(&self, row: usize, row_in_file: usize) -> Result<RuleCriteria, ReadError> {
        let text =
            |array: &StringArray| (!array.is_null(row)).then(|| array.value(row).to_string());
        let severity_below = text(self.severity_below)
            .map(|text| {
                severity_level(&text).ok_or(ReadError::Severity {
                    row: row_in_file,
                    text,
                })
            })
            .transpose()?;
        Ok(RuleCriteria {
            registry: text(self.registry),
            repository: text(self.repository_glob),
            finding_id: text(self.finding_id),
            category: text(self.category),
            security_check_contains: text(self.security_check_contains),
            cvss_below: (!self.cvss_below.is_null(row)).then(|| self.cvss_below.value(row)),
            severity_below,
            patchable: (!self.patchable.is_null(row)).then(|| self.patchable.value(row)),
        })
    }

    fn expires(&self, row: usize, row_in_file: usize) -> Result<Option<NaiveDate>, ReadError> {
        if self.expires.is_null(row) {
            return Ok(None);
        }
        let days = self.expires.value(row);
        self.expires
            .value_as_date(row)
            .map(Some)
            .ok_or(ReadError::Expires {
                row: row_in_file,
                days,
            })
    }
}

/// The current version of each rule that is not deleted (expired ones included), optionally of one
/// subscription, by id.
pub async fn list(
    warehouse: &Warehouse,
    subscription: Option<&str>,
) -> Result<Vec<Rule>, RuleError> {
    Ok(current(read_all(warehouse).await?)
        .filter(|rule| subscription.is_none_or(|s| rule.spec.subscription == s))
        .collect())
}

/// The current version of each rule in `files` that is not deleted (a session reads the rules from the
/// files it lists for its `disable_rules` table).
pub async fn list_in(
    warehouse: &Warehouse,
    files: &[read::PartitionFile],
) -> Result<Vec<Rule>, RuleError> {
    Ok(current(read_versions(warehouse, files).await?).collect())
}

fn current(rules: BTreeMap<String, Vec<Rule>>) -> impl Iterator<Item = Rule> {
    rules
        .into_values()
        .filter_map(|mut versions| versions.pop())
        .filter(|rule| rule.op != RuleOp::Delete)
}

/// The current version of one rule.
pub async fn show(warehouse: &Warehouse, id: &str) -> Result<Rule, RuleError> {
    list(warehouse, None)
        .await?
        .into_iter()
        .find(|r| r.id == id)
        .ok_or_else(|| RuleError::NotFound(id.to_string()))
}

/// Every version of one rule, deletion included, oldest first.
pub async fn history(warehouse: &Warehouse, id: &str) -> Result<Vec<Rule>, RuleError> {
    read_all(warehouse)
        .await?
        .remove(id)
        .ok_or_else(|| RuleError::NotFound(id.to_string()))
}

/// Applies `patch` to rule `id` as a new version.
pub async fn update(warehouse: &Warehouse, id: &str, patch: RulePatch) -> Result<Rule, RuleError> {
    let current = show(warehouse, id).await?;
    let spec = current.spec.patched(patch);
    validate(&spec)?;
    store(warehouse, id, current.version + 1, RuleOp::Update, &spec).await
}

/// Deletes rule `id`: its findings show again from the next query; its history stays.
pub async fn delete(warehouse: &Warehouse, id: &str, author: &str) -> Result<Rule, RuleError> {
    let current = show(warehouse, id).await?;
    let mut spec = current.spec;
    spec.author = author.to_string();
    store(warehouse, id, current.version + 1, RuleOp::Delete, &spec).await
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::ArrayRef;
    use arrow::datatypes::{Field, Schema};
    use parquet::arrow::ArrowWriter;

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

    #[test]
    fn ops_and_field_names_round_trip() {
        for op in RuleOp::ALL {
            assert_eq!(RuleOp::parse(op.as_str()), Some(op));
            assert_eq!(serde_json::to_value(op).unwrap(), op.as_str());
        }
        assert_eq!(RuleOp::parse("Add"), None);
        for criterion in Criterion::ALL {
            assert_eq!(Criterion::parse(criterion.name()), Some(criterion));
            assert_eq!(
                ClearField::parse(&criterion.name().replace('_', "-")).unwrap(),
                ClearField::Criterion(criterion)
            );
        }
        assert_eq!(ClearField::parse("expires").unwrap(), ClearField::Expires);
        let error = ClearField::parse("reason").unwrap_err().to_string();
        assert!(error.contains("--clear reason: not a criterion"), "{error}");
    }

    fn patch(criteria: RuleCriteria) -> RulePatch {
        RulePatch {
            subscription: Some("prod".into()),
            criteria,
            reason: Some("accepted".into()),
            author: "tester".into(),
            ..RulePatch::default()
        }
    }

    #[test]
    fn a_patch_clears_then_overrides_and_keeps_the_rest() {
        let spec = RuleSpec::from_patch(RulePatch {
            expires: NaiveDate::from_ymd_opt(2030, 1, 1),
            ..patch(RuleCriteria {
                category: Some("npm".into()),
                cvss_below: Some(5.0),
                patchable: Some(true),
                ..RuleCriteria::default()
            })
        })
        .unwrap();
        let patched = spec.clone().patched(RulePatch {
            criteria: RuleCriteria {
                cvss_below: Some(4.0),
                registry: Some("main".into()),
                ..RuleCriteria::default()
            },
            clear: vec![
                ClearField::Criterion(Criterion::Category),
                ClearField::Expires,
            ],
            author: "second".into(),
            ..RulePatch::default()
        });
        assert_eq!(
            patched,
            RuleSpec {
                criteria: RuleCriteria {
                    registry: Some("main".into()),
                    cvss_below: Some(4.0),
                    patchable: Some(true),
                    ..RuleCriteria::default()
                },
                expires: None,
                author: "second".into(),
                ..spec
            }
        );
    }

    #[test]
    fn a_rule_prints_its_criteria_among_its_other_fields() {
        let spec = RuleSpec::from_patch(patch(RuleCriteria {
            severity_below: Some(Severity::High),
            ..RuleCriteria::default()
        }))
        .unwrap();
        let rule = Rule {
            id: "rule-1".into(),
            version: 2,
            op: RuleOp::Update,
            spec,
            updated_at: DateTime::from_timestamp_micros(0).unwrap(),
        };
        let json = serde_json::to_value(&rule).unwrap();
        let keys: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut expected = vec![
            "id",
            "version",
            "op",
            "subscription",
            "registry",
            "repository",
            "finding_id",
            "category",
            "security_check_contains",
            "cvss_below",
            "severity_below",
            "patchable",
            "reason",
            "expires",
            "author",
            "updated_at",
        ];
        expected.sort_unstable();
        let mut keys = keys;
        keys.sort_unstable();
        assert_eq!(keys, expected);
        assert_eq!(json["op"], "update");
        assert_eq!(json["severity_below"], "High");
    }

    /// A warehouse with one rule whose stored `column` is replaced by `value`; the rule file's path.
    async fn corrupted(
        root: &std::path::Path,
        column: &str,
        value: impl FnOnce(&ArrayRef) -> ArrayRef,
    ) -> PathBuf {
        add(
            &Warehouse::local(root).unwrap(),
            RuleSpec::from_patch(patch(RuleCriteria {
                category: Some("npm".into()),
                ..RuleCriteria::default()
            }))
            .unwrap(),
        )
        .await
        .unwrap();
        let [path]: [PathBuf; 1] = std::fs::read_dir(root.join("disable_rules"))
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .collect::<Vec<_>>()
            .try_into()
            .unwrap();
        let bytes = Bytes::from(std::fs::read(&path).unwrap());
        let batch = ParquetRecordBatchReaderBuilder::try_new(bytes)
            .unwrap()
            .build()
            .unwrap()
            .next()
            .unwrap()
            .unwrap();
        let index = batch.schema().index_of(column).unwrap();
        let mut columns = batch.columns().to_vec();
        columns[index] = value(&columns[index]);
        let fields: Vec<Field> = batch
            .schema()
            .fields()
            .iter()
            .zip(&columns)
            .map(|(field, array)| {
                field
                    .as_ref()
                    .clone()
                    .with_data_type(array.data_type().clone())
            })
            .collect();
        let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap();
        let mut writer =
            ArrowWriter::try_new(std::fs::File::create(&path).unwrap(), batch.schema(), None)
                .unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
        path
    }

    async fn read_error(root: &std::path::Path) -> String {
        list(&Warehouse::local(root).unwrap(), None)
            .await
            .unwrap_err()
            .to_string()
    }

    #[tokio::test]
    async fn a_corrupt_timestamp_is_an_error_naming_the_file_not_1970() {
        let dir = tempfile::tempdir().unwrap();
        let path = corrupted(dir.path(), "updated_at", |old| {
            Arc::new(
                TimestampMicrosecondArray::from(vec![i64::MAX])
                    .with_data_type(old.data_type().clone()),
            )
        })
        .await;
        let error = read_error(dir.path()).await;
        assert!(error.contains(&path.display().to_string()), "{error}");
        assert!(error.contains("updated_at"), "{error}");
    }

    #[tokio::test]
    async fn an_unknown_op_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = corrupted(dir.path(), "op", |_| {
            Arc::new(StringArray::from(vec!["rename"]))
        })
        .await;
        let error = read_error(dir.path()).await;
        assert!(error.contains(&path.display().to_string()), "{error}");
        assert!(
            error.contains("op \"rename\" is not add, update or delete"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn an_unknown_stored_severity_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = corrupted(dir.path(), "severity_below", |_| {
            Arc::new(StringArray::from(vec![Some("Urgent")]))
        })
        .await;
        let error = read_error(dir.path()).await;
        assert!(error.contains(&path.display().to_string()), "{error}");
        assert!(error.contains("severity_below \"Urgent\""), "{error}");
    }

    #[tokio::test]
    async fn an_out_of_range_expiry_is_an_error_not_a_rule_without_expiry() {
        let dir = tempfile::tempdir().unwrap();
        corrupted(dir.path(), "expires", |_| {
            Arc::new(Date32Array::from(vec![Some(i32::MAX)]))
        })
        .await;
        let error = read_error(dir.path()).await;
        assert!(error.contains("expires"), "{error}");
    }

    #[tokio::test]
    async fn a_column_of_the_wrong_type_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = corrupted(dir.path(), "version", |_| {
            Arc::new(StringArray::from(vec!["1"]))
        })
        .await;
        let error = read_error(dir.path()).await;
        assert!(error.contains(&path.display().to_string()), "{error}");
        assert!(error.contains("column version is Utf8"), "{error}");
    }
}
