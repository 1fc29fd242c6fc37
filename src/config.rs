//! `vigil.toml`: the serde configuration file, checked and resolved into [`Settings`] once at start-up.
//!
//! Unknown fields are rejected with the line named. Secrets never live in the file: it names environment
//! variables or a docker `config.json`, and [`Secret`] keeps their values out of logs and errors.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::warehouse::{Location, Warehouse, WarehouseError};

/// Why the configuration cannot be used. All of these end the run with exit code 2.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config {path}: {message}")]
    Parse { path: PathBuf, message: String },
    /// The reason is part of the message, not a source, so it is printed once.
    #[error("invalid config {path}: {error}")]
    Invalid { path: PathBuf, error: SettingError },
}

/// Which value of the file is refused, and why.
#[derive(Debug, thiserror::Error)]
pub enum SettingError {
    #[error("advisory_source {0:?} is not an http(s) URL")]
    AdvisorySource(String),
    #[error("advisory_ecosystems: {0:?} is not an ecosystem name")]
    AdvisoryEcosystem(String),
    #[error(transparent)]
    Name(#[from] NameError),
    #[error("subscription id {0:?} is used twice")]
    SubscriptionTwice(String),
    #[error("registry name {registry:?} is used twice in subscription {subscription:?}")]
    RegistryTwice {
        subscription: String,
        registry: String,
    },
    /// Boxed: the reasons are large, and `Result<_, ConfigError>` should stay small.
    #[error("subscription {subscription:?} registry {registry:?}: {error}")]
    Registry {
        subscription: String,
        registry: String,
        error: Box<RegistryConfigError>,
    },
}

/// A subscription id or registry name outside the safe alphabet (they become partition values and file
/// names).
#[derive(Debug, thiserror::Error)]
#[error("{what} {name:?} must be 1-128 characters of letters, digits, '-', '_' or '.', not starting with '.'")]
pub struct NameError {
    pub what: &'static str,
    pub name: String,
}

/// What is wrong with one `[[subscription.registry]]`.
#[derive(Debug, thiserror::Error)]
pub enum RegistryConfigError {
    #[error(transparent)]
    Endpoint(#[from] EndpointError),
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
    #[error("max_concurrency must be at least 1")]
    MaxConcurrency,
    #[error("page_size must be 1 to 1000")]
    PageSize,
    #[error("retry.max_attempts must be at least 1")]
    MaxAttempts,
    #[error("repositories: {0}")]
    Repositories(globset::Error),
    #[error("platforms: {0}")]
    Platforms(globset::Error),
}

/// Why a registry `url` is refused.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    #[error("oci: URL names no directory")]
    NoLayoutDirectory,
    #[error("invalid url {text:?}: {source}")]
    Url {
        text: String,
        source: url::ParseError,
    },
    #[error("url {0:?} is plain HTTP; set insecure_http = true to allow it for this registry")]
    PlainHttp(String),
    #[error("url {text:?} has unsupported scheme {scheme:?}")]
    Scheme { text: String, scheme: String },
    #[error("url {0:?} has no host")]
    NoHost(String),
    #[error("url must not contain credentials; use auth instead")]
    Credentials,
    #[error("url {0:?} must not have a path")]
    Path(String),
}

/// Why a registry's credentials cannot be read. Never holds a secret.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("environment variable {0} is not set or empty")]
    Unset(String),
    #[error("docker-config auth applies to HTTP registries only")]
    DockerConfigNotHttp,
    #[error("cannot locate docker config.json")]
    NoDockerConfig,
    #[error("cannot read docker config {path}: {source}")]
    ReadDockerConfig {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid docker config {path}: {source}")]
    ParseDockerConfig {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("docker config {path} has no auths entry for {host}")]
    NoAuthsEntry { path: PathBuf, host: String },
    #[error("docker config entry for {0} has no credentials")]
    NoCredentials(String),
    #[error("docker config entry for {0}: auth is not base64 of user:password")]
    NotBase64(String),
    #[error("docker config entry for {0}: auth is not user:password")]
    NotUserPassword(String),
}

/// A value that must never be printed: passwords and tokens.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Secret {
        Secret(value)
    }
    /// The value itself, only for building an `Authorization` header.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// The configuration file `crawl`, `scan`, `run`, `daemon`, `events` and `schedules` read when neither
