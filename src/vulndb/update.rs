//! Advisory DB stage: `vigil db update`: downloads osv.dev's per-ecosystem zip exports and imports them.
//!
//! Each zip is streamed to a staging directory next to the DB (never held in memory), every download
//! must complete with a success status, and only then does the import run; the import itself replaces
//! the DB atomically. Any failure leaves the last good DB in place.

use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::StreamExt;
use tokio::io::AsyncWriteExt;

use super::import::{import_labelled, ImportReport};
use super::DbError;

/// The public osv.dev export bucket.
pub const DEFAULT_SOURCE_URL: &str = "https://osv-vulnerabilities.storage.googleapis.com";
/// The largest export accepted (osv.dev's biggest are a few hundred MB).
pub const MAX_DOWNLOAD_BYTES: u64 = 4 * 1024 * 1024 * 1024;

/// Downloads `<source_url>/<ecosystem>/all.zip` for each ecosystem and imports them all into `db_dir`.
pub async fn update(
    db_dir: &Path,
    source_url: &str,
    ecosystems: &[String],
) -> Result<ImportReport, DbError> {
    if ecosystems.is_empty() {
        return Err(DbError::Empty {
            sources: "no ecosystems configured".into(),
        });
    }
    tokio::fs::create_dir_all(db_dir)
        .await
        .map_err(|source| DbError::Io {
            path: db_dir.to_path_buf(),
            source,
        })?;
    let staging = StagingDir::create(db_dir)?;
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(30))
        .read_timeout(Duration::from_secs(120))
        .user_agent(concat!("vigil/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| DbError::Download {
            url: source_url.to_string(),
            reason: format!("cannot build HTTP client: {e}"),
        })?;

    let mut zips = Vec::new();
    let mut labels = Vec::new();
    for (index, ecosystem) in ecosystems.iter().enumerate() {
        let url = export_url(source_url, ecosystem)?;
        let target = staging.path.join(format!("{index}.zip"));
        download(&client, &url, &target).await?;
        zips.push(target);
        labels.push(url.to_string());
    }

    let db_dir = db_dir.to_path_buf();
    // Parsing tens of thousands of records is CPU work: keep it off the async workers.
    let report = tokio::task::spawn_blocking(move || import_labelled(&db_dir, &zips, labels))
        .await
        .map_err(|e| DbError::Download {
            url: source_url.to_string(),
            reason: format!("import task failed: {e}"),
        })??;
    drop(staging);
    Ok(report)
}

/// `<base>/<ecosystem>/all.zip`, with the ecosystem percent-encoded as one path segment (`Rocky Linux`).
pub fn export_url(source_url: &str, ecosystem: &str) -> Result<url::Url, DbError> {
    let invalid = |reason: String| DbError::InvalidUrl {
        url: source_url.to_string(),
        reason,
    };
    let mut url = url::Url::parse(source_url).map_err(|e| invalid(e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid("only http and https are supported".into()));
    }
    if ecosystem.is_empty() || ecosystem.contains('/') || ecosystem == "." || ecosystem == ".." {
        return Err(invalid(format!("invalid ecosystem name {ecosystem:?}")));
    }
    url.path_segments_mut()
        .map_err(|()| invalid("URL cannot have a path".into()))?
        .pop_if_empty()
        .push(ecosystem)
        .push("all.zip");
    Ok(url)
}

async fn download(client: &reqwest::Client, url: &url::Url, target: &Path) -> Result<(), DbError> {
    let failed = |reason: String| DbError::Download {
        url: url.to_string(),
        reason,
    };
    let response = client
        .get(url.clone())
        .send()
        .await
        .map_err(|e| failed(e.to_string()))?;
    let status = response.status();
    if !status.is_success() {
        return Err(DbError::HttpStatus {
            url: url.to_string(),
            status: status.as_u16(),
        });
    }
    let expected = response.content_length();
    if expected.is_some_and(|len| len > MAX_DOWNLOAD_BYTES) {
        return Err(failed(format!(
            "announced size is over the {MAX_DOWNLOAD_BYTES}-byte limit"
        )));
    }
    let io_err = |source| DbError::Io {
        path: target.to_path_buf(),
        source,
    };
    let mut file = tokio::fs::File::create(target).await.map_err(io_err)?;
    let mut stream = response.bytes_stream();
    let mut received: u64 = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| failed(format!("after {received} bytes: {e}")))?;
        received += chunk.len() as u64;
        if received > MAX_DOWNLOAD_BYTES {
            return Err(failed(format!(
                "body is over the {MAX_DOWNLOAD_BYTES}-byte limit"
            )));
        }
        file.write_all(&chunk).await.map_err(io_err)?;
    }
    file.flush().await.map_err(io_err)?;
    if let Some(expected) = expected {
        if expected != received {
            return Err(failed(format!(
                "connection ended after {received} of {expected} bytes"
            )));
        }
    }
    Ok(())
}

/// A download directory inside the DB directory (same filesystem as the DB), removed when dropped.
struct StagingDir {
    path: PathBuf,
}

impl StagingDir {
    fn create(db_dir: &Path) -> Result<StagingDir, DbError> {
        let path = db_dir.join(format!(
            ".download-{}-{:016x}",
            std::process::id(),
            rand::random::<u64>()
        ));
        std::fs::create_dir(&path).map_err(|source| DbError::Io {
            path: path.clone(),
            source,
        })?;
        Ok(StagingDir { path })
    }
}

impl Drop for StagingDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_urls_encode_the_ecosystem() {
        assert_eq!(
            export_url("https://example.test", "Rocky Linux")
                .unwrap()
                .as_str(),
            "https://example.test/Rocky%20Linux/all.zip"
        );
        assert_eq!(
            export_url("http://127.0.0.1:8/base/", "crates.io")
                .unwrap()
                .as_str(),
            "http://127.0.0.1:8/base/crates.io/all.zip"
        );
        assert!(export_url("ftp://x", "PyPI").is_err());
        assert!(export_url("http://x", "../etc").is_err());
        assert!(export_url("not a url", "PyPI").is_err());
    }
}
