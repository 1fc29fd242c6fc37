//! Layer merge: stacks an image's layer inventories in order (whiteouts and opaque directories applied,
//! the topmost file winning), resolves claimed links in that view, attributes every package to the layer
//! that introduced it, and decides the image's coverage so nothing is reported clean by omission.

use std::collections::{BTreeMap, HashMap};

use crate::extract::Extracted;
use crate::model::{Coverage, CoverageStatus, Inventory, OsIdentity, Package, PackageType};

use super::path;
use super::{FileFailure, LayerInventory, LinkKind};

/// Link hops followed before giving up, so `a -> b -> a` ends.
pub const MAX_LINK_HOPS: usize = 40;

/// Reasons listed in a coverage message before the rest are counted.
const MAX_REASONS: usize = 8;

/// os-release locations in order of precedence.
const OS_RELEASE_PATHS: [&str; 2] = ["etc/os-release", "usr/lib/os-release"];

/// What one extractor sees at one path of the merged view.
#[derive(Debug, Clone)]
enum Node<'a> {
    File {
        result: &'a Result<Extracted, FileFailure>,
    },
    Link {
        target: &'a str,
        kind: LinkKind,
    },
}

/// The merged view: path -> extractor name -> node.
type View<'a> = BTreeMap<&'a str, BTreeMap<&'a str, Node<'a>>>;

/// Removes `dir` and everything below it (`""` is the root).
fn remove_within(view: &mut View<'_>, dir: &str, keep_dir_itself: bool) -> bool {
    let doomed: Vec<&str> = view
        .range::<str, _>((std::ops::Bound::Included(dir), std::ops::Bound::Unbounded))
        .map(|(key, _)| *key)
        .take_while(|key| key.starts_with(dir))
        .filter(|key| path::is_within(key, dir) && !(keep_dir_itself && *key == dir))
        .collect();
    for key in &doomed {
        view.remove(key);
    }
    !doomed.is_empty()
}

/// Applies one layer on top of the view; returns whether anything changed.
fn apply<'a>(view: &mut View<'a>, layer: &'a LayerInventory) -> bool {
    let mut changed = false;
    // Whiteouts hide lower layers only: apply them before adding this layer's own entries.
    for dir in &layer.opaque_dirs {
        changed |= remove_within(view, dir, true);
    }
    for deleted in &layer.whiteouts {
        changed |= remove_within(view, deleted, false);
    }
    // A new version of a path replaces every extractor's view of it, not just the same extractor's.
    for file in &layer.files {
        view.remove(file.path.as_str());
    }
    for link in &layer.links {
        view.remove(link.path.as_str());
    }
    for file in &layer.files {
        view.entry(file.path.as_str()).or_default().insert(
            file.extractor.as_str(),
            Node::File {
                result: &file.result,
            },
        );
        changed = true;
    }
    for link in &layer.links {
        view.entry(link.path.as_str()).or_default().insert(
            link.extractor.as_str(),
            Node::Link {
                target: &link.target,
                kind: link.kind,
            },
        );
        changed = true;
    }
    changed
}

/// Follows links from `path` for `extractor` until a file; `Err` says why it could not.
fn resolve<'a>(
    view: &View<'a>,
    extractor: &str,
    start: &str,
) -> Result<(String, &'a Result<Extracted, FileFailure>), LinkError> {
    let mut current = start.to_string();
    for _ in 0..=MAX_LINK_HOPS {
        match view
            .get(current.as_str())
            .and_then(|nodes| nodes.get(extractor))
        {
            Some(Node::File { result }) => return Ok((current, result)),
            Some(Node::Link { target, kind }) => {
                current = path::resolve_target(&current, target, *kind == LinkKind::Hardlink);
            }
            None => {
                return Err(LinkError::Dangling {
                    start: start.to_string(),
                    target: current,
                    extractor: extractor.to_string(),
                })
            }
        }
    }
    Err(LinkError::Loop {
        start: start.to_string(),
    })
}

