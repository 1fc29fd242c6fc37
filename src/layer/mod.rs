//! Layer walk: blob -> decompression -> streaming tar -> the claimed files of one layer, whiteouts recorded.
