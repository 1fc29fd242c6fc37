//! Registry stage: digest verification of a blob while it streams, so a tampered layer is caught without
//! ever holding it whole.

use bytes::Bytes;
use futures::{Stream, StreamExt};
use sha2::Digest as _;

use super::error::RegistryError;
use crate::model::{Digest, DigestAlgorithm};

enum Hasher {
    Sha256(sha2::Sha256),
    Sha512(sha2::Sha512),
}

impl Hasher {
    fn new(algorithm: DigestAlgorithm) -> Hasher {
        match algorithm {
            DigestAlgorithm::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
            DigestAlgorithm::Sha512 => Hasher::Sha512(sha2::Sha512::new()),
        }
    }
    fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha512(h) => h.update(data),
        }
    }
    fn finish(self) -> String {
        match self {
            Hasher::Sha256(h) => hex::encode(h.finalize()),
            Hasher::Sha512(h) => hex::encode(h.finalize()),
        }
    }
}

/// The digest of `data` in the same algorithm as `like`.
pub fn digest_like(like: &Digest, data: &[u8]) -> String {
    let mut hasher = Hasher::new(like.algorithm());
    hasher.update(data);
    format!("{}:{}", like.algorithm().as_str(), hasher.finish())
}

/// Passes chunks through while hashing them. When the input ends, the digest (and the size, when known) is
/// checked; a mismatch ends the stream with [`RegistryError::DigestMismatch`]. More bytes than the expected
/// size end it at once, so a hostile server cannot stream forever.
pub fn verify_stream<S>(
    inner: S,
    expected: Digest,
    expected_size: Option<u64>,
    what: String,
) -> impl Stream<Item = Result<Bytes, RegistryError>> + Send
where
    S: Stream<Item = Result<Bytes, RegistryError>> + Send,
{
    struct State<S> {
        inner: std::pin::Pin<Box<S>>,
        hasher: Option<Hasher>,
        seen: u64,
    }
    let state = State {
        inner: Box::pin(inner),
        hasher: Some(Hasher::new(expected.algorithm())),
        seen: 0,
    };
    futures::stream::unfold(state, move |mut state| {
        let expected = expected.clone();
        let what = what.clone();
        async move {
            let hasher = state.hasher.as_mut()?;
            match state.inner.next().await {
                Some(Ok(chunk)) => {
                    state.seen += chunk.len() as u64;
                    if expected_size.is_some_and(|size| state.seen > size) {
                        state.hasher = None;
                        let err = RegistryError::Invalid {
                            what,
                            message: format!(
                                "blob is longer than its descriptor's {} bytes",
                                expected_size.unwrap_or_default()
                            ),
                        };
                        return Some((Err(err), state));
                    }
                    hasher.update(&chunk);
                    Some((Ok(chunk), state))
                }
                Some(Err(err)) => {
                    state.hasher = None;
                    Some((Err(err), state))
                }
                None => {
                    let actual = format!(
                        "{}:{}",
                        expected.algorithm().as_str(),
                        state.hasher.take()?.finish()
                    );
                    if actual != expected.to_string() {
                        let err = RegistryError::DigestMismatch {
                            what,
                            expected: expected.to_string(),
                            actual,
                        };
                        return Some((Err(err), state));
                    }
                    if let Some(size) = expected_size.filter(|size| *size != state.seen) {
                        let err = RegistryError::Invalid {
                            what,
                            message: format!(
                                "blob has {} bytes, its descriptor says {size}",
                                state.seen
                            ),
                        };
                        return Some((Err(err), state));
                    }
                    None
                }
            }
        }
    })
}

/// Collects a verified stream into memory, for small blobs such as image configs.
pub async fn collect_limited<S>(stream: S, limit: u64, what: &str) -> Result<Vec<u8>, RegistryError>
where
    S: Stream<Item = Result<Bytes, RegistryError>>,
{
    let mut stream = std::pin::pin!(stream);
    let mut body = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        if body.len() as u64 + chunk.len() as u64 > limit {
            return Err(RegistryError::TooLarge {
                what: what.to_string(),
                limit,
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(parts: &[&'static [u8]]) -> impl Stream<Item = Result<Bytes, RegistryError>> + Send {
        futures::stream::iter(
            parts
                .iter()
                .map(|p| Ok(Bytes::from_static(p)))
                .collect::<Vec<_>>(),
        )
    }

    #[tokio::test]
    async fn passes_good_content_and_flags_tampering() {
        let digest = Digest::sha256_of(b"hello world");
        let ok = collect_limited(
            verify_stream(
                chunks(&[b"hello ", b"world"]),
                digest.clone(),
                Some(11),
                "x".into(),
            ),
            100,
            "x",
        )
        .await
        .unwrap();
        assert_eq!(ok, b"hello world");
        let err = collect_limited(
            verify_stream(
                chunks(&[b"hello ", b"WORLD"]),
                digest.clone(),
                None,
                "x".into(),
            ),
            100,
            "x",
        )
        .await
        .unwrap_err();
        assert!(matches!(err, RegistryError::DigestMismatch { .. }), "{err}");
        let err = collect_limited(
            verify_stream(
                chunks(&[b"hello ", b"world!!"]),
                digest.clone(),
                Some(11),
                "x".into(),
            ),
            100,
            "x",
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains("longer"), "{err}");
        let err = collect_limited(
            verify_stream(chunks(&[b"hello ", b"world"]), digest, None, "x".into()),
            5,
            "x",
        )
        .await
        .unwrap_err();
        assert!(matches!(err, RegistryError::TooLarge { .. }));
    }
}
