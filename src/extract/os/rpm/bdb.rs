//! Extract stage, rpm: reads the legacy Berkeley DB backend (`Packages`, a BDB hash database used by
//! RHEL/CentOS <= 8, Amazon Linux 2, older SUSE) into header blobs, without linking libdb.
//!
//! Page 0 is the hash metadata page (magic, page size, last page number). Every hash page holds an
//! index of items in key/data pairs; rpm's headers are stored as "off-page" data items that point at a
//! chain of overflow pages. The file comes from an untrusted image, so page numbers are range-checked
//! and overflow chains are walked with a visited set, which stops loops.

use super::RpmError;

/// Berkeley DB's hash magic number, as stored by a little-endian writer.
const HASH_MAGIC: u32 = 0x0006_1561;
const PAGE_HEADER_SIZE: usize = 26;

// Page types (`db_page.h`).
const P_HASH_UNSORTED: u8 = 2;
const P_OVERFLOW: u8 = 7;
const P_HASHMETA: u8 = 8;
const P_HASH: u8 = 13;

// Hash item types.
const H_KEYDATA: u8 = 1;
const H_OFFPAGE: u8 = 3;

fn error(reason: String) -> RpmError {
    RpmError::Bdb(reason)
}

/// Reads integers in the byte order the database was written in.
#[derive(Clone, Copy)]
struct ByteOrder {
    big_endian: bool,
}

impl ByteOrder {
    fn u32(self, bytes: &[u8], at: usize) -> Option<u32> {
        let raw: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
        Some(if self.big_endian {
            u32::from_be_bytes(raw)
        } else {
            u32::from_le_bytes(raw)
        })
    }

    fn u16(self, bytes: &[u8], at: usize) -> Option<u16> {
        let raw: [u8; 2] = bytes.get(at..at.checked_add(2)?)?.try_into().ok()?;
        Some(if self.big_endian {
            u16::from_be_bytes(raw)
        } else {
            u16::from_le_bytes(raw)
        })
    }
}

/// A validated database: its pages and how to read them.
struct Database<'a> {
    bytes: &'a [u8],
    page_size: usize,
    page_count: usize,
    order: ByteOrder,
}

impl<'a> Database<'a> {
    fn open(bytes: &'a [u8]) -> Result<Database<'a>, RpmError> {
        let little = ByteOrder { big_endian: false };
        let magic = little
            .u32(bytes, 12)
            .ok_or_else(|| error(format!("{} bytes is too short", bytes.len())))?;
        let order = if magic == HASH_MAGIC {
            little
        } else if magic == HASH_MAGIC.swap_bytes() {
            ByteOrder { big_endian: true }
        } else {
            return Err(error(format!(
                "bad magic {magic:#010x}, not a Berkeley DB hash database"
            )));
        };
        if bytes.get(25) != Some(&P_HASHMETA) {
            return Err(error("page 0 is not a hash metadata page".to_string()));
        }
        let page_size = order.u32(bytes, 20).unwrap_or(0) as usize;
        if !(512..=65536).contains(&page_size) || !page_size.is_power_of_two() {
            return Err(error(format!("invalid page size {page_size}")));
        }
        let last_page = order.u32(bytes, 32).unwrap_or(0) as usize;
        let page_count = last_page + 1;
        if page_count
            .checked_mul(page_size)
            .is_none_or(|needed| needed > bytes.len())
        {
            return Err(error(format!(
                "last page {last_page} of {page_size} bytes is past the end of the {}-byte file",
                bytes.len()
            )));
        }
        Ok(Database {
            bytes,
            page_size,
            page_count,
            order,
        })
    }

    fn page(&self, number: usize) -> &'a [u8] {
        // `open` checked that every page up to `page_count` is inside the file.
        &self.bytes[number * self.page_size..(number + 1) * self.page_size]
    }

