//! Where the warehouse lives: a local folder, an Azure Blob container (`az://container/prefix`) or an S3
//! bucket (`s3://bucket/prefix`), all reached through one `object_store` handle. Every table is written
//! and read through it, by Vigil's own readers and by DataFusion (which gets the same store registered for
//! the URL's scheme and bucket).
//!
//! Non-secret settings come from the `[warehouse_options]` table of the configuration, under the names
//! `object_store` gives them (`azure_storage_account_name`, `aws_region`, `aws_endpoint`...). Secrets come
//! only from the environment variables `object_store` reads itself (`AZURE_STORAGE_ACCOUNT_KEY`, SAS tokens,
//! workload identity, `AWS_ACCESS_KEY_ID` and friends, web identity): a secret in the file is refused.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::path::{Path as FsPath, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    ObjectStoreExt, PutMode, PutMultipartOptions, PutOptions, PutPayload, PutResult, UpdateVersion,
};
use url::Url;

use super::WarehouseError;

/// Where the configuration puts the warehouse: a folder, or the URL of a container or bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Local(PathBuf),
    Url(String),
}

impl Location {
    /// `az://…`, `s3://…` and other `scheme://` text is a URL (checked when the warehouse is opened);
    /// anything else is a path.
    pub fn parse(text: &str) -> Location {
        match text.strip_prefix("file://") {
            Some(path) => Location::Local(PathBuf::from(path)),
            None if text.contains("://") => Location::Url(text.to_string()),
            None => Location::Local(PathBuf::from(text)),
        }
    }

    /// A relative folder resolved against `base` (the configuration file's folder); URLs as they are.
    pub fn resolved(self, base: &FsPath) -> Location {
        match self {
            Location::Local(path) if path.is_relative() => Location::Local(base.join(path)),
            other => other,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Local(path) => write!(f, "{}", path.display()),
            Location::Url(url) => f.write_str(url),
        }
    }
}

/// Requests made to the store, by kind: what a report session or a run costs on object storage.
#[derive(Debug, Default)]
pub struct RequestCounts {
    pub gets: AtomicU64,
    pub heads: AtomicU64,
    pub lists: AtomicU64,
    pub puts: AtomicU64,
    pub deletes: AtomicU64,
}

impl RequestCounts {
    /// `(gets + heads, lists, puts, deletes)` so far.
    pub fn snapshot(&self) -> (u64, u64, u64, u64) {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        (
            load(&self.gets) + load(&self.heads),
            load(&self.lists),
            load(&self.puts),
            load(&self.deletes),
        )
    }
}

/// An open warehouse: the store, the key prefix inside it, and the URL DataFusion knows the store by.
#[derive(Debug, Clone)]
pub struct Warehouse {
    location: Location,
    store: Arc<CountingStore>,
    prefix: Path,
    /// `file://`, `az://container` or `s3://bucket`: the store's URL in a DataFusion session.
    store_url: String,
    /// The folder, for a local warehouse (run locks there are OS file locks).
    local: Option<PathBuf>,
}

/// A result of a conditional create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Created {
    /// Written; the version a later conditional replace names.
    Yes(Version),
    /// Another writer created the object first.
    Exists,
}

/// The version of an object a conditional replace must still find.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    e_tag: Option<String>,
    version: Option<String>,
}

impl Version {
    fn of(result: &PutResult) -> Version {
        Version {
            e_tag: result.e_tag.clone(),
            version: result.version.clone(),
        }
    }
}

/// Option names that hold secrets: they are only read from the environment.
const SECRET_OPTIONS: [&str; 10] = [
    "account_key",
    "access_key",
    "secret",
    "sas",
    "token",
    "password",
    "client_secret",
    "federated_token",
    "session_token",
    "bearer",
];

impl Warehouse {
    /// A warehouse in a local folder.
    pub fn local(root: &FsPath) -> Result<Warehouse, WarehouseError> {
        Warehouse::open(&Location::Local(root.to_path_buf()), &BTreeMap::new())
    }

