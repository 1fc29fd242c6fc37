//! Real object-storage servers for the warehouse tests, each a child process on a free loopback port,
//! killed on drop: Azurite (the Azure Storage emulator, npm `azurite@3.35.0`, the newest that runs on
//! Node 20) and moto's S3 server (PyPI `moto[server]`). `.ci/install-object-stores` installs both outside
//! the clone; when one is absent, `start` says `skipped: ...` and returns `None`.
//!
//! Settings are split the way Vigil reads them: the non-secret ones go in `[warehouse_options]` under
//! `object_store`'s config key names (`warehouse_options`), the secrets in the environment variables
//! `object_store` reads itself (`secret_env`).
//!
//! Containers and buckets are created with one signed request each, written by hand over `sha2` (HMAC is a
//! few lines): no SDK, no Python, and no async runtime, so the helpers work inside `#[tokio::test]` too.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use sha2::{Digest as _, Sha256};

/// How long a server may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The emulator's well-known account (the same in every Azurite).
pub const AZURITE_ACCOUNT: &str = "devstoreaccount1";
/// The emulator's well-known account key (public, documented by Microsoft; not a secret anywhere else).
pub const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
/// The storage API version of the container request (Azurite runs with --skipApiVersionCheck anyway).
const AZURE_API_VERSION: &str = "2021-12-02";

/// moto accepts any credentials; these are what the tests hand to Vigil.
pub const MOTO_ACCESS_KEY: &str = "test";
pub const MOTO_SECRET_KEY: &str = "test";
pub const MOTO_REGION: &str = "us-east-1";

/// Azurite's blob service on 127.0.0.1, in memory, killed on drop.
pub struct Azurite {
    pub port: u16,
    child: Child,
    /// Azurite's working folder (its current directory); nothing is written there in memory.
    _dir: tempfile::TempDir,
}

impl Azurite {
    /// Starts Azurite: `VIGIL_AZURITE` names `azurite-blob`, else the one `.ci/install-object-stores`
    /// puts in ~/.cache/vigil-azurite (`VIGIL_AZURITE_PREFIX`), else `azurite-blob` on the PATH.
    pub fn start() -> Option<Azurite> {
        let installed = azurite_prefix().map(|p| p.join("node_modules/.bin/azurite-blob"));
        let Some(program) = find_program("VIGIL_AZURITE", installed, "azurite-blob") else {
            skip("azurite");
            return None;
        };
        let dir = tempfile::tempdir().expect("temp dir for azurite");
        let mut command = Command::new(&program);
        command
            .args(["--blobHost", "127.0.0.1", "--blobPort", "0"])
            // In memory: no __azurite_db files, and a fresh account every start. (3.35.0 refuses it
            // together with --location, so the working folder is the temp dir.)
            .arg("--inMemoryPersistence")
            .arg("--disableTelemetry")
            // object_store and pyarrow send newer API versions than 3.35.0 knows.
            .arg("--skipApiVersionCheck")
            // No access log. Strict mode stays on (no --loose): it only refuses CRC64 and customer-key
            // headers, and a refusal is visible where --loose would silently ignore them.
            .arg("--silent")
            .current_dir(dir.path());
        // With port 0 Azurite binds a free port and prints
        // "Azurite Blob service successfully listens on http://127.0.0.1:PORT".
        let (child, port) = spawn_reporting_port(
            command,
            &format!("azurite ({})", program.display()),
            "successfully listens on http://127.0.0.1:",
        );
        Some(Azurite {
            port,
            child,
            _dir: dir,
        })
    }

