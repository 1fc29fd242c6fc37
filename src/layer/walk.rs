//! Layer walk: drives one layer blob through decompression and the streaming tar reader, reads only the
//! files some extractor claims, records whiteouts and claimed links, and hands back a `LayerInventory`.
//! The async entry point runs this CPU work on rayon, fed from the download through a bounded channel.

use std::io::{self, BufReader, Read};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::pin;

use bytes::{Buf, Bytes};
use futures::{Stream, StreamExt};

use crate::extract::{ExtractError, Extracted, Extractor};
use crate::model::Digest;

use super::decompress::{self, Compression};
use super::path;
use super::tar::{EntryKind, TarError, TarReader};
use super::{
    ClaimedFile, ClaimedLink, ExtractorVersion, FileError, FileFailure, LayerError, LayerInventory,
    Limits, LinkKind,
};

/// Buffer over the decompressed stream; the tar reader parses headers and skips bodies inside it.
pub(crate) const OUTPUT_BUFFER: usize = 256 * 1024;

/// Chunks in flight between the download and the walk. Registry chunks are small (tens of KiB), so this
/// keeps a layer's memory to a few MiB whatever its size, and a slow walk slows the download.
pub const CHANNEL_CHUNKS: usize = 16;

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_MARKER: &str = ".wh..wh..opq";

/// An error of the blob source, marked so it is reported as a read failure rather than corrupt data.
#[derive(Debug)]
struct SourceError(io::Error);

impl std::fmt::Display for SourceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for SourceError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// Wraps the blob reader so its errors can be told apart from the decompressor's.
struct MarkedSource<R>(R);

impl<R: Read> Read for MarkedSource<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0
            .read(buf)
            .map_err(|error| io::Error::new(error.kind(), SourceError(error)))
    }
}

fn is_source_error(error: &io::Error) -> bool {
    error
        .get_ref()
        .is_some_and(|inner| inner.downcast_ref::<SourceError>().is_some())
}

/// Walks one layer blob (compressed as `media_type` says, checked by magic bytes) and runs the
/// extractors over the files they claim. A failure of the blob, the compression or the tar structure
/// is an `Err` for this layer (see [`LayerInventory::failed`]); limits hit on single files and parse
/// failures are recorded in the inventory and make the image `partial`.
pub fn walk<R: Read>(
    reader: R,
    media_type: &str,
    digest: &Digest,
    extractors: &[&'static dyn Extractor],
    limits: &Limits,
) -> Result<LayerInventory, LayerError> {
    let decoded = decompress::open(MarkedSource(reader), media_type, digest)?;
    let compression = decoded.compression;
    let buffered = BufReader::with_capacity(OUTPUT_BUFFER, decoded.reader);
    let mut tar = TarReader::new(buffered, limits.max_extended_header);
    let mut walker = Walker::new(digest.clone(), extractors, limits);
    loop {
        let entry = match tar.next_entry() {
            Ok(Some(entry)) => entry,
            Ok(None) => break,
            Err(error) => return Err(tar_error(error, digest, compression, tar.offset(), limits)),
        };
        walker.entries += 1;
        if walker.entries > limits.max_entries {
            return Err(LayerError::LimitExceeded {
                digest: digest.clone(),
                what: "tar entries",
                limit: limits.max_entries,
            });
        }
        if tar.offset().saturating_add(entry.size) > limits.max_uncompressed_size {
            return Err(LayerError::LimitExceeded {
                digest: digest.clone(),
                what: "uncompressed layer size",
                limit: limits.max_uncompressed_size,
            });
        }
        walker
            .entry(&mut tar, entry)
            .map_err(|error| tar_error(error, digest, compression, tar.offset(), limits))?;
    }
    // Read what follows the end marker so the decompressor checks its trailer (gzip CRC and length)
    // and the download is consumed to its end.
    let offset = tar.offset();
    let mut rest = tar.into_inner();
    decompress::drain(&mut rest)
        .map_err(|error| tar_error(TarError::Io(error), digest, compression, offset, limits))?;
    Ok(walker.finish())
}

fn tar_error(
    error: TarError,
    digest: &Digest,
    compression: Compression,
    offset: u64,
    limits: &Limits,
) -> LayerError {
    let digest = digest.clone();
    match error {
        TarError::Io(source) if is_source_error(&source) || compression == Compression::None => {
            if source.kind() == io::ErrorKind::UnexpectedEof && !is_source_error(&source) {
                LayerError::Tar {
                    digest,
                    offset,
                    reason: "archive is truncated".into(),
                }
            } else {
                LayerError::Read {
                    digest,
                    offset,
                    source,
                }
            }
        }
        TarError::Io(source) => LayerError::Decompress {
            digest,
            compression: compression.as_str(),
            offset,
            source,
        },
        TarError::Invalid(reason) => LayerError::Tar {
            digest,
            offset,
            reason,
        },
        TarError::ExtendedTooLarge(size) => LayerError::Tar {
            digest,
            offset,
            reason: format!(
                "extended header of {size} bytes is over the limit of {}",
                limits.max_extended_header
            ),
        },
    }
}

/// Per-layer walk state: what has been recorded and how much of each budget is used.
struct Walker<'a> {
    extractors: &'a [&'static dyn Extractor],
    limits: &'a Limits,
    inventory: LayerInventory,
    entries: u64,
    claimed_files: usize,
    claimed_bytes: u64,
    skipped_over_budget: u64,
    skipped_links: u64,
    skipped_whiteouts: u64,
    invalid_names: u64,
    escaping_names: u64,
    /// Indexes of the extractors claiming the current entry; reused to avoid an allocation per entry.
    claimers: Vec<usize>,
}