/// Why a claimed link leads to no file in the merged view; a reason for `partial` coverage.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// The link (or a link it leads to) points at a path no layer holds for this extractor.
    #[error(
        "link {start} -> {target}: target is not in the image (or was not read by {extractor})"
    )]
    Dangling {
        start: String,
        target: String,
        extractor: String,
    },
    /// More than [`MAX_LINK_HOPS`] links in a row.
    #[error("link {start}: more than {MAX_LINK_HOPS} hops (a link loop)")]
    Loop { start: String },
}

/// Identity of a package across layers: the same package at the same version from the same file.
type PackageKey = (String, String, String, String, Option<String>);

fn key_of(package: &Package) -> PackageKey {
    (
        package.extractor.clone(),
        package.location.clone(),
        package.name.clone(),
        package.version.clone(),
        package.arch.clone(),
    )
}

/// Everything the view yields: packages from files (links only lead to files already in the view, so
/// they add no packages), OS identities by path, files OS packages own, and the problems met.
struct Visible<'a> {
    packages: Vec<Package>,
    os: Vec<(String, OsIdentity)>,
    problems: Vec<String>,
    /// Path -> owning OS package, from dpkg and rpm file lists that are still visible.
    owned: HashMap<&'a str, &'a str>,
}

impl Visible<'_> {
    fn empty() -> Self {
        Visible {
            packages: Vec::new(),
            os: Vec::new(),
            problems: Vec::new(),
            owned: HashMap::new(),
        }
    }
}

fn collect<'a>(view: &View<'a>) -> Visible<'a> {
    let mut visible = Visible::empty();
    for (path, nodes) in view {
        for (extractor, node) in nodes {
            match node {
                Node::File { result } => match result {
                    Ok(Extracted::Packages(packages)) => {
                        for package in packages {
                            let mut package = package.clone();
                            if package.location.is_empty() {
                                package.location = path.to_string();
                            }
                            if package.extractor.is_empty() {
                                package.extractor = extractor.to_string();
                            }
                            visible.packages.push(package);
                        }
                    }
                    Ok(Extracted::Os(identity)) => {
                        visible.os.push((path.to_string(), identity.clone()))
                    }
                    Ok(Extracted::OwnedFiles(lists)) => {
                        for list in lists {
                            for owned in &list.paths {
                                visible.owned.insert(owned.as_str(), list.owner.as_str());
                            }
                        }
                    }
                    Err(failure) => visible.problems.push(failure.to_string()),
                },
                Node::Link { .. } => match resolve(view, extractor, path) {
                    Ok((_, Ok(Extracted::Os(identity)))) => {
                        visible.os.push((path.to_string(), identity.clone()))
                    }
                    // Packages behind a link are counted at the link's target.
                    Ok((_, Ok(Extracted::Packages(_) | Extracted::OwnedFiles(_)))) => {}
                    // The target's own failure is already reported at the target.
                    Ok((_, Err(_))) => {}
                    Err(error) => visible.problems.push(error.to_string()),
                },
            }
        }
    }
    visible
}

/// The os-release that decides the image's OS: `/etc/os-release` first, then `/usr/lib/os-release`,
/// then any other path an extractor reported one at.
fn choose_os(mut found: Vec<(String, OsIdentity)>) -> Option<OsIdentity> {
    found.sort_by_key(|(path, _)| {
        let rank = OS_RELEASE_PATHS
            .iter()
            .position(|known| known == path)
            .unwrap_or(OS_RELEASE_PATHS.len());
        (rank, path.clone())
    });
    found.into_iter().next().map(|(_, identity)| identity)
}

