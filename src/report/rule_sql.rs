//! The disable rules as SQL, from one template (`rule_matches.sql`: when rule `r` hides finding `f`): a join
//! predicate over the `disable_rules` rows, for views that say which rule hid a finding; the rules in force
//! written out as literals, for views that only need to know whether a finding is hidden (a filter is far
//! cheaper than a join over millions of findings); and the hidden findings counted per image, one query per
//! disjoint part of the warehouse the rules reach, for the image assessments.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;

use super::quote;
use super::rules::{glob_to_like, Criterion, Rule, RuleSpec};
use crate::warehouse::write::severity_rank;

/// When rule `r` hides finding `f`: every criterion the rule sets holds. One clause per line, each marked
/// with the criterion it tests.
pub const RULE_MATCHES_SQL: &str = include_str!("rule_matches.sql");

/// The template's clauses with the criterion each tests.
fn clauses() -> impl Iterator<Item = (&'static str, &'static str)> {
    RULE_MATCHES_SQL
        .lines()
        .filter_map(|line| line.rsplit_once(" -- "))
        .map(|(clause, criterion)| (clause.trim(), criterion.trim()))
}

/// Whether `spec` sets the criterion a template clause is marked with (the subscription always is). A
/// marker that names no criterion counts as set, so its clause is kept: a rule never hides more than the
/// template says (`every_template_marker_names_a_criterion` keeps the markers in step).
fn sets(spec: &RuleSpec, marker: &str) -> bool {
    Criterion::parse(marker).is_none_or(|criterion| spec.criteria.sets(criterion))
}

/// The SQL literal of the `disable_rules` column `column` in `spec`'s row.
fn literal(spec: &RuleSpec, column: &str) -> String {
    let text = |value: Option<&str>| value.map_or("NULL".to_string(), quote);
    let criteria = &spec.criteria;
    match column {
        "subscription" => quote(&spec.subscription),
        "registry" => text(criteria.registry.as_deref()),
        "repository_like" => text(criteria.repository.as_deref().map(glob_to_like).as_deref()),
        "finding_id" => text(criteria.finding_id.as_deref()),
        "category" => text(criteria.category.as_deref()),
        "security_check_contains" => text(criteria.security_check_contains.as_deref()),
        // `{:?}` keeps a decimal point: 7 is written 7.0, a floating-point literal in every dialect.
        "cvss_below" => criteria
            .cvss_below
            .map_or("NULL".into(), |v| format!("{v:?}")),
        "severity_below_rank" => criteria
            .severity_below
            .map_or("NULL".into(), |s| severity_rank(s).to_string()),
        "patchable" => criteria
            .patchable
            .map_or("NULL".into(), |p| p.to_string().to_uppercase()),
        // Not a column of `disable_rules`: the clause cannot hold, so it hides nothing.
        _ => "NULL".into(),
    }
}

