//! Extract stage, rpm: reads the NDB backend (`Packages.db`, used by SUSE) into header blobs.
//!
//! The file starts with a 32-byte header (magic `RpmP`, format version, generation, slot page count),
//! followed by 4 KiB slot pages of 16-byte slots (magic `Slot`, package index, block offset, block
//! count). A used slot points at a blob in 16-byte blocks: a 16-byte blob header (magic `BlbS`,
//! package index, checksum, length) and the header blob itself. Integers are little-endian.

use super::RpmError;

const SLOT_PAGE_SIZE: usize = 4096;
const SLOT_SIZE: usize = 16;
const BLOCK_SIZE: usize = 16;
const BLOB_HEADER_SIZE: usize = 16;
/// rpm keeps the slot pages small; this bounds the scan of a hostile file (8 MiB of slots).
const MAX_SLOT_PAGES: u32 = 2048;

const HEADER_MAGIC: u32 = u32::from_le_bytes(*b"RpmP");
const SLOT_MAGIC: u32 = u32::from_le_bytes(*b"Slot");
const BLOB_MAGIC: u32 = u32::from_le_bytes(*b"BlbS");

fn le_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let slice = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes(slice.try_into().ok()?))
}

fn error(reason: String) -> RpmError {
    RpmError::Ndb(reason)
}

/// Returns the header blobs of every used slot, in slot order; the slices borrow from `db`.
pub fn read_blobs(db: &[u8]) -> Result<Vec<&[u8]>, RpmError> {
    let magic = le_u32(db, 0).ok_or_else(|| error(format!("{} bytes is too short", db.len())))?;
    if magic != HEADER_MAGIC {
        return Err(error(format!("bad magic {magic:#010x}, not an NDB file")));
    }
    let version = le_u32(db, 4).ok_or_else(|| error("header cut short".into()))?;
    if version != 0 {
        return Err(error(format!("unsupported NDB version {version}")));
    }
    let slot_pages = le_u32(db, 12).ok_or_else(|| error("header cut short".into()))?;
    if slot_pages == 0 || slot_pages > MAX_SLOT_PAGES {
        return Err(error(format!("slot page count {slot_pages} out of range")));
    }
    let slots_end = slot_pages as usize * SLOT_PAGE_SIZE;
    if db.len() < slots_end {
        return Err(error(format!(
            "{slot_pages} slot pages need {slots_end} bytes but the file has {}",
            db.len()
        )));
    }

    let mut blobs = Vec::new();
    // The 32-byte file header occupies the first two slots of page 0.
    for at in (2 * SLOT_SIZE..slots_end).step_by(SLOT_SIZE) {
        // Never the 0: `slots_end` was checked against the file's length above.
        let field = |offset: usize| le_u32(db, at + offset).unwrap_or(0);
        if field(0) != SLOT_MAGIC {
            return Err(error(format!("bad slot magic at byte {at}")));
        }
        let package_index = field(4);
        if package_index == 0 {
            continue; // a free slot
        }
        let block_offset = field(8) as usize;
        let block_count = field(12) as usize;
        let start = block_offset
            .checked_mul(BLOCK_SIZE)
            .filter(|&start| start >= slots_end)
            .ok_or_else(|| {
                error(format!(
                    "package {package_index}: block offset {block_offset} points into the slot pages"
                ))
            })?;
        let blob_magic = le_u32(db, start).ok_or_else(|| {
            error(format!(
                "package {package_index}: blob at {start} is past the end"
            ))
        })?;
        if blob_magic != BLOB_MAGIC {
            return Err(error(format!(
                "package {package_index}: bad blob magic at byte {start}"
            )));
        }
        // A file cut inside the blob header is said to be cut, not read as index or length 0.
        let (Some(blob_index), Some(length)) = (le_u32(db, start + 4), le_u32(db, start + 12))
        else {
            return Err(error(format!(
                "package {package_index}: blob header at {start} is cut short"
            )));
        };
        if blob_index != package_index {
            return Err(error(format!(
                "slot names package {package_index} but its blob belongs to {blob_index}"
            )));
        }
        let length = length as usize;
        let data_start = start + BLOB_HEADER_SIZE;
        // The slot's block count bounds the blob, so a lying length cannot reach other records.
        let reserved = block_count.saturating_mul(BLOCK_SIZE);
        if BLOB_HEADER_SIZE + length > reserved {
            return Err(error(format!(
                "package {package_index}: blob length {length} exceeds its {block_count} blocks"
            )));
        }
        let blob = data_start
            .checked_add(length)
            .and_then(|end| db.get(data_start..end))
            .ok_or_else(|| {
                error(format!(
                    "package {package_index}: blob of {length} bytes at {data_start} runs past the end of the file"
                ))
            })?;
        blobs.push(blob);
    }
    Ok(blobs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ndb_with_one_blob(blob: &[u8], declared_length: u32, blocks: u32) -> Vec<u8> {
        let mut db = vec![0u8; SLOT_PAGE_SIZE];
        db[0..4].copy_from_slice(b"RpmP");
        db[12..16].copy_from_slice(&1u32.to_le_bytes());
        for at in (32..SLOT_PAGE_SIZE).step_by(SLOT_SIZE) {
            db[at..at + 4].copy_from_slice(b"Slot");
        }
        let first_block = (SLOT_PAGE_SIZE / BLOCK_SIZE) as u32;
        db[36..40].copy_from_slice(&7u32.to_le_bytes());
        db[40..44].copy_from_slice(&first_block.to_le_bytes());
        db[44..48].copy_from_slice(&blocks.to_le_bytes());
        db.extend_from_slice(b"BlbS");
        db.extend_from_slice(&7u32.to_le_bytes());
        db.extend_from_slice(&0u32.to_le_bytes());
        db.extend_from_slice(&declared_length.to_le_bytes());
        db.extend_from_slice(blob);
        db
    }

    #[test]
    fn reads_a_blob_and_rejects_lies() {
        let blob = super::super::header::tests::sample_blob();
        let blocks = (16 + blob.len()).div_ceil(16) as u32;
        let db = ndb_with_one_blob(&blob, blob.len() as u32, blocks);
        assert_eq!(read_blobs(&db).unwrap(), vec![&blob[..]]);

        // A declared length beyond the file or the slot's blocks.
        assert!(read_blobs(&ndb_with_one_blob(&blob, u32::MAX, u32::MAX)).is_err());
        assert!(read_blobs(&ndb_with_one_blob(&blob, blob.len() as u32, 1)).is_err());
        // A truncated file, garbage and an absurd slot page count.
        assert!(read_blobs(&db[..db.len() - 1]).is_err());
        assert!(read_blobs(&db[..100]).is_err());
        // Cut inside the blob header: the reason says so, rather than blaming a blob of package 0.
        let cut = &db[..SLOT_PAGE_SIZE + 8];
        let reason = read_blobs(cut).unwrap_err().to_string();
        assert!(
            reason.contains("blob header at 4096 is cut short"),
            "{reason}"
        );
        assert!(read_blobs(b"garbage").is_err());
        let mut huge = db.clone();
        huge[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(read_blobs(&huge).is_err());
    }
}