    /// Opens the warehouse at `location` with the non-secret `options` (the secrets come from the
    /// environment). Nothing is read or written yet.
    pub fn open(
        location: &Location,
        options: &BTreeMap<String, String>,
    ) -> Result<Warehouse, WarehouseError> {
        Warehouse::open_with_secrets(location, options, &BTreeMap::new())
    }

    /// [`Warehouse::open`] with secrets given by the caller (a program embedding Vigil, or a test that
    /// must not change its process environment) on top of those the environment holds. The command
    /// line never takes secrets from anywhere but the environment.
    pub fn open_with_secrets(
        location: &Location,
        options: &BTreeMap<String, String>,
        secrets: &BTreeMap<String, String>,
    ) -> Result<Warehouse, WarehouseError> {
        let invalid = |message: String| WarehouseError::Location {
            location: location.to_string(),
            message,
        };
        if let Some(secret) = options.keys().find(|key| {
            let key = key.to_ascii_lowercase();
            SECRET_OPTIONS.iter().any(|s| key.contains(s))
        }) {
            return Err(invalid(format!(
                "warehouse_options.{secret} is a secret: set it in the environment (AZURE_STORAGE_ACCOUNT_KEY, \
                 AZURE_STORAGE_SAS_KEY, AWS_SECRET_ACCESS_KEY...), not in the configuration file"
            )));
        }
        let (store, prefix, store_url, local): (Arc<dyn ObjectStore>, Path, String, _) =
            match location {
                Location::Local(root) => {
                    if !options.is_empty() {
                        return Err(invalid(
                            "warehouse_options only apply to az:// and s3:// warehouses".into(),
                        ));
                    }
                    let root = std::path::absolute(root).map_err(|e| invalid(e.to_string()))?;
                    let prefix =
                        Path::from_absolute_path(&root).map_err(|e| invalid(e.to_string()))?;
                    let store = LocalFileSystem::new().with_automatic_cleanup(true);
                    (Arc::new(store), prefix, "file://".to_string(), Some(root))
                }
                Location::Url(text) => {
                    let url = Url::parse(text).map_err(|e| invalid(e.to_string()))?;
                    let bucket = url
                        .host_str()
                        .filter(|h| !h.is_empty())
                        .ok_or_else(|| invalid("names no container or bucket".into()))?
                        .to_string();
                    let prefix =
                        Path::from_url_path(url.path()).map_err(|e| invalid(e.to_string()))?;
                    let store: Arc<dyn ObjectStore> = match url.scheme() {
                        "az" | "abfs" | "abfss" | "azure" => {
                            Arc::new(azure(&bucket, options, secrets)?)
                        }
                        "s3" | "s3a" => Arc::new(s3(&bucket, options, secrets)?),
                        other => {
                            return Err(invalid(format!(
                                "unsupported scheme {other}:// (a warehouse is a path, az://container/prefix or \
                                 s3://bucket/prefix)"
                            )))
                        }
                    };
                    let store_url = format!("{}://{bucket}", url.scheme());
                    (store, prefix, store_url, None)
                }
            };
        Ok(Warehouse {
            location: location.clone(),
            store: Arc::new(CountingStore {
                inner: store,
                counts: Arc::default(),
            }),
            prefix,
            store_url,
            local,
        })
    }

    pub fn location(&self) -> &Location {
        &self.location
    }

    /// The folder of a local warehouse.
    pub fn local_root(&self) -> Option<&FsPath> {
        self.local.as_deref()
    }

    /// The store, counting its requests, for a DataFusion session.
    pub fn object_store(&self) -> Arc<dyn ObjectStore> {
        self.store.clone()
    }

    /// The store for one query session: small objects fetched whole (a footer read that covered the whole
    /// file) are kept for the session, so the page reads that follow cost no request.
    pub fn session_store(&self) -> Arc<dyn ObjectStore> {
        Arc::new(SessionCache {
            inner: self.store.clone(),
            objects: std::sync::Mutex::default(),
        })
    }

    /// `file://`, `az://container` or `s3://bucket`.
    pub fn store_url(&self) -> &str {
        &self.store_url
    }

    pub fn requests(&self) -> Arc<RequestCounts> {
        self.store.counts.clone()
    }

