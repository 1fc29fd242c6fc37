//! Registry stage: the OCI distribution API calls Vigil makes (catalog and tag paging, manifests, blobs).

use bytes::Bytes;
use futures::Stream;
use reqwest::header::{CONTENT_TYPE, LINK};
use reqwest::Method;
use serde::Deserialize;

use super::auth::Scope;
use super::client::{body_stream, read_limited, RegistryClient};
use super::error::RegistryError;
use super::manifest::{FetchedManifest, MANIFEST_ACCEPT, MAX_MANIFEST_BYTES};
use super::verify::verify_stream;
use crate::model::Digest;

/// Pages followed at most, so a registry whose `Link` headers loop cannot keep a crawl busy forever.
const MAX_PAGES: usize = 100_000;

#[derive(Deserialize)]
struct CatalogPage {
    #[serde(default)]
    repositories: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct TagsPage {
    #[serde(default)]
    tags: Option<Vec<String>>,
}

impl RegistryClient {
    /// Every repository in `_catalog`, following `Link` headers until the last page.
    pub async fn catalog(&self) -> Result<Vec<String>, RegistryError> {
        let first = format!("/v2/_catalog?n={}", self.settings().page_size);
        let mut repositories = Vec::new();
        self.paged(&first, Scope::Catalog, |body, what| {
            let page: CatalogPage =
                serde_json::from_slice(body).map_err(|e| RegistryError::Invalid {
                    what: what.to_string(),
                    message: format!("catalog page is not valid JSON: {e}"),
                })?;
            repositories.extend(page.repositories.unwrap_or_default());
            Ok(())
        })
        .await?;
        repositories.sort();
        repositories.dedup();
        Ok(repositories)
    }

    /// Every tag of a repository, sorted. A repository with no tags (or one the registry no longer knows)
    /// gives an empty list, not an error.
    pub async fn tags(&self, repository: &str) -> Result<Vec<String>, RegistryError> {
        let first = format!("/v2/{repository}/tags/list?n={}", self.settings().page_size);
        let mut tags = Vec::new();
        let result = self
            .paged(&first, Scope::Pull(repository.to_string()), |body, what| {
                let page: TagsPage =
                    serde_json::from_slice(body).map_err(|e| RegistryError::Invalid {
                        what: what.to_string(),
                        message: format!("tag list is not valid JSON: {e}"),
                    })?;
                tags.extend(page.tags.unwrap_or_default());
                Ok(())
            })
            .await;
        match result {
            Ok(()) => {}
            Err(RegistryError::NotFound { .. }) => return Ok(Vec::new()),
            Err(err) => return Err(err),
        }
        tags.sort();
        tags.dedup();
        Ok(tags)
    }

    async fn paged(
        &self,
        first: &str,
        scope: Scope,
        mut on_page: impl FnMut(&[u8], &str) -> Result<(), RegistryError>,
    ) -> Result<(), RegistryError> {
        let mut next = Some(self.url(first)?);
        let mut pages = 0;
        while let Some(url) = next.take() {
            pages += 1;
            if pages > MAX_PAGES {
                return Err(RegistryError::Invalid {
                    what: url.to_string(),
                    message: format!("more than {MAX_PAGES} pages; the Link headers may loop"),
                });
            }
            let what = url.path().to_string();
            let permitted = self
                .send(Method::GET, url, scope.clone(), &["application/json"])
                .await?;
            let link = permitted
                .response
                .headers()
                .get(LINK)
                .and_then(|v| v.to_str().ok())
                .and_then(next_link)
                .map(str::to_string);
            let body = read_limited(permitted.response, 64 << 20, &what).await?;
            on_page(&body, &what)?;
            if let Some(link) = link {
                next = Some(self.url(&link)?);
            }
        }
        Ok(())
    }

    /// Fetches a manifest or index by tag or digest, sending every media type Vigil reads. A manifest
    /// fetched by digest must hash to that digest.
    pub async fn manifest(
        &self,
        repository: &str,
        reference: &str,
    ) -> Result<FetchedManifest, RegistryError> {
        let url = self.url(&format!("/v2/{repository}/manifests/{reference}"))?;
        let what = format!("{repository}:{reference}");
        let permitted = self
            .send(
                Method::GET,
                url,
                Scope::Pull(repository.to_string()),
                MANIFEST_ACCEPT,
            )
            .await?;
        let content_type = permitted
            .response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or(v).trim().to_string());
        let body = read_limited(permitted.response, MAX_MANIFEST_BYTES, &what).await?;
        FetchedManifest::parse(&what, reference, body, content_type)
    }

    /// Streams a blob, verifying its digest while streaming: the stream ends with an error on mismatch.
    pub async fn blob_stream(
        &self,
        repository: &str,
        digest: &Digest,
        expected_size: Option<u64>,
    ) -> Result<impl Stream<Item = Result<Bytes, RegistryError>> + Send + use<>, RegistryError>
    {
        let url = self.url(&format!("/v2/{repository}/blobs/{digest}"))?;
        let what = format!("{repository}@{digest}");
        let permitted = self
            .send(Method::GET, url, Scope::Pull(repository.to_string()), &[])
            .await?;
        let stream = body_stream(permitted, what.clone());
        Ok(verify_stream(stream, digest.clone(), expected_size, what))
    }
}

/// The target of the `rel="next"` entry of a `Link` header.
pub fn next_link(header: &str) -> Option<&str> {
    header.split(',').find_map(|part| {
        let part = part.trim();
        let start = part.find('<')?;
        let end = part[start..].find('>')? + start;
        let params = &part[end + 1..];
        let is_next = params.split(';').any(|p| {
            let p = p.trim();
            p.eq_ignore_ascii_case("rel=\"next\"") || p.eq_ignore_ascii_case("rel=next")
        });
        is_next.then(|| &part[start + 1..end])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_next_links() {
        assert_eq!(
            next_link(r#"</v2/_catalog?last=b&n=2>; rel="next""#),
            Some("/v2/_catalog?last=b&n=2")
        );
        assert_eq!(
            next_link(
                r#"<https://r.example/v2/a/tags/list?last=x>; rel="prev", <https://r.example/v2/a/tags/list?last=y>; rel="next""#
            ),
            Some("https://r.example/v2/a/tags/list?last=y")
        );
        assert_eq!(next_link(r#"</v2/x>; rel="last""#), None);
        assert_eq!(next_link("garbage"), None);
        assert_eq!(next_link("<unterminated; rel=\"next\""), None);
    }
}
