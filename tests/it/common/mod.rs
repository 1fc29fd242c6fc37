//! Test harness shared by the integration tests: a real `docker-registry` child process on a free loopback
//! port, OCI image layouts built from real files, pushes with skopeo, and a fault-injecting proxy.
#![allow(dead_code, clippy::too_many_arguments)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub mod demo_images;
pub mod object_stores;
pub mod stores;

use serde_json::json;
use sha2::Digest as _;

/// The repository root, for reading tests/testdata.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A folder of the project's shared data set, when present: tests run over it too. The set sits beside the
/// checkout (`../shared/data`, as CI clones it) unless `VIGIL_SHARED_DATA` names it (a worktree elsewhere).
/// When it is absent the run says so, once per folder, instead of passing silently.
pub fn shared_data(folder: &str) -> Option<PathBuf> {
    let root = match std::env::var_os("VIGIL_SHARED_DATA") {
        Some(root) => PathBuf::from(root),
        None => repo_root().join("../shared/data"),
    };
    let dir = root.join(folder);
    if dir.is_dir() {
        return Some(dir);
    }
    static REPORTED: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());
    if REPORTED.lock().unwrap().insert(folder.to_string()) {
        // Straight to stderr: libtest captures `eprintln!` of passing tests, which would hide the skip.
        let _ = writeln!(
            std::io::stderr(),
            "skipped: the checks over {} (absent)",
            dir.display()
        );
    }
    None
}

/// The package-database fixtures kept in the repository (tests/testdata/fixtures).
pub fn local_fixtures() -> PathBuf {
    repo_root().join("tests/testdata/fixtures")
}

/// Every regular file under `dir`, as (path relative to `dir` with `/` separators, full path), sorted.
pub fn files_under(dir: &Path) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(current) = stack.pop() {
        for entry in std::fs::read_dir(&current).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            if entry.file_type().unwrap().is_dir() {
                stack.push(path);
            } else {
                let relative: Vec<_> = path
                    .strip_prefix(dir)
                    .unwrap()
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                out.push((relative.join("/"), path));
            }
        }
    }
    out.sort();
    out
}

/// Basic-auth settings for a registry started with an htpasswd file.
pub struct BasicAuth {
    pub username: String,
    pub password: String,
}

/// A real registry (CNCF distribution, Debian's `docker-registry`) on 127.0.0.1, killed on drop.
pub struct Registry {
    child: Child,
    pub dir: tempfile::TempDir,
    pub port: u16,
}

impl Registry {
    pub fn start() -> Registry {
        Registry::start_with(None)
    }

    pub fn start_with(auth: Option<&BasicAuth>) -> Registry {
        Registry::start_configured(auth, "")
    }

    /// A registry that posts its notification events to `url` with `Authorization: Bearer token`.
    pub fn start_notifying(url: &str, token: &str) -> Registry {
        Registry::start_notifying_on(0, url, token)
    }

    /// The same on a port the caller reserved (0: a free one), for a receiver that must know the
    /// registry's address before the registry starts.
    pub fn start_notifying_on(port: u16, url: &str, token: &str) -> Registry {
        let extra = format!(
            "notifications:\n  endpoints:\n    - name: vigil\n      url: {url}\n      headers:\n        Authorization: [\"Bearer {token}\"]\n      timeout: 2s\n      threshold: 10\n      backoff: 100ms\n"
        );
        Registry::start_full(None, &extra, port)
    }

    /// A registry on a given port (one the caller reserved), with extra configuration.
    pub fn start_configured_on(port: u16, extra: &str) -> Registry {
        Registry::start_full(None, extra, port)
    }

    /// A registry with optional basic auth and extra top-level configuration (YAML).
    pub fn start_configured(auth: Option<&BasicAuth>, extra: &str) -> Registry {
        Registry::start_full(auth, extra, 0)
    }