/// `clause` with every `r.<column>` replaced by `spec`'s value.
fn with_values(clause: &str, spec: &RuleSpec) -> String {
    let identifier = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut out = String::with_capacity(clause.len());
    let mut rest = clause;
    while let Some(at) = rest.find("r.") {
        let (before, after) = (&rest[..at], &rest[at + 2..]);
        out.push_str(before);
        if before.ends_with(identifier) {
            out.push_str("r.");
            rest = after;
            continue;
        }
        let end = after.find(|c| !identifier(c)).unwrap_or(after.len());
        out.push_str(&literal(spec, &after[..end]));
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

fn any(disjuncts: Vec<String>) -> String {
    if disjuncts.is_empty() {
        "false".to_string()
    } else {
        disjuncts.join("\n    OR ")
    }
}

/// The join predicate over rule rows `r`, with only the clauses of criteria some rule sets (the others
/// hold for every rule, and leaving them out spares reading their columns); `false` when there is no rule.
pub fn rule_predicate(rules: &[Rule]) -> String {
    if rules.is_empty() {
        return "false".to_string();
    }
    clauses()
        .filter(|(_, criterion)| rules.iter().any(|r| sets(&r.spec, criterion)))
        .map(
            |(clause, criterion)| match (criterion, rule_column(clause)) {
                // A rule row leaves the criteria it does not set NULL: those hold.
                ("subscription", _) | (_, None) => clause.to_string(),
                (_, Some(column)) => format!("(r.{column} IS NULL OR {clause})"),
            },
        )
        .collect::<Vec<_>>()
        .join("\nAND ")
}

/// The first rule column (`r.<column>`) a clause reads.
fn rule_column(clause: &str) -> Option<&str> {
    let identifier = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let at = clause
        .match_indices("r.")
        .find(|(at, _)| !clause[..*at].ends_with(identifier))?
        .0;
    let after = &clause[at + 2..];
    Some(&after[..after.find(|c| !identifier(c)).unwrap_or(after.len())])
}

/// The rules of `rules` in force on `today`: a rule stops applying on its expiry date.
pub fn in_force(rules: &[Rule], today: NaiveDate) -> Vec<&Rule> {
    rules
        .iter()
        .filter(|r| r.spec.expires.is_none_or(|expires| expires > today))
        .collect()
}

/// When `rule` hides finding `f`, its values written in: the clause of every criterion it sets, or, within
/// a [`Scope`], all but its subscription and registry (the scope's listing selects those).
fn hides(rule: &Rule, within_scope: bool) -> String {
    let clauses: Vec<String> = clauses()
        .filter(|(_, criterion)| {
            !(within_scope && matches!(*criterion, "subscription" | "registry"))
        })
        .filter(|(_, criterion)| sets(&rule.spec, criterion))
        .map(|(clause, _)| with_values(clause, &rule.spec))
        .collect();
    if clauses.is_empty() {
        "TRUE".to_string()
    } else {
        format!("({})", clauses.join(" AND "))
    }
}

/// When some rule of `rules` hides finding `f`, with the rules' values written in; `false` for no rule.
pub fn hidden_by(rules: &[&Rule]) -> String {
    any(rules.iter().map(|rule| hides(rule, false)).collect())
}

/// The partitions (`f.subscription`, `f.registry`) that `rules` reach: implied by [`hidden_by`], and
/// stated apart so that readers skip the files of the others.
pub fn reach(rules: &[&Rule]) -> String {
    any(rules
        .iter()
        .map(|rule| {
            let registry = rule.spec.criteria.registry.as_deref();
            format!("({})", partitions(&rule.spec.subscription, registry, &[]))
        })
        .collect())
}

/// The partitions of `subscription` and, when given, `registry`, except the registries in `but`.
fn partitions(subscription: &str, registry: Option<&str>, but: &[&str]) -> String {
    let mut filter = format!("f.subscription = {}", quote(subscription));
    if let Some(registry) = registry {
        filter.push_str(&format!(" AND f.registry = {}", quote(registry)));
    }
    if !but.is_empty() {
        let names: Vec<String> = but.iter().map(|g| quote(g)).collect();
        filter.push_str(&format!(" AND f.registry NOT IN ({})", names.join(", ")));
    }
    filter
}

/// One query over findings `f` per [`Scope`]: `{subscription}` is the scope's, `{partitions}` selects its
/// files, `{hidden}` says when one of its rules hides a finding. Each counts the hidden findings per scan and
/// image, by severity and patchable.
const HIDDEN_COUNTS_SQL: &str = include_str!("hidden_counts.sql");

/// The registries of a [`Scope`].
#[derive(Debug, PartialEq)]
enum Registries<'a> {
    One(&'a str),
    /// Every registry of the subscription but these (the ones that have scopes of their own).
    AllBut(Vec<&'a str>),
}

/// Partitions some rules reach, disjoint from every other scope: one registry a rule names, or the
/// registries of the subscription that no rule names. Each scope's partitions are selected by the listing
/// alone, so no row is compared with a subscription or registry.
#[derive(Debug)]
struct Scope<'a> {
    subscription: &'a str,
    registries: Registries<'a>,
    rules: Vec<&'a Rule>,
}

fn scopes<'a>(rules: &[&'a Rule]) -> Vec<Scope<'a>> {
    let mut by_subscription: BTreeMap<&str, Vec<&Rule>> = BTreeMap::new();
    for rule in rules {
        by_subscription
            .entry(rule.spec.subscription.as_str())
            .or_default()
            .push(rule);
    }
    let mut scopes = Vec::new();
    for (subscription, rules) in by_subscription {
        let named: BTreeSet<&str> = rules
            .iter()
            .filter_map(|r| r.spec.criteria.registry.as_deref())
            .collect();
        for &registry in &named {
            scopes.push(Scope {
                subscription,
                registries: Registries::One(registry),
                rules: rules
                    .iter()
                    .copied()
                    .filter(|r| {
                        let named = r.spec.criteria.registry.as_deref();
                        named.is_none_or(|g| g == registry)
                    })
                    .collect(),
            });
        }
        let everywhere: Vec<&Rule> = rules
            .iter()
            .copied()
            .filter(|r| r.spec.criteria.registry.is_none())
            .collect();
        if !everywhere.is_empty() {
            scopes.push(Scope {
                subscription,
                registries: Registries::AllBut(named.into_iter().collect()),
                rules: everywhere,
            });
        }
    }
    scopes
}