    /// Follows an overflow chain from `first`, returning exactly `total` bytes.
    fn overflow(&self, first: u32, total: usize) -> Result<Vec<u8>, RpmError> {
        if total > self.bytes.len() {
            return Err(error(format!(
                "off-page item claims {total} bytes, more than the whole file"
            )));
        }
        let mut out = Vec::with_capacity(total);
        let mut visited = vec![false; self.page_count];
        let mut number = first as usize;
        loop {
            if number == 0 || number >= self.page_count {
                return Err(error(format!(
                    "overflow chain points at page {number}, outside 1..{}",
                    self.page_count
                )));
            }
            if std::mem::replace(&mut visited[number], true) {
                return Err(error(format!("overflow chain loops back to page {number}")));
            }
            let page = self.page(number);
            if page[25] != P_OVERFLOW {
                return Err(error(format!(
                    "page {number} in an overflow chain has type {}",
                    page[25]
                )));
            }
            // On overflow pages the free-area offset field holds the number of bytes used.
            let used = self.order.u16(page, 22).unwrap_or(0) as usize;
            let data = page
                .get(PAGE_HEADER_SIZE..PAGE_HEADER_SIZE + used)
                .ok_or_else(|| error(format!("overflow page {number} claims {used} bytes")))?;
            if out.len() + data.len() > total {
                return Err(error(format!(
                    "overflow chain from page {first} holds more than its declared {total} bytes"
                )));
            }
            out.extend_from_slice(data);
            let next = self.order.u32(page, 16).unwrap_or(0);
            if next == 0 {
                break;
            }
            number = next as usize;
        }
        if out.len() != total {
            return Err(error(format!(
                "overflow chain from page {first} holds {} of its declared {total} bytes",
                out.len()
            )));
        }
        Ok(out)
    }
}

