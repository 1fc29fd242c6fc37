//! The embedded default: the bundled example images (an OCI layout) and advisory sample, written out and
//! scanned into a local warehouse by `vigil demo`.

use std::path::{Path, PathBuf};

use crate::config::{self, Settings};

include!(concat!(env!("OUT_DIR"), "/demo_files.rs"));

/// The demo's configuration; paths are relative to the demo directory.
pub const DEMO_CONFIG: &str = r#"
warehouse = "warehouse"
advisory_db = "db"
cache = "cache"
schedules = "schedules"

[[subscription]]
id = "demo"

[[subscription.registry]]
name = "examples"
url = "oci:layout"
"#;

/// Writes the bundled files under `dir` (only those missing or different) and returns the demo settings.
pub fn prepare(dir: &Path) -> Result<Settings, DemoError> {
    for (relative, bytes) in DEMO_FILES {
        let path = dir.join(relative);
        if std::fs::read(&path).ok().as_deref() == Some(*bytes) {
            continue;
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|source| DemoError::Write {
                path: parent.to_path_buf(),
                source,
            })?;
        }
        std::fs::write(&path, bytes).map_err(|source| DemoError::Write {
            path: path.clone(),
            source,
        })?;
    }
    Ok(config::load_str(
        DEMO_CONFIG,
        Path::new("<embedded demo config>"),
        dir,
        &|_| None,
    )?)
}

/// The bundled advisory sample's directory under `dir`.
pub fn advisories(dir: &Path) -> PathBuf {
    dir.join("advisories")
}

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Config(#[from] config::ConfigError),
}
