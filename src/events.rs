//! Registry activity: the notification webhooks a registry sends (`vigil events serve`) or the same
//! envelopes from a file (`vigil events import`), kept as rows of the `activity` table. Only manifest and
//! index events count; pushes give `pushed_at`, pulls `last_pulled_at`. Vigil's own pulls (its
//! `User-Agent`) are dropped on arrival, so its scans never count as use.

use std::collections::HashSet;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use serde::Deserialize;
use tokio::sync::Mutex;

use crate::config::Settings;
use crate::registry::USER_AGENT_PRODUCT;
use crate::warehouse::{read, write_activity, ActivityRow, Warehouse, WarehouseError};

/// The media type of a notification envelope.
pub const ENVELOPE_MEDIA_TYPE: &str = "application/vnd.docker.distribution.events.v1+json";

/// Manifest and index media types: events about anything else (blobs) are ignored.
const MANIFEST_TYPES: [&str; 4] = [
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

/// Largest envelope accepted.
const MAX_BODY: usize = 8 << 20;

#[derive(Debug, thiserror::Error)]
pub enum EventsError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} line {line}: not an event envelope: {message}")]
    Parse {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("no registry {subscription}/{registry} in the configuration")]
    UnknownRegistry {
        subscription: String,
        registry: String,
    },
    #[error(transparent)]
    Warehouse(#[from] WarehouseError),
}

#[derive(Debug, Deserialize)]
struct Envelope {
    #[serde(default)]
    events: Vec<Event>,
}

#[derive(Debug, Deserialize)]
struct Event {
    #[serde(default)]
    id: String,
    #[serde(default)]
    timestamp: Option<String>,
    #[serde(default)]
    action: String,
    #[serde(default)]
    target: Target,
    #[serde(default)]
    request: RequestInfo,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Target {
    #[serde(default)]
    media_type: String,
    #[serde(default)]
    digest: String,
    #[serde(default)]
    repository: String,
    #[serde(default)]
    tag: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct RequestInfo {
    #[serde(default)]
    addr: Option<String>,
    #[serde(default)]
    useragent: Option<String>,
}

/// What happened to the events of one envelope or file.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Tally {
    /// Stored as activity rows.
    pub stored: u64,
    /// Already stored (same event id).
    pub duplicates: u64,
    /// Not manifest or index pushes and pulls, or Vigil's own pulls.
    pub ignored: u64,
}

/// The activity row an event makes, or `None` when it does not count.
fn activity(event: Event, received_at: DateTime<Utc>) -> Option<ActivityRow> {
    if !matches!(event.action.as_str(), "push" | "pull")
        || !MANIFEST_TYPES.contains(&event.target.media_type.as_str())
        || event.id.is_empty()
        || event.target.digest.is_empty()
        || event.target.repository.is_empty()
    {
        return None;
    }
    if event
        .request
        .useragent
        .as_deref()
        .is_some_and(|ua| ua.starts_with(USER_AGENT_PRODUCT))
    {
        return None;
    }
    let occurred_at = event
        .timestamp
        .as_deref()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or(received_at);
    Some(ActivityRow {
        event_id: event.id,
        action: event.action,
        repository: event.target.repository,
        digest: event.target.digest,
        tag: event.target.tag.filter(|t| !t.is_empty()),
        media_type: event.target.media_type,
        occurred_at,
        user_agent: event.request.useragent,
        source: event.request.addr,
        received_at,
    })
}

/// Parses one envelope (or a bare event) from JSON.
fn parse(text: &str) -> Result<Vec<Event>, serde_json::Error> {
    let value: serde_json::Value = serde_json::from_str(text)?;
    if value.get("events").is_some() {
        Ok(serde_json::from_value::<Envelope>(value)?.events)
    } else {
        Ok(vec![serde_json::from_value::<Event>(value)?])
    }
}

fn check_registry(
    settings: &Settings,
    subscription: &str,
    registry: &str,
) -> Result<(), EventsError> {
    let known = settings
        .subscriptions
        .iter()
        .filter(|s| s.id == subscription)
        .flat_map(|s| &s.registries)
        .any(|r| r.name == registry);
    if known {
        Ok(())
    } else {
        Err(EventsError::UnknownRegistry {
            subscription: subscription.to_string(),
            registry: registry.to_string(),
        })
    }
}

/// Keeps the rows not seen before, remembering them; counts the rest.
fn dedupe(
    rows: Vec<ActivityRow>,
    seen: &mut HashSet<String>,
    tally: &mut Tally,
) -> Vec<ActivityRow> {
    let mut fresh = Vec::with_capacity(rows.len());
    for row in rows {
        if seen.insert(row.event_id.clone()) {
            fresh.push(row);
        } else {
            tally.duplicates += 1;
        }
    }
    fresh
}

/// `vigil events import`: loads envelopes (one JSON document per line) for one registry.
pub async fn import(
    settings: &Settings,
    subscription: &str,
    registry: &str,
    file: &Path,
) -> Result<Tally, EventsError> {
    check_registry(settings, subscription, registry)?;
    let text = std::fs::read_to_string(file).map_err(|source| EventsError::Io {
        path: file.to_path_buf(),
        source,
    })?;
    let received_at = Utc::now();
    let mut tally = Tally::default();
    let mut rows = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let events = parse(line).map_err(|e| EventsError::Parse {
            path: file.to_path_buf(),
            line: n + 1,
            message: e.to_string(),
        })?;
        for event in events {
            match activity(event, received_at) {
                Some(row) => rows.push(row),
                None => tally.ignored += 1,
            }
        }
    }
    let warehouse = settings.open_warehouse()?;
    let mut seen = read::activity_event_ids(&warehouse, subscription, registry).await?;
    let fresh = dedupe(rows, &mut seen, &mut tally);
    tally.stored = fresh.len() as u64;
    write_activity(&warehouse, subscription, registry, &fresh).await?;
    Ok(tally)
}