    fn start_full(auth: Option<&BasicAuth>, extra: &str, port: u16) -> Registry {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = format!(
            "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: vigil-test-secret\n",
            dir.path().join("storage").display()
        );
        if let Some(auth) = auth {
            let output = Command::new("htpasswd")
                .args(["-Bbn", &auth.username, &auth.password])
                .output()
                .expect("htpasswd (apache2-utils) must be installed");
            assert!(output.status.success(), "htpasswd failed");
            let htpasswd = dir.path().join("htpasswd");
            std::fs::write(&htpasswd, &output.stdout).unwrap();
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: vigil-test\n    path: {}\n",
                htpasswd.display()
            ));
        }
        config.push_str(extra);
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).unwrap();
        let mut child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("docker-registry must be installed (apt-get install docker-registry)");
        let stderr = child.stderr.take().unwrap();
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut sender = Some(sender);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(at) = line.find("listening on 127.0.0.1:") {
                    let rest = &line[at + "listening on 127.0.0.1:".len()..];
                    let port: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
                    if let Some(sender) = sender.take() {
                        let _ = sender.send(port.parse::<u16>().ok());
                    }
                }
                // Keep draining so the registry never blocks on a full pipe.
            }
        });
        let port = receiver
            .recv_timeout(Duration::from_secs(20))
            .ok()
            .flatten()
            .expect("registry did not report its port");
        let registry = Registry { child, dir, port };
        registry.wait_ready();
        registry
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", self.port)) {
                let _ = stream.write_all(b"GET /v2/ HTTP/1.0\r\n\r\n");
                let mut response = String::new();
                let _ = std::io::Read::read_to_string(&mut stream, &mut response);
                if response.starts_with("HTTP/1.0 200") || response.starts_with("HTTP/1.0 401") {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("registry on port {} never answered /v2/", self.port);
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.host())
    }

    /// The path of a blob's data file in the registry's storage, for tampering.
    pub fn blob_data_path(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap();
        self.dir
            .path()
            .join("storage/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Copies `oci:LAYOUT:REF` into the registry with skopeo. `extra` adds flags such as `--all` or
/// `--format v2s2`.
pub fn skopeo_push(
    layout: &Path,
    reference: &str,
    destination: &str,
    extra: &[&str],
    creds: Option<&BasicAuth>,
) {
    let mut command = Command::new("skopeo");
    command
        .arg("copy")
        .arg("--quiet")
        .arg("--dest-tls-verify=false")
        .args(extra);
    if let Some(creds) = creds {
        command.arg(format!(
            "--dest-creds={}:{}",
            creds.username, creds.password
        ));
    }
    let output = command
        .arg(format!("oci:{}:{reference}", layout.display()))
        .arg(format!("docker://{destination}"))
        .output()
        .expect("skopeo must be installed (apt-get install skopeo)");
    assert!(
        output.status.success(),
        "skopeo copy to {destination} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A descriptor of something written into a layout.
#[derive(Clone, Debug)]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: usize,
}

impl Descriptor {
    fn to_json(&self) -> serde_json::Value {
        json!({"mediaType": self.media_type, "digest": self.digest, "size": self.size})
    }
}

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// Writes an OCI image layout: blobs, manifests, indexes and tagged `index.json` entries.
pub struct LayoutBuilder {
    pub dir: PathBuf,
    tagged: BTreeMap<String, serde_json::Value>,
}

impl LayoutBuilder {
    pub fn new(dir: &Path) -> LayoutBuilder {
        std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
        std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        let builder = LayoutBuilder {
            dir: dir.to_path_buf(),
            tagged: BTreeMap::new(),
        };
        builder.write_index();
        builder
    }

    pub fn blob(&self, media_type: &str, bytes: &[u8]) -> Descriptor {
        let hex = hex::encode(sha2::Sha256::digest(bytes));
        std::fs::write(self.dir.join("blobs/sha256").join(&hex), bytes).unwrap();
        Descriptor {
            media_type: media_type.to_string(),
            digest: format!("sha256:{hex}"),
            size: bytes.len(),
        }
    }

    /// A single-platform image with one gzip layer holding `files` (path, contents).
    pub fn image(&self, files: &[(&str, &[u8])], os: &str, arch: &str) -> Descriptor {
        self.image_with_layers(&[files], os, arch, OCI_MANIFEST)
    }

    /// An image with several layers, bottom first, and the given manifest media type.
    pub fn image_with_layers(
        &self,
        layers: &[&[(&str, &[u8])]],
        os: &str,
        arch: &str,
        manifest_type: &str,
    ) -> Descriptor {
        let docker = manifest_type.contains("docker");
        let layer_type = if docker {
            "application/vnd.docker.image.rootfs.diff.tar.gzip"
        } else {
            OCI_LAYER_GZIP
        };
        let layers: Vec<(Descriptor, String)> = layers
            .iter()
            .map(|files| {
                let tar = tar_bytes(files);
                let diff_id = format!("sha256:{}", hex::encode(sha2::Sha256::digest(&tar)));
                (self.blob(layer_type, &gzip(&tar)), diff_id)
            })
            .collect();
        self.image_from_blobs(&layers, os, arch, manifest_type)
    }

    /// A single-platform image with one gzip layer of files with explicit modes.
    pub fn image_with_modes(
        &self,
        files: &[(&str, &[u8], u32)],
        os: &str,
        arch: &str,
    ) -> Descriptor {
        let tar = tar_entries(files);
        let diff_id = format!("sha256:{}", hex::encode(sha2::Sha256::digest(&tar)));
        let layer = self.blob(OCI_LAYER_GZIP, &gzip(&tar));
        self.image_from_blobs(&[(layer, diff_id)], os, arch, OCI_MANIFEST)
    }

    /// An image over ready layer blobs (descriptor, diff id), which may hold anything, even garbage.
    pub fn image_from_blobs(
        &self,
        layers: &[(Descriptor, String)],
        os: &str,
        arch: &str,
        manifest_type: &str,
    ) -> Descriptor {
        let docker = manifest_type.contains("docker");
        let config = json!({
            "architecture": arch,
            "os": os,
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|(_, d)| d.clone()).collect::<Vec<_>>()},
        });
        let config_type = if docker {
            "application/vnd.docker.container.image.v1+json"
        } else {
            OCI_CONFIG
        };
        let config = self.blob(config_type, config.to_string().as_bytes());
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": manifest_type,
            "config": config.to_json(),
            "layers": layers.iter().map(|(d, _)| d.to_json()).collect::<Vec<_>>(),
        });
        self.blob(manifest_type, manifest.to_string().as_bytes())
    }

    /// An index over platform manifests: (descriptor, os, arch, variant).
    pub fn index(&self, entries: &[(Descriptor, &str, &str, Option<&str>)]) -> Descriptor {
        let manifests: Vec<_> = entries
            .iter()
            .map(|(d, os, arch, variant)| {
                let mut platform = json!({"os": os, "architecture": arch});
                if let Some(variant) = variant {
                    platform["variant"] = json!(variant);
                }
                let mut entry = d.to_json();
                entry["platform"] = platform;
                entry
            })
            .collect();
        let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests});
        self.blob(OCI_INDEX, index.to_string().as_bytes())
    }

    /// Names a manifest or index in `index.json`.
    pub fn tag(&mut self, descriptor: &Descriptor, name: &str) {
        let mut entry = descriptor.to_json();
        entry["annotations"] = json!({"org.opencontainers.image.ref.name": name});
        self.tagged.insert(name.to_string(), entry);
        self.write_index();
    }

    fn write_index(&self) {
        let index = json!({
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": self.tagged.values().collect::<Vec<_>>(),
        });
        std::fs::write(
            self.dir.join("index.json"),
            serde_json::to_vec_pretty(&index).unwrap(),
        )
        .unwrap();
    }
}

