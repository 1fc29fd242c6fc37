//! Extract stage, rpm: reads the SQLite backend (`rpmdb.sqlite`, rpm >= 4.16: Fedora, RHEL 9,
//! CBL-Mariner, Amazon Linux 2023) into header blobs.
//!
//! The file's bytes are deserialized into an in-memory, read-only SQLite database, so nothing is
//! written to disk and no `-wal`/`-shm` files appear. rpm leaves its database in WAL mode; an
//! in-memory database cannot be in WAL mode, so the copy's header is switched to rollback journal.

use std::io::Read;

use rusqlite::{Connection, OpenFlags};

use super::RpmError;

const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";
const SQLITE_HEADER_SIZE: usize = 100;
/// Bytes 18 and 19 of the header: file format write and read versions (2 = WAL, 1 = legacy).
const FORMAT_VERSION_BYTES: std::ops::Range<usize> = 18..20;

fn error(reason: impl std::fmt::Display) -> RpmError {
    RpmError::Sqlite(reason.to_string())
}

/// Returns the header blobs of the `Packages` table, in `hnum` order.
pub fn read_blobs(db: &[u8]) -> Result<Vec<Vec<u8>>, RpmError> {
    if db.len() < SQLITE_HEADER_SIZE || !db.starts_with(SQLITE_MAGIC) {
        return Err(error("not an SQLite 3 database (bad magic)"));
    }
    let mut header = [0u8; SQLITE_HEADER_SIZE];
    header.copy_from_slice(&db[..SQLITE_HEADER_SIZE]);
    for byte in &mut header[FORMAT_VERSION_BYTES] {
        if *byte == 2 {
            *byte = 1;
        }
    }
    let mut connection = Connection::open_with_flags(
        ":memory:",
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(error)?;
    let reader = (&header[..]).chain(&db[SQLITE_HEADER_SIZE..]);
    connection
        .deserialize_read_exact("main", reader, db.len(), true)
        .map_err(|e| error(format!("cannot load database: {e}")))?;
    let mut statement = connection
        .prepare("SELECT blob FROM Packages ORDER BY hnum")
        .map_err(|e| error(format!("no readable Packages table: {e}")))?;
    let rows = statement
        .query_map([], |row| row.get::<_, Vec<u8>>(0))
        .map_err(|e| error(format!("cannot query Packages: {e}")))?;
    let mut blobs = Vec::new();
    for row in rows {
        blobs.push(row.map_err(|e| error(format!("cannot read a Packages row: {e}")))?);
    }
    Ok(blobs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_and_truncated_databases_are_errors() {
        assert!(read_blobs(b"").is_err());
        assert!(read_blobs(&[0u8; 4096]).is_err());
        let mut fake = SQLITE_MAGIC.to_vec();
        fake.resize(8192, 0xff);
        assert!(read_blobs(&fake).is_err());
    }
}