    /// The store path of `key` (a `/`-separated path inside the warehouse, e.g. `scans/scan_id=x/part-0.parquet`).
    pub fn path(&self, key: &str) -> Path {
        // Parsed, not joined part by part: joining would percent-encode the `%XX` of a Hive partition
        // value a second time, and other readers would see another folder name.
        let parts = self
            .prefix
            .parts()
            .map(|part| part.as_ref().to_string())
            .chain(key.split('/').filter(|p| !p.is_empty()).map(str::to_string));
        let joined = parts.collect::<Vec<_>>().join("/");
        Path::parse(&joined).unwrap_or_else(|_| Path::from(joined.as_str()))
    }

    /// The key of a store path inside the warehouse (the inverse of [`Warehouse::path`]).
    pub fn key_of(&self, path: &Path) -> Option<String> {
        let parts: Vec<_> = path.prefix_match(&self.prefix)?.collect();
        Some(
            parts
                .iter()
                .map(|p| p.as_ref())
                .collect::<Vec<_>>()
                .join("/"),
        )
    }

    /// Where `key` is, for messages.
    pub fn describe(&self, key: &str) -> String {
        match &self.location {
            Location::Local(root) => root.join(key).display().to_string(),
            Location::Url(url) => format!("{}/{key}", url.trim_end_matches('/')),
        }
    }

