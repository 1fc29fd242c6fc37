//! Extract stage, binaries: packages compiled into executables (Go build info), which can sit anywhere
//! in an image, so their extractors claim files by their executable bit rather than by path.

pub mod elf;
pub mod go;

/// Largest executable the binary extractors look at. Bigger files are skipped unclaimed: they are
/// rare, and the cost of scanning them is not worth an unbounded read.
pub const MAX_EXECUTABLE_SIZE: u64 = 1024 * 1024 * 1024;

/// Smallest file worth looking at: anything shorter cannot hold an ELF header and build info.
pub const MIN_EXECUTABLE_SIZE: u64 = 128;

/// Whether a tar entry looks like an executable a binary extractor should read: any execute bit set
/// and a size within bounds. Cheap: runs for every regular file of every layer.
pub fn is_candidate(mode: u32, size: u64, max_size: u64) -> bool {
    mode & crate::extract::EXECUTABLE_BITS != 0 && (MIN_EXECUTABLE_SIZE..=max_size).contains(&size)
}