impl<'a> Walker<'a> {
    fn new(digest: Digest, extractors: &'a [&'static dyn Extractor], limits: &'a Limits) -> Self {
        let mut inventory = LayerInventory::new(digest);
        inventory.extractors = extractors
            .iter()
            .map(|extractor| ExtractorVersion {
                name: extractor.name().to_string(),
                version: extractor.version(),
            })
            .collect();
        Walker {
            extractors,
            limits,
            inventory,
            entries: 0,
            claimed_files: 0,
            claimed_bytes: 0,
            skipped_over_budget: 0,
            skipped_links: 0,
            skipped_whiteouts: 0,
            invalid_names: 0,
            escaping_names: 0,
            claimers: Vec::with_capacity(extractors.len()),
        }
    }

    fn entry<R: io::BufRead>(
        &mut self,
        tar: &mut TarReader<R>,
        entry: super::tar::Entry,
    ) -> Result<(), TarError> {
        if matches!(entry.kind, EntryKind::Directory | EntryKind::Other) {
            return Ok(());
        }
        let name = match std::str::from_utf8(&entry.name) {
            Ok(name) => std::borrow::Cow::Borrowed(name),
            Err(_) => {
                // No extractor claims a non-UTF-8 path, but the lossy form is still checked below so a
                // claimed file hidden behind a bad byte is reported rather than silently dropped.
                self.invalid_names += 1;
                std::borrow::Cow::Owned(String::from_utf8_lossy(&entry.name).into_owned())
            }
        };
        let valid_name = matches!(name, std::borrow::Cow::Borrowed(_));
        let (normalised, escaped) = path::normalise(&name);
        if escaped {
            self.escaping_names += 1;
        }
        let base = normalised.rsplit('/').next().unwrap_or("");
        if let Some(hidden) = base.strip_prefix(WHITEOUT_PREFIX) {
            if !valid_name {
                self.problem(format!(
                    "whiteout with a non-UTF-8 name {:?} could not be applied",
                    normalised
                ));
                return Ok(());
            }
            self.whiteout(&normalised, base, hidden);
            return Ok(());
        }
        self.claimers.clear();
        for (index, extractor) in self.extractors.iter().enumerate() {
            // Regular files are offered with their mode and size, so executables (which can live
            // anywhere) can be claimed; links are claimed by path alone.
            let claimed = if entry.kind == EntryKind::File {
                extractor.claims_entry(&normalised, entry.mode, entry.size)
            } else {
                extractor.claims(&normalised)
            };
            if claimed {
                self.claimers.push(index);
            }
        }
        if self.claimers.is_empty() {
            return Ok(());
        }
        if !valid_name {
            self.problem(format!(
                "claimed file {normalised:?} has a non-UTF-8 name and was not read"
            ));
            return Ok(());
        }
        match entry.kind {
            EntryKind::Symlink | EntryKind::HardLink => {
                let target = String::from_utf8_lossy(&entry.link).into_owned();
                let kind = if entry.kind == EntryKind::Symlink {
                    LinkKind::Symlink
                } else {
                    LinkKind::Hardlink
                };
                for position in 0..self.claimers.len() {
                    if self.inventory.links.len() >= self.limits.max_links {
                        self.skipped_links += 1;
                        continue;
                    }
                    let extractor = &self.extractors[self.claimers[position]];
                    self.inventory.links.push(ClaimedLink {
                        path: normalised.clone(),
                        extractor: extractor.name().to_string(),
                        target: target.clone(),
                        kind,
                    });
                }
                Ok(())
            }
            EntryKind::File => self.claimed_file(tar, normalised, entry.size),
            EntryKind::Directory | EntryKind::Other => Ok(()),
        }
    }

    fn whiteout(&mut self, normalised: &str, base: &str, hidden: &str) {
        let dir = path::parent(normalised);
        if self.inventory.whiteouts.len() + self.inventory.opaque_dirs.len()
            >= self.limits.max_whiteouts
        {
            self.skipped_whiteouts += 1;
            return;
        }
        if base == OPAQUE_MARKER {
            self.inventory.opaque_dirs.push(dir.to_string());
        } else if hidden.starts_with(WHITEOUT_PREFIX) {
            // Other `.wh..wh.` names are AUFS bookkeeping (hard-link dirs), not deletions.
        } else if !hidden.is_empty() {
            let deleted = if dir.is_empty() {
                hidden.to_string()
            } else {
                format!("{dir}/{hidden}")
            };
            self.inventory.whiteouts.push(deleted);
        }
    }

    fn claimed_file<R: io::BufRead>(
        &mut self,
        tar: &mut TarReader<R>,
        path: String,
        size: u64,
    ) -> Result<(), TarError> {
        if let [only] = self.claimers[..] {
            if self.extractors[only].streams() {
                return self.streamed_file(tar, path, size, self.extractors[only]);
            }
        }
        if self.claimed_files >= self.limits.max_claimed_files
            || self.claimed_bytes.saturating_add(size) > self.limits.max_claimed_bytes
        {
            // Recording each skipped file could itself be unbounded: count them, report once.
            self.skipped_over_budget += 1;
            return Ok(());
        }
        let limit_for =
            |extractor: &dyn Extractor| extractor.max_file_size().min(self.limits.max_file_size);
        let largest_limit = self
            .claimers
            .iter()
            .map(|&index| limit_for(self.extractors[index]))
            .max()
            .unwrap_or(0);
        let contents = if size <= largest_limit {
            self.claimed_files += 1;
            self.claimed_bytes += size;
            Some(tar.read_body(size)?)
        } else {
            None
        };
        for position in 0..self.claimers.len() {
            let extractor = self.extractors[self.claimers[position]];
            let limit = limit_for(extractor);
            let result = match &contents {
                Some(data) if size <= limit => run_extractor(extractor, &path, data),
                _ => Err(FileError::TooLarge {
                    extractor: extractor.name(),
                    path: path.clone(),
                    size,
                    limit,
                }),
            };
            self.inventory.files.push(ClaimedFile {
                path: path.clone(),
                extractor: extractor.name().to_string(),
                extractor_version: extractor.version(),
                size,
                result: result.map_err(FileFailure::from),
            });
        }
        Ok(())
    }

    /// Hands a file to the one extractor claiming it as a stream, so a large binary is never held
    /// whole; it counts against the file budget but not the byte budget, which bounds memory.
    fn streamed_file<R: io::BufRead>(
        &mut self,
        tar: &mut TarReader<R>,
        path: String,
        size: u64,
        extractor: &'static dyn Extractor,
    ) -> Result<(), TarError> {
        if self.claimed_files >= self.limits.max_claimed_files {
            self.skipped_over_budget += 1;
            return Ok(());
        }
        self.claimed_files += 1;
        let limit = extractor.max_file_size();
        let result = if size > limit {
            Err(FileError::TooLarge {
                extractor: extractor.name(),
                path: path.clone(),
                size,
                limit,
            })
        } else {
            let mut body = tar.body_reader(size);
            let outcome = catch_unwind(AssertUnwindSafe(|| {
                extractor.extract_reader(&path, size, &mut body)
            }));
            // A failure of the layer itself ends the walk as any other read failure would.
            if let Some(error) = body.error.take() {
                return Err(error);
            }
            outcome_of(extractor, &path, outcome)
        };
        self.inventory.files.push(ClaimedFile {
            path,
            extractor: extractor.name().to_string(),
            extractor_version: extractor.version(),
            size,
            result: result.map_err(FileFailure::from),
        });
        Ok(())
    }

    fn problem(&mut self, reason: String) {
        if !self.inventory.problems.contains(&reason) {
            self.inventory.problems.push(reason);
        }
    }

    fn finish(mut self) -> LayerInventory {
        if self.skipped_over_budget > 0 {
            self.problem(format!(
                "{} claimed files not read: over the per-layer budget of {} files / {} bytes",
                self.skipped_over_budget,
                self.limits.max_claimed_files,
                self.limits.max_claimed_bytes
            ));
        }
        if self.skipped_links > 0 {
            self.problem(format!(
                "{} claimed links not recorded: over the limit of {}",
                self.skipped_links, self.limits.max_links
            ));
        }
        if self.skipped_whiteouts > 0 {
            self.problem(format!(
                "{} whiteouts not recorded: over the limit of {}",
                self.skipped_whiteouts, self.limits.max_whiteouts
            ));
        }
        if self.invalid_names > 0 || self.escaping_names > 0 {
            tracing::debug!(
                digest = %self.inventory.digest,
                invalid_names = self.invalid_names,
                escaping_names = self.escaping_names,
                "layer has entry names that are not UTF-8 or climb above the root"
            );
        }
        self.inventory
    }
}

