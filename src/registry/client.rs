//! Registry stage: the HTTP client for the OCI distribution API.
//!
//! oci-client parses manifests well but has no retries, drops `Retry-After`, pages the catalog wrongly and asks
//! for the wrong token scope (see shared notes), so every request goes through this one path on reqwest:
//! authentication challenges, bearer tokens per scope, a concurrency bound, and retries with backoff.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::{Stream, StreamExt};
use reqwest::header::{
    HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, RETRY_AFTER, WWW_AUTHENTICATE,
};
use reqwest::{Method, Response, StatusCode};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use url::Url;

use super::auth::{parse_challenge, Challenge, Scope};
use super::error::RegistryError;
use crate::config::{Credentials, RegistrySettings, Secret};

/// The product token at the start of Vigil's `User-Agent`.
pub const USER_AGENT_PRODUCT: &str = "vigil/";

/// The `User-Agent` Vigil sends; registry events use it to tell Vigil's own pulls apart.
pub fn user_agent() -> String {
    format!("{USER_AGENT_PRODUCT}{}", env!("CARGO_PKG_VERSION"))
}

/// A client for one registry.
pub struct RegistryClient {
    http: reqwest::Client,
    base: Url,
    settings: Arc<RegistrySettings>,
    permits: Arc<Semaphore>,
    auth: Mutex<AuthState>,
}

#[derive(Default)]
struct AuthState {
    challenge: Option<Challenge>,
    tokens: HashMap<Scope, (Secret, Instant)>,
}

/// A response whose body may still be streaming; it holds a concurrency permit until dropped.
pub struct PermittedResponse {
    pub response: Response,
    _permit: OwnedSemaphorePermit,
}

#[derive(serde::Deserialize)]
struct TokenResponse {
    token: Option<String>,
    access_token: Option<String>,
    expires_in: Option<u64>,
}

