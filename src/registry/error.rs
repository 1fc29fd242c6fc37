//! Registry stage: what can go wrong talking to a registry or reading an OCI layout.
//!
//! Messages name the registry path and status, never credentials or tokens.

/// One failed registry operation. Per-image failures become data in the crawl report; the run goes on.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("{url}: connection failed: {message}")]
    Connect { url: String, message: String },
    #[error("{url}: HTTP {status}{detail}")]
    Status {
        url: String,
        status: u16,
        detail: String,
    },
    #[error("{url}: authentication required but no credentials are configured")]
    AuthRequired { url: String },
    #[error(
        "{url}: authentication failed (HTTP {status}): check the username and password or token"
    )]
    AuthFailed { url: String, status: u16 },
    #[error("{url}: unsupported authentication challenge {challenge:?}")]
    UnsupportedChallenge { url: String, challenge: String },
    #[error("{what}: digest mismatch: expected {expected}, content hashes to {actual}")]
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },
    #[error("{what}: larger than the limit of {limit} bytes")]
    TooLarge { what: String, limit: u64 },
    #[error("{what}: {message}")]
    Invalid { what: String, message: String },
    #[error("{what}: unsupported media type {media_type:?}")]
    UnsupportedMediaType { what: String, media_type: String },
    #[error("{what}: not found")]
    NotFound { what: String },
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}