    /// The account's blob endpoint, path-style as Azurite serves it.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}/{AZURITE_ACCOUNT}", self.port)
    }

    /// Creates a blob container (an existing one is fine): `PUT /account/NAME?restype=container`, signed
    /// with Shared Key.
    pub fn create_container(&self, name: &str) {
        let date = chrono::Utc::now()
            .format("%a, %d %b %Y %H:%M:%S GMT")
            .to_string();
        let path = format!("/{AZURITE_ACCOUNT}/{name}");
        let authorization = azure_shared_key(AZURITE_ACCOUNT, AZURITE_KEY, &date, &path);
        let (status, response) = http_put_empty(
            self.port,
            &format!("{path}?restype=container"),
            &[
                ("x-ms-date", date),
                ("x-ms-version", AZURE_API_VERSION.to_string()),
                ("Authorization", authorization),
            ],
        );
        assert!(
            status == 201 || (status == 409 && response.contains("ContainerAlreadyExists")),
            "azurite refused to create container {name}: {response}"
        );
    }

    /// `[warehouse_options]` for an `az://CONTAINER/prefix` warehouse here (AzureConfigKey names).
    /// The endpoint, not `azure_storage_use_emulator`: in emulator mode object_store takes the address
    /// from the environment variable AZURITE_BLOB_STORAGE_URL (default port 10000), never from an option.
    pub fn warehouse_options(&self) -> Vec<(String, String)> {
        pairs(&[
            ("azure_storage_account_name", AZURITE_ACCOUNT),
            ("azure_storage_endpoint", &self.endpoint()),
            ("azure_allow_http", "true"),
        ])
    }

    /// The secret, as the environment variable object_store reads.
    pub fn secret_env(&self) -> Vec<(String, String)> {
        pairs(&[("AZURE_STORAGE_ACCOUNT_KEY", AZURITE_KEY)])
    }

    /// Everything through the environment (`MicrosoftAzureBuilder::from_env` reads every `AZURE_*`
    /// variable whose lower-cased name is a config key): the options above and the secret.
    pub fn env(&self) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = self
            .warehouse_options()
            .into_iter()
            .map(|(key, value)| (key.to_ascii_uppercase(), value))
            .collect();
        env.extend(self.secret_env());
        env
    }

    /// The alternative: object_store's emulator mode, entirely from the environment (account and key
    /// default to the well-known ones). It differs in one thing: `list_with_offset` filters on the client.
    /// Azurite ignores `startFrom`, so with the endpoint above a listing after `b` of a, b, c returns all
    /// three (object_store drops only a first entry equal to the offset). Vigil never lists with an offset.
    pub fn emulator_env(&self) -> Vec<(String, String)> {
        pairs(&[
            ("AZURE_STORAGE_USE_EMULATOR", "true"),
            (
                "AZURITE_BLOB_STORAGE_URL",
                &format!("http://127.0.0.1:{}", self.port),
            ),
        ])
    }

    /// A Python expression for a `pyarrow.fs.AzureFileSystem` on this account (needs `import pyarrow.fs`).
    /// pyarrow 26 needs the dfs_* settings too: listing first checks for hierarchical-namespace support on
    /// the dfs endpoint, which otherwise resolves to devstoreaccount1.dfs.core.windows.net and fails.
    pub fn pyarrow_filesystem(&self) -> String {
        format!(
            "pyarrow.fs.AzureFileSystem(account_name=\"{AZURITE_ACCOUNT}\", account_key=\"{AZURITE_KEY}\", \
             blob_storage_authority=\"127.0.0.1:{port}\", blob_storage_scheme=\"http\", \
             dfs_storage_authority=\"127.0.0.1:{port}\", dfs_storage_scheme=\"http\")",
            port = self.port
        )
    }
}