impl RegistryClient {
    /// Builds a client for an HTTP endpoint.
    pub fn new(
        base: Url,
        settings: Arc<RegistrySettings>,
    ) -> Result<RegistryClient, RegistryError> {
        let mut builder = reqwest::Client::builder()
            .user_agent(user_agent())
            .connect_timeout(Duration::from_secs(10).min(settings.timeout))
            .read_timeout(settings.timeout)
            .pool_max_idle_per_host(settings.max_concurrency);
        if let Some(ca_file) = &settings.ca_file {
            let pem = std::fs::read(ca_file).map_err(|source| RegistryError::Io {
                path: ca_file.display().to_string(),
                source,
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                RegistryError::Invalid {
                    what: ca_file.display().to_string(),
                    message: format!("not a PEM certificate bundle: {e}"),
                }
            })?;
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder.build().map_err(|e| RegistryError::Invalid {
            what: base.to_string(),
            message: format!("cannot build HTTP client: {e}"),
        })?;
        let permits = Arc::new(Semaphore::new(settings.max_concurrency.max(1)));
        Ok(RegistryClient {
            http,
            base,
            settings,
            permits,
            auth: Mutex::new(AuthState::default()),
        })
    }

    /// The settings this client was built from.
    pub fn settings(&self) -> &RegistrySettings {
        &self.settings
    }

    /// `host[:port]` of the registry, as image references spell it.
    pub fn host(&self) -> String {
        match self.base.port() {
            Some(port) => format!("{}:{port}", self.base.host_str().unwrap_or_default()),
            None => self.base.host_str().unwrap_or_default().to_string(),
        }
    }

    /// Resolves a path (or a `Link` target) against the registry, refusing other origins so credentials
    /// are never sent elsewhere.
    pub fn url(&self, path_and_query: &str) -> Result<Url, RegistryError> {
        let url = self
            .base
            .join(path_and_query)
            .map_err(|e| RegistryError::Invalid {
                what: path_and_query.to_string(),
                message: format!("bad URL: {e}"),
            })?;
        if url.origin() != self.base.origin() {
            return Err(RegistryError::Invalid {
                what: self.base.to_string(),
                message: format!("refusing to follow a link to another origin: {url}"),
            });
        }
        Ok(url)
    }

    /// `GET /v2/`: checks the registry speaks the API and learns its authentication challenge.
    pub async fn ping(&self) -> Result<(), RegistryError> {
        let url = self.url("/v2/")?;
        self.send(Method::GET, url, Scope::Ping, &[])
            .await
            .map(drop)
    }

    /// Sends a request with authentication and retries. Returns only 2xx; other statuses become errors.
    pub async fn send(
        &self,
        method: Method,
        url: Url,
        scope: Scope,
        accept: &[&str],
    ) -> Result<PermittedResponse, RegistryError> {
        let shown = display_url(&url);
        let mut reauthenticated = false;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let permit = self
                .permits
                .clone()
                .acquire_owned()
                .await
                .expect("the semaphore is never closed");
            let mut headers = HeaderMap::new();
            for media_type in accept {
                if let Ok(value) = HeaderValue::from_str(media_type) {
                    headers.append(ACCEPT, value);
                }
            }
            if let Some(value) = self.authorization(&scope, &shown).await? {
                headers.insert(AUTHORIZATION, value);
            }
            let result = self
                .http
                .request(method.clone(), url.clone())
                .headers(headers)
                .send()
                .await;
            let response = match result {
                Ok(response) => response,
                Err(err) => {
                    drop(permit);
                    let message = describe_reqwest_error(&err);
                    if attempt < self.settings.retry.max_attempts {
                        let delay = self.backoff(attempt);
                        tracing::warn!(url = %shown, attempt, error = %message, "retrying after connection error");
                        tokio::time::sleep(delay).await;
                        continue;
                    }
                    return Err(RegistryError::Connect {
                        url: shown,
                        message,
                    });
                }
            };
            let status = response.status();
            if status.is_success() {
                return Ok(PermittedResponse {
                    response,
                    _permit: permit,
                });
            }
            if status == StatusCode::UNAUTHORIZED {
                let had_credentials = self.has_authorization(&scope);
                let challenge = response
                    .headers()
                    .get(WWW_AUTHENTICATE)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                drop(response);
                drop(permit);
                if reauthenticated || (had_credentials && !self.token_may_refresh(&scope)) {
                    return Err(RegistryError::AuthFailed {
                        url: shown,
                        status: status.as_u16(),
                    });
                }
                let Some(header) = challenge else {
                    return Err(RegistryError::AuthFailed {
                        url: shown,
                        status: status.as_u16(),
                    });
                };
                let parsed = parse_challenge(&header).ok_or_else(|| {
                    RegistryError::UnsupportedChallenge {
                        url: shown.clone(),
                        challenge: header.chars().take(100).collect(),
                    }
                })?;
                {
                    let mut state = self.auth.lock().expect("auth lock");
                    state.challenge = Some(parsed);
                    state.tokens.remove(&scope);
                }
                reauthenticated = true;
                attempt -= 1;
                continue;
            }
            let retryable = status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error();
            if retryable && attempt < self.settings.retry.max_attempts {
                let delay = retry_after(response.headers())
                    .map(|d| d.min(Duration::from_millis(self.settings.retry.max_backoff_ms)))
                    .unwrap_or_else(|| self.backoff(attempt));
                tracing::warn!(url = %shown, status = status.as_u16(), attempt, delay_ms = delay.as_millis() as u64, "retrying");
                drop(response);
                drop(permit);
                tokio::time::sleep(delay).await;
                continue;
            }
            let detail = error_detail(response).await;
            return Err(if status == StatusCode::NOT_FOUND {
                RegistryError::NotFound { what: shown }
            } else {
                RegistryError::Status {
                    url: shown,
                    status: status.as_u16(),
                    detail,
                }
            });
        }
    }

    /// Exponential backoff with full jitter: a random delay up to `initial * 2^(attempt-1)`, capped.
    fn backoff(&self, attempt: u32) -> Duration {
        let retry = &self.settings.retry;
        let ceiling = retry
            .initial_backoff_ms
            .saturating_mul(1u64 << (attempt - 1).min(20))
            .min(retry.max_backoff_ms)
            .max(1);
        let jittered = rand::random_range(ceiling / 2..=ceiling);
        Duration::from_millis(jittered)
    }