/// `--config` nor [`CONFIG_ENV`] names one.
pub const DEFAULT_CONFIG_FILE: &str = "vigil.toml";

/// The environment variable naming the configuration file: below `--config`, above the default.
pub const CONFIG_ENV: &str = "VIGIL_CONFIG";

/// The file as written. A field left out takes its value from [`ConfigFile::default`], the one place the
/// defaults are written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConfigFile {
    /// A folder, `az://container/prefix` or `s3://bucket/prefix`.
    pub warehouse: String,
    /// Non-secret settings of an object-store warehouse, under `object_store`'s names.
    pub warehouse_options: BTreeMap<String, String>,
    pub advisory_db: PathBuf,
    pub schedules: PathBuf,
    /// Where per-layer inventories are cached between runs.
    pub cache: PathBuf,
    /// OSV ecosystems `vigil db update` downloads (their `<Ecosystem>/all.zip` exports).
    pub advisory_ecosystems: Vec<String>,
    /// Where `vigil db update` downloads from: the osv.dev export bucket or a mirror of its layout.
    pub advisory_source: String,
    pub subscription: Vec<SubscriptionConfig>,
}

impl Default for ConfigFile {
    /// The settings of a command run without a configuration file.
    fn default() -> ConfigFile {
        ConfigFile {
            warehouse: "./vigil-data/warehouse".to_string(),
            warehouse_options: BTreeMap::new(),
            advisory_db: PathBuf::from("./vigil-data/db"),
            schedules: PathBuf::from("./schedules"),
            cache: PathBuf::from("./vigil-data/cache"),
            advisory_ecosystems: DEFAULT_ADVISORY_ECOSYSTEMS
                .iter()
                .map(|s| s.to_string())
                .collect(),
            advisory_source: DEFAULT_ADVISORY_SOURCE.to_string(),
            subscription: Vec::new(),
        }
    }
}

/// The ecosystems of the distros and languages Vigil inventories.
pub const DEFAULT_ADVISORY_ECOSYSTEMS: &[&str] = &[
    "AlmaLinux",
    "Alpine",
    "Debian",
    "Rocky Linux",
    "Ubuntu",
    "crates.io",
    "Go",
    "Maven",
    "npm",
    "NuGet",
    "PyPI",
    "RubyGems",
];

/// The public osv.dev export bucket.
pub const DEFAULT_ADVISORY_SOURCE: &str = "https://osv-vulnerabilities.storage.googleapis.com";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionConfig {
    pub id: String,
    #[serde(default)]
    pub registry: Vec<RegistryConfig>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryConfig {
    /// Unique inside the subscription; the warehouse partition value.
    pub name: String,
    /// `https://host[:port]`, `http://host[:port]` (with `insecure_http`), or `oci:/path/to/layout`.
    pub url: String,
    #[serde(default)]
    pub auth: AuthConfig,
    pub ca_file: Option<PathBuf>,
    #[serde(default)]
    pub insecure_http: bool,
    #[serde(default = "default_max_concurrency")]
    pub max_concurrency: usize,
    /// Globs over repository names; empty means every repository.
    #[serde(default)]
    pub repositories: Vec<String>,
    #[serde(default = "default_page_size")]
    pub page_size: u32,
    /// Platforms to scan, as `os/arch[/variant]` globs. Others are reported as not scanned.
    #[serde(default = "default_platforms")]
    pub platforms: Vec<String>,
    #[serde(default)]
    pub retry: RetryConfig,
    /// Per-request timeout in seconds.
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
}

fn default_max_concurrency() -> usize {
    8
}
fn default_page_size() -> u32 {
    100
}
fn default_platforms() -> Vec<String> {
    vec!["linux/*".to_string()]
}
fn default_timeout() -> u64 {
    60
}

/// How a registry is authenticated. Secrets come from the environment or a docker config, never the file.
#[derive(Debug, Default, Deserialize, Clone)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum AuthConfig {
    #[default]
    Anonymous,
    Basic {
        username: String,
        password_env: String,
    },
    /// A ready token sent as `Authorization: Bearer`.
    Bearer { token_env: String },
    /// `auths` of a docker `config.json`; default `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`.
    DockerConfig { path: Option<PathBuf> },
}