/// A deterministic tar of regular files (fixed owner, mode 0644 and mtime).
pub fn tar_bytes(files: &[(&str, &[u8])]) -> Vec<u8> {
    let entries: Vec<(&str, &[u8], u32)> = files.iter().map(|(p, c)| (*p, *c, 0o644)).collect();
    tar_entries(&entries)
}

/// A deterministic tar of regular files with the given modes (0755 marks an executable).
pub fn tar_entries(files: &[(&str, &[u8], u32)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, contents, mode) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(contents.len() as u64);
        header.set_mode(*mode);
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        header.set_entry_type(tar::EntryType::Regular);
        builder.append_data(&mut header, path, *contents).unwrap();
    }
    builder.into_inner().unwrap()
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::default());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

/// Imports the bundled demo advisories with `vigil db import`, into the DB that `location` names
/// (`["--config", F]` or `["--db", DIR]`).
pub fn import_demo_advisories(location: &[&str]) {
    let advisories = repo_root().join("examples/demo/advisories");
    let mut args = vec!["db", "import", advisories.to_str().unwrap()];
    args.extend_from_slice(location);
    let import = vigil(&args, &[]);
    assert_eq!(import.code, 0, "{}", import.stderr);
}

/// The result of running the `vigil` binary.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs the `vigil` binary with arguments and extra environment variables.
pub fn vigil(args: &[&str], env: &[(&str, &str)]) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(args)
        .envs(env.iter().copied())
        .env_remove("VIGIL_CONFIG")
        .env_remove("VIGIL_LOG")
        .stdin(Stdio::null())
        .output()
        .expect("run vigil");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

impl FaultProxy {
    /// A proxy that injects nothing and only records requests.
    pub fn recording(upstream_port: u16) -> FaultProxy {
        FaultProxy::start(upstream_port, "", 0, "0")
    }

