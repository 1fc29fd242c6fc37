//! Advisory DB stage: `vigil db import`: reads OSV JSON files, directories of them and osv.dev zip
//! exports, normalises every record and replaces the DB atomically.
//!
//! A record that is not valid OSV JSON is data (counted, with the first few reasons kept), because one
//! bad record in an export of thousands should not block an update. A container that is damaged (a
//! truncated zip, a CRC mismatch, an unreadable file) fails the whole import, and the old DB stays.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::osv::OsvRecord;
use super::record::{self, Advisory, Skipped};
use super::store::{self, DbMeta};
use super::DbError;

/// No single OSV record comes near this; anything bigger is refused rather than read into memory.
pub const MAX_RECORD_BYTES: u64 = 16 * 1024 * 1024;
/// How many invalid-record reasons the report keeps verbatim.
const MAX_INVALID_EXAMPLES: usize = 20;

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    /// Advisories in the new DB.
    pub advisories: u64,
    /// JSON records read (files or zip entries).
    pub records_read: u64,
    /// Records skipped because `withdrawn` is set.
    pub withdrawn: u64,
    /// Records whose id had already been read; the most recently modified copy is kept.
    pub duplicates: u64,
    /// Records with no ecosystem Vigil can match.
    pub without_known_ecosystem: u64,
    /// Records that were not valid OSV JSON.
    pub invalid_records: u64,
    /// The first few invalid records, as `source: entry: reason`.
    pub invalid_examples: Vec<String>,
    /// `affected[]` entries of ecosystems Vigil cannot match, by ecosystem.
    pub unknown_ecosystems: BTreeMap<String, u64>,
    /// Advisories per ecosystem in the new DB.
    pub counts_per_ecosystem: BTreeMap<String, u64>,
    /// The new DB's content hash.
    pub content_hash: String,
}

/// Imports `sources` (directories, `.json` files, `.zip` exports) into a new DB in `db_dir`, replacing the
/// old DB only once everything was read.
pub fn import(db_dir: &Path, sources: &[PathBuf]) -> Result<ImportReport, DbError> {
    let labels: Vec<String> = sources.iter().map(|p| p.display().to_string()).collect();
    import_labelled(db_dir, sources, labels)
}

/// Like [`import`], but records `labels` (e.g. download URLs) as the DB's sources.
pub(crate) fn import_labelled(
    db_dir: &Path,
    sources: &[PathBuf],
    labels: Vec<String>,
) -> Result<ImportReport, DbError> {
    let mut collector = Collector::default();
    for source in sources {
        read_source(source, &mut collector)?;
    }
    let Collector { mut report, by_id } = collector;
    if by_id.is_empty() {
        return Err(DbError::Empty {
            sources: labels.join(", "),
        });
    }
    let mut advisories: Vec<Advisory> = by_id.into_values().collect();
    advisories.sort_by(|a, b| a.id.cmp(&b.id));

    for advisory in &advisories {
        let mut ecosystems: Vec<&str> = advisory
            .affected
            .iter()
            .map(|a| a.ecosystem.as_str())
            .collect();
        ecosystems.sort_unstable();
        ecosystems.dedup();
        for ecosystem in ecosystems {
            *report
                .counts_per_ecosystem
                .entry(ecosystem.to_string())
                .or_default() += 1;
        }
    }
    report.advisories = advisories.len() as u64;
    report.content_hash = store::content_hash(&advisories)?;
    let meta = DbMeta {
        content_hash: report.content_hash.clone(),
        imported_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        counts_per_ecosystem: report.counts_per_ecosystem.clone(),
        unknown_ecosystems: report.unknown_ecosystems.clone(),
        sources: labels,
    };
    store::write_atomically(db_dir, &meta, &advisories)?;
    tracing::info!(
        advisories = report.advisories,
        invalid = report.invalid_records,
        content_hash = %report.content_hash,
        "advisory DB imported"
    );
    Ok(report)
}

#[derive(Default)]
struct Collector {
    report: ImportReport,
    by_id: HashMap<String, Advisory>,
}

impl Collector {
    fn add_json(&mut self, source: &Path, entry: &str, bytes: &[u8]) {
        self.report.records_read += 1;
        let record: OsvRecord = match serde_json::from_slice(bytes) {
            Ok(record) => record,
            Err(error) => {
                self.invalid(source, entry, &format!("not an OSV record: {error}"));
                return;
            }
        };
        if record.id.trim().is_empty() {
            self.invalid(source, entry, "empty id");
            return;
        }
        let normalised = record::normalise(record);
        for ecosystem in normalised.unknown_ecosystems {
            let key = if ecosystem.is_empty() {
                "(none)".to_string()
            } else {
                ecosystem
            };
            *self.report.unknown_ecosystems.entry(key).or_default() += 1;
        }
        let advisory = match normalised.advisory {
            Ok(advisory) => advisory,
            Err(Skipped::Withdrawn) => {
                self.report.withdrawn += 1;
                return;
            }
            Err(Skipped::NoKnownEcosystem) => {
                self.report.without_known_ecosystem += 1;
                return;
            }
        };
        match self.by_id.get_mut(&advisory.id) {
            None => {
                self.by_id.insert(advisory.id.clone(), advisory);
            }
            Some(existing) => {
                self.report.duplicates += 1;
                if prefer(&advisory, existing) {
                    *existing = advisory;
                }
            }
        }
    }