    fn error(&self, key: &str) -> impl FnOnce(object_store::Error) -> WarehouseError + '_ {
        let at = self.describe(key);
        move |source| WarehouseError::Store { at, source }
    }

    /// The object at `key`; `None` when there is none.
    pub async fn get(&self, key: &str) -> Result<Option<Bytes>, WarehouseError> {
        Ok(self.get_versioned(key).await?.map(|(bytes, _)| bytes))
    }

    /// The object at `key` with its version; `None` when there is none.
    pub async fn get_versioned(
        &self,
        key: &str,
    ) -> Result<Option<(Bytes, Version)>, WarehouseError> {
        let result = match self.store.get(&self.path(key)).await {
            Ok(result) => result,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(err) => return Err(self.error(key)(err)),
        };
        let version = Version {
            e_tag: result.meta.e_tag.clone(),
            version: result.meta.version.clone(),
        };
        let bytes = result.bytes().await.map_err(self.error(key))?;
        Ok(Some((bytes, version)))
    }

    /// Writes `key`, replacing what is there. A local file is synced before this returns.
    pub async fn put(&self, key: &str, bytes: Bytes) -> Result<(), WarehouseError> {
        self.put_mode(key, bytes, PutMode::Overwrite).await?;
        Ok(())
    }

    /// Creates `key` unless it exists: exactly one of racing creators gets [`Created::Yes`].
    pub async fn create(&self, key: &str, bytes: Bytes) -> Result<Created, WarehouseError> {
        match self.put_mode(key, bytes, PutMode::Create).await {
            Ok(result) => Ok(Created::Yes(Version::of(&result))),
            Err(WarehouseError::Store {
                source:
                    object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. },
                ..
            }) => Ok(Created::Exists),
            Err(WarehouseError::Store {
                at,
                source: object_store::Error::NotImplemented { .. },
            }) => Err(WarehouseError::NoConditionalWrites { at }),
            Err(err) => Err(err),
        }
    }

    /// Replaces `key` if it is still at `version`: `Ok(None)` when another writer changed it first.
    /// A local folder has no versions: there the object is replaced (local writers are kept apart by
    /// OS file locks).
    pub async fn replace(
        &self,
        key: &str,
        bytes: Bytes,
        version: &Version,
    ) -> Result<Option<Version>, WarehouseError> {
        let mode = if self.local.is_some() {
            PutMode::Overwrite
        } else {
            PutMode::Update(UpdateVersion {
                e_tag: version.e_tag.clone(),
                version: version.version.clone(),
            })
        };
        match self.put_mode(key, bytes, mode).await {
            Ok(result) => Ok(Some(Version::of(&result))),
            Err(WarehouseError::Store {
                source:
                    object_store::Error::Precondition { .. } | object_store::Error::NotFound { .. },
                ..
            }) => Ok(None),
            Err(WarehouseError::Store {
                at,
                source: object_store::Error::NotImplemented { .. },
            }) => Err(WarehouseError::NoConditionalWrites { at }),
            Err(err) => Err(err),
        }
    }

    async fn put_mode(
        &self,
        key: &str,
        bytes: Bytes,
        mode: PutMode,
    ) -> Result<PutResult, WarehouseError> {
        let path = self.path(key);
        let options = PutOptions {
            mode,
            ..PutOptions::default()
        };
        let result = self
            .store
            .put_opts(&path, PutPayload::from_bytes(bytes), options)
            .await
            .map_err(self.error(key))?;
        if let Some(root) = &self.local {
            sync_local(root, key).map_err(|source| WarehouseError::Io {
                path: root.join(key),
                source,
            })?;
        }
        Ok(result)
    }

    /// Every object under `key_prefix` (a folder key, `""` for the whole warehouse), with its key.
    pub async fn list(
        &self,
        key_prefix: &str,
    ) -> Result<Vec<(String, ObjectMeta)>, WarehouseError> {
        let prefix = self.path(key_prefix);
        let metas: Vec<ObjectMeta> = self
            .store
            .list(Some(&prefix))
            .try_collect()
            .await
            .map_err(self.error(key_prefix))?;
        let mut out: Vec<(String, ObjectMeta)> = metas
            .into_iter()
            .filter_map(|meta| Some((self.key_of(&meta.location)?, meta)))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// The folders directly under `key_prefix`, as keys: one listing with a delimiter, which neither
    /// descends into them nor reads what they hold.
    pub async fn list_folders(&self, key_prefix: &str) -> Result<Vec<String>, WarehouseError> {
        let listed = self
            .store
            .list_with_delimiter(Some(&self.path(key_prefix)))
            .await
            .map_err(self.error(key_prefix))?;
        let mut out: Vec<String> = listed
            .common_prefixes
            .iter()
            .filter_map(|prefix| self.key_of(prefix))
            .collect();
        out.sort();
        Ok(out)
    }

    /// Deletes `key`; one already gone is not an error.
    pub async fn delete(&self, key: &str) -> Result<(), WarehouseError> {
        match self.store.delete(&self.path(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(err) => Err(self.error(key)(err)),
        }
    }
}

/// Makes a local object durable: the file, then its folder (so the name survives a power cut).
fn sync_local(root: &FsPath, key: &str) -> std::io::Result<()> {
    let path = root.join(key);
    std::fs::File::open(&path)?.sync_all()?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// An option of `[warehouse_options]` that the store does not know.
fn unknown_option(scheme: &str, key: &str) -> WarehouseError {
    WarehouseError::Location {
        location: format!("{scheme}://"),
        message: format!("warehouse_options.{key} is not an option of {scheme} stores"),
    }
}

fn azure(
    container: &str,
    options: &BTreeMap<String, String>,
    secrets: &BTreeMap<String, String>,
) -> Result<impl ObjectStore, WarehouseError> {
    let mut builder = MicrosoftAzureBuilder::from_env().with_container_name(container);
    for (key, value) in options.iter().chain(secrets) {
        let config: AzureConfigKey = key
            .to_ascii_lowercase()
            .parse()
            .map_err(|_| unknown_option("az", key))?;
        builder = builder.with_config(config, value);
    }
    builder.build().map_err(|source| WarehouseError::Location {
        location: format!("az://{container}"),
        message: source.to_string(),
    })
}

fn s3(
    bucket: &str,
    options: &BTreeMap<String, String>,
    secrets: &BTreeMap<String, String>,
) -> Result<impl ObjectStore, WarehouseError> {
    // Commits need conditional creates, which S3 has had since 2024: on unless the options say otherwise.
    let mut builder = AmazonS3Builder::from_env()
        .with_bucket_name(bucket)
        .with_config(AmazonS3ConfigKey::ConditionalPut, "etag");
    for (key, value) in options.iter().chain(secrets) {
        let config: AmazonS3ConfigKey = key
            .to_ascii_lowercase()
            .parse()
            .map_err(|_| unknown_option("s3", key))?;
        builder = builder.with_config(config, value);
    }
    builder.build().map_err(|source| WarehouseError::Location {
        location: format!("s3://{bucket}"),
        message: source.to_string(),
    })
}

/// The store with every request counted.
#[derive(Debug)]
struct CountingStore {
    inner: Arc<dyn ObjectStore>,
    counts: Arc<RequestCounts>,
}

impl fmt::Display for CountingStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.inner)
    }
}