/// Merges an image's layers (lowest first) into its inventory. `unsupported_os` is the caller's verdict
/// from the platform (e.g. `Some("windows")`): the image is then `unsupported-os` whatever its layers
/// hold. The image name, digest and platform are left for the caller to set.
pub fn merge(layers: &[LayerInventory], unsupported_os: Option<String>) -> Inventory {
    let mut view: View<'_> = BTreeMap::new();
    let mut introduced: HashMap<PackageKey, usize> = HashMap::new();
    let mut problems: Vec<String> = Vec::new();
    let mut failed_layers = 0usize;
    let mut visible: Option<Visible> = None;
    for (index, layer) in layers.iter().enumerate() {
        if !layer.errors.is_empty() {
            // A layer that could not be read contributes nothing we can trust, but lower layers stay:
            // the reason makes the image partial.
            failed_layers += 1;
            for error in &layer.errors {
                problems.push(format!("layer {index} ({}): {error}", layer.digest));
            }
            continue;
        }
        for problem in &layer.problems {
            problems.push(format!("layer {index} ({}): {problem}", layer.digest));
        }
        if !apply(&mut view, layer) && visible.is_some() {
            continue;
        }
        let now = collect(&view);
        // A package keeps the layer it first appeared in as long as it stays visible without a break.
        let mut next = HashMap::with_capacity(now.packages.len());
        for package in &now.packages {
            let key = key_of(package);
            let first = introduced.get(&key).copied().unwrap_or(index);
            next.insert(key, first);
        }
        introduced = next;
        visible = Some(now);
    }
    let visible = visible.unwrap_or_else(Visible::empty);
    problems.extend(visible.problems);
    let os = choose_os(visible.os);
    let mut packages = visible.packages;
    drop_os_owned(&mut packages, &visible.owned);
    let mut os_packages_without_ecosystem = 0usize;
    for package in &mut packages {
        if let Some(&layer) = introduced.get(&key_of(package)) {
            package.layer_digest = Some(layers[layer].digest.to_string());
        }
        if package.package_type == PackageType::Os && package.ecosystem.is_empty() {
            match os.as_ref().and_then(|os| os.ecosystem.as_ref()) {
                Some(ecosystem) => package.ecosystem = ecosystem.clone(),
                None => os_packages_without_ecosystem += 1,
            }
        }
    }
    packages.sort();
    packages.dedup();
    let os_packages = packages
        .iter()
        .filter(|package| package.package_type == PackageType::Os)
        .count();
    let coverage = coverage(CoverageInputs {
        os_packages,
        layers: layers.len(),
        failed_layers,
        problems,
        os: os.as_ref(),
        packages: packages.len(),
        os_packages_without_ecosystem,
        unsupported_os,
    });
    Inventory {
        image: String::new(),
        digest: None,
        platform: None,
        os,
        packages,
        coverage,
    }
}

/// Drops language packages whose metadata an OS package installed: the distro's own build of a library
/// (Debian's `python3-urllib3`) is matched against the distro's advisories through its OS package, and
/// must not also be matched against the language ecosystem's advisories for a version it patched.
fn drop_os_owned(packages: &mut Vec<Package>, owned: &HashMap<&str, &str>) {
    if owned.is_empty() {
        return;
    }
    packages.retain(|package| {
        if package.package_type != PackageType::Language {
            return true;
        }
        let location = package.location.as_str();
        // Metadata files also count as owned when their package directory (`x.dist-info`,
        // `node_modules/x`) is listed; other files (binaries, jars, lock files) only by their own
        // path, since every package lists shared directories like `usr/bin`.
        let in_package_dir = ["/METADATA", "/PKG-INFO", "/package.json"]
            .iter()
            .any(|suffix| location.ends_with(suffix));
        let owner = owned.get(location).or_else(|| {
            in_package_dir
                .then(|| owned.get(path::parent(location)))
                .flatten()
        });
        match owner {
            Some(owner) => {
                tracing::debug!(
                    package = %package.name,
                    location,
                    owner,
                    "language package installed by an OS package; reported through the OS package only"
                );
                false
            }
            None => true,
        }
    });
}