/// Runs one extractor; its error, or a panic (which must not take the walk down), becomes a
/// [`FileError`].
fn run_extractor(
    extractor: &dyn Extractor,
    path: &str,
    data: &[u8],
) -> Result<Extracted, FileError> {
    let outcome = catch_unwind(AssertUnwindSafe(|| extractor.extract(path, data)));
    outcome_of(extractor, path, outcome)
}

/// What an extractor call caught by `catch_unwind` means for the file.
fn outcome_of(
    extractor: &dyn Extractor,
    path: &str,
    outcome: std::thread::Result<Result<Extracted, ExtractError>>,
) -> Result<Extracted, FileError> {
    match outcome {
        Ok(Ok(extracted)) => Ok(extracted),
        Ok(Err(error)) => Err(FileError::Extract(error)),
        Err(_) => Err(FileError::Panicked {
            extractor: extractor.name(),
            path: path.to_string(),
        }),
    }
}

/// Reads the chunks the download task sends; the channel's bound is what applies back-pressure.
struct ChannelReader {
    receiver: tokio::sync::mpsc::Receiver<io::Result<Bytes>>,
    current: Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match self.receiver.blocking_recv() {
                Some(Ok(chunk)) => self.current = chunk,
                Some(Err(error)) => return Err(error),
                None => return Ok(0),
            }
        }
        let step = buf.len().min(self.current.len());
        buf[..step].copy_from_slice(&self.current[..step]);
        self.current.advance(step);
        Ok(step)
    }
}