impl Drop for Azurite {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// moto's S3 server on 127.0.0.1, in memory, killed on drop.
pub struct Moto {
    pub port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Moto {
    /// Starts moto: `VIGIL_MOTO` names `moto_server`, else the one in the virtualenv
    /// (~/.cache/vigil-venv, `VIGIL_VENV`), else `moto_server` on the PATH.
    pub fn start() -> Option<Moto> {
        let installed = venv().map(|v| v.join("bin/moto_server"));
        let Some(program) = find_program("VIGIL_MOTO", installed, "moto_server") else {
            skip("moto_server");
            return None;
        };
        let dir = tempfile::tempdir().expect("temp dir for moto");
        let mut command = Command::new(&program);
        command
            .args(["-H", "127.0.0.1", "-p", "0"])
            .current_dir(dir.path());
        // With port 0 werkzeug binds a free port and logs " * Running on http://127.0.0.1:PORT" (stderr).
        let (child, port) = spawn_reporting_port(
            command,
            &format!("moto ({})", program.display()),
            "Running on http://127.0.0.1:",
        );
        Some(Moto {
            port,
            child,
            _dir: dir,
        })
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Creates a bucket in us-east-1 (an existing one is fine): `PUT /NAME`, signed with SigV4. moto
    /// checks no signature unless told to, but it treats unsigned requests as anonymous.
    pub fn create_bucket(&self, name: &str) {
        let now = chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
        let host = format!("127.0.0.1:{}", self.port);
        let path = format!("/{name}");
        let authorization = aws_sigv4_empty_put(
            MOTO_ACCESS_KEY,
            MOTO_SECRET_KEY,
            MOTO_REGION,
            &now,
            &host,
            &path,
        );
        let (status, response) = http_put_empty(
            self.port,
            &path,
            &[
                ("x-amz-date", now),
                ("x-amz-content-sha256", hex::encode(Sha256::digest(b""))),
                ("Authorization", authorization),
            ],
        );
        assert!(
            status == 200 || (status == 409 && response.contains("BucketAlreadyOwnedByYou")),
            "moto refused to create bucket {name}: {response}"
        );
    }

    /// `[warehouse_options]` for an `s3://BUCKET/prefix` warehouse here (AmazonS3ConfigKey names).
    pub fn warehouse_options(&self) -> Vec<(String, String)> {
        pairs(&[
            ("aws_endpoint", &self.endpoint()),
            ("aws_region", MOTO_REGION),
            ("aws_allow_http", "true"),
            ("aws_conditional_put", "etag"),
            ("aws_virtual_hosted_style_request", "false"),
        ])
    }

    /// The secrets, as the environment variables object_store reads.
    pub fn secret_env(&self) -> Vec<(String, String)> {
        pairs(&[
            ("AWS_ACCESS_KEY_ID", MOTO_ACCESS_KEY),
            ("AWS_SECRET_ACCESS_KEY", MOTO_SECRET_KEY),
        ])
    }

    /// Everything through the environment (`AmazonS3Builder::from_env` reads every `AWS_*` variable
    /// whose lower-cased name is a config key): the options above and the secrets.
    pub fn env(&self) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = self
            .warehouse_options()
            .into_iter()
            .map(|(key, value)| (key.to_ascii_uppercase(), value))
            .collect();
        env.extend(self.secret_env());
        env
    }

    /// A Python expression for a `pyarrow.fs.S3FileSystem` on this server (needs `import pyarrow.fs`).
    pub fn pyarrow_filesystem(&self) -> String {
        format!(
            "pyarrow.fs.S3FileSystem(access_key=\"{MOTO_ACCESS_KEY}\", secret_key=\"{MOTO_SECRET_KEY}\", \
             endpoint_override=\"{}\", region=\"{MOTO_REGION}\", scheme=\"http\")",
            self.endpoint()
        )
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The Python with the independent readers (pyarrow, DuckDB): `VIGIL_PYTHON`, else the virtualenv
/// `.ci/run` and `.ci/install-object-stores` create (~/.cache/vigil-venv, `VIGIL_VENV`).
pub fn python() -> Option<PathBuf> {
    if let Some(python) = std::env::var_os("VIGIL_PYTHON") {
        return Some(PathBuf::from(python));
    }
    venv().map(|v| v.join("bin/python")).filter(|p| p.is_file())
}

/// `[warehouse_options]` as a TOML table, for a configuration file.
pub fn warehouse_options_toml(options: &[(String, String)]) -> String {
    let mut toml = String::from("[warehouse_options]\n");
    for (key, value) in options {
        // A JSON string is a valid TOML basic string.
        toml.push_str(&format!(
            "{key} = {}\n",
            serde_json::Value::from(value.as_str())
        ));
    }
    toml
}

fn home() -> Option<PathBuf> {
    std::env::var_os("HOME").map(PathBuf::from)
}

fn venv() -> Option<PathBuf> {
    match std::env::var_os("VIGIL_VENV") {
        Some(venv) => Some(PathBuf::from(venv)),
        None => home().map(|h| h.join(".cache/vigil-venv")),
    }
}

fn azurite_prefix() -> Option<PathBuf> {
    match std::env::var_os("VIGIL_AZURITE_PREFIX") {
        Some(prefix) => Some(PathBuf::from(prefix)),
        None => home().map(|h| h.join(".cache/vigil-azurite")),
    }
}

/// The program named by `env_var` (taken as given, so a wrong setting fails loudly instead of skipping),
/// else `installed` when it exists, else `name` on the PATH.
fn find_program(env_var: &str, installed: Option<PathBuf>, name: &str) -> Option<PathBuf> {
    if let Some(program) = std::env::var_os(env_var) {
        return Some(PathBuf::from(program));
    }
    if let Some(program) = installed.filter(|p| p.is_file()) {
        return Some(program);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

fn skip(what: &str) {
    // CI installs both servers: there a missing one is a failure, not a skip.
    if std::env::var_os("VIGIL_REQUIRE_OBJECT_STORES").is_some() {
        panic!("{what} is not installed and VIGIL_REQUIRE_OBJECT_STORES is set (run .ci/install-object-stores)");
    }
    // Straight to stderr: libtest captures `eprintln!` of passing tests, which would hide the skip.
    let _ = writeln!(
        std::io::stderr(),
        "skipped: {what} not installed (run .ci/install-object-stores)"
    );
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Spawns `command` and waits for the line, on stdout or stderr, where the server announces its port:
/// `marker` followed by the digits. Both pipes are drained for the child's whole life so it never blocks
/// on a full pipe; the output before the announcement is kept for the message when startup fails.
fn spawn_reporting_port(mut command: Command, what: &str, marker: &'static str) -> (Child, u16) {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("could not start {what}: {e}"));
    let output = Arc::new(Mutex::new(String::new()));
    let (sender, receiver) = mpsc::channel::<u16>();
    let stdout = child.stdout.take().expect("piped stdout");
    let stderr = child.stderr.take().expect("piped stderr");
    drain(stdout, marker, sender.clone(), output.clone());
    drain(stderr, marker, sender, output.clone());

    let deadline = Instant::now() + START_TIMEOUT;
    let port = loop {
        match receiver.recv_timeout(Duration::from_millis(100)) {
            Ok(port) => break port,
            Err(mpsc::RecvTimeoutError::Disconnected) => startup_failed(
                &mut child,
                what,
                "closed its output before listening",
                &output,
            ),
            Err(mpsc::RecvTimeoutError::Timeout) if Instant::now() > deadline => {
                startup_failed(&mut child, what, "did not report its port in time", &output)
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
    };
    // It said so after listen(), but a connection proves it.
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            startup_failed(
                &mut child,
                what,
                "reported its port but refuses connections",
                &output,
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    (child, port)
}

fn startup_failed(child: &mut Child, what: &str, why: &str, output: &Mutex<String>) -> ! {
    let _ = child.kill();
    let status = child.wait().map(|s| s.to_string()).unwrap_or_default();
    panic!(
        "{what} {why} ({status}); its output:\n{}",
        output.lock().unwrap()
    )
}

/// Reads `pipe` line by line until it closes, sending the port after `marker` once.
fn drain(
    pipe: impl Read + Send + 'static,
    marker: &'static str,
    sender: mpsc::Sender<u16>,
    output: Arc<Mutex<String>>,
) {
    std::thread::spawn(move || {
        let mut sender = Some(sender);
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            let Some(reporting) = &sender else { continue };
            if let Some(at) = line.find(marker) {
                let digits: String = line[at + marker.len()..]
                    .chars()
                    .take_while(char::is_ascii_digit)
                    .collect();
                if let Ok(port) = digits.parse::<u16>() {
                    let _ = reporting.send(port);
                    sender = None;
                    continue;
                }
            }
            let mut output = output.lock().unwrap();
            output.push_str(&line);
            output.push('\n');
        }
    });
}

/// One `PUT` with an empty body to 127.0.0.1:`port`; returns the status and the whole response.
fn http_put_empty(port: u16, target: &str, headers: &[(&str, String)]) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port))
        .unwrap_or_else(|e| panic!("connect to 127.0.0.1:{port}: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("set a read timeout");
    let mut request = format!(
        "PUT {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n"
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream
        .write_all(request.as_bytes())
        .unwrap_or_else(|e| panic!("send PUT {target} to 127.0.0.1:{port}: {e}"));
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .unwrap_or_else(|e| panic!("read the answer to PUT {target} from 127.0.0.1:{port}: {e}"));
    let response = String::from_utf8_lossy(&response).into_owned();
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, response)
}

/// HMAC-SHA256 (RFC 2104) over `sha2`.
fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut block = [0u8; 64];
    if key.len() > block.len() {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let inner = Sha256::new()
        .chain_update(block.map(|b| b ^ 0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(block.map(|b| b ^ 0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

/// The `Authorization` header of Shared Key for `PUT path?restype=container` with no body and only the
/// `x-ms-date` and `x-ms-version` headers. The string to sign is the verb, eleven standard headers (all
/// empty; a zero Content-Length is signed as empty since version 2015-02-21), the sorted `x-ms-` headers,
/// then the resource: `/account` + the path (which starts with the account again on Azurite's path-style
/// URLs) and the query parameters.
fn azure_shared_key(account: &str, key: &str, date: &str, path: &str) -> String {
    let string_to_sign = format!(
        "PUT\n{}x-ms-date:{date}\nx-ms-version:{AZURE_API_VERSION}\n/{account}{path}\nrestype:container",
        "\n".repeat(11)
    );
    let key = base64::engine::general_purpose::STANDARD
        .decode(key)
        .expect("the account key is base64");
    let signature = hmac_sha256(&key, string_to_sign.as_bytes());
    format!(
        "SharedKey {account}:{}",
        base64::engine::general_purpose::STANDARD.encode(signature)
    )
}

/// The `Authorization` header of AWS Signature Version 4 for `PUT path` with an empty body and the
/// headers host, x-amz-content-sha256 and x-amz-date (`now` as YYYYMMDDTHHMMSSZ). Checked against
/// botocore's signer for the same request.
fn aws_sigv4_empty_put(
    access_key: &str,
    secret_key: &str,
    region: &str,
    now: &str,
    host: &str,
    path: &str,
) -> String {
    let empty = hex::encode(Sha256::digest(b""));
    let signed_headers = "host;x-amz-content-sha256;x-amz-date";
    let canonical_request = format!(
        "PUT\n{path}\n\nhost:{host}\nx-amz-content-sha256:{empty}\nx-amz-date:{now}\n\n{signed_headers}\n{empty}"
    );
    let day = &now[..8];
    let scope = format!("{day}/{region}/s3/aws4_request");
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{now}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    );
    let mut key = hmac_sha256(format!("AWS4{secret_key}").as_bytes(), day.as_bytes());
    for part in [region, "s3", "aws4_request"] {
        key = hmac_sha256(&key, part.as_bytes());
    }
    let signature = hex::encode(hmac_sha256(&key, string_to_sign.as_bytes()));
    format!(
        "AWS4-HMAC-SHA256 Credential={access_key}/{scope}, SignedHeaders={signed_headers}, Signature={signature}"
    )
}
