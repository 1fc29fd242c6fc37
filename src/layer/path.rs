//! Layer walk: path normalisation shared by the tar walk and the merge, so `./a`, `/a` and `a` are one
//! file and `..` can never climb above the image root.

/// Normalises an archive path or a resolved link target: drops leading `/` and `./`, empty and `.`
/// components and a trailing `/`; `..` removes the previous component and stops at the root. Returns
/// the normalised path and whether a `..` tried to climb above the root.
pub(crate) fn normalise(path: &str) -> (String, bool) {
    let mut parts: Vec<&str> = Vec::new();
    let mut escaped = false;
    for component in path.split('/') {
        match component {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    escaped = true;
                }
            }
            other => parts.push(other),
        }
    }
    (parts.join("/"), escaped)
}

/// The directory holding `path` (`""` for entries at the root).
pub(crate) fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(index) => &path[..index],
        None => "",
    }
}

/// Resolves a link target seen at `link_path` to a normalised image path.
pub(crate) fn resolve_target(link_path: &str, target: &str, hardlink: bool) -> String {
    if hardlink || target.starts_with('/') {
        return normalise(target).0;
    }
    let dir = parent(link_path);
    if dir.is_empty() {
        normalise(target).0
    } else {
        normalise(&format!("{dir}/{target}")).0
    }
}

/// Whether `path` is `dir` itself or lies below it (`dir` `""` is the root and holds everything).
pub(crate) fn is_within(path: &str, dir: &str) -> bool {
    dir.is_empty()
        || path == dir
        || (path.len() > dir.len() && path.starts_with(dir) && path.as_bytes()[dir.len()] == b'/')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalise_table() {
        let cases = [
            ("./a", "a", false),
            ("/a", "a", false),
            ("a/", "a", false),
            ("./etc//os-release", "etc/os-release", false),
            ("../../etc/passwd", "etc/passwd", true),
            ("a/../../b", "b", true),
            ("a/b/../c", "a/c", false),
            ("/", "", false),
            (".", "", false),
        ];
        for (input, expected, escaped) in cases {
            assert_eq!(normalise(input), (expected.to_string(), escaped), "{input}");
        }
    }

    #[test]
    fn link_targets_resolve_relative_to_their_directory() {
        assert_eq!(
            resolve_target("etc/os-release", "../usr/lib/os-release", false),
            "usr/lib/os-release"
        );
        assert_eq!(resolve_target("etc/a", "/x/y", false), "x/y");
        assert_eq!(resolve_target("a", "b", false), "b");
        assert_eq!(resolve_target("etc/a", "x/y", true), "x/y");
        assert_eq!(resolve_target("etc/a", "../../../../x", false), "x");
    }

    #[test]
    fn within_respects_component_boundaries() {
        assert!(is_within("etc/apt/x", "etc"));
        assert!(is_within("etc", "etc"));
        assert!(!is_within("etcetera", "etc"));
        assert!(is_within("anything", ""));
    }
}