struct CoverageInputs<'a> {
    /// How many of `packages` came from the OS package manager.
    os_packages: usize,
    layers: usize,
    failed_layers: usize,
    problems: Vec<String>,
    os: Option<&'a OsIdentity>,
    packages: usize,
    os_packages_without_ecosystem: usize,
    unsupported_os: Option<String>,
}

fn summarise(reasons: &[String]) -> String {
    let mut text = reasons
        .iter()
        .take(MAX_REASONS)
        .cloned()
        .collect::<Vec<_>>()
        .join("; ");
    if reasons.len() > MAX_REASONS {
        text.push_str(&format!("; and {} more", reasons.len() - MAX_REASONS));
    }
    text
}

/// Decides the coverage status. Order matters: the caller's unsupported-OS verdict first, then a wholly
/// unreadable image, then anything missing (partial), then what was found.
fn coverage(inputs: CoverageInputs<'_>) -> Coverage {
    let status = |status, reason: String| Coverage { status, reason };
    if let Some(reason) = inputs.unsupported_os {
        return status(CoverageStatus::UnsupportedOs, reason);
    }
    if inputs.layers == 0 {
        return status(CoverageStatus::Failed, "image has no layers".into());
    }
    if inputs.failed_layers == inputs.layers {
        return status(
            CoverageStatus::Failed,
            format!("no layer could be read: {}", summarise(&inputs.problems)),
        );
    }
    let mut reasons = inputs.problems;
    reasons.dedup();
    if inputs.os.is_none() && !reasons.is_empty() {
        reasons.push("no os-release found".into());
    }
    if let Some(os) = inputs.os {
        if inputs.os_packages_without_ecosystem > 0 {
            reasons.push(format!(
                "os-release ID={} VERSION_ID={} has no known OSV ecosystem; {} OS packages cannot be matched",
                os.id, os.version_id, inputs.os_packages_without_ecosystem
            ));
        }
    }
    if !reasons.is_empty() {
        return status(CoverageStatus::Partial, summarise(&reasons));
    }
    match (inputs.os, inputs.packages) {
        // Scratch with a binary that carries no build info: nothing recognisable, so say exactly that
        // rather than blame a missing os-release.
        (None, 0) => status(
            CoverageStatus::NoPackagesFound,
            "no os-release and no packages found".into(),
        ),
        // Scratch or distroless-static with Go binaries, jars...: language packages carry their own
        // ecosystem, so every package found can be matched and nothing read is left unassessed.
        (None, count) if inputs.os_packages == 0 => status(
            CoverageStatus::Complete,
            format!("no os-release; {count} language packages assessed on their own ecosystems"),
        ),
        (None, count) => status(
            CoverageStatus::NoOsRelease,
            format!(
                "{count} packages found but no os-release to attribute them to a distro release"
            ),
        ),
        (Some(os), 0) => status(
            CoverageStatus::NoPackagesFound,
            format!(
                "os-release says {} {} but no package database was found",
                os.id, os.version_id
            ),
        ),
        (Some(_), _) => status(CoverageStatus::Complete, String::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Link reasons become coverage reasons stored in the warehouse: their text must not drift.
    #[test]
    fn link_reasons_keep_their_text() {
        let mut view: View<'_> = BTreeMap::new();
        view.entry("etc/os-release").or_default().insert(
            "os/release",
            Node::Link {
                target: "../usr/lib/os-release",
                kind: LinkKind::Symlink,
            },
        );
        view.entry("a").or_default().insert(
            "os/release",
            Node::Link {
                target: "a",
                kind: LinkKind::Symlink,
            },
        );
        let dangling = resolve(&view, "os/release", "etc/os-release").unwrap_err();
        assert_eq!(
            dangling.to_string(),
            "link etc/os-release -> usr/lib/os-release: target is not in the image (or was not read by os/release)"
        );
        let looped = resolve(&view, "os/release", "a").unwrap_err();
        assert_eq!(looped, LinkError::Loop { start: "a".into() });
        assert_eq!(
            looped.to_string(),
            "link a: more than 40 hops (a link loop)"
        );
    }
}