/// Returns the header blobs stored in a Berkeley DB hash `Packages` file, in page order.
pub fn read_blobs(bytes: &[u8]) -> Result<Vec<Vec<u8>>, RpmError> {
    let db = Database::open(bytes)?;
    let mut blobs = Vec::new();
    for number in 1..db.page_count {
        let page = db.page(number);
        if page[25] != P_HASH && page[25] != P_HASH_UNSORTED {
            continue;
        }
        let entries = db.order.u16(page, 20).unwrap_or(0) as usize;
        if PAGE_HEADER_SIZE + entries * 2 > db.page_size {
            return Err(error(format!(
                "hash page {number} claims {entries} entries, more than fit"
            )));
        }
        let offset_of = |index: usize| {
            db.order
                .u16(page, PAGE_HEADER_SIZE + 2 * index)
                .unwrap_or(0) as usize
        };
        // Items are packed from the end of the page down: item i ends where item i-1 starts.
        let item = |index: usize| -> Result<&[u8], RpmError> {
            let start = offset_of(index);
            let end = if index == 0 {
                db.page_size
            } else {
                offset_of(index - 1)
            };
            page.get(start..end)
                .filter(|item| !item.is_empty())
                .ok_or_else(|| {
                    error(format!(
                        "hash page {number} item {index} has bad bounds {start}..{end}"
                    ))
                })
        };
        for pair in 0..entries / 2 {
            let key = item(2 * pair)?;
            let data = item(2 * pair + 1)?;
            // rpm keeps a bookkeeping record under key 0 (the next instance number); it is no package.
            if key[0] == H_KEYDATA && key[1..].iter().all(|&b| b == 0) {
                continue;
            }
            match data[0] {
                H_OFFPAGE => {
                    let first = db.order.u32(data, 4).ok_or_else(|| {
                        error(format!("hash page {number}: off-page item cut short"))
                    })?;
                    let total = db.order.u32(data, 8).ok_or_else(|| {
                        error(format!("hash page {number}: off-page item cut short"))
                    })? as usize;
                    blobs.push(db.overflow(first, total)?);
                }
                H_KEYDATA => blobs.push(data[1..].to_vec()),
                // Duplicate sets are not used by rpm's Packages database.
                _ => {}
            }
        }
    }
    Ok(blobs)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: usize = 512;

    /// Writes integers in either byte order, mirroring [`ByteOrder`].
    struct Writer {
        big_endian: bool,
    }

    impl Writer {
        fn u32(&self, bytes: &mut [u8], at: usize, value: u32) {
            let raw = if self.big_endian {
                value.to_be_bytes()
            } else {
                value.to_le_bytes()
            };
            bytes[at..at + 4].copy_from_slice(&raw);
        }

        fn u16(&self, bytes: &mut [u8], at: usize, value: u16) {
            let raw = if self.big_endian {
                value.to_be_bytes()
            } else {
                value.to_le_bytes()
            };
            bytes[at..at + 2].copy_from_slice(&raw);
        }
    }

    /// A hash database: metadata page, one hash page holding a key-0 bookkeeping record, an inline
    /// record and one off-page item, then an overflow chain whose page links are given.
    fn database_in(order: Writer, inline: &[u8], blob: &[u8], links: &[u32]) -> Vec<u8> {
        let pages = 2 + links.len();
        let mut db = vec![0u8; pages * PAGE];
        order.u32(&mut db, 12, HASH_MAGIC);
        order.u32(&mut db, 20, PAGE as u32);
        db[25] = P_HASHMETA;
        order.u32(&mut db, 32, (pages - 1) as u32);

        let hash = &mut db[PAGE..2 * PAGE];
        hash[25] = P_HASH;
        // Items, packed downwards from the end of the page: (key, data) pairs.
        let mut items: Vec<Vec<u8>> = Vec::new();
        let key = |n: u32| {
            let mut item = vec![H_KEYDATA, 0, 0, 0, 0];
            order.u32(&mut item, 1, n);
            item
        };
        items.push(key(0));
        let mut counter = vec![H_KEYDATA, 0, 0, 0, 0];
        order.u32(&mut counter, 1, 3);
        items.push(counter);
        items.push(key(1));
        let mut keydata = vec![H_KEYDATA];
        keydata.extend_from_slice(inline);
        items.push(keydata);
        items.push(key(2));
        let mut offpage = vec![0u8; 12];
        offpage[0] = H_OFFPAGE;
        order.u32(&mut offpage, 4, 2);
        order.u32(&mut offpage, 8, blob.len() as u32);
        items.push(offpage);
        order.u16(hash, 20, items.len() as u16);
        let mut end = PAGE;
        for (index, item) in items.iter().enumerate() {
            let start = end - item.len();
            hash[start..end].copy_from_slice(item);
            order.u16(hash, 26 + 2 * index, start as u16);
            end = start;
        }

        let per_page = blob.len().div_ceil(links.len());
        for (i, chunk) in blob.chunks(per_page).enumerate() {
            let page = &mut db[(2 + i) * PAGE..(3 + i) * PAGE];
            page[25] = P_OVERFLOW;
            order.u32(page, 16, links[i]);
            order.u16(page, 22, chunk.len() as u16);
            page[26..26 + chunk.len()].copy_from_slice(chunk);
        }
        db
    }

    /// The off-page blob of a little-endian database (the inline record is read too).
    fn database(blob: &[u8], links: &[u32]) -> Vec<u8> {
        database_in(Writer { big_endian: false }, b"inline", blob, links)
    }

    #[test]
    fn reads_inline_records_in_both_byte_orders_and_skips_key_zero() {
        let blob: Vec<u8> = (0..700u32).map(|i| i as u8).collect();
        for big_endian in [false, true] {
            let db = database_in(Writer { big_endian }, b"small header", &blob, &[3, 0]);
            let blobs = read_blobs(&db).unwrap();
            assert_eq!(blobs, vec![b"small header".to_vec(), blob.clone()]);
        }
    }

    #[test]
    fn follows_an_overflow_chain() {
        let blob: Vec<u8> = (0..700u32).map(|i| i as u8).collect();
        let db = database(&blob, &[3, 0]);
        assert_eq!(read_blobs(&db).unwrap()[1], blob);
    }

    #[test]
    fn page_loops_and_bad_page_numbers_are_errors() {
        let blob: Vec<u8> = (0..700u32).map(|i| i as u8).collect();
        let looping = database(&blob, &[3, 2]);
        let error = read_blobs(&looping).unwrap_err().to_string();
        assert!(
            error.contains("loops") || error.contains("more than"),
            "{error}"
        );
        let self_loop = database(&blob, &[2, 0]);
        assert!(read_blobs(&self_loop).is_err());
        let outside = database(&blob, &[99, 0]);
        assert!(read_blobs(&outside)
            .unwrap_err()
            .to_string()
            .contains("outside"));
        let to_meta = database(&blob, &[0xffff_ffff, 0]);
        assert!(read_blobs(&to_meta).is_err());
    }

    #[test]
    fn garbage_and_truncation_are_errors() {
        let blob = vec![7u8; 300];
        let db = database(&blob, &[0]);
        assert!(read_blobs(&db).is_ok());
        assert!(read_blobs(&db[..db.len() - 1]).is_err());
        assert!(read_blobs(b"").is_err());
        assert!(read_blobs(&[0xffu8; 4096]).is_err());
        let mut huge = db.clone();
        huge[32..36].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(read_blobs(&huge).is_err());
        let mut bad_size = db.clone();
        bad_size[20..24].copy_from_slice(&1000u32.to_le_bytes());
        assert!(read_blobs(&bad_size).is_err());
    }
}