/// Walks a layer arriving as a stream of chunks (what the registry client yields, already
/// digest-verified by it). Decompression, tar parsing and extraction run on the rayon pool; chunks
/// travel through a channel of [`CHANNEL_CHUNKS`] entries, so memory stays bounded and a slow walk
/// slows the download instead of buffering the layer.
pub async fn walk_stream<S, E>(
    stream: S,
    media_type: &str,
    digest: &Digest,
    extractors: &[&'static dyn Extractor],
    limits: &Limits,
) -> Result<LayerInventory, LayerError>
where
    S: Stream<Item = Result<Bytes, E>>,
    E: std::error::Error + Send + Sync + 'static,
{
    let (sender, receiver) = tokio::sync::mpsc::channel::<io::Result<Bytes>>(CHANNEL_CHUNKS);
    let (done, result) = tokio::sync::oneshot::channel();
    {
        let media_type = media_type.to_string();
        let digest = digest.clone();
        let extractors = extractors.to_vec();
        let limits = limits.clone();
        rayon::spawn(move || {
            let reader = ChannelReader {
                receiver,
                current: Bytes::new(),
            };
            // rayon aborts the process on a panic in a spawned job; keep one layer from doing that.
            let outcome = catch_unwind(AssertUnwindSafe(|| {
                walk(reader, &media_type, &digest, &extractors, &limits)
            }))
            .unwrap_or(Err(LayerError::WorkerLost { digest }));
            // The receiver is gone only if the caller dropped the future; nobody needs the result then.
            let _ = done.send(outcome);
        });
    }
    let mut stream = pin!(stream);
    while let Some(item) = stream.next().await {
        let failed = item.is_err();
        let item = item.map_err(io::Error::other);
        if sender.send(item).await.is_err() {
            // The walk finished or failed early and dropped its end: stop downloading.
            break;
        }
        if failed {
            break;
        }
    }
    drop(sender);
    match result.await {
        Ok(outcome) => outcome,
        Err(_) => Err(LayerError::WorkerLost {
            digest: digest.clone(),
        }),
    }
}