    fn invalid(&mut self, source: &Path, entry: &str, reason: &str) {
        self.report.invalid_records += 1;
        if self.report.invalid_examples.len() < MAX_INVALID_EXAMPLES {
            self.report
                .invalid_examples
                .push(format!("{}: {entry}: {reason}", source.display()));
        }
    }
}

/// Which of two copies of one id to keep: the later `modified`, then a content order, so the choice (and
/// the content hash) never depends on the order files were read in.
fn prefer(candidate: &Advisory, existing: &Advisory) -> bool {
    match candidate.modified.cmp(&existing.modified) {
        std::cmp::Ordering::Greater => true,
        std::cmp::Ordering::Less => false,
        std::cmp::Ordering::Equal => {
            let a = postcard::to_allocvec(candidate).unwrap_or_default();
            let b = postcard::to_allocvec(existing).unwrap_or_default();
            a > b
        }
    }
}

fn read_source(source: &Path, collector: &mut Collector) -> Result<(), DbError> {
    let metadata = fs::metadata(source).map_err(|e| DbError::Io {
        path: source.to_path_buf(),
        source: e,
    })?;
    if metadata.is_dir() {
        let mut files = Vec::new();
        collect_json_files(source, &mut files)?;
        // Sorted so that reports (e.g. the invalid examples) are stable run to run.
        files.sort();
        for file in files {
            read_json_file(&file, collector)?;
        }
        return Ok(());
    }
    match source.extension().and_then(|e| e.to_str()) {
        Some(ext) if ext.eq_ignore_ascii_case("zip") => read_zip(source, collector),
        Some(ext) if ext.eq_ignore_ascii_case("json") => read_json_file(source, collector),
        _ => Err(DbError::UnsupportedSource {
            path: source.to_path_buf(),
        }),
    }
}

fn collect_json_files(dir: &Path, files: &mut Vec<PathBuf>) -> Result<(), DbError> {
    let io_err = |source| DbError::Io {
        path: dir.to_path_buf(),
        source,
    };
    for entry in fs::read_dir(dir).map_err(io_err)? {
        let entry = entry.map_err(io_err)?;
        let path = entry.path();
        let file_type = entry.file_type().map_err(io_err)?;
        if file_type.is_dir() {
            collect_json_files(&path, files)?;
        } else if file_type.is_file()
            && path
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("json"))
        {
            files.push(path);
        }
    }
    Ok(())
}

fn read_json_file(path: &Path, collector: &mut Collector) -> Result<(), DbError> {
    let io_err = |source| DbError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = fs::File::open(path).map_err(io_err)?;
    let size = file.metadata().map_err(io_err)?.len();
    if size > MAX_RECORD_BYTES {
        collector.invalid(
            path,
            "",
            &format!("{size} bytes is over the {MAX_RECORD_BYTES}-byte record limit"),
        );
        collector.report.records_read += 1;
        return Ok(());
    }
    let mut bytes = Vec::with_capacity(size as usize);
    // `take` guards against a file that grows while we read it.
    file.take(MAX_RECORD_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io_err)?;
    collector.add_json(path, "", &bytes);
    Ok(())
}

fn read_zip(path: &Path, collector: &mut Collector) -> Result<(), DbError> {
    let file = fs::File::open(path).map_err(|source| DbError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut archive =
        zip::ZipArchive::new(std::io::BufReader::new(file)).map_err(|source| DbError::Zip {
            path: path.to_path_buf(),
            source,
        })?;
    let mut bytes = Vec::new();
    for index in 0..archive.len() {
        let entry = archive.by_index(index).map_err(|source| DbError::Zip {
            path: path.to_path_buf(),
            source,
        })?;
        let name = entry.name().to_string();
        if entry.is_dir() || !name.to_ascii_lowercase().ends_with(".json") {
            continue;
        }
        let declared = entry.size();
        if declared > MAX_RECORD_BYTES {
            collector.report.records_read += 1;
            collector.invalid(
                path,
                &name,
                &format!("{declared} bytes is over the {MAX_RECORD_BYTES}-byte record limit"),
            );
            continue;
        }
        bytes.clear();
        // Reading to the end makes the zip crate verify the entry's CRC: a damaged entry is an error for
        // the whole archive. `take` bounds memory even if the declared size lies.
        let read = entry
            .take(MAX_RECORD_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|source| DbError::ZipEntry {
                path: path.to_path_buf(),
                entry: name.clone(),
                source,
            })?;
        if read as u64 > MAX_RECORD_BYTES {
            collector.report.records_read += 1;
            collector.invalid(path, &name, "entry is larger than its declared size");
            continue;
        }
        collector.add_json(path, &name, &bytes);
    }
    Ok(())
}