/// A manifest push stored: the image a scan on push reads, in the registry that reported it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PushedImage {
    pub subscription: String,
    /// The registry's name inside its subscription.
    pub registry: String,
    pub repository: String,
    pub digest: String,
}

/// Called with every push stored.
pub type PushHook = Box<dyn Fn(PushedImage) + Send + Sync>;

/// The receiver's state: where to write, the token, and the ids seen per registry.
struct Receiver {
    settings: Settings,
    warehouse: Warehouse,
    token: String,
    seen: Mutex<std::collections::HashMap<(String, String), HashSet<String>>>,
    on_push: Option<PushHook>,
}

fn reply(status: StatusCode, text: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(format!("{text}\n"))));
    *response.status_mut() = status;
    response
}

/// Why a request is refused: the answer's status and text.
struct Refusal {
    status: StatusCode,
    message: String,
}

fn refuse(status: StatusCode, message: &str) -> Refusal {
    Refusal {
        status,
        message: message.to_string(),
    }
}

fn bearer_matches(request: &Request<Incoming>, token: &str) -> bool {
    let Some(given) = request
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    // Compare without an early exit on the first differing byte.
    given.len() == token.len()
        && given
            .bytes()
            .zip(token.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// One webhook request: checked and routed, its envelope parsed, its new events stored (deduplicated, durable)
/// before the answer, and each push stored handed to the push hook.
async fn handle(receiver: Arc<Receiver>, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let (subscription, registry) = match route(&receiver, &request) {
        Ok(route) => route,
        Err(refused) => return reply(refused.status, &refused.message),
    };
    let events = match read_envelope(request).await {
        Ok(events) => events,
        Err(refused) => return reply(refused.status, &refused.message),
    };
    let received_at = Utc::now();
    let mut tally = Tally::default();
    let mut rows = Vec::new();
    for event in events {
        match activity(event, received_at) {
            Some(row) => rows.push(row),
            None => tally.ignored += 1,
        }
    }
    let fresh = match store(&receiver, &subscription, &registry, rows, &mut tally).await {
        Ok(fresh) => fresh,
        Err(refused) => return reply(refused.status, &refused.message),
    };
    tally.stored = fresh.len() as u64;
    if let Some(on_push) = &receiver.on_push {
        for row in fresh.into_iter().filter(|r| r.action == "push") {
            on_push(PushedImage {
                subscription: subscription.clone(),
                registry: registry.clone(),
                repository: row.repository,
                digest: row.digest,
            });
        }
    }
    tracing::info!(subscription = %subscription, registry = %registry, stored = tally.stored,
        duplicates = tally.duplicates, ignored = tally.ignored, "events");
    reply(
        StatusCode::OK,
        &serde_json::to_string(&tally).unwrap_or_default(),
    )
}

/// The (subscription, registry) a request posts to, once its method, token, path and content type are
/// right; otherwise the answer refusing it.
fn route(receiver: &Receiver, request: &Request<Incoming>) -> Result<(String, String), Refusal> {
    const USAGE: &str = "POST envelopes to /events/SUBSCRIPTION/REGISTRY";
    if request.method() != hyper::Method::POST {
        return Err(refuse(StatusCode::METHOD_NOT_ALLOWED, USAGE));
    }
    if !bearer_matches(request, &receiver.token) {
        return Err(refuse(
            StatusCode::UNAUTHORIZED,
            "a valid bearer token is required",
        ));
    }
    let path: Vec<String> = request
        .uri()
        .path()
        .trim_matches('/')
        .split('/')
        .map(percent_decode)
        .collect();
    let [events, subscription, registry] = path.as_slice() else {
        return Err(refuse(StatusCode::NOT_FOUND, USAGE));
    };
    if events != "events" {
        return Err(refuse(StatusCode::NOT_FOUND, USAGE));
    }
    if check_registry(&receiver.settings, subscription, registry).is_err() {
        return Err(refuse(
            StatusCode::NOT_FOUND,
            "no such registry in the configuration",
        ));
    }
    let content_type = request
        .headers()
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !(content_type.starts_with(ENVELOPE_MEDIA_TYPE)
        || content_type.starts_with("application/json"))
    {
        return Err(refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "expected an events envelope",
        ));
    }
    Ok((subscription.clone(), registry.clone()))
}

/// The events of a request's body (bounded in size), or the answer refusing it.
async fn read_envelope(request: Request<Incoming>) -> Result<Vec<Event>, Refusal> {
    let body = match Limited::new(request.into_body(), MAX_BODY).collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => {
            return Err(refuse(
                StatusCode::PAYLOAD_TOO_LARGE,
                "envelope too large or cut short",
            ))
        }
    };
    let Ok(text) = std::str::from_utf8(&body) else {
        return Err(refuse(StatusCode::BAD_REQUEST, "the envelope is not UTF-8"));
    };
    parse(text).map_err(|err| {
        refuse(
            StatusCode::BAD_REQUEST,
            &format!("not an events envelope: {err}"),
        )
    })
}