/// Retry policy for connection errors, 429 and 5xx.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryConfig {
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
    #[serde(default = "default_initial_backoff")]
    pub initial_backoff_ms: u64,
    #[serde(default = "default_max_backoff")]
    pub max_backoff_ms: u64,
}

fn default_attempts() -> u32 {
    5
}
fn default_initial_backoff() -> u64 {
    200
}
fn default_max_backoff() -> u64 {
    30_000
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            max_attempts: default_attempts(),
            initial_backoff_ms: default_initial_backoff(),
            max_backoff_ms: default_max_backoff(),
        }
    }
}

/// Resolved settings: paths made absolute against the config file's folder, credentials read.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The configuration file read; `None` when a command ran on the defaults.
    pub config_path: Option<PathBuf>,
    pub warehouse: Location,
    pub warehouse_options: BTreeMap<String, String>,
    pub advisory_db: PathBuf,
    pub schedules: PathBuf,
    pub cache: PathBuf,
    pub advisory_ecosystems: Vec<String>,
    pub advisory_source: String,
    pub subscriptions: Vec<Subscription>,
}

#[derive(Debug, Clone)]
pub struct Subscription {
    pub id: String,
    pub registries: Vec<RegistrySettings>,
}

/// Where a registry's images come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// An OCI distribution API base URL (scheme, host and port only).
    Http(url::Url),
    /// A directory in the OCI image layout.
    Layout(PathBuf),
}

/// Resolved credentials for one registry.
#[derive(Debug, Clone)]
pub enum Credentials {
    Anonymous,
    Basic { username: String, password: Secret },
    Bearer { token: Secret },
}

#[derive(Debug, Clone)]
pub struct RegistrySettings {
    pub subscription: String,
    pub name: String,
    pub endpoint: Endpoint,
    pub credentials: Credentials,
    pub ca_file: Option<PathBuf>,
    pub max_concurrency: usize,
    pub repositories: Option<globset::GlobSet>,
    pub page_size: u32,
    pub platforms: globset::GlobSet,
    pub retry: RetryConfig,
    pub timeout: std::time::Duration,
    /// Where image configs (content-addressed, so never stale) are kept, so a crawl reads each config
    /// blob once; `None` fetches every time.
    pub config_cache: Option<PathBuf>,
    /// Whether the registry is in the configuration or was made up for an image named on the command line.
    pub origin: RegistryOrigin,
}

/// Where a registry's settings come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistryOrigin {
    /// A `[[subscription.registry]]` of the configuration.
    Configured,
    /// Made up for an image named on the command line outside the configuration (anonymous, defaults);
    /// its subscription and name are `adhoc` until a scan files it under its host.
    AdHoc,
}

impl RegistrySettings {
    /// Whether `repository` is selected by the `repositories` globs.
    pub fn wants_repository(&self, repository: &str) -> bool {
        self.repositories
            .as_ref()
            .is_none_or(|set| set.is_match(repository))
    }

    /// Whether a platform (`os/arch[/variant]`) is scanned.
    pub fn wants_platform(&self, platform: &str) -> bool {
        self.platforms.is_match(platform)
    }

    /// Settings for an ad-hoc registry named on the command line (anonymous, defaults).
    pub fn ad_hoc(endpoint: Endpoint) -> RegistrySettings {
        RegistrySettings {
            subscription: "adhoc".into(),
            name: "adhoc".into(),
            endpoint,
            credentials: Credentials::Anonymous,
            ca_file: None,
            max_concurrency: default_max_concurrency(),
            repositories: None,
            page_size: default_page_size(),
            platforms: glob_set(&default_platforms()).expect("default platform glob is valid"),
            retry: RetryConfig::default(),
            timeout: std::time::Duration::from_secs(default_timeout()),
            config_cache: None,
            origin: RegistryOrigin::AdHoc,
        }
    }
}

fn glob_set(patterns: &[String]) -> Result<globset::GlobSet, globset::Error> {
    let mut builder = globset::GlobSetBuilder::new();
    for pattern in patterns {
        builder.add(
            globset::GlobBuilder::new(pattern)
                .literal_separator(false)
                .build()?,
        );
    }
    builder.build()
}

