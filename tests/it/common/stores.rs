//! A warehouse for a test on each kind of store Vigil supports: a temp folder, a container of a fresh
//! Azurite, a bucket of a fresh moto S3 server. `on_every_store!` runs a test body on all three; a
//! server that is not installed skips its variant with `skipped: ...` (`.ci/run` installs both).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::LazyLock;

use vigil::warehouse::{Location, Warehouse};

use super::object_stores::{Azurite, Moto};

/// One runtime for every store request of the test process: object-store clients keep pooled
/// connections, which must not outlive the runtime that opened them.
static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
});

/// Runs `future` to completion on the shared runtime.
pub fn block_on<F: Future>(future: F) -> F::Output {
    RUNTIME.block_on(future)
}

/// The server a warehouse lives on, kept running as long as the warehouse.
enum Server {
    Folder(#[allow(dead_code)] tempfile::TempDir),
    Azurite(#[allow(dead_code)] Azurite),
    S3(#[allow(dead_code)] Moto),
}

pub struct TestWarehouse {
    pub warehouse: Warehouse,
    /// What `warehouse =` says in a configuration file.
    pub location: String,
    /// Its `[warehouse_options]`.
    pub options: Vec<(String, String)>,
    /// The secrets, as environment variables for a `vigil` process.
    pub env: Vec<(String, String)>,
    _server: Server,
}

impl TestWarehouse {
    pub fn local() -> TestWarehouse {
        let dir = tempfile::tempdir().expect("temp dir");
        let location = dir.path().join("warehouse").display().to_string();
        TestWarehouse {
            warehouse: Warehouse::local(std::path::Path::new(&location)).expect("a folder"),
            location,
            options: Vec::new(),
            env: Vec::new(),
            _server: Server::Folder(dir),
        }
    }

    pub fn azurite() -> Option<TestWarehouse> {
        let azurite = Azurite::start()?;
        azurite.create_container("vigil");
        let options = azurite.warehouse_options();
        let env = azurite.secret_env();
        Some(TestWarehouse::open(
            "az://vigil/warehouse",
            options,
            env,
            Server::Azurite(azurite),
        ))
    }

    pub fn s3() -> Option<TestWarehouse> {
        let moto = Moto::start()?;
        moto.create_bucket("vigil");
        let options = moto.warehouse_options();
        let env = moto.secret_env();
        Some(TestWarehouse::open(
            "s3://vigil/warehouse",
            options,
            env,
            Server::S3(moto),
        ))
    }

    /// Another handle on the same warehouse, with clients of its own (for a second process's view, or a
    /// runtime that is dropped).
    pub fn reopen(&self) -> Warehouse {
        let secrets: BTreeMap<String, String> = self
            .env
            .iter()
            .map(|(name, value)| (name.to_ascii_lowercase(), value.clone()))
            .collect();
        Warehouse::open_with_secrets(
            &Location::parse(&self.location),
            &self.options.iter().cloned().collect(),
            &secrets,
        )
        .expect("the test warehouse opens")
    }

    fn open(
        location: &str,
        options: Vec<(String, String)>,
        env: Vec<(String, String)>,
        server: Server,
    ) -> TestWarehouse {
        let secrets: BTreeMap<String, String> = env
            .iter()
            .map(|(name, value)| (name.to_ascii_lowercase(), value.clone()))
            .collect();
        let warehouse = Warehouse::open_with_secrets(
            &Location::parse(location),
            &options.iter().cloned().collect(),
            &secrets,
        )
        .expect("the test warehouse opens");
        TestWarehouse {
            warehouse,
            location: location.to_string(),
            options,
            env,
            _server: server,
        }
    }

    /// The `warehouse = ...` line and `[warehouse_options]` table of a configuration file.
    pub fn config_toml(&self) -> String {
        let mut text = format!("warehouse = {:?}\n", self.location);
        text.push_str(&super::object_stores::warehouse_options_toml(&self.options));
        text
    }

    /// A Python expression for a pyarrow filesystem on this Azurite.
    pub fn azurite_pyarrow(&self) -> String {
        match &self._server {
            Server::Azurite(azurite) => azurite.pyarrow_filesystem(),
            _ => panic!("not an Azurite warehouse"),
        }
    }

    /// A Python expression for a pyarrow filesystem on this S3 server.
    pub fn s3_pyarrow(&self) -> String {
        match &self._server {
            Server::S3(moto) => moto.pyarrow_filesystem(),
            _ => panic!("not an S3 warehouse"),
        }
    }

    /// The secrets as `(name, value)` pairs for `common::vigil`'s environment.
    pub fn env_refs(&self) -> Vec<(&str, &str)> {
        self.env
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect()
    }
}

/// For each test function `name(&TestWarehouse)` given, three tests in `mod name`: `local`, `azurite`
/// and `s3`.
#[macro_export]
macro_rules! on_every_store {
    ($($name:ident),+ $(,)?) => {
        mod on_every_store {
            $(
                mod $name {
                    use $crate::common::stores::TestWarehouse;

                    #[test]
                    fn local() {
                        super::super::$name(&TestWarehouse::local());
                    }

                    #[test]
                    fn azurite() {
                        if let Some(store) = TestWarehouse::azurite() {
                            super::super::$name(&store);
                        }
                    }

                    #[test]
                    fn s3() {
                        if let Some(store) = TestWarehouse::s3() {
                            super::super::$name(&store);
                        }
                    }
                }
            )+
        }
    };
}