fn count(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

#[async_trait]
impl ObjectStore for CountingStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        count(&self.counts.puts);
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        count(&self.counts.puts);
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        if options.head {
            count(&self.counts.heads);
        } else {
            count(&self.counts.gets);
        }
        self.inner.get_opts(location, options).await
    }

    async fn get_ranges(
        &self,
        location: &Path,
        ranges: &[Range<u64>],
    ) -> object_store::Result<Vec<Bytes>> {
        // The inner store coalesces the ranges into as few requests as it makes; count them as one each.
        self.counts
            .gets
            .fetch_add(ranges.len().min(1) as u64, Ordering::Relaxed);
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        let counts = self.counts.clone();
        self.inner
            .delete_stream(locations.inspect(move |_| count(&counts.deletes)).boxed())
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        count(&self.counts.lists);
        self.inner.list(prefix)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        count(&self.counts.lists);
        self.inner.list_with_offset(prefix, offset)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        count(&self.counts.lists);
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        count(&self.counts.puts);
        self.inner.copy_opts(from, to, options).await
    }
}

/// Objects at most this large, once fetched whole, are kept for the session.
const SESSION_CACHE_MAX_OBJECT: u64 = 1024 * 1024;

/// A query session's view of the store: every object fetched whole and small enough is kept, and later
/// reads of it (DataFusion reads a file's footer, then its pages) are served from memory. Only objects a
/// single read already brought whole are kept, so the cache holds no more than the session read.
#[derive(Debug)]
struct SessionCache {
    inner: Arc<CountingStore>,
    objects: std::sync::Mutex<std::collections::HashMap<Path, (ObjectMeta, Bytes)>>,
}

impl fmt::Display for SessionCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "session cache over {}", self.inner)
    }
}

impl SessionCache {
    fn cached(&self, location: &Path) -> Option<(ObjectMeta, Bytes)> {
        self.objects
            .lock()
            .ok()
            .and_then(|objects| objects.get(location).cloned())
    }
}

/// The byte range `range` selects of an object of `size` bytes, as object stores interpret it.
fn resolve_range(range: Option<&object_store::GetRange>, size: u64) -> Option<Range<u64>> {
    use object_store::GetRange;
    let range = match range {
        None => 0..size,
        Some(GetRange::Bounded(r)) => r.start..r.end.min(size),
        Some(GetRange::Offset(start)) => *start..size,
        Some(GetRange::Suffix(n)) => size.saturating_sub(*n)..size,
    };
    (range.start <= range.end && range.end <= size).then_some(range)
}

fn one_chunk(bytes: Bytes) -> object_store::GetResultPayload {
    object_store::GetResultPayload::Stream(futures::stream::once(async move { Ok(bytes) }).boxed())
}