    fn has_authorization(&self, scope: &Scope) -> bool {
        let state = self.auth.lock().expect("auth lock");
        match (&state.challenge, &self.settings.credentials) {
            (_, Credentials::Bearer { .. }) => true,
            (Some(Challenge::Basic), Credentials::Basic { .. }) => true,
            (Some(Challenge::Bearer { .. }), _) => state.tokens.contains_key(scope),
            _ => false,
        }
    }

    /// A cached bearer token may have been revoked early; one fresh token is worth a try.
    fn token_may_refresh(&self, scope: &Scope) -> bool {
        let state = self.auth.lock().expect("auth lock");
        matches!(state.challenge, Some(Challenge::Bearer { .. }))
            && state.tokens.contains_key(scope)
    }

    /// The `Authorization` header for a request, fetching a bearer token for its scope when needed.
    async fn authorization(
        &self,
        scope: &Scope,
        shown: &str,
    ) -> Result<Option<HeaderValue>, RegistryError> {
        if let Credentials::Bearer { token } = &self.settings.credentials {
            return Ok(Some(secret_header(&format!("Bearer {}", token.expose()))));
        }
        let challenge = self.auth.lock().expect("auth lock").challenge.clone();
        match challenge {
            None => Ok(None),
            Some(Challenge::Basic) => match &self.settings.credentials {
                Credentials::Basic { username, password } => {
                    Ok(Some(basic_header(username, password)))
                }
                _ => Err(RegistryError::AuthRequired {
                    url: shown.to_string(),
                }),
            },
            Some(Challenge::Bearer { realm, service }) => {
                if let Some((token, expiry)) =
                    self.auth.lock().expect("auth lock").tokens.get(scope)
                {
                    if Instant::now() < *expiry {
                        return Ok(Some(secret_header(&format!("Bearer {}", token.expose()))));
                    }
                }
                let (token, lifetime) = self.fetch_token(&realm, service.as_deref(), scope).await?;
                // Refresh a little early so a token never expires mid-request.
                let expiry = Instant::now() + lifetime.saturating_sub(Duration::from_secs(5));
                let header = secret_header(&format!("Bearer {}", token.expose()));
                self.auth
                    .lock()
                    .expect("auth lock")
                    .tokens
                    .insert(scope.clone(), (token, expiry));
                Ok(Some(header))
            }
        }
    }

    async fn fetch_token(
        &self,
        realm: &str,
        service: Option<&str>,
        scope: &Scope,
    ) -> Result<(Secret, Duration), RegistryError> {
        let mut url = Url::parse(realm).map_err(|e| RegistryError::Invalid {
            what: "token realm".into(),
            message: format!("{realm:?} is not a URL: {e}"),
        })?;
        {
            let mut query = url.query_pairs_mut();
            if let Some(service) = service {
                query.append_pair("service", service);
            }
            if let Some(scope) = scope.token_scope() {
                query.append_pair("scope", &scope);
            }
        }
        let shown = display_url(&url);
        let mut attempt = 0;
        let response = loop {
            attempt += 1;
            let mut request = self.http.get(url.clone());
            if let Credentials::Basic { username, password } = &self.settings.credentials {
                request = request.header(AUTHORIZATION, basic_header(username, password));
            }
            match request.send().await {
                Ok(response)
                    if (response.status() == StatusCode::TOO_MANY_REQUESTS
                        || response.status().is_server_error())
                        && attempt < self.settings.retry.max_attempts =>
                {
                    let delay =
                        retry_after(response.headers()).unwrap_or_else(|| self.backoff(attempt));
                    tokio::time::sleep(delay).await;
                }
                Ok(response) => break response,
                Err(err) if attempt < self.settings.retry.max_attempts => {
                    tracing::warn!(url = %shown, error = %describe_reqwest_error(&err), "retrying token request");
                    tokio::time::sleep(self.backoff(attempt)).await;
                }
                Err(err) => {
                    return Err(RegistryError::Connect {
                        url: shown,
                        message: describe_reqwest_error(&err),
                    })
                }
            }
        };
        let status = response.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(RegistryError::AuthFailed {
                url: shown,
                status: status.as_u16(),
            });
        }
        if !status.is_success() {
            return Err(RegistryError::Status {
                url: shown,
                status: status.as_u16(),
                detail: String::new(),
            });
        }
        let body = read_limited(response, 1 << 20, &shown).await?;
        let parsed: TokenResponse =
            serde_json::from_slice(&body).map_err(|e| RegistryError::Invalid {
                what: shown.clone(),
                message: format!("token response is not JSON: {e}"),
            })?;
        let token = parsed
            .token
            .or(parsed.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| RegistryError::Invalid {
                what: shown,
                message: "token response holds no token".into(),
            })?;
        // The token spec's default lifetime is 60 seconds.
        let lifetime = Duration::from_secs(parsed.expires_in.unwrap_or(60).max(10));
        Ok((Secret::new(token), lifetime))
    }
}