/// The findings `rules` hide, counted per scan and image: one query per [`Scope`], joined by `UNION ALL`
/// (scopes are disjoint, so a finding is counted once however many rules hide it). With no rule, a query
/// that reads nothing.
pub fn hidden_counts(rules: &[&Rule]) -> String {
    let fill = |subscription: &str, partitions: &str, hidden: &str| {
        HIDDEN_COUNTS_SQL
            .trim()
            .replace("{subscription}", subscription)
            .replace("{partitions}", partitions)
            .replace("{hidden}", hidden)
    };
    let scopes = scopes(rules);
    if scopes.is_empty() {
        return fill("''", "false", "false");
    }
    scopes
        .iter()
        .map(|scope| {
            let partitions = match &scope.registries {
                Registries::One(registry) => partitions(scope.subscription, Some(registry), &[]),
                Registries::AllBut(named) => partitions(scope.subscription, None, named),
            };
            let hidden: Vec<String> = scope.rules.iter().map(|r| hides(r, true)).collect();
            fill(
                &quote(scope.subscription),
                &partitions,
                &hidden.join(" OR "),
            )
        })
        .collect::<Vec<_>>()
        .join("\nUNION ALL\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matcher::Severity;
    use crate::report::rules::{RuleOp, RulePatch};

    fn rule(f: impl FnOnce(&mut RuleSpec)) -> Rule {
        let mut spec = RuleSpec::from_patch(RulePatch {
            subscription: Some("o'brien".into()),
            reason: Some("r".into()),
            author: "a".into(),
            ..RulePatch::default()
        })
        .unwrap();
        f(&mut spec);
        Rule {
            id: "rule-1".into(),
            version: 1,
            op: RuleOp::Add,
            spec,
            updated_at: Default::default(),
        }
    }

    #[test]
    fn every_template_column_has_a_value() {
        let full = rule(|s| {
            s.criteria.registry = Some("main".into());
            s.criteria.repository = Some("apps/*_x".into());
            s.criteria.finding_id = Some("CVE-1".into());
            s.criteria.category = Some("Debian".into());
            s.criteria.security_check_contains = Some("overflow".into());
            s.criteria.cvss_below = Some(7.0);
            s.criteria.severity_below = Some(Severity::High);
            s.criteria.patchable = Some(false);
        });
        let sql = hidden_by(&[&full]);
        assert!(!sql.contains("r."), "{sql}");
        assert!(!sql.contains("NULL"), "{sql}");
        for expected in [
            "'o''brien' = f.subscription",
            "f.repository LIKE 'apps/%\\_x' ESCAPE",
            "f.cvss_v3_score < 7.0",
            "f.severity_rank < 3",
            "FALSE = f.patchable",
        ] {
            assert!(sql.contains(expected), "{expected} in {sql}");
        }
    }

    #[test]
    fn a_rule_states_only_its_own_criteria() {
        let one = rule(|s| s.criteria.category = Some("npm".into()));
        let two = rule(|s| {
            s.subscription = "dev".into();
            s.criteria.registry = Some("main".into());
        });
        assert_eq!(
            hidden_by(&[&one, &two]),
            "('o''brien' = f.subscription AND lower('npm') = lower(f.category))\n    OR \
             ('dev' = f.subscription AND 'main' = f.registry)"
        );
        assert_eq!(
            reach(&[&one, &two]),
            "(f.subscription = 'o''brien')\n    OR (f.subscription = 'dev' AND f.registry = 'main')"
        );
        assert_eq!(hidden_by(&[]), "false");
        assert_eq!(rule_predicate(&[]), "false");
        assert_eq!(
            rule_predicate(&[one, two]),
            "r.subscription = f.subscription\nAND (r.registry IS NULL OR r.registry = f.registry)\n\
             AND (r.category IS NULL OR lower(r.category) = lower(f.category))"
        );
    }

    #[test]
    fn scopes_are_disjoint_and_carry_every_rule_that_reaches_them() {
        let everywhere = rule(|s| s.criteria.category = Some("npm".into()));
        let main = rule(|s| s.criteria.registry = Some("main".into()));
        let other = rule(|s| {
            s.subscription = "dev".into();
            s.criteria.registry = Some("edge".into());
            s.criteria.patchable = Some(true);
        });
        let rules = [&everywhere, &main, &other];
        let found = scopes(&rules);
        let summary: Vec<(&str, &Registries, usize)> = found
            .iter()
            .map(|s| (s.subscription, &s.registries, s.rules.len()))
            .collect();
        assert_eq!(
            summary,
            [
                ("dev", &Registries::One("edge"), 1),
                ("o'brien", &Registries::One("main"), 2),
                ("o'brien", &Registries::AllBut(vec!["main"]), 1),
            ]
        );
        let sql = hidden_counts(&rules);
        assert_eq!(sql.matches("UNION ALL").count(), 2, "{sql}");
        assert!(
            sql.contains("f.subscription = 'o''brien' AND f.registry NOT IN ('main')"),
            "{sql}"
        );
        assert!(
            sql.contains("AND ((lower('npm') = lower(f.category)) OR TRUE)"),
            "a rule without other criteria hides its whole scope: {sql}"
        );
        assert!(hidden_counts(&[]).contains("WHERE false AND (false)"));
    }

    #[test]
    fn every_template_marker_names_a_criterion() {
        let markers: Vec<&str> = clauses().map(|(_, marker)| marker).collect();
        assert!(markers.len() > Criterion::ALL.len(), "{markers:?}");
        for marker in markers {
            assert!(
                marker == "subscription" || Criterion::parse(marker).is_some(),
                "{marker:?} names no criterion"
            );
        }
        for criterion in Criterion::ALL {
            assert!(
                clauses().any(|(_, marker)| marker == criterion.name()),
                "no clause tests {}",
                criterion.name()
            );
        }
    }

    #[test]
    fn expired_rules_are_not_in_force() {
        let day = |d: u32| NaiveDate::from_ymd_opt(2026, 3, d).unwrap();
        let expiring = rule(|s| s.expires = Some(day(10)));
        let open = rule(|_| {});
        let rules = [expiring, open];
        assert_eq!(in_force(&rules, day(9)).len(), 2);
        assert_eq!(in_force(&rules, day(10)).len(), 1);
    }
}