/// Which configuration file a command reads. `--config` over [`CONFIG_ENV`] is applied by clap when the
/// arguments are parsed; this says what happens when neither is given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigChoice {
    /// Commands that talk to registries (`crawl`, `scan`, `run`, `daemon`, `events`, `schedules`) need the
    /// subscriptions: the file (by default [`DEFAULT_CONFIG_FILE`]) must exist.
    Required(PathBuf),
    /// Commands that read local data (`report`, `sql`, `rules`, `db`, `match`, `inventory`) work without a
    /// file: `None` runs them on the defaults.
    Optional(Option<PathBuf>),
}

/// Values given on the command line; each one given replaces the configuration's (CLI > file > default).
/// Paths are taken as given, relative to the working directory.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// A folder or an `az://` or `s3://` URL.
    pub warehouse: Option<String>,
    pub advisory_db: Option<PathBuf>,
    pub cache: Option<PathBuf>,
    pub advisory_source: Option<String>,
    /// Empty means the configuration's list.
    pub advisory_ecosystems: Vec<String>,
}

impl Settings {
    /// The warehouse these settings name, opened (nothing is read yet).
    pub fn open_warehouse(&self) -> Result<Warehouse, WarehouseError> {
        Warehouse::open(&self.warehouse, &self.warehouse_options)
    }