/// Stores the rows not seen before for one registry and returns them; durable on return. One writer at a
/// time: dedupe and the write happen together, before the answer.
async fn store(
    receiver: &Receiver,
    subscription: &str,
    registry: &str,
    rows: Vec<ActivityRow>,
    tally: &mut Tally,
) -> Result<Vec<ActivityRow>, Refusal> {
    let key = (subscription.to_string(), registry.to_string());
    let mut seen = receiver.seen.lock().await;
    if !seen.contains_key(&key) {
        match read::activity_event_ids(&receiver.warehouse, subscription, registry).await {
            Ok(ids) => {
                seen.insert(key.clone(), ids);
            }
            Err(err) => {
                tracing::error!(%err, "cannot read stored activity");
                return Err(refuse(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "cannot read stored activity",
                ));
            }
        }
    }
    let ids = seen.get_mut(&key).expect("inserted above");
    let fresh = dedupe(rows, ids, tally);
    let (sub, reg) = key;
    let written = write_activity(&receiver.warehouse, &sub, &reg, &fresh).await;
    if written.is_err() {
        // Forget the ids so the registry's retry is stored.
        for row in &fresh {
            ids.remove(&row.event_id);
        }
        tracing::error!(?written, "cannot store activity");
        return Err(refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "cannot store the events",
        ));
    }
    Ok(fresh)
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(high), Some(low)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((high * 16 + low) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A running receiver.
pub struct Server {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    /// Serves until `shutdown` completes; requests in flight finish first.
    pub async fn bind(
        settings: Settings,
        listen: SocketAddr,
        token: String,
        on_push: Option<PushHook>,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<Server> {
        let warehouse = settings.open_warehouse().map_err(std::io::Error::other)?;
        let listener = tokio::net::TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let receiver = Arc::new(Receiver {
            settings,
            warehouse,
            token,
            seen: Mutex::new(Default::default()),
            on_push,
        });
        let task = tokio::spawn(async move {
            let mut shutdown = std::pin::pin!(shutdown);
            let mut connections = tokio::task::JoinSet::new();
            loop {
                tokio::select! {
                    _ = &mut shutdown => break,
                    accepted = listener.accept() => {
                        let Ok((stream, _)) = accepted else { continue };
                        let receiver = receiver.clone();
                        connections.spawn(async move {
                            let service = hyper::service::service_fn(move |request| {
                                let receiver = receiver.clone();
                                async move { Ok::<_, Infallible>(handle(receiver, request).await) }
                            });
                            let io = hyper_util::rt::TokioIo::new(stream);
                            if let Err(err) = hyper::server::conn::http1::Builder::new()
                                .serve_connection(io, service)
                                .await
                            {
                                tracing::debug!(%err, "connection ended");
                            }
                        });
                    }
                }
            }
            // Let requests in flight finish their durable write and answer.
            while connections.join_next().await.is_some() {}
        });
        Ok(Server { addr, task })
    }

    /// Waits until the server stops (after its shutdown future completes).
    pub async fn wait(self) {
        let _ = self.task.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(action: &str, media_type: &str, ua: &str) -> String {
        format!(
            r#"{{"id":"e-{action}-{ua}","timestamp":"2026-11-01T10:00:00.5Z","action":"{action}","target":{{"mediaType":"{media_type}","digest":"sha256:{d}","repository":"apps/web","tag":"1.0"}},"request":{{"addr":"10.0.0.1:1234","useragent":"{ua}"}}}}"#,
            d = "a".repeat(64)
        )
    }

    #[test]
    fn only_manifest_pushes_and_pulls_by_others_count() {
        let now = Utc::now();
        let keep = |json: String| activity(parse(&json).unwrap().pop().unwrap(), now);
        let manifest = "application/vnd.oci.image.manifest.v1+json";
        let pull = keep(event("pull", manifest, "skopeo/1.9")).unwrap();
        assert_eq!(
            pull.occurred_at.to_rfc3339(),
            "2026-11-01T10:00:00.500+00:00"
        );
        assert_eq!(pull.tag.as_deref(), Some("1.0"));
        assert!(keep(event(
            "push",
            "application/vnd.docker.distribution.manifest.list.v2+json",
            "docker"
        ))
        .is_some());
        assert!(keep(event(
            "pull",
            "application/vnd.oci.image.layer.v1.tar+gzip",
            "skopeo"
        ))
        .is_none());
        assert!(keep(event("delete", manifest, "skopeo")).is_none());
        assert!(
            keep(event("pull", manifest, "vigil/0.1.0")).is_none(),
            "Vigil's own pull"
        );
    }

    #[test]
    fn envelopes_and_garbage() {
        let one = event("pull", "application/vnd.oci.image.manifest.v1+json", "x");
        assert_eq!(
            parse(&format!(r#"{{"events":[{one},{one}]}}"#))
                .unwrap()
                .len(),
            2
        );
        assert!(parse("{not json").is_err());
        assert!(parse("[1,2]").is_err());
        let empty = parse(r#"{"events":[{}]}"#).unwrap().pop().unwrap();
        assert!(activity(empty, Utc::now()).is_none());
        assert_eq!(percent_decode("a%2Fb%zz%"), "a/b%zz%");
        assert_eq!(percent_decode("é%é%4"), "é%é%4");
    }
}