#[async_trait]
impl ObjectStore for SessionCache {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        let plain = options.if_match.is_none()
            && options.if_none_match.is_none()
            && options.if_modified_since.is_none()
            && options.if_unmodified_since.is_none()
            && options.version.is_none();
        if plain {
            if let Some((meta, bytes)) = self.cached(location) {
                if let Some(range) = resolve_range(options.range.as_ref(), meta.size) {
                    let slice = bytes.slice(range.start as usize..range.end as usize);
                    let payload = if options.head {
                        one_chunk(Bytes::new())
                    } else {
                        one_chunk(slice)
                    };
                    return Ok(GetResult {
                        payload,
                        meta,
                        range,
                        attributes: Default::default(),
                    });
                }
            }
        }
        let head = options.head;
        let result = self.inner.get_opts(location, options).await?;
        let whole = result.range.start == 0 && result.range.end == result.meta.size;
        if !plain || head || !whole || result.meta.size > SESSION_CACHE_MAX_OBJECT {
            return Ok(result);
        }
        let (meta, range, attributes) = (
            result.meta.clone(),
            result.range.clone(),
            result.attributes.clone(),
        );
        let bytes = result.bytes().await?;
        if let Ok(mut objects) = self.objects.lock() {
            objects.insert(location.clone(), (meta.clone(), bytes.clone()));
        }
        Ok(GetResult {
            payload: one_chunk(bytes),
            meta,
            range,
            attributes,
        })
    }

    async fn get_ranges(
        &self,
        location: &Path,
        ranges: &[Range<u64>],
    ) -> object_store::Result<Vec<Bytes>> {
        if let Some((meta, bytes)) = self.cached(location) {
            if ranges
                .iter()
                .all(|r| r.start <= r.end && r.end <= meta.size)
            {
                return Ok(ranges
                    .iter()
                    .map(|r| bytes.slice(r.start as usize..r.end as usize))
                    .collect());
            }
        }
        // A read from the start (DataFusion's footer read, which for a small file is the whole file) goes
        // through `get_opts`, which keeps the object when it came whole.
        if let [range] = ranges {
            if range.start == 0 && range.end <= SESSION_CACHE_MAX_OBJECT {
                let options = GetOptions {
                    range: Some(object_store::GetRange::Bounded(range.clone())),
                    ..GetOptions::default()
                };
                return Ok(vec![self.get_opts(location, options).await?.bytes().await?]);
            }
        }
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_are_paths_unless_they_have_a_scheme() {
        assert_eq!(Location::parse("./w"), Location::Local("./w".into()));
        assert_eq!(Location::parse("file:///w"), Location::Local("/w".into()));
        assert_eq!(
            Location::parse("az://c/p"),
            Location::Url("az://c/p".into())
        );
        assert_eq!(
            Location::parse("w").resolved(FsPath::new("/etc/vigil")),
            Location::Local("/etc/vigil/w".into())
        );
    }

    #[test]
    fn bad_locations_and_options_are_refused_naming_the_warehouse() {
        let open = |text: &str, options: &[(&str, &str)]| {
            let options = options
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            Warehouse::open(&Location::parse(text), &options)
                .unwrap_err()
                .to_string()
        };
        let error = open("gs://bucket/w", &[]);
        assert!(
            error.contains("gs://bucket/w") && error.contains("unsupported scheme gs://"),
            "{error}"
        );
        let error = open("az://c/w", &[("azure_storage_account_key", "k")]);
        assert!(error.contains("is a secret"), "{error}");
        let error = open("s3://b/w", &[("aws_no_such_option", "1")]);
        assert!(error.contains("aws_no_such_option"), "{error}");
        let error = open("s3:///w", &[]);
        assert!(error.contains("names no container or bucket"), "{error}");
    }

    #[tokio::test]
    async fn keys_round_trip_and_creates_are_exclusive_on_a_folder() {
        let dir = tempfile::tempdir().unwrap();
        let warehouse = Warehouse::local(dir.path()).unwrap();
        let key = "t/subscription=a%2Fb/x.json";
        assert_eq!(warehouse.key_of(&warehouse.path(key)).unwrap(), key);
        assert_eq!(
            warehouse
                .create(key, Bytes::from_static(b"1"))
                .await
                .unwrap(),
            Created::Yes(Version {
                e_tag: warehouse.get_versioned(key).await.unwrap().unwrap().1.e_tag,
                version: None
            })
        );
        assert_eq!(
            warehouse
                .create(key, Bytes::from_static(b"2"))
                .await
                .unwrap(),
            Created::Exists
        );
        assert!(dir.path().join("t/subscription=a%2Fb/x.json").is_file());
        assert_eq!(
            warehouse.get(key).await.unwrap().unwrap(),
            Bytes::from_static(b"1")
        );
        let listed = warehouse.list("t").await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].0, key);
        warehouse.delete(key).await.unwrap();
        warehouse.delete(key).await.unwrap();
        assert!(warehouse.get(key).await.unwrap().is_none());
    }
}