    /// The settings a command runs with: the command line's [`Overrides`] over the configuration file
    /// `choice` names (or the defaults) — the one place the layers are merged. `env` looks up
    /// environment variables for credentials (a parameter so tests need not mutate the process
    /// environment).
    pub fn resolve(
        choice: ConfigChoice,
        overrides: Overrides,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Settings, ConfigError> {
        let mut settings = match choice {
            ConfigChoice::Required(path) | ConfigChoice::Optional(Some(path)) => load(&path, env)?,
            ConfigChoice::Optional(None) => {
                resolve(ConfigFile::default(), None, Path::new(""), env)?
            }
        };
        settings.apply(overrides);
        Ok(settings)
    }

    fn apply(&mut self, overrides: Overrides) {
        let Overrides {
            warehouse,
            advisory_db,
            cache,
            advisory_source,
            advisory_ecosystems,
        } = overrides;
        if let Some(warehouse) = warehouse {
            self.warehouse = Location::parse(&warehouse);
        }
        if let Some(advisory_db) = advisory_db {
            self.advisory_db = advisory_db;
        }
        if let Some(cache) = cache {
            self.cache = cache;
        }
        if let Some(advisory_source) = advisory_source {
            self.advisory_source = advisory_source;
        }
        if !advisory_ecosystems.is_empty() {
            self.advisory_ecosystems = advisory_ecosystems;
        }
    }
}

/// Reads and resolves a config file. `env` looks up environment variables (a parameter so tests need not
/// mutate the process environment).
pub fn load(path: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<Settings, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let base = path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let file: ConfigFile = toml::from_str(&text).map_err(|err| ConfigError::Parse {
        path: path.to_path_buf(),
        message: describe_toml_error(&text, &err),
    })?;
    resolve(file, Some(path), &base, env)
}

/// Parses config text (for the embedded demo config and tests); relative paths resolve against `base`.
pub fn load_str(
    text: &str,
    name: &Path,
    base: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Settings, ConfigError> {
    let file: ConfigFile = toml::from_str(text).map_err(|err| ConfigError::Parse {
        path: name.to_path_buf(),
        message: describe_toml_error(text, &err),
    })?;
    resolve(file, Some(name), base, env)
}

/// The toml error with its line number stated plainly (toml reports a byte span).
fn describe_toml_error(text: &str, err: &toml::de::Error) -> String {
    let message = err.message().trim().to_string();
    match err.span() {
        Some(span) => {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            format!("line {line}: {message}")
        }
        None => message,
    }
}

/// Relative paths in the file are relative to the file's folder, so a config works from any directory.
/// (`base` is empty for the defaults, which stay relative to the working directory.)
fn absolute(base: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    }
}

/// Checks a parsed file and resolves it into settings; `config_path` is `None` for the defaults.
fn resolve(
    file: ConfigFile,
    config_path: Option<&Path>,
    base: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Settings, ConfigError> {
    let invalid = |error: SettingError| ConfigError::Invalid {
        path: config_path.unwrap_or(Path::new("")).to_path_buf(),
        error,
    };
    check_advisory_settings(&file).map_err(&invalid)?;
    let config_cache = absolute(base, &file.cache).join("configs");
    let mut subscription_ids = BTreeSet::new();
    let mut subscriptions = Vec::new();
    for sub in file.subscription {
        if !subscription_ids.insert(sub.id.clone()) {
            return Err(invalid(SettingError::SubscriptionTwice(sub.id)));
        }
        subscriptions.push(resolve_subscription(sub, base, &config_cache, env).map_err(&invalid)?);
    }
    Ok(Settings {
        config_path: config_path.map(Path::to_path_buf),
        warehouse: Location::parse(&file.warehouse).resolved(base),
        warehouse_options: file.warehouse_options,
        advisory_db: absolute(base, &file.advisory_db),
        schedules: absolute(base, &file.schedules),
        cache: absolute(base, &file.cache),
        advisory_ecosystems: file.advisory_ecosystems,
        advisory_source: file.advisory_source,
        subscriptions,
    })
}

/// Where `vigil db update` downloads from and what: an http(s) URL and ecosystem names that are safe as
/// path segments.
fn check_advisory_settings(file: &ConfigFile) -> Result<(), SettingError> {
    match url::Url::parse(&file.advisory_source) {
        Ok(url) if matches!(url.scheme(), "http" | "https") => {}
        _ => return Err(SettingError::AdvisorySource(file.advisory_source.clone())),
    }
    if let Some(bad) = file
        .advisory_ecosystems
        .iter()
        .find(|e| e.is_empty() || e.contains(['/', '\\']) || e.starts_with('.'))
    {
        return Err(SettingError::AdvisoryEcosystem(bad.clone()));
    }
    Ok(())
}

/// One subscription: its id checked, its registries' names unique within it.
fn resolve_subscription(
    sub: SubscriptionConfig,
    base: &Path,
    config_cache: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Subscription, SettingError> {
    check_name("subscription id", &sub.id)?;
    let mut names = BTreeSet::new();
    let mut registries = Vec::new();
    for reg in sub.registry {
        check_name("registry name", &reg.name)?;
        if !names.insert(reg.name.clone()) {
            return Err(SettingError::RegistryTwice {
                subscription: sub.id,
                registry: reg.name,
            });
        }
        let registry_name = reg.name.clone();
        let registry =
            resolve_registry(reg, &sub.id, base, config_cache, env).map_err(|error| {
                SettingError::Registry {
                    subscription: sub.id.clone(),
                    registry: registry_name,
                    error: Box::new(error),
                }
            })?;
        registries.push(registry);
    }
    Ok(Subscription {
        id: sub.id,
        registries,
    })
}

/// One registry: endpoint, credentials, limits and globs checked and resolved.
fn resolve_registry(
    reg: RegistryConfig,
    subscription: &str,
    base: &Path,
    config_cache: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<RegistrySettings, RegistryConfigError> {
    let endpoint = parse_endpoint(&reg.url, reg.insecure_http, base)?;
    let credentials = resolve_credentials(&reg.auth, &endpoint, env)?;
    if reg.max_concurrency == 0 {
        return Err(RegistryConfigError::MaxConcurrency);
    }
    if !(1..=1000).contains(&reg.page_size) {
        return Err(RegistryConfigError::PageSize);
    }
    if reg.retry.max_attempts == 0 {
        return Err(RegistryConfigError::MaxAttempts);
    }
    let repositories = if reg.repositories.is_empty() {
        None
    } else {
        Some(glob_set(&reg.repositories).map_err(RegistryConfigError::Repositories)?)
    };
    let platforms = glob_set(&reg.platforms).map_err(RegistryConfigError::Platforms)?;
    Ok(RegistrySettings {
        subscription: subscription.to_string(),
        name: reg.name,
        endpoint,
        credentials,
        ca_file: reg.ca_file.as_deref().map(|path| absolute(base, path)),
        max_concurrency: reg.max_concurrency,
        repositories,
        page_size: reg.page_size,
        platforms,
        retry: reg.retry,
        timeout: std::time::Duration::from_secs(reg.timeout_secs.max(1)),
        config_cache: Some(config_cache.to_path_buf()),
        origin: RegistryOrigin::Configured,
    })
}

/// Names become partition values and file names: keep them to a safe alphabet.
fn check_name(what: &'static str, name: &str) -> Result<(), NameError> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && !name.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(NameError {
            what,
            name: name.to_string(),
        })
    }
}

/// Parses a registry `url`: `oci:PATH`, `https://host[:port]`, or `http://...` when allowed.
pub fn parse_endpoint(
    text: &str,
    insecure_http: bool,
    base: &Path,
) -> Result<Endpoint, EndpointError> {
    if let Some(path) = text.strip_prefix("oci:") {
        if path.is_empty() {
            return Err(EndpointError::NoLayoutDirectory);
        }
        let path = Path::new(path);
        return Ok(Endpoint::Layout(if path.is_absolute() {
            path.to_path_buf()
        } else {
            base.join(path)
        }));
    }
    let url = url::Url::parse(text).map_err(|source| EndpointError::Url {
        text: text.to_string(),
        source,
    })?;
    match url.scheme() {
        "https" => {}
        "http" if insecure_http => {}
        "http" => return Err(EndpointError::PlainHttp(text.to_string())),
        other => {
            return Err(EndpointError::Scheme {
                text: text.to_string(),
                scheme: other.to_string(),
            })
        }
    }
    if url.host_str().is_none() {
        return Err(EndpointError::NoHost(text.to_string()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(EndpointError::Credentials);
    }
    if url.path() != "/" && !url.path().is_empty() {
        return Err(EndpointError::Path(text.to_string()));
    }
    Ok(Endpoint::Http(url))
}

fn resolve_credentials(
    auth: &AuthConfig,
    endpoint: &Endpoint,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Credentials, CredentialsError> {
    let from_env = |var: &str| {
        env(var)
            .filter(|v| !v.is_empty())
            .map(Secret::new)
            .ok_or_else(|| CredentialsError::Unset(var.to_string()))
    };
    match auth {
        AuthConfig::Anonymous => Ok(Credentials::Anonymous),
        AuthConfig::Basic {
            username,
            password_env,
        } => Ok(Credentials::Basic {
            username: username.clone(),
            password: from_env(password_env)?,
        }),
        AuthConfig::Bearer { token_env } => Ok(Credentials::Bearer {
            token: from_env(token_env)?,
        }),
        AuthConfig::DockerConfig { path } => {
            let Endpoint::Http(url) = endpoint else {
                return Err(CredentialsError::DockerConfigNotHttp);
            };
            let path = match path {
                Some(p) => p.clone(),
                None => match (env("DOCKER_CONFIG"), env("HOME")) {
                    (Some(dir), _) => Path::new(&dir).join("config.json"),
                    (None, Some(home)) => Path::new(&home).join(".docker/config.json"),
                    (None, None) => return Err(CredentialsError::NoDockerConfig),
                },
            };
            docker_config_credentials(&path, url)
        }
    }
}

#[derive(Deserialize)]
struct DockerConfigJson {
    #[serde(default)]
    auths: std::collections::BTreeMap<String, DockerAuthEntry>,
}

#[derive(Deserialize)]
struct DockerAuthEntry {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
    identitytoken: Option<String>,
}

/// Looks the registry's `host[:port]` up in a docker `config.json`'s `auths`.
fn docker_config_credentials(path: &Path, url: &url::Url) -> Result<Credentials, CredentialsError> {
    use base64::Engine as _;
    let text =
        std::fs::read_to_string(path).map_err(|source| CredentialsError::ReadDockerConfig {
            path: path.to_path_buf(),
            source,
        })?;
    let config: DockerConfigJson =
        serde_json::from_str(&text).map_err(|source| CredentialsError::ParseDockerConfig {
            path: path.to_path_buf(),
            source,
        })?;
    let host = match url.port() {
        Some(port) => format!("{}:{port}", url.host_str().unwrap_or_default()),
        None => url.host_str().unwrap_or_default().to_string(),
    };
    let entry = config
        .auths
        .iter()
        .find(|(key, _)| {
            let key = key
                .trim_start_matches("https://")
                .trim_start_matches("http://");
            key.split('/').next() == Some(host.as_str())
        })
        .map(|(_, entry)| entry)
        .ok_or_else(|| CredentialsError::NoAuthsEntry {
            path: path.to_path_buf(),
            host: host.clone(),
        })?;
    if let Some(token) = &entry.identitytoken {
        return Ok(Credentials::Bearer {
            token: Secret::new(token.clone()),
        });
    }
    if let (Some(username), Some(password)) = (&entry.username, &entry.password) {
        return Ok(Credentials::Basic {
            username: username.clone(),
            password: Secret::new(password.clone()),
        });
    }
    let encoded = entry
        .auth
        .as_deref()
        .ok_or_else(|| CredentialsError::NoCredentials(host.clone()))?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(|| CredentialsError::NotBase64(host.clone()))?;
    let (username, password) = decoded
        .split_once(':')
        .ok_or_else(|| CredentialsError::NotUserPassword(host.clone()))?;
    Ok(Credentials::Basic {
        username: username.to_string(),
        password: Secret::new(password.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn parse(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Settings, ConfigError> {
        load_str(text, Path::new("vigil.toml"), Path::new("/etc/vigil"), env)
    }

    #[test]
    fn full_example_resolves() {
        let text = r#"
warehouse = "./vigil-data/warehouse"
advisory_db = "/var/lib/vigil/db"

[[subscription]]
id = "prod"
[[subscription.registry]]
name = "main"
url = "https://registry.example.com"
auth = { kind = "basic", username = "scanner", password_env = "MAIN_REGISTRY_PASSWORD" }
ca_file = "ca.pem"
max_concurrency = 4
repositories = ["team-a/*"]

[[subscription.registry]]
name = "demo"
url = "oci:layouts/demo"
"#;
        let env = |k: &str| (k == "MAIN_REGISTRY_PASSWORD").then(|| "s3cret".to_string());
        let settings = parse(text, &env).unwrap();
        assert_eq!(
            settings.warehouse,
            Location::Local("/etc/vigil/./vigil-data/warehouse".into())
        );
        assert_eq!(settings.advisory_db, Path::new("/var/lib/vigil/db"));
        let main = &settings.subscriptions[0].registries[0];
        assert!(
            matches!(&main.credentials, Credentials::Basic { username, password }
            if username == "scanner" && password.expose() == "s3cret")
        );
        assert_eq!(
            main.ca_file.as_deref(),
            Some(Path::new("/etc/vigil/ca.pem"))
        );
        assert!(main.wants_repository("team-a/api"));
        assert!(main.wants_repository("team-a/deep/api"));
        assert!(!main.wants_repository("team-b/api"));
        assert!(main.wants_platform("linux/amd64"));
        assert!(main.wants_platform("linux/arm/v7"));
        assert!(!main.wants_platform("windows/amd64"));
        assert_eq!(
            settings.subscriptions[0].registries[1].endpoint,
            Endpoint::Layout(PathBuf::from("/etc/vigil/layouts/demo"))
        );
        assert!(!format!("{settings:?}").contains("s3cret"));
    }

    #[test]
    fn resolve_layers_cli_over_file_over_defaults() {
        let defaults =
            Settings::resolve(ConfigChoice::Optional(None), Overrides::default(), &no_env).unwrap();
        assert_eq!(defaults.config_path, None);
        assert_eq!(
            defaults.warehouse,
            Location::Local("./vigil-data/warehouse".into())
        );
        assert_eq!(defaults.advisory_db, Path::new("./vigil-data/db"));
        assert_eq!(defaults.cache, Path::new("./vigil-data/cache"));
        assert_eq!(defaults.advisory_source, DEFAULT_ADVISORY_SOURCE);
        assert_eq!(
            defaults.advisory_ecosystems.len(),
            DEFAULT_ADVISORY_ECOSYSTEMS.len()
        );

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vigil.toml");
        std::fs::write(
            &path,
            "warehouse = \"w\"\nadvisory_db = \"d\"\nadvisory_ecosystems = [\"Debian\"]\n",
        )
        .unwrap();
        let file = Settings::resolve(
            ConfigChoice::Optional(Some(path.clone())),
            Overrides::default(),
            &no_env,
        )
        .unwrap();
        assert_eq!(file.config_path.as_deref(), Some(path.as_path()));
        assert_eq!(file.warehouse, Location::Local(dir.path().join("w")));
        assert_eq!(file.advisory_db, dir.path().join("d"));
        assert_eq!(file.cache, dir.path().join("./vigil-data/cache"));
        assert_eq!(file.advisory_ecosystems, ["Debian"]);

        let overridden = Settings::resolve(
            ConfigChoice::Required(path),
            Overrides {
                warehouse: Some("elsewhere".into()),
                advisory_ecosystems: vec!["Alpine".into()],
                ..Overrides::default()
            },
            &no_env,
        )
        .unwrap();
        assert_eq!(overridden.warehouse, Location::Local("elsewhere".into()));
        assert_eq!(overridden.advisory_db, dir.path().join("d"));
        assert_eq!(overridden.advisory_ecosystems, ["Alpine"]);

        let missing = Settings::resolve(
            ConfigChoice::Required(dir.path().join("absent.toml")),
            Overrides::default(),
            &no_env,
        )
        .unwrap_err();
        assert!(matches!(missing, ConfigError::Read { .. }), "{missing}");
    }

    #[test]
    fn unknown_field_names_the_line() {
        let text = "warehouse = \"w\"\n\n[[subscription]]\nid = \"prod\"\ncolour = \"blue\"\n";
        let err = parse(text, &no_env).unwrap_err().to_string();
        assert!(err.contains("line 5"), "{err}");
        assert!(err.contains("colour"), "{err}");
    }

    #[test]
    fn bad_values_are_refused_with_context() {
        let cases = [
            ("[[subscription]]\nid = \"a/b\"\n", "subscription id"),
            (
                "[[subscription]]\nid = \"p\"\n[[subscription.registry]]\nname = \"r\"\nurl = \"http://x\"\n",
                "insecure_http",
            ),
            (
                "[[subscription]]\nid = \"p\"\n[[subscription.registry]]\nname = \"r\"\nurl = \"https://x\"\nauth = { kind = \"basic\", username = \"u\", password_env = \"NOPE\" }\n",
                "NOPE",
            ),
            (
                "[[subscription]]\nid = \"p\"\n[[subscription.registry]]\nname = \"r\"\nurl = \"https://x\"\n[[subscription.registry]]\nname = \"r\"\nurl = \"https://y\"\n",
                "used twice",
            ),
            (
                "[[subscription]]\nid = \"p\"\n[[subscription.registry]]\nname = \"r\"\nurl = \"https://u:p@x\"\n",
                "credentials",
            ),
            (
                "[[subscription]]\nid = \"p\"\n[[subscription.registry]]\nname = \"r\"\nurl = \"https://x\"\nauth = { kind = \"magic\" }\n",
                "magic",
            ),
            (
                "[[subscription]]\nid = \"p\"\n[[subscription.registry]]\nname = \"r\"\nurl = \"https://x\"\nmax_concurrency = 0\n",
                "max_concurrency",
            ),
        ];
        for (text, needle) in cases {
            let err = parse(text, &no_env).unwrap_err().to_string();
            assert!(err.contains(needle), "{needle}: {err}");
        }
    }

    #[test]
    fn docker_config_auth_is_read_by_host_and_port() {
        use base64::Engine as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        let auth = base64::engine::general_purpose::STANDARD.encode("bob:hunter2");
        std::fs::write(
            &path,
            format!(r#"{{"auths":{{"127.0.0.1:5999":{{"auth":"{auth}"}},"other":{{}}}}}}"#),
        )
        .unwrap();
        let text = format!(
            "[[subscription]]\nid = \"p\"\n[[subscription.registry]]\nname = \"r\"\nurl = \"http://127.0.0.1:5999\"\ninsecure_http = true\nauth = {{ kind = \"docker-config\", path = {:?} }}\n",
            path.display().to_string()
        );
        let settings = parse(&text, &no_env).unwrap();
        assert!(
            matches!(&settings.subscriptions[0].registries[0].credentials,
            Credentials::Basic { username, password } if username == "bob" && password.expose() == "hunter2")
        );
        let text = text.replace("5999", "6000");
        let err = parse(&text, &no_env).unwrap_err().to_string();
        assert!(err.contains("no auths entry for 127.0.0.1:6000"), "{err}");
        assert!(!err.contains("hunter2"));
    }
}