    /// How many `GET` requests fetched the blob `digest`.
    pub fn blob_gets(&self, digest: &str) -> usize {
        let suffix = format!("/blobs/{digest}");
        self.requests
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.starts_with("GET ") && r.ends_with(&suffix))
            .count()
    }

    pub fn url(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

/// A fault-injecting HTTP proxy in front of a real server. The first `fail_first` requests whose path
/// contains `path_contains` get `429 Too Many Requests` with `Retry-After: retry_after`; everything else is
/// forwarded untouched (one request per connection, so every request is seen).
pub struct FaultProxy {
    pub port: u16,
    pub throttled: Arc<AtomicUsize>,
    pub forwarded: Arc<AtomicUsize>,
    /// `METHOD PATH` of every request seen, in arrival order.
    pub requests: Arc<std::sync::Mutex<Vec<String>>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FaultProxy {
    pub fn start(
        upstream_port: u16,
        path_contains: &str,
        fail_first: usize,
        retry_after: &str,
    ) -> FaultProxy {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let throttled = Arc::new(AtomicUsize::new(0));
        let forwarded = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = requests.clone();
        let (shutdown, mut stop) = tokio::sync::oneshot::channel::<()>();
        let path_contains = path_contains.to_string();
        let retry_after = retry_after.to_string();
        let (t, f) = (throttled.clone(), forwarded.clone());
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                loop {
                    tokio::select! {
                        _ = &mut stop => break,
                        accepted = listener.accept() => {
                            let Ok((client, _)) = accepted else { continue };
                            let (t, f, path_contains, retry_after, seen) =
                                (t.clone(), f.clone(), path_contains.clone(), retry_after.clone(), seen.clone());
                            tokio::spawn(async move {
                                let _ = proxy_one(client, upstream_port, &path_contains, fail_first, &retry_after, &t, &f, &seen).await;
                            });
                        }
                    }
                }
            });
        });
        FaultProxy {
            port,
            throttled,
            forwarded,
            requests,
            shutdown: Some(shutdown),
            thread: Some(thread),
        }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn proxy_one(
    mut client: tokio::net::TcpStream,
    upstream_port: u16,
    path_contains: &str,
    fail_first: usize,
    retry_after: &str,
    throttled: &AtomicUsize,
    forwarded: &AtomicUsize,
    seen: &std::sync::Mutex<Vec<String>>,
) -> std::io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if client.read(&mut byte).await? == 0 || head.len() > 64 * 1024 {
            return Ok(());
        }
        head.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let path = text.split_whitespace().nth(1).unwrap_or("").to_string();
    let method = text.split_whitespace().next().unwrap_or("").to_string();
    seen.lock().unwrap().push(format!("{method} {path}"));
    if path.contains(path_contains)
        && throttled
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < fail_first).then_some(n + 1)
            })
            .is_ok()
    {
        let response = format!(
            "HTTP/1.1 429 Too Many Requests\r\nRetry-After: {retry_after}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        client.write_all(response.as_bytes()).await?;
        return Ok(());
    }
    forwarded.fetch_add(1, Ordering::SeqCst);
    let mut rewritten = String::new();
    for line in text.split("\r\n").filter(|l| !l.is_empty()) {
        if line.to_ascii_lowercase().starts_with("connection:") {
            continue;
        }
        rewritten.push_str(line);
        rewritten.push_str("\r\n");
    }
    rewritten.push_str("Connection: close\r\n\r\n");
    let mut upstream = tokio::net::TcpStream::connect(("127.0.0.1", upstream_port)).await?;
    upstream.write_all(rewritten.as_bytes()).await?;
    tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
    Ok(())
}

/// A `vigil` process left running (a server), killed when dropped.
pub struct Background {
    pub child: std::process::Child,
    /// The address it printed as `listening on ADDR`.
    pub addr: String,
}

impl Background {
    /// Starts `vigil ARGS` and waits for its `listening on ADDR` line on stderr.
    pub fn start(args: &[&str], env: &[(&str, &str)]) -> Background {
        let mut child = Command::new(env!("CARGO_BIN_EXE_vigil"))
            .args(args)
            .envs(env.iter().copied())
            .env_remove("VIGIL_CONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start vigil");
        let stderr = child.stderr.take().unwrap();
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut sender = Some(sender);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(addr) = line.strip_prefix("listening on ") {
                    if let Some(sender) = sender.take() {
                        let _ = sender.send(addr.trim().to_string());
                    }
                } else {
                    eprintln!("[vigil] {line}");
                }
            }
        });
        let addr = receiver
            .recv_timeout(Duration::from_secs(30))
            .expect("vigil did not report its address");
        Background { child, addr }
    }

    /// Sends SIGTERM and waits for the exit code.
    pub fn terminate(mut self) -> Option<i32> {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let status = self.child.wait().ok();
        status.and_then(|s| s.code())
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