fn basic_header(username: &str, password: &Secret) -> HeaderValue {
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD
        .encode(format!("{username}:{}", password.expose()));
    secret_header(&format!("Basic {encoded}"))
}

fn secret_header(value: &str) -> HeaderValue {
    let mut header = HeaderValue::from_str(value).unwrap_or_else(|_| HeaderValue::from_static(""));
    header.set_sensitive(true);
    header
}

/// `Retry-After` as seconds or an HTTP date.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(
        when.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// The URL without its query string's noise; it never holds credentials.
fn display_url(url: &Url) -> String {
    let mut shown = url.clone();
    shown.set_query(None);
    shown.to_string()
}

fn describe_reqwest_error(err: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(inner) = source {
        message.push_str(": ");
        message.push_str(&inner.to_string());
        source = inner.source();
    }
    message
}

/// The registry's error code and message (`{"errors":[{"code":..,"message":..}]}`), briefly.
async fn error_detail(response: Response) -> String {
    let Ok(body) = read_limited(response, 64 * 1024, "").await else {
        return String::new();
    };
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<ErrorEntry>,
    }
    #[derive(serde::Deserialize)]
    struct ErrorEntry {
        code: Option<String>,
        message: Option<String>,
    }
    match serde_json::from_slice::<Errors>(&body) {
        Ok(parsed) if !parsed.errors.is_empty() => {
            let entry = &parsed.errors[0];
            format!(
                ": {} {}",
                entry.code.as_deref().unwrap_or(""),
                entry.message.as_deref().unwrap_or("")
            )
            .trim_end()
            .to_string()
        }
        _ => String::new(),
    }
}

/// Reads a whole body, refusing more than `limit` bytes.
pub async fn read_limited(
    response: Response,
    limit: u64,
    what: &str,
) -> Result<Vec<u8>, RegistryError> {
    if response.content_length().is_some_and(|len| len > limit) {
        return Err(RegistryError::TooLarge {
            what: what.to_string(),
            limit,
        });
    }
    let mut body = Vec::new();
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| RegistryError::Connect {
            url: what.to_string(),
            message: describe_reqwest_error(&e),
        })?;
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

/// A response body as a stream of chunks, holding the concurrency permit until it ends.
pub fn body_stream(
    permitted: PermittedResponse,
    what: String,
) -> impl Stream<Item = Result<Bytes, RegistryError>> + Send {
    let PermittedResponse { response, _permit } = permitted;
    response.bytes_stream().map(move |chunk| {
        let _held = &_permit;
        chunk.map_err(|e| RegistryError::Connect {
            url: what.clone(),
            message: describe_reqwest_error(&e),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("3"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(3)));
        let future = std::time::SystemTime::now() + Duration::from_secs(120);
        headers.insert(
            RETRY_AFTER,
            HeaderValue::from_str(&httpdate::fmt_http_date(future)).unwrap(),
        );
        let delay = retry_after(&headers).unwrap();
        assert!(delay > Duration::from_secs(100) && delay <= Duration::from_secs(120));
        headers.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&headers), None);
    }
}
