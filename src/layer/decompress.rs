//! Layer walk: chooses the decompressor from the layer's media type and checks it against the data's
//! magic bytes, because registries do serve layers whose bytes disagree with their declared type.

use std::io::{self, BufRead, BufReader, Cursor, Read};

use crate::model::Digest;

use super::LayerError;

/// How a layer blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    /// A short name for messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Compression::None => "uncompressed tar",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// Bytes read before choosing a decompressor: a whole tar header, so uncompressed data can be checked.
const SNIFF_LEN: usize = 512;

/// Buffer between the blob and the decompressor; large enough that the inflater runs in long bursts.
const INPUT_BUFFER: usize = 128 * 1024;

/// The compression a layer media type declares, or `None` for a type that is not a layer Vigil reads.
/// Parameters after `;` are ignored.
pub fn compression_for_media_type(media_type: &str) -> Option<Compression> {
    let base = media_type.split(';').next().unwrap_or("").trim();
    match base {
        "application/vnd.oci.image.layer.v1.tar"
        | "application/vnd.oci.image.layer.nondistributable.v1.tar"
        | "application/vnd.docker.image.rootfs.diff.tar" => Some(Compression::None),
        "application/vnd.oci.image.layer.v1.tar+gzip"
        | "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
        | "application/vnd.docker.image.rootfs.diff.tar.gzip"
        | "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip" => Some(Compression::Gzip),
        "application/vnd.oci.image.layer.v1.tar+zstd"
        | "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd" => Some(Compression::Zstd),
        _ => None,
    }
}

/// Whether `block` is a plausible tar header: an all-zero end block or a header whose checksum holds.
pub(crate) fn looks_like_tar(block: &[u8]) -> bool {
    if block.len() < 512 {
        // Tiny archives (only an end marker cut short) are judged by the tar reader itself.
        return block.iter().all(|&b| b == 0);
    }
    block[..512].iter().all(|&b| b == 0) || super::tar::checksum_ok(&block[..512])
}

fn sniff(prefix: &[u8]) -> Option<Compression> {
    if prefix.is_empty() {
        // Even an empty tar is 1024 zero bytes: an empty blob is not a layer.
        None
    } else if prefix.starts_with(&GZIP_MAGIC) {
        Some(Compression::Gzip)
    } else if prefix.starts_with(&ZSTD_MAGIC) {
        Some(Compression::Zstd)
    } else if looks_like_tar(prefix) {
        Some(Compression::None)
    } else {
        None
    }
}

/// A decompressed view of a layer blob plus the compression actually used.
pub(crate) struct Decoded<'r> {
    pub reader: Box<dyn Read + 'r>,
    pub compression: Compression,
}

/// Opens the decompressor for `reader`. The media type decides what is expected; the magic bytes decide
/// what is used when they name another known format (Docker has long accepted uncompressed layers under
/// the gzip type), and data that matches nothing is rejected with both facts in the error.
pub(crate) fn open<'r, R: Read + 'r>(
    mut reader: R,
    media_type: &str,
    digest: &Digest,
) -> Result<Decoded<'r>, LayerError> {
    let declared =
        compression_for_media_type(media_type).ok_or_else(|| LayerError::UnsupportedMediaType {
            digest: digest.clone(),
            media_type: media_type.chars().take(200).collect(),
        })?;
    let mut prefix = Vec::with_capacity(SNIFF_LEN);
    (&mut reader)
        .take(SNIFF_LEN as u64)
        .read_to_end(&mut prefix)
        .map_err(|source| LayerError::Read {
            digest: digest.clone(),
            offset: 0,
            source,
        })?;
    let compression = match sniff(&prefix) {
        Some(found) => found,
        None => {
            return Err(LayerError::BadMagic {
                digest: digest.clone(),
                media_type: media_type.chars().take(200).collect(),
                expected: declared.as_str(),
                found: describe_prefix(&prefix),
            })
        }
    };
    if compression != declared {
        tracing::debug!(
            %digest,
            declared = declared.as_str(),
            found = compression.as_str(),
            "layer compression differs from its media type; following the data"
        );
    }
    let input = BufReader::with_capacity(INPUT_BUFFER, Cursor::new(prefix).chain(reader));
    let reader: Box<dyn Read + 'r> = match compression {
        Compression::None => Box::new(input),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(input)),
        Compression::Zstd => {
            let decoder = zstd::stream::read::Decoder::with_buffer(input).map_err(|source| {
                LayerError::Decompress {
                    digest: digest.clone(),
                    compression: "zstd",
                    offset: 0,
                    source,
                }
            })?;
            Box::new(decoder)
        }
    };
    Ok(Decoded {
        reader,
        compression,
    })
}

fn describe_prefix(prefix: &[u8]) -> String {
    if prefix.is_empty() {
        return "nothing (empty blob)".to_string();
    }
    let shown: Vec<String> = prefix.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("bytes {} (no gzip, zstd or tar header)", shown.join(" "))
}

/// A bare inflate of a gzip blob into a sink, with the same decoder and buffer the walk uses: the
/// baseline the layer-walk benchmark compares against. Returns the number of uncompressed bytes.
pub fn inflate_to_sink<R: Read>(reader: R) -> io::Result<u64> {
    let mut decoder =
        flate2::bufread::MultiGzDecoder::new(BufReader::with_capacity(INPUT_BUFFER, reader));
    let mut buffer = vec![0u8; super::walk::OUTPUT_BUFFER];
    let mut total = 0u64;
    loop {
        let read = decoder.read(&mut buffer)?;
        if read == 0 {
            return Ok(total);
        }
        total += read as u64;
    }
}

/// Reads a buffered stream to its end without keeping the bytes.
pub(crate) fn drain<R: BufRead>(reader: &mut R) -> io::Result<u64> {
    let mut total = 0u64;
    loop {
        let available = reader.fill_buf()?.len();
        if available == 0 {
            return Ok(total);
        }
        reader.consume(available);
        total += available as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types_map_to_compressions() {
        let cases = [
            (
                "application/vnd.oci.image.layer.v1.tar",
                Some(Compression::None),
            ),
            (
                "application/vnd.oci.image.layer.v1.tar+gzip",
                Some(Compression::Gzip),
            ),
            (
                "application/vnd.oci.image.layer.v1.tar+zstd",
                Some(Compression::Zstd),
            ),
            (
                "application/vnd.docker.image.rootfs.diff.tar.gzip",
                Some(Compression::Gzip),
            ),
            (
                "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
                Some(Compression::Gzip),
            ),
            (
                "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
                Some(Compression::Zstd),
            ),
            (
                "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
                Some(Compression::Gzip),
            ),
            ("application/vnd.oci.image.config.v1+json", None),
            ("application/octet-stream", None),
            ("", None),
        ];
        for (media_type, expected) in cases {
            assert_eq!(
                compression_for_media_type(media_type),
                expected,
                "{media_type}"
            );
        }
    }

    #[test]
    fn sniff_recognises_magic() {
        assert_eq!(sniff(&[0x1f, 0x8b, 8, 0]), Some(Compression::Gzip));
        assert_eq!(sniff(&ZSTD_MAGIC), Some(Compression::Zstd));
        assert_eq!(sniff(&[0u8; 512]), Some(Compression::None));
        assert_eq!(sniff(b"PK\x03\x04 this is a zip"), None);
    }
}
